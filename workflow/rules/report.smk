rule summarize:
    input:
        seeds=get_eval_seed_files,
    output:
        metrics="results/evals/{run}/eval-results/{bench}/metrics.json",
        table=report(
            "results/evals/{run}/eval-results/{bench}/metrics.csv",
            caption="../report/metrics.rst",
            category="Metrics",
            labels={"run": "{run}", "benchmark": "{bench}"},
        ),
        markdown="results/evals/{run}/eval-results/{bench}/metrics.md",
    log:
        "logs/summarize/{run}/{bench}.log",
    localrule: True
    conda:
        "../../envs/core.yaml"
    params:
        options=wf.option_args(EVAL, ["max_seq_len"]),
    shell:
        "python -m distillery.summarize"
        " --benchmark {wildcards.bench}"
        " --files {input.seeds}"
        " --save-metrics-path {output.metrics}"
        " {params.options}"
        " > {log} 2>&1"


rule compare_runs:
    input:
        **get_comparison_inputs(),
    output:
        table="results/comparison.md",
        csv=report(
            "results/comparison.csv",
            caption="../report/comparison.rst",
            category="Comparison",
        ),
    log:
        "logs/compare_runs.log",
    localrule: True
    conda:
        "../../envs/core.yaml"
    params:
        entries=get_comparison_entries,
    shell:
        "python -m distillery.compare_runs"
        " --inputs {params.entries}"
        " --output {output.table}"
        " > {log} 2>&1"

rule summarize:
    input:
        seeds=PLAN.eval_seed_files,
        test="results/benchmarks/{bench}/test.jsonl",
        after=after_eval_jobs,
    output:
        metrics="results/evals/{run}/eval-results/{bench}/metrics.json",
        table=report(
            "results/evals/{run}/eval-results/{bench}/metrics.csv",
            caption="../report/metrics.rst",
            category="Metrics",
            labels={"run": "{run}", "benchmark": "{bench}", "kind": "table"},
        ),
        markdown="results/evals/{run}/eval-results/{bench}/metrics.md",
        plot=report(
            "results/evals/{run}/eval-results/{bench}/metrics.png",
            caption="../report/metrics_plot.rst",
            category="Metrics",
            labels={"run": "{run}", "benchmark": "{bench}", "kind": "plot"},
        ),
    log:
        "logs/summarize/{run}/{bench}.log",
    localrule: True
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    params:
        options=PLAN.summarize_options(),
        config_hash=CONFIG_HASH,
        max_samples=PLAN.run_max_samples,
        metrics=PLAN.metric_type,
    shell:
        "python -m distillery.summarize"
        " --benchmark {wildcards.bench:q}"
        " --files {input.seeds:q}"
        " --test-file {input.test:q}"
        " --max-samples {params.max_samples:q}"
        " --metrics {params.metrics:q}"
        " --save-metrics-path {output.metrics:q}"
        " --config-hash {params.config_hash:q}"
        " {params.options:q}"
        " > {log:q} 2>&1"


rule compare_runs:
    input:
        metrics=PLAN.comparison_inputs(),
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
    container:
        PLAN.container("core")
    params:
        entries=PLAN.comparison_entries,
    shell:
        "python -m distillery.compare_runs"
        " --inputs {params.entries:q}"
        " --output {output.table:q}"
        " > {log:q} 2>&1"


rule log_wandb:
    input:
        metrics=PLAN.run_metrics,
        samples=PLAN.run_graded_files,
    output:
        note="results/evals/{run}/wandb-run.json",
    log:
        "logs/log_wandb/{run}.log",
    localrule: True
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    params:
        wandb=PLAN.wandb_json(),
    shell:
        "python -m distillery.log_wandb"
        " --run {wildcards.run:q}"
        " --metrics {input.metrics:q}"
        " --samples {input.samples:q}"
        " --dir results"
        " --output {output.note:q}"
        " --config-json {params.wandb:q}"
        " > {log:q} 2>&1"


rule log_wandb_sdg:
    input:
        problems="results/sdg/problems/output.jsonl",
        solutions=expand("results/sdg/solutions/output-rs{seed}.jsonl", seed=SOLUTION_SEEDS),
    output:
        note="results/sdg/wandb-run.json",
    log:
        "logs/log_wandb/sdg.log",
    localrule: True
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    params:
        wandb=PLAN.wandb_json(),
        generations=PLAN.sdg_generations,
    shell:
        "python -m distillery.log_wandb"
        " --run sdg"
        " --generations {params.generations:q}"
        " --dir results"
        " --output {output.note:q}"
        " --config-json {params.wandb:q}"
        " > {log:q} 2>&1"

rule prepare_sft_data:
    input:
        solutions=PLAN.sft_inputs,
        prompt=PLAN.prompt("sft_data"),
        tokenizer=PLAN.model_dir(CFG.training.model),
        benchmarks=expand(
            rules.prepare_benchmark.output.test,
            bench=PLAN.contamination_benchmarks(),
        ),
    output:
        data="results/sft/sft-data.jsonl",
        validation="results/sft/sft-validation.jsonl",
        contamination="results/sft/contamination.jsonl",
        report=report(
            "results/sft/report.json",
            caption="../report/sft_report.rst",
            category="SFT data",
        ),
        report_md="results/sft/report.md",
    log:
        "logs/prepare_sft_data.log",
    benchmark:
        "benchmarks/prepare_sft_data.tsv"
    conda:
        "../../envs/train.yaml"
    container:
        PLAN.container("train")
    threads: 2
    resources:
        mem_mb=2000,
    params:
        sft=PLAN.sft_json(),
        grading=PLAN.extraction_options(),
        benchmarks=PLAN.contamination_entries,
    shell:
        "python -m distillery.prepare_sft_data"
        " --inputs {input.solutions:q}"
        " --output {output.data:q}"
        " --validation-output {output.validation:q}"
        " --contamination-output {output.contamination:q}"
        " --report {output.report:q}"
        " --prompt {input.prompt:q}"
        " --tokenizer {input.tokenizer:q}"
        " --threads {threads}"
        " {params.benchmarks:q}"
        " --config-json {params.sft:q}"
        " {params.grading:q}"
        " > {log:q} 2>&1"

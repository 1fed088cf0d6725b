rule prepare_sft_data:
    input:
        solutions=expand(rules.merge_solutions.output.generations, seed=SOLUTION_SEEDS),
        prompt=get_prompt("sft_data"),
        tokenizer=get_model_dir(config["training"]["model"]),
    output:
        data="results/sft/sft-data.jsonl",
        report=report(
            "results/sft/report.json",
            caption="../report/sft_report.rst",
            category="SFT data",
        ),
        report_md="results/sft/report.md",
    log:
        "logs/prepare_sft_data.log",
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=2000,
    params:
        options=wf.option_args(
            config["sft_data"],
            [
                "add_correct",
                "add_incorrect",
                "add_unlabeled",
                "fill_majority",
                "min_majority_votes",
                "min_majority_percentage",
                "deduplicate",
                "seed",
            ],
        ),
        grading=wf.option_args(GRADING, ["extract_regex"]),
    shell:
        "python -m distillery.prepare_sft_data"
        " --inputs {input.solutions}"
        " --output {output.data}"
        " --report {output.report}"
        " --prompt {input.prompt}"
        " --tokenizer {input.tokenizer}"
        " {params.options}"
        " {params.grading}"
        " > {log} 2>&1"

rule train_sft:
    input:
        data=rules.prepare_sft_data.output.data,
        validation=rules.prepare_sft_data.output.validation,
        model=PLAN.model_dir(CFG.training.model),
    output:
        model=directory(wf.TRAINED_MODEL_DIR),
        metrics="results/train/train-metrics.json",
    log:
        "logs/train_sft.log",
    benchmark:
        "benchmarks/train_sft.tsv"
    conda:
        "../../envs/train.yaml"
    container:
        PLAN.container(PLAN.train_family())
    threads: 2
    resources:
        **PLAN.train_resources(),
    params:
        module=PLAN.train_module(),
        launcher=PLAN.train_launcher(),
        paths=PLAN.training_paths(),
        training=PLAN.training_json(),
        threads=PLAN.threads_flag,
        validation=lambda wildcards, input: (
            ["--validation", input.validation] if CFG.training.evaluate else []
        ),
    shell:
        "{params.launcher:q} {params.module:q}"
        " --data {input.data:q}"
        " --model {input.model:q}"
        " --output {output.model:q}"
        " --metrics {output.metrics:q}"
        " {params.validation:q}"
        " {params.threads:q}"
        " {params.paths:q}"
        " --config-json {params.training:q}"
        " > {log:q} 2>&1"

rule train_sft:
    input:
        data=rules.prepare_sft_data.output.data,
        validation=rules.prepare_sft_data.output.validation,
        model=get_model_dir(config["training"]["model"]),
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
        get_container(wf.train_family(config))
    threads: 2
    resources:
        **wf.train_resources(config),
        mem_mb=wf.job_mem_mb(6000, wf.train_scale(config)[0], 48000),
    params:
        module=wf.train_module(config),
        launcher=wf.train_launcher(config),
        paths=wf.training_paths(config),
        training=wf.block_json(wf.training_block(config)),
        threads=get_threads_flag,
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

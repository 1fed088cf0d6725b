rule train_sft:
    input:
        data=rules.prepare_sft_data.output.data,
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
        get_container("train")
    threads: 2
    resources:
        mem_mb=wf.job_mem_mb(6000, config["training"].get("gpus", 0), 48000),
        gpu=config["training"].get("gpus", 0),
    params:
        adapter=wf.TRAINED_ADAPTER_DIR,
        checkpoints="results/train/checkpoints",
        options=wf.training_args(config["training"]),
        launcher=wf.train_launcher(config),
    shell:
        "{params.launcher} distillery.train_sft"
        " --data {input.data}"
        " --model {input.model}"
        " --output {output.model}"
        " --metrics {output.metrics}"
        " --adapter-output {params.adapter}"
        " --checkpoint-dir {params.checkpoints}"
        " --threads {threads}"
        " {params.options}"
        " > {log} 2>&1"

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
    threads: 2
    resources:
        mem_mb=6000,
        gpu=config["training"].get("gpus", 0),
    params:
        adapter="results/train/adapter",
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

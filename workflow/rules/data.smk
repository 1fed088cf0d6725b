rule prepare_raw_data:
    output:
        posts="results/data/raw-posts.jsonl",
    log:
        "logs/prepare_raw_data.log",
    conda:
        "../../envs/core.yaml"
    resources:
        mem_mb=1000,
    params:
        options=wf.option_args(
            config["raw_data"],
            ["source", "num_posts", "seed", "unlabeled_share", "chatter_share"],
        ),
    shell:
        "python -m distillery.prepare_raw_data"
        " --output {output.posts}"
        " {params.options}"
        " > {log} 2>&1"


rule prepare_benchmark:
    output:
        test="results/benchmarks/{bench}/test.jsonl",
    log:
        "logs/prepare_benchmark/{bench}.log",
    conda:
        "../../envs/core.yaml"
    resources:
        mem_mb=1000,
    params:
        options=get_benchmark_options,
    shell:
        "python -m distillery.prepare_benchmark"
        " --output {output.test}"
        " {params.options}"
        " > {log} 2>&1"

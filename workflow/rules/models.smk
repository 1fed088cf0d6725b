rule gguf_to_hf:
    input:
        gguf=get_gguf,
    output:
        model=directory("results/models/{model}"),
    log:
        "logs/gguf_to_hf/{model}.log",
    benchmark:
        "benchmarks/gguf_to_hf/{model}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        mem_mb=3000,
    params:
        dtype=get_model_dtype,
    shell:
        "python -m distillery.gguf_to_hf"
        " --gguf {input.gguf}"
        " --output {output.model}"
        " --dtype {params.dtype}"
        " --threads {threads}"
        " > {log} 2>&1"

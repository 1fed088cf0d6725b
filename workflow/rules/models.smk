rule gguf_to_hf:
    input:
        gguf=get_gguf,
    output:
        model=directory("results/models/{model}"),
    log:
        "logs/gguf_to_hf/{model}.log",
    benchmark:
        "benchmarks/gguf_to_hf/{model}.tsv"
    wildcard_constraints:
        model=wf.name_pattern(wf.converted_models(config)),
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


rule download_model:
    output:
        model=directory("results/models/{model}"),
    log:
        "logs/download_model/{model}.log",
    benchmark:
        "benchmarks/download_model/{model}.tsv"
    wildcard_constraints:
        model=wf.name_pattern(wf.downloaded_models(config)),
    conda:
        "../../envs/core.yaml"
    resources:
        mem_mb=2000,
    params:
        options=get_download_options,
    shell:
        "python -m distillery.download_model"
        " --output {output.model}"
        " {params.options}"
        " > {log} 2>&1"

rule gguf_to_hf:
    input:
        gguf=PLAN.gguf,
    output:
        model=directory("results/models/{model}"),
    log:
        "logs/gguf_to_hf/{model}.log",
    benchmark:
        "benchmarks/gguf_to_hf/{model}.tsv"
    wildcard_constraints:
        model=PLAN.models_pattern("gguf"),
    conda:
        "../../envs/train.yaml"
    container:
        PLAN.container("train")
    threads: 2
    resources:
        mem_mb=3000,
    params:
        dtype=PLAN.model_dtype,
    shell:
        "python -m distillery.gguf_to_hf"
        " --gguf {input.gguf:q}"
        " --output {output.model:q}"
        " --dtype {params.dtype:q}"
        " --threads {threads}"
        " > {log:q} 2>&1"


rule download_model:
    output:
        model=directory("results/models/{model}"),
    log:
        "logs/download_model/{model}.log",
    benchmark:
        "benchmarks/download_model/{model}.tsv"
    wildcard_constraints:
        model=PLAN.models_pattern("hf"),
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    resources:
        mem_mb=2000,
    params:
        options=PLAN.download_options,
    shell:
        "python -m distillery.download_model"
        " --output {output.model:q}"
        " {params.options:q}"
        " > {log:q} 2>&1"


# Any adapter, merged by naming its model: `snakemake results/models/<name>` for a model with
# `source: lora`.
rule merge_lora:
    input:
        base=PLAN.base_model_dir,
        adapter=PLAN.adapter_inputs,
    output:
        model=directory("results/models/{model}"),
    log:
        "logs/merge_lora/{model}.log",
    benchmark:
        "benchmarks/merge_lora/{model}.tsv"
    wildcard_constraints:
        model=PLAN.models_pattern("lora"),
    conda:
        "../../envs/train.yaml"
    container:
        PLAN.container("train")
    threads: 2
    resources:
        mem_mb=PLAN.merge_mem_mb,
    params:
        adapter=PLAN.adapter,
        dtype=PLAN.model_dtype,
    shell:
        "python -m distillery.merge_lora"
        " --base {input.base:q}"
        " --adapter {params.adapter:q}"
        " --output {output.model:q}"
        " --dtype {params.dtype:q}"
        " --threads {threads}"
        " > {log:q} 2>&1"


rule build_trtllm_engine:
    input:
        model=PLAN.base_model_dir,
    output:
        model=directory("results/models/{model}"),
    log:
        "logs/build_trtllm_engine/{model}.log",
    benchmark:
        "benchmarks/build_trtllm_engine/{model}.tsv"
    wildcard_constraints:
        model=PLAN.models_pattern("trtllm"),
    conda:
        "../../envs/trtllm.yaml"
    container:
        PLAN.container("trtllm")
    threads: 8
    resources:
        mem_mb=64000,
        gpu=PLAN.model_gpus,
        runtime=120,
    params:
        engine=PLAN.engine_block,
    shell:
        "python -m distillery.convert_trtllm"
        " --model {input.model:q}"
        " --output {output.model:q}"
        " --gpus {resources.gpu}"
        " --config-json {params.engine:q}"
        " > {log:q} 2>&1"


rule nemo_to_hf:
    input:
        checkpoint=PLAN.model_path,
        reference=PLAN.base_model_dir,
    output:
        model=directory("results/models/{model}"),
    log:
        "logs/nemo_to_hf/{model}.log",
    benchmark:
        "benchmarks/nemo_to_hf/{model}.tsv"
    wildcard_constraints:
        model=PLAN.models_pattern("nemo"),
    container:
        PLAN.container("nemo")
    threads: 8
    resources:
        mem_mb=64000,
        gpu=PLAN.model_gpus,
        runtime=120,
    params:
        format=PLAN.model_format,
    shell:
        "python -m distillery.convert_nemo --direction to-hf"
        " --format {params.format:q}"
        " --checkpoint {input.checkpoint:q}"
        " --reference {input.reference:q}"
        " --output {output.model:q}"
        " > {log:q} 2>&1"


# Any model of the config as a .nemo file, by target: `snakemake results/nemo/<model>.nemo`.
rule hf_to_nemo:
    input:
        model=lambda wildcards: PLAN.model_dir(wildcards.model),
    output:
        nemo="results/nemo/{model}.nemo",
    log:
        "logs/hf_to_nemo/{model}.log",
    benchmark:
        "benchmarks/hf_to_nemo/{model}.tsv"
    wildcard_constraints:
        model=PLAN.models_pattern(),
    container:
        PLAN.container("nemo")
    threads: 8
    resources:
        mem_mb=64000,
        runtime=120,
    shell:
        "python -m distillery.convert_nemo --direction to-nemo"
        " --checkpoint {input.model:q}"
        " --output {output.nemo:q}"
        " > {log:q} 2>&1"

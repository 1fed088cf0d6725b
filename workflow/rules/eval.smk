# One job per run and chunk: one server generates every benchmark and seed of the run (its
# share of them with several chunks), each into its own file. The solutions' generation job is
# this rule with its own files and settings; every stage's merge is this merge rule.
rule generate_eval:
    input:
        data=get_eval_benchmark_files,
        prompts=get_eval_prompts,
        model=get_eval_model_inputs,
    output:
        generations=temp(wf.eval_chunk_outputs(config, EVAL_GENERATED)),
    log:
        "logs/generate_eval/{run}/chunk_{chunk}.log",
    benchmark:
        "benchmarks/generate_eval/{run}/chunk_{chunk}.tsv"
    conda:
        get_conda_env(wf.server_family(config, "evaluation"))
    container:
        get_container(wf.server_family(config, "evaluation"))
    threads: 2
    resources:
        mem_mb=wf.job_mem_mb(3000, wf.stage_gpus(config, "evaluation"), 16000),
        gpu=wf.stage_gpus(config, "evaluation"),
    params:
        model=get_eval_model_param,
        generation=get_eval_generation_args,
        work=get_eval_work,
        chunks=len(EVAL_CHUNKS),
    shell:
        "python -m distillery.generate"
        " --work {params.work:q}"
        " --model {params.model:q}"
        " --num-chunks {params.chunks:q}"
        " --chunk-id {wildcards.chunk:q}"
        " --threads {threads}"
        " --config-json {params.generation:q}"
        " > {log:q} 2>&1"


rule merge_eval_chunks:
    input:
        chunks=get_eval_chunks,
    output:
        generations="results/evals/{run}/generations/{bench}/output-rs{seed}.jsonl",
    log:
        "logs/merge_eval_chunks/{run}/{bench}/rs{seed}.log",
    localrule: True
    conda:
        "../../envs/core.yaml"
    container:
        get_container("core")
    shell:
        "python -m distillery.merge_chunks"
        " --inputs {input.chunks:q}"
        " --output {output.generations:q}"
        " > {log:q} 2>&1"


rule grade:
    input:
        generations=rules.merge_eval_chunks.output.generations,
    output:
        graded="results/evals/{run}/eval-results/{bench}/output-rs{seed}.jsonl",
    log:
        "logs/grade/{run}/{bench}/rs{seed}.log",
    conda:
        "../../envs/core.yaml"
    container:
        get_container("core")
    resources:
        mem_mb=2000,
    params:
        mode=get_grading_mode,
        grading=wf.block_json(GRADING),
    shell:
        "python -m distillery.grade"
        " --input {input.generations:q}"
        " --output {output.graded:q}"
        " --mode {params.mode:q}"
        " --workers {threads}"
        " --config-json {params.grading:q}"
        " > {log:q} 2>&1"

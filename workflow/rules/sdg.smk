EXTRACTION = config["problem_extraction"]
SOLUTIONS = config["solutions"]


rule extract_problems:
    input:
        data=rules.prepare_raw_data.output.posts,
        prompt=get_prompt("problem_extraction"),
        model=wf.stage_model_inputs(config, "problem_extraction"),
    output:
        generations="results/sdg/problems/output.jsonl",
    log:
        "logs/extract_problems.log",
    benchmark:
        "benchmarks/extract_problems.tsv"
    conda:
        get_conda_env(wf.server_family(config, "problem_extraction"))
    container:
        get_container(wf.server_family(config, "problem_extraction"))
    threads: 2
    resources:
        mem_mb=wf.job_mem_mb(3000, wf.stage_gpus(config, "problem_extraction"), 16000),
        gpu=wf.stage_gpus(config, "problem_extraction"),
    params:
        model=get_model_param("problem_extraction"),
        generation=wf.block_json(wf.generation_block(EXTRACTION)),
    shell:
        "python -m distillery.generate"
        " --input {input.data:q}"
        " --output {output.generations:q}"
        " --prompt {input.prompt:q}"
        " --model {params.model:q}"
        " --threads {threads}"
        " --config-json {params.generation:q}"
        " > {log:q} 2>&1"


rule postprocess_problems:
    input:
        generations=rules.extract_problems.output.generations,
    output:
        problems="results/sdg/extracted-problems.jsonl",
        dropped="results/sdg/extracted-problems-dropped.jsonl",
    log:
        "logs/postprocess_problems.log",
    conda:
        "../../envs/core.yaml"
    container:
        get_container("core")
    resources:
        mem_mb=1000,
    shell:
        "python -m distillery.postprocess_problems"
        " --input {input.generations:q}"
        " --output {output.problems:q}"
        " --dropped {output.dropped:q}"
        " > {log:q} 2>&1"


# One job per chunk: one server writes every seed's solutions (its share of them with several
# chunks), each seed into its own file.
use rule generate_eval as generate_solutions with:
    input:
        data=wf.solution_problems(config),
        prompt=get_prompt("solutions"),
        model=wf.stage_model_inputs(config, "solutions"),
    output:
        generations=temp(wf.solution_chunk_outputs(config)),
    log:
        "logs/generate_solutions/chunk_{chunk}.log",
    benchmark:
        "benchmarks/generate_solutions/chunk_{chunk}.tsv"
    conda:
        get_conda_env(wf.server_family(config, "solutions"))
    container:
        get_container(wf.server_family(config, "solutions"))
    resources:
        mem_mb=wf.job_mem_mb(3000, wf.stage_gpus(config, "solutions"), 16000),
        gpu=wf.stage_gpus(config, "solutions"),
    params:
        model=get_model_param("solutions"),
        generation=wf.block_json(wf.generation_block(SOLUTIONS)),
        work=get_solution_work,
        chunks=len(SOLUTION_CHUNKS),


use rule merge_eval_chunks as merge_solutions with:
    input:
        chunks=expand(
            "results/sdg/solutions/output-rs{{seed}}_chunk_{chunk}.jsonl",
            chunk=SOLUTION_CHUNKS,
        ),
    output:
        generations="results/sdg/solutions/output-rs{seed}.jsonl",
    log:
        "logs/merge_solutions/rs{seed}.log",

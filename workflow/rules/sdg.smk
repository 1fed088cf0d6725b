rule extract_problems:
    input:
        data=rules.prepare_raw_data.output.posts,
        prompt=PLAN.prompt("problem_extraction"),
        model=PLAN.stage_model_inputs("problem_extraction"),
    output:
        generations="results/sdg/problems/output.jsonl",
    log:
        "logs/extract_problems.log",
    benchmark:
        "benchmarks/extract_problems.tsv"
    conda:
        PLAN.conda_env(PLAN.stage_family("problem_extraction"))
    container:
        PLAN.container(PLAN.stage_family("problem_extraction"))
    threads: 2
    resources:
        mem_mb=PLAN.stage_mem_mb("problem_extraction"),
        gpu=PLAN.stage_gpus("problem_extraction"),
    params:
        model=PLAN.stage_model_param("problem_extraction"),
        generation=PLAN.generation_json("problem_extraction"),
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
        PLAN.container("core")
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
checkpoint generate_solutions:
    input:
        data=PLAN.solution_problems(),
        prompt=PLAN.prompt("solutions"),
        model=PLAN.stage_model_inputs("solutions"),
    output:
        done=wf.SOLUTION_DONE,
    log:
        "logs/generate_solutions/chunk_{chunk}.log",
    benchmark:
        "benchmarks/generate_solutions/chunk_{chunk}.tsv"
    conda:
        PLAN.conda_env(PLAN.stage_family("solutions"))
    container:
        PLAN.container(PLAN.stage_family("solutions"))
    threads: 2
    resources:
        mem_mb=PLAN.stage_mem_mb("solutions"),
        gpu=PLAN.stage_gpus("solutions"),
    params:
        model=PLAN.stage_model_param("solutions"),
        generation=PLAN.generation_json("solutions"),
        work=PLAN.solution_work,
        chunks=len(SOLUTION_CHUNKS),
    shell:
        GENERATE


use rule merge_eval_chunks as merge_solutions with:
    input:
        chunks=solution_chunks,
    output:
        generations="results/sdg/solutions/output-rs{seed}.jsonl",
    log:
        "logs/merge_solutions/rs{seed}.log",

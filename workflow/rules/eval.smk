# One job per run and chunk: one server generates every benchmark and seed of the run (its
# share of them with several chunks), each into its own file. A job declares only its done file:
# the files it writes are read by the merge once it ran (a checkpoint), so a file that a rerun
# keeps (unchanged samples) keeps its modification time and nothing after it runs again. The
# solutions' generation job is the same command with its own files and settings; every stage's
# merge is this merge rule.
GENERATE = (
    "python -m distillery.generate"
    " --work {params.work:q}"
    " --model {params.model:q}"
    " --num-chunks {params.chunks:q}"
    " --chunk-id {wildcards.chunk:q}"
    " --threads {threads}"
    " --config-json {params.generation:q}"
    " --done {output.done:q}"
    " > {log:q} 2>&1"
)


checkpoint generate_eval:
    input:
        data=PLAN.eval_benchmark_files,
        prompts=PLAN.eval_prompts,
        model=PLAN.eval_model_inputs,
    output:
        done=wf.EVAL_DONE,
    log:
        "logs/generate_eval/{run}/chunk_{chunk}.log",
    benchmark:
        "benchmarks/generate_eval/{run}/chunk_{chunk}.tsv"
    conda:
        PLAN.conda_env(PLAN.stage_family("evaluation"))
    container:
        PLAN.container(PLAN.stage_family("evaluation"))
    threads: 2
    resources:
        mem_mb=PLAN.stage_mem_mb("evaluation"),
        gpu=PLAN.stage_gpus("evaluation"),
    params:
        model=PLAN.eval_model_param,
        generation=PLAN.eval_generation_args,
        work=PLAN.eval_work,
        chunks=len(EVAL_CHUNKS),
    shell:
        GENERATE


rule merge_eval_chunks:
    input:
        chunks=eval_chunks,
    output:
        generations="results/evals/{run}/generations/{bench}/output-rs{seed}.jsonl",
    log:
        "logs/merge_eval_chunks/{run}/{bench}/rs{seed}.log",
    localrule: True
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    shell:
        "python -m distillery.merge_chunks"
        " --inputs {input.chunks:q}"
        " --output {output.generations:q}"
        " > {log:q} 2>&1"


rule grade:
    input:
        generations=rules.merge_eval_chunks.output.generations,
        after=after_eval_jobs,
    output:
        graded="results/evals/{run}/eval-results/{bench}/output-rs{seed}.jsonl",
    log:
        "logs/grade/{run}/{bench}/rs{seed}.log",
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    resources:
        mem_mb=2000,
    params:
        mode=PLAN.grading_mode,
        grading=PLAN.grading_json(),
    shell:
        "python -m distillery.grade"
        " --input {input.generations:q}"
        " --output {output.graded:q}"
        " --mode {params.mode:q}"
        " --workers {threads}"
        " --config-json {params.grading:q}"
        " > {log:q} 2>&1"

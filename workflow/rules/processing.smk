# The LLM processing steps (distillery.process): each is a selection, one generation job per
# chunk (any backend, resumable), a merge and an apply. Problem steps run between problem
# extraction and solution generation; the solution judge between the solutions and the SFT
# data; an evaluation run's judge after grading.


# generate_eval's command, but an LLM step may have nothing to ask: empty requests are no error
rule process_generate:
    input:
        requests="{area}/requests.jsonl",
        model=PLAN.area_model_inputs,
    output:
        generations=temp("{area}/generations_chunk_{chunk}.jsonl"),
    log:
        "logs/{area}/generate_chunk_{chunk}.log",
    wildcard_constraints:
        area=wf.AREA_PATTERN,
    conda:
        lambda wildcards: PLAN.conda_env(PLAN.area_family(wildcards))
    container:
        lambda wildcards: PLAN.container(PLAN.area_family(wildcards))
    threads: 2
    resources:
        mem_mb=PLAN.area_mem_mb,
        gpu=PLAN.area_gpus,
    params:
        model=PLAN.area_model,
        generation=PLAN.step_generation_json,
        work=PLAN.area_work,
        chunks=lambda wildcards: len(PLAN.area_chunks(wildcards)),
    shell:
        "python -m distillery.generate"
        " --work {params.work:q}"
        " --model {params.model:q}"
        " --num-chunks {params.chunks:q}"
        " --chunk-id {wildcards.chunk:q}"
        " --threads {threads}"
        " --allow-empty-input"
        " --config-json {params.generation:q}"
        " > {log:q} 2>&1"


use rule merge_eval_chunks as process_merge with:
    input:
        chunks=lambda wildcards: expand(
            "{area}/generations_chunk_{chunk}.jsonl",
            area=wildcards.area,
            chunk=PLAN.area_chunks(wildcards),
        ),
    output:
        generations="{area}/generations.jsonl",
    log:
        "logs/{area}/merge.log",
    wildcard_constraints:
        area=wf.AREA_PATTERN,


STEP = f"{wf.PROCESSING}/{{step}}"


rule select_problem_step:
    input:
        problems=PLAN.step_input,
        prompts=PLAN.step_prompts(STEP),
        benchmarks=PLAN.contamination_check_benchmarks,
        encoder=PLAN.step_encoder,
    output:
        requests=f"{STEP}/requests.jsonl",
        prefilled=f"{STEP}/prefilled.jsonl",
    log:
        "logs/process/{step}-select.log",
    wildcard_constraints:
        step="|".join(wf.PROBLEM_STEPS),
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    params:
        block=PLAN.step_block_json(STEP, wf.SELECT_KEYS),
        benchmarks=PLAN.contamination_check_entries,
    shell:
        "python -m distillery.process --action select"
        " --step {wildcards.step:q}"
        " --inputs {input.problems:q}"
        " --requests {output.requests:q}"
        " --prefilled {output.prefilled:q}"
        " {params.benchmarks:q}"
        " --config-json {params.block:q}"
        " > {log:q} 2>&1"


rule apply_problem_step:
    input:
        problems=PLAN.step_input,
        generations=f"{STEP}/generations.jsonl",
        prefilled=f"{STEP}/prefilled.jsonl",
    output:
        problems=f"{STEP}/problems.jsonl",
        dropped=f"{STEP}/dropped.jsonl",
        verdicts=f"{STEP}/verdicts.jsonl",
        report=f"{STEP}/report.json",
    log:
        "logs/process/{step}-apply.log",
    wildcard_constraints:
        step="|".join(wf.PROBLEM_STEPS),
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    params:
        block=PLAN.step_block_json(STEP, wf.APPLY_KEYS),
    shell:
        "python -m distillery.process --action apply"
        " --step {wildcards.step:q}"
        " --inputs {input.problems:q}"
        " --generations {input.generations:q}"
        " --prefilled {input.prefilled:q}"
        " --outputs {output.problems:q}"
        " --dropped {output.dropped:q}"
        " --verdicts {output.verdicts:q}"
        " --report {output.report:q}"
        " --config-json {params.block:q}"
        " > {log:q} 2>&1"


rule select_summaries:
    input:
        solutions=expand("results/sdg/solutions/output-rs{seed}.jsonl", seed=SOLUTION_SEEDS),
        prompts=PLAN.step_prompts(wf.SUMMARIES),
    output:
        requests=f"{wf.SUMMARIES}/requests.jsonl",
        prefilled=f"{wf.SUMMARIES}/prefilled.jsonl",
    log:
        "logs/process/rewrite_summaries-select.log",
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    params:
        block=PLAN.step_block_json(wf.SUMMARIES, wf.SELECT_KEYS),
    shell:
        "python -m distillery.process --action select"
        " --step rewrite_summaries"
        " --inputs {input.solutions:q}"
        " --requests {output.requests:q}"
        " --prefilled {output.prefilled:q}"
        " --config-json {params.block:q}"
        " > {log:q} 2>&1"


rule apply_summaries:
    input:
        solutions=rules.select_summaries.input.solutions,
        generations=f"{wf.SUMMARIES}/generations.jsonl",
        prefilled=rules.select_summaries.output.prefilled,
    output:
        rewritten=expand(f"{wf.SUMMARIES}/output-rs{{seed}}.jsonl", seed=SOLUTION_SEEDS),
        report=f"{wf.SUMMARIES}/report.json",
    log:
        "logs/process/rewrite_summaries-apply.log",
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    params:
        block=PLAN.step_block_json(wf.SUMMARIES, wf.APPLY_KEYS),
        grading=PLAN.extraction_options(),
    shell:
        "python -m distillery.process --action apply"
        " --step rewrite_summaries"
        " --inputs {input.solutions:q}"
        " --generations {input.generations:q}"
        " --prefilled {input.prefilled:q}"
        " --outputs {output.rewritten:q}"
        " --report {output.report:q}"
        " {params.grading:q}"
        " --config-json {params.block:q}"
        " > {log:q} 2>&1"


rule select_solution_judge:
    input:
        solutions=PLAN.solution_judge_inputs(),
        prompts=PLAN.step_prompts(wf.SOLUTION_JUDGE),
    output:
        requests=f"{wf.SOLUTION_JUDGE}/requests.jsonl",
        prefilled=f"{wf.SOLUTION_JUDGE}/prefilled.jsonl",
        labelled=expand(f"{wf.SOLUTION_JUDGE}/labelled-rs{{seed}}.jsonl", seed=SOLUTION_SEEDS),
    log:
        "logs/process/judge_solutions-select.log",
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    params:
        block=PLAN.step_block_json(wf.SOLUTION_JUDGE, wf.SELECT_KEYS),
        fill=lambda wildcards: ([] if CFG.sft_data.fill_majority else ["--no-fill-majority"]),
        grading=PLAN.extraction_options(),
    shell:
        "python -m distillery.process --action select"
        " --step judge_solutions"
        " --inputs {input.solutions:q}"
        " --outputs {output.labelled:q}"
        " --requests {output.requests:q}"
        " --prefilled {output.prefilled:q}"
        " {params.fill:q}"
        " {params.grading:q}"
        " --config-json {params.block:q}"
        " > {log:q} 2>&1"


rule apply_solution_judge:
    input:
        labelled=rules.select_solution_judge.output.labelled,
        generations=f"{wf.SOLUTION_JUDGE}/generations.jsonl",
        prefilled=rules.select_solution_judge.output.prefilled,
    output:
        judged=expand("results/sdg/judged/output-rs{seed}.jsonl", seed=SOLUTION_SEEDS),
        report=f"{wf.SOLUTION_JUDGE}/report.json",
    log:
        "logs/process/judge_solutions-apply.log",
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    params:
        block=PLAN.step_block_json(wf.SOLUTION_JUDGE, wf.APPLY_KEYS),
    shell:
        "python -m distillery.process --action apply"
        " --step judge_solutions"
        " --inputs {input.labelled:q}"
        " --generations {input.generations:q}"
        " --prefilled {input.prefilled:q}"
        " --outputs {output.judged:q}"
        " --report {output.report:q}"
        " --config-json {params.block:q}"
        " > {log:q} 2>&1"


EVAL_JUDGE = "results/evals/{run}/judge"


rule select_eval_judge:
    input:
        graded=PLAN.eval_judge_graded,
        prompts=PLAN.step_prompts(EVAL_JUDGE),
    output:
        requests=f"{EVAL_JUDGE}/requests.jsonl",
        prefilled=f"{EVAL_JUDGE}/prefilled.jsonl",
    log:
        "logs/process/{run}/judge_eval-select.log",
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    params:
        block=PLAN.step_block_json(EVAL_JUDGE, wf.SELECT_KEYS),
    shell:
        "python -m distillery.process --action select"
        " --step judge_eval"
        " --inputs {input.graded:q}"
        " --requests {output.requests:q}"
        " --prefilled {output.prefilled:q}"
        " --config-json {params.block:q}"
        " > {log:q} 2>&1"


rule apply_eval_judge:
    input:
        graded=PLAN.eval_judge_graded,
        generations=f"{EVAL_JUDGE}/generations.jsonl",
        prefilled=f"{EVAL_JUDGE}/prefilled.jsonl",
    output:
        judged=PLAN.eval_judge_outputs(),
        report=f"{EVAL_JUDGE}/report.json",
    log:
        "logs/process/{run}/judge_eval-apply.log",
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    params:
        block=PLAN.step_block_json(EVAL_JUDGE, wf.APPLY_KEYS),
    shell:
        "python -m distillery.process --action apply"
        " --step judge_eval"
        " --inputs {input.graded:q}"
        " --generations {input.generations:q}"
        " --prefilled {input.prefilled:q}"
        " --outputs {output.judged:q}"
        " --report {output.report:q}"
        " --config-json {params.block:q}"
        " > {log:q} 2>&1"

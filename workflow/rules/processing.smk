# The LLM processing steps (distillery.process): each is a selection, one generation job per
# chunk (any backend, resumable), a merge and an apply. Problem steps run between problem
# extraction and solution generation; the solution judge between the solutions and the SFT
# data; an evaluation run's judge after grading.


def get_area_block(wildcards):
    return wf.area_block(config, wildcards.area)


def fill(pattern, wildcards):
    """``pattern`` (a path with wildcards) for this job."""
    return pattern.format(**dict(wildcards.items()))


def get_step_block_json(area):
    """The step's block for distillery.process, its prompt files resolved."""

    def block_json(wildcards):
        step = wf.area_step(fill(area, wildcards))
        block = wf.area_block(config, fill(area, wildcards))
        resolve = lambda path: wf.resource_path(path, workflow.basedir)
        return wf.block_json(wf.with_prompts(block, step, resolve))

    return block_json


def get_step_prompts(area):
    def prompts(wildcards):
        path = fill(area, wildcards)
        block = wf.area_block(config, path)
        return [
            wf.resource_path(p, workflow.basedir)
            for p in wf.step_prompts(block, wf.area_step(path))
        ]

    return prompts


def get_area_chunks(wildcards):
    return list(range(wf.area_block(config, wildcards.area).get("chunks", 1)))


def get_area_model_inputs(wildcards):
    block = wf.area_block(config, wildcards.area)
    if block["server"]["type"] == "openai":
        return []
    return [wf.model_dir(config, block["server"]["model"])]


def get_area_model(wildcards, input):
    if input.model:
        return input.model
    return wf.area_block(config, wildcards.area)["server"]["model"]


def get_area_work(wildcards, input, output):
    return json.dumps([{"input": input.requests, "seeds": [0], "outputs": [output.generations]}])


def get_area_family(wildcards):
    return wf.area_family(config, wildcards.area)


def get_area_gpus(wildcards):
    return int(wf.area_block(config, wildcards.area)["server"].get("gpus", 0))


def get_contamination_check_benchmarks(wildcards):
    if wildcards.step != "check_contamination":
        return []
    return [f"results/benchmarks/{b}/test.jsonl" for b in wf.check_benchmarks(config)]


def get_contamination_check_entries(wildcards, input):
    pairs = zip(wf.check_benchmarks(config), input.benchmarks)
    return [arg for name, path in pairs for arg in ("--benchmarks", f"{name}={path}")]


rule process_generate:
    input:
        requests="{area}/requests.jsonl",
        model=get_area_model_inputs,
    output:
        generations=temp("{area}/generations_chunk_{chunk}.jsonl"),
    log:
        "logs/process_generate/{area}/chunk_{chunk}.log",
    wildcard_constraints:
        area=wf.AREA_PATTERN,
    conda:
        lambda wildcards: get_conda_env(get_area_family(wildcards))
    container:
        lambda wildcards: get_container(get_area_family(wildcards))
    threads: 2
    resources:
        mem_mb=lambda wildcards: wf.job_mem_mb(3000, get_area_gpus(wildcards), 16000),
        gpu=get_area_gpus,
    params:
        model=get_area_model,
        generation=lambda wildcards: wf.block_json(wf.generation_block(get_area_block(wildcards))),
        work=get_area_work,
        chunks=lambda wildcards: len(get_area_chunks(wildcards)),
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


rule process_merge:
    input:
        chunks=lambda wildcards: expand(
            "{area}/generations_chunk_{chunk}.jsonl",
            area=wildcards.area,
            chunk=get_area_chunks(wildcards),
        ),
    output:
        generations="{area}/generations.jsonl",
    log:
        "logs/process_merge/{area}.log",
    wildcard_constraints:
        area=wf.AREA_PATTERN,
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


STEP = wf.PROCESSING + "/{step}"


rule select_problem_step:
    input:
        problems=lambda wildcards: wf.step_input(config, wildcards.step),
        prompts=get_step_prompts(STEP),
        benchmarks=get_contamination_check_benchmarks,
    output:
        requests=STEP + "/requests.jsonl",
        prefilled=STEP + "/prefilled.jsonl",
    log:
        "logs/process/{step}-select.log",
    wildcard_constraints:
        step="|".join(wf.PROBLEM_STEPS),
    conda:
        "../../envs/core.yaml"
    container:
        get_container("core")
    params:
        block=get_step_block_json(STEP),
        benchmarks=get_contamination_check_entries,
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
        problems=lambda wildcards: wf.step_input(config, wildcards.step),
        generations=STEP + "/generations.jsonl",
        prefilled=STEP + "/prefilled.jsonl",
    output:
        problems=STEP + "/problems.jsonl",
        dropped=STEP + "/dropped.jsonl",
        verdicts=STEP + "/verdicts.jsonl",
        report=STEP + "/report.json",
    log:
        "logs/process/{step}-apply.log",
    wildcard_constraints:
        step="|".join(wf.PROBLEM_STEPS),
    conda:
        "../../envs/core.yaml"
    container:
        get_container("core")
    params:
        block=get_step_block_json(STEP),
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
        prompts=get_step_prompts(wf.SUMMARIES),
    output:
        requests=wf.SUMMARIES + "/requests.jsonl",
        prefilled=wf.SUMMARIES + "/prefilled.jsonl",
    log:
        "logs/process/rewrite_summaries-select.log",
    conda:
        "../../envs/core.yaml"
    container:
        get_container("core")
    params:
        block=get_step_block_json(wf.SUMMARIES),
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
        generations=wf.SUMMARIES + "/generations.jsonl",
        prefilled=rules.select_summaries.output.prefilled,
    output:
        rewritten=expand(wf.SUMMARIES + "/output-rs{seed}.jsonl", seed=SOLUTION_SEEDS),
        report=wf.SUMMARIES + "/report.json",
    log:
        "logs/process/rewrite_summaries-apply.log",
    conda:
        "../../envs/core.yaml"
    container:
        get_container("core")
    params:
        block=get_step_block_json(wf.SUMMARIES),
        grading=wf.options(GRADING, ["extract_regex"]),
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
        solutions=wf.judge_inputs(config, SOLUTION_SEEDS),
        prompts=get_step_prompts(wf.SOLUTION_JUDGE),
    output:
        requests=wf.SOLUTION_JUDGE + "/requests.jsonl",
        prefilled=wf.SOLUTION_JUDGE + "/prefilled.jsonl",
        labelled=expand(wf.SOLUTION_JUDGE + "/labelled-rs{seed}.jsonl", seed=SOLUTION_SEEDS),
    log:
        "logs/process/judge_solutions-select.log",
    conda:
        "../../envs/core.yaml"
    container:
        get_container("core")
    params:
        block=get_step_block_json(wf.SOLUTION_JUDGE),
        fill=lambda wildcards: (
            [] if config["sft_data"].get("fill_majority", True) else ["--no-fill-majority"]
        ),
        grading=wf.options(GRADING, ["extract_regex"]),
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
        generations=wf.SOLUTION_JUDGE + "/generations.jsonl",
        prefilled=rules.select_solution_judge.output.prefilled,
    output:
        judged=expand("results/sdg/judged/output-rs{seed}.jsonl", seed=SOLUTION_SEEDS),
        report=wf.SOLUTION_JUDGE + "/report.json",
    log:
        "logs/process/judge_solutions-apply.log",
    conda:
        "../../envs/core.yaml"
    container:
        get_container("core")
    params:
        block=get_step_block_json(wf.SOLUTION_JUDGE),
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
        graded=lambda wildcards: wf.eval_judge_files(config, wildcards.run, judged=False),
        prompts=get_step_prompts(EVAL_JUDGE),
    output:
        requests=EVAL_JUDGE + "/requests.jsonl",
        prefilled=EVAL_JUDGE + "/prefilled.jsonl",
    log:
        "logs/process/{run}/judge_eval-select.log",
    conda:
        "../../envs/core.yaml"
    container:
        get_container("core")
    params:
        block=get_step_block_json(EVAL_JUDGE),
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
        graded=lambda wildcards: wf.eval_judge_files(config, wildcards.run, judged=False),
        generations=EVAL_JUDGE + "/generations.jsonl",
        prefilled=EVAL_JUDGE + "/prefilled.jsonl",
    output:
        judged=wf.eval_judge_files(config, "{run}", judged=True),
        report=EVAL_JUDGE + "/report.json",
    log:
        "logs/process/{run}/judge_eval-apply.log",
    conda:
        "../../envs/core.yaml"
    container:
        get_container("core")
    params:
        block=get_step_block_json(EVAL_JUDGE),
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

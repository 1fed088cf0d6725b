rule prepare_raw_data:
    input:
        tokenizer=PLAN.raw_data_tokenizer,
    output:
        posts="results/data/raw-posts.jsonl",
    log:
        "logs/prepare_raw_data.log",
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    resources:
        mem_mb=1000,
    params:
        raw=PLAN.raw_data_json(),
        tokenizer=PLAN.raw_data_tokenizer_flag,
    shell:
        "python -m distillery.prepare_raw_data"
        " --output {output.posts:q}"
        " {params.tokenizer:q}"
        " --config-json {params.raw:q}"
        " > {log:q} 2>&1"


rule prepare_benchmark:
    input:
        local=PLAN.benchmark_file,
    output:
        test="results/benchmarks/{bench}/test.jsonl",
    log:
        "logs/prepare_benchmark/{bench}.log",
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    resources:
        mem_mb=1000,
    params:
        benchmark=PLAN.benchmark_block,
    shell:
        "python -m distillery.prepare_benchmark"
        " --output {output.test:q}"
        " --config-json {params.benchmark:q}"
        " > {log:q} 2>&1"


rule fetch_nemo_skills_prompt:
    output:
        prompt=f"results/prompts/nemo-skills@{NEMO_SKILLS_COMMIT}/{{name}}.yaml",
    log:
        f"logs/fetch_nemo_skills_prompt/{NEMO_SKILLS_COMMIT}/{{name}}.log",
    wildcard_constraints:
        name=r"[A-Za-z0-9_][A-Za-z0-9_.\-/]*",
    localrule: True
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    shell:
        "python -m distillery.nemo_skills_prompts"
        " --name {wildcards.name:q}"
        " --output {output.prompt:q}"
        " > {log:q} 2>&1"

# `snakemake --profile profiles/local serve_<run>`: an OpenAI-compatible server on the run's
# model, in the foreground until Ctrl-C. The model is built first if it is not there yet.
for run in PLAN.served_runs():

    rule:
        name:
            f"serve_{run}"
        input:
            model=PLAN.run_model_inputs(run),
        log:
            f"logs/serve/{run}.log",
        localrule: True
        conda:
            PLAN.conda_env(PLAN.serving_type())
        container:
            PLAN.container(PLAN.serving_type())
        resources:
            gpu=PLAN.serving_gpus(),
        params:
            serving=wf.block_json(PLAN.serving()),
            name=run,
        shell:
            "python -m distillery.serve"
            " --model {input.model:q}"
            " --served-model-name {params.name:q}"
            " --config-json {params.serving:q}"
            " 2>&1 | tee {log:q}"


# `snakemake doctor`: what this config needs against what the machine has (see distillery.doctor).
rule doctor:
    log:
        "logs/doctor.log",
    localrule: True
    conda:
        "../../envs/core.yaml"
    container:
        PLAN.container("core")
    run:
        from distillery.doctor import report

        if report(config, log=log[0]) != 0:
            raise WorkflowError("preflight found problems; see the lines above")

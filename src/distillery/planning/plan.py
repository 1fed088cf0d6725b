"""The plan: what the Snakemake rules ask of a validated config, answered in one object.

The rules build one :class:`Plan` from the config they were given (``common.smk``) and name its
methods as their input, params and resource functions. Settings are read from the typed
:class:`~distillery.settings.workflow.WorkflowConfig` (defaults live in the settings models);
the blocks a job receives as ``--config-json`` are the config's own, so a job's command line, and
what reruns, stays the text the user wrote.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from distillery.generation import backends
from distillery.planning import workflow as wf
from distillery.settings.generation import Server, Serving
from distillery.settings.workflow import WorkflowConfig

BENCHMARK_TEST = "results/benchmarks/{bench}/test.jsonl"


def generation_mem_mb(gpus: int) -> int:
    """Host memory of a generation job (a stage's or a processing step's)."""
    return wf.job_mem_mb(3000, gpus, 16000)


class Plan:
    """Paths, params, resources and containers of every rule, for one config.

    Args:
        config: the config as Snakemake holds it, checked and with its benchmark names resolved
            (:func:`distillery.planning.config_check.validate_config`).
        cfg: the typed config ``validate_config`` returned for it.
        workflow_dir: the workflow's directory, where shipped prompts are found.
        targeted: benchmarks named by the invocation's targets (comma separated), which the
            evaluation jobs then generate alone; None: all.
    """

    def __init__(
        self,
        config: dict,
        cfg: WorkflowConfig,
        workflow_dir: str | Path,
        targeted: str | None = None,
    ):
        self.config = config
        self.cfg = cfg
        self.workflow_dir = str(workflow_dir)
        self.solution_seeds = wf.seeds(cfg.solutions.seeds)
        self.solution_chunk_ids = list(range(cfg.solutions.chunks))
        self.eval_chunk_ids = list(range(cfg.evaluation.chunks))
        self.eval_generated = wf.generated_benchmarks(cfg, targeted)

    # -- files and directories ----------------------------------------------------------

    def resource(self, path: str) -> str:
        """A file named in config, found in the working directory or the workflow's."""
        return wf.resource_path(path, self.workflow_dir)

    def prompt(self, stage: str) -> str:
        """The prompt file of a generation stage's block (``<stage>.prompt``)."""
        return self.resource(getattr(self.cfg, stage).prompt)

    def model_dir(self, name: str) -> str:
        return wf.model_dir(self.cfg, name)

    def gguf(self, wildcards) -> str:
        return wf.gguf_file(self.cfg.models[wildcards.model])

    def base_model_dir(self, wildcards) -> str:
        return wf.base_model_dir(self.cfg, wildcards.model)

    def adapter_inputs(self, wildcards) -> list[str]:
        return wf.adapter_inputs(self.cfg.models[wildcards.model].adapter)

    def model_path(self, wildcards) -> str:
        return self.cfg.models[wildcards.model].path

    def benchmark_file(self, wildcards) -> list[str]:
        """A benchmark's own local file, when its block names one."""
        path = self.cfg.benchmarks[wildcards.bench].path
        return [path] if path else []

    def raw_data_tokenizer(self, wildcards) -> list[str]:
        name = self.cfg.raw_data.tokenizer
        return [self.model_dir(name)] if name else []

    def final_outputs(self) -> list[str]:
        """What ``rule all`` asks for: the comparison and, logging to wandb, every run's log."""
        outputs = ["results/comparison.md"]
        if self.cfg.wandb.mode != "disabled":
            outputs += [f"results/evals/{run}/wandb-run.json" for run in self.cfg.evaluation.runs]
            if self.solutions_generated:
                outputs.append("results/sdg/wandb-run.json")
        return outputs

    # -- environments ---------------------------------------------------------------------

    def container(self, family: str) -> str | None:
        """The image of a rule family (``containers.<family>``, else its public default)."""
        return self.cfg.containers.model_dump().get(family)

    @staticmethod
    def conda_env(family: str) -> str:
        """The conda environment of a rule family (``envs/<family>.yaml``), as a rule file
        names it."""
        return f"../../envs/{family}.yaml"

    # -- models -----------------------------------------------------------------------------

    def models_pattern(self, source: str | None = None) -> str:
        """A wildcard constraint matching the models built from ``source`` (all: None)."""
        names = list(self.cfg.models) if source is None else wf.models_from(self.cfg, source)
        return wf.name_pattern(names)

    def merge_mem_mb(self, wildcards) -> int:
        return wf.merge_mem_mb(self.cfg, wildcards.model)

    def adapter(self, wildcards) -> str:
        return self.cfg.models[wildcards.model].adapter

    def model_format(self, wildcards) -> str:
        return self.cfg.models[wildcards.model].format

    def model_dtype(self, wildcards) -> str:
        return self.cfg.models[wildcards.model].dtype

    def model_gpus(self, wildcards) -> int:
        return self.cfg.models[wildcards.model].gpus

    def download_options(self, wildcards) -> list[str]:
        return wf.options(self.cfg.models[wildcards.model], ["repo", "revision"])

    def engine_block(self, wildcards) -> str:
        return wf.block_json(wf.engine_block(self.config["models"][wildcards.model]))

    def stage_model_param(self, stage: str) -> Callable:
        """A stage's ``--model``: its model directory input, or the external endpoint's model
        name."""

        def model(wildcards, input):
            return input.model if input.model else getattr(self.cfg, stage).server.model

        return model

    # -- generation stages (problem_extraction, solutions, evaluation) ----------------------

    def generation_json(self, stage: str) -> str:
        """What ``distillery.generate`` takes from a stage's block."""
        return wf.block_json(wf.generation_block(self.config[stage]))

    def stage_server(self, stage: str) -> Server:
        """A stage's server; solutions taken from the raw data have none (their rules are not
        included), and read as the in-process ``hf`` backend on no GPU."""
        return getattr(self.cfg, stage).server or Server(type="hf")

    def stage_family(self, stage: str) -> str:
        """The rule family (conda environment, container) of a stage's server type."""
        return backends.get(self.stage_server(stage).type).family

    def stage_gpus(self, stage: str) -> int:
        return self.stage_server(stage).gpus

    def stage_mem_mb(self, stage: str) -> int:
        return generation_mem_mb(self.stage_gpus(stage))

    def stage_model_inputs(self, stage: str) -> list[str]:
        return wf.stage_model_inputs(self.cfg, stage)

    # -- data -------------------------------------------------------------------------------

    def raw_data_tokenizer_flag(self, wildcards, input) -> list[str]:
        return ["--tokenizer", input.tokenizer] if input.tokenizer else []

    def raw_data_json(self) -> str:
        return wf.block_json(wf.raw_data_block(self.config))

    def benchmark_block(self, wildcards) -> str:
        return wf.block_json(wf.benchmark_block(self.config, self.cfg, wildcards.bench))

    def sdg_generations(self, wildcards, input) -> list[str]:
        return [f"problem_extraction={input.problems}"] + [
            f"solutions={path}" for path in input.solutions
        ]

    def contamination_entries(self, wildcards, input) -> list[str]:
        if not input.benchmarks:
            return []
        names = self.contamination_benchmarks()
        pairs = [f"{n}={p}" for n, p in zip(names, input.benchmarks, strict=False)]
        return ["--contamination-benchmarks", *pairs]

    def contamination_benchmarks(self) -> list[str]:
        """Benchmarks the SFT data is checked against (none when the filter is off; by default
        the evaluation's)."""
        sft = self.cfg.sft_data
        if not sft.filters.remove_contaminated:
            return []
        names = sft.contamination.benchmarks
        return list(self.cfg.evaluation.benchmarks if names is None else names)

    def sft_json(self) -> str:
        return wf.block_json(wf.sft_block(self.config))

    def sft_inputs(self, wildcards) -> list[str]:
        if self.solutions_generated:
            return wf.solution_files(self.cfg, self.solution_seeds)
        return ["results/data/raw-posts.jsonl"]

    # -- solutions --------------------------------------------------------------------------

    @property
    def solutions_generated(self) -> bool:
        return self.cfg.solutions.source == "generate"

    def solution_problems(self) -> str:
        return wf.solution_problems(self.cfg)

    def solution_chunks(self, wildcards) -> list[tuple[str, str]]:
        """(chunk file, the done file of the job that writes it) of each chunk one seed's
        solutions are joined from."""
        return [
            (wf.SOLUTION_CHUNK.format(seed=wildcards.seed, chunk=chunk),
             wf.SOLUTION_DONE.format(chunk=chunk))
            for chunk in self.solution_chunk_ids
        ]  # fmt: skip

    # A job's work is a params value that Snakemake records, so a change to it (a seed added)
    # reruns the job: computed from the plan, not from ``input``, whose derived params Snakemake
    # does not record.
    def solution_work(self, wildcards) -> str:
        return json.dumps(
            wf.solution_work(self.solution_seeds, wildcards.chunk, self.solution_problems(),
                             self.prompt("solutions"))
        )  # fmt: skip

    # -- evaluation -------------------------------------------------------------------------

    def eval_model_param(self, wildcards, input) -> str:
        return input.model if input.model else wf.run_model(self.cfg, wildcards.run)

    def eval_model_inputs(self, wildcards) -> list[str]:
        return self.run_model_inputs(wildcards.run)

    def eval_benchmark_files(self, wildcards) -> list[str]:
        return [BENCHMARK_TEST.format(bench=bench) for bench in self.eval_generated]

    def eval_prompts(self, wildcards) -> list[str]:
        return [
            self.resource(wf.run_prompt(self.cfg, wildcards.run, bench))
            for bench in self.eval_generated
        ]

    def eval_work(self, wildcards) -> str:
        work = wf.eval_work(self.cfg, wildcards.run, wildcards.chunk,
                            self.eval_benchmark_files(wildcards), self.eval_prompts(wildcards),
                            self.eval_generated)  # fmt: skip
        return json.dumps(work)

    def eval_generation_args(self, wildcards) -> str:
        return wf.block_json(wf.run_block(self.config, self.cfg, wildcards.run))

    def eval_chunks(self, wildcards) -> list[tuple[str, str]]:
        """(chunk file, the done file of the job that writes it) of each chunk one merged
        evaluation file is joined from."""
        return [
            (wf.EVAL_CHUNK.format(run=wildcards.run, bench=wildcards.bench, seed=wildcards.seed,
                                  chunk=chunk),
             wf.EVAL_DONE.format(run=wildcards.run, chunk=chunk))
            for chunk in self.eval_chunk_ids
        ]  # fmt: skip

    def eval_seed_files(self, wildcards) -> list[str]:
        return wf.eval_summary_files(self.cfg, wildcards.run, wildcards.bench)

    def grading_json(self) -> str:
        return wf.block_json(self.config.get("grading", {}))

    def extraction_options(self) -> list[str]:
        """The answer-extraction flags of the steps that grade solutions."""
        return wf.extraction_options(self.cfg.grading)

    def summarize_options(self) -> list[str]:
        return wf.options(self.cfg.evaluation, ["max_seq_len"])

    def wandb_json(self) -> str:
        return wf.block_json(self.config.get("wandb") or {})

    def grading_mode(self, wildcards) -> str:
        return wf.benchmark_grading(self.cfg, wildcards.bench)

    def metric_type(self, wildcards) -> str:
        return wf.benchmark_definition(self.cfg, wildcards.bench).metrics

    def run_max_samples(self, wildcards) -> int | None:
        # a run overrides its reasoning parsing, system prompt and sampling, never max_samples
        return self.cfg.evaluation.max_samples

    def run_metrics(self, wildcards) -> list[str]:
        return [wf.eval_metrics(wildcards.run, bench) for bench in self.cfg.evaluation.benchmarks]

    def run_graded_files(self, wildcards) -> list[str]:
        return [
            wf.eval_graded(wildcards.run, bench, seed)
            for bench in self.cfg.evaluation.benchmarks
            for seed in wf.eval_seeds(self.cfg, bench)
        ]

    def comparison_inputs(self) -> list[str]:
        return [path for _, path in wf.comparison_entries(self.cfg)]

    def comparison_entries(self, wildcards) -> list[str]:
        return [f"{run}={path}" for run, path in wf.comparison_entries(self.cfg)]

    # -- serving -------------------------------------------------------------------------------

    def served_runs(self) -> list[str]:
        return wf.served_runs(self.cfg)

    def serving(self) -> dict:
        """The block ``serve_<run>`` passes to ``distillery.serve``."""
        return wf.serving(self.config, self.cfg)

    def serving_settings(self) -> Serving:
        """:meth:`serving` typed, its defaults filled in."""
        return Serving.model_validate(self.serving())

    def serving_type(self) -> str:
        return self.serving_settings().type

    def serving_gpus(self) -> int:
        return self.serving_settings().gpus

    def run_model_inputs(self, run: str) -> list[str]:
        return wf.stage_model_inputs(self.cfg, "evaluation", wf.run_model(self.cfg, run))

    # -- training ---------------------------------------------------------------------------

    @property
    def nemo_rl(self) -> bool:
        return self.cfg.training.backend == "nemo_rl"

    def train_family(self) -> str:
        return "nemo_rl" if self.nemo_rl else "train"

    def train_module(self) -> str:
        return "distillery.train_nemo_rl" if self.nemo_rl else "distillery.train_sft"

    def train_launcher(self) -> list[str]:
        """How the training stage is started: plain Python on one device (and for NeMo-RL,
        which starts its own workers), else ``distillery.launch`` (torchrun, one process per
        GPU; srun and torchrun per node on several nodes)."""
        gpus, nodes = self.cfg.training.gpus, self.cfg.training.nodes
        if (gpus <= 1 and nodes <= 1) or self.nemo_rl:
            return ["python", "-m"]
        return ["python", "-m", "distillery.launch", "--gpus", str(gpus), "--nodes", str(nodes),
                "--"]  # fmt: skip

    def train_resources(self) -> dict:
        """Slurm resources of the training job: ``gpu`` on one node; on several, one task per
        node with the GPUs per node as a GRES (``--gpus`` would count the whole job), and the
        job's shell run as is in the batch script (the plugin's ``mpi`` path) so that
        ``distillery.launch`` can srun across the nodes; host memory for the weights each GPU's
        process reads."""
        gpus, nodes = self.cfg.training.gpus, self.cfg.training.nodes
        memory = {"mem_mb": wf.job_mem_mb(6000, gpus, 48000)}
        if nodes <= 1:
            return {"gpu": gpus, **memory}
        gres = {"gres": f"gpu:{gpus}"} if gpus else {}
        return {"nodes": nodes, "tasks": nodes, "mpi": "srun", **gres, **memory}

    def training_paths(self) -> list[str]:
        """The training stage's checkpoint (and, for LoRA on TRL, adapter) directories."""
        if self.nemo_rl:
            return ["--checkpoint-dir", f"{wf.RESULTS}/train/nemo-rl"]
        return ["--adapter-output", wf.TRAINED_ADAPTER_DIR,
                "--checkpoint-dir", f"{wf.RESULTS}/train/checkpoints"]  # fmt: skip

    def training_json(self) -> str:
        return wf.block_json(wf.training_block(self.config))

    def threads_flag(self, wildcards, threads) -> list:
        """TRL's stage pins torch's CPU threads; NeMo-RL sizes its own workers."""
        return [] if self.nemo_rl else ["--threads", threads]

    # -- the LLM processing steps -----------------------------------------------------------

    @staticmethod
    def fill(pattern: str, wildcards) -> str:
        """``pattern`` (a path with wildcards) for this job."""
        return pattern.format(**dict(wildcards.items()))

    def step_block_json(self, area: str, keys: tuple[str, ...]) -> Callable:
        """The part of a step's block one half of ``distillery.process`` reads (``keys``), its
        prompt files resolved."""

        def block_json(wildcards):
            path = self.fill(area, wildcards)
            block = wf.with_prompts(wf.area_block(self.config, path), wf.area_step(path),
                                    self.resource)  # fmt: skip
            encoder = self.step_encoder(wildcards)
            if encoder:
                block = {**block, "embedding_model": encoder[0]}
            return wf.block_json(wf.process_block(block, keys))

        return block_json

    def step_generation_json(self, wildcards) -> str:
        return wf.block_json(wf.step_generation(self.cfg, wildcards.area))

    def step_input(self, wildcards) -> str:
        return wf.step_input(self.cfg, wildcards.step)

    def solution_judge_inputs(self) -> list[str]:
        return wf.judge_inputs(self.cfg, self.solution_seeds)

    def eval_judge_graded(self, wildcards) -> list[str]:
        return wf.eval_judge_files(self.cfg, wildcards.run, judged=False)

    def eval_judge_outputs(self) -> list[str]:
        """The judged files of a run (``{run}``), as the apply rule's outputs."""
        return wf.eval_judge_files(self.cfg, "{run}", judged=True)

    def step_encoder(self, wildcards) -> list[str]:
        """The contamination check's encoder directory, when it names one of ``models``."""
        if getattr(wildcards, "step", None) != "check_contamination":
            return []
        name = self.cfg.problem_processing.check_contamination.embedding_model
        return [self.model_dir(name)] if name in self.cfg.models else []

    def step_prompts(self, area: str) -> Callable:
        def prompts(wildcards):
            path = self.fill(area, wildcards)
            block = wf.area_block(self.config, path)
            return [self.resource(p) for p in wf.step_prompts(block, wf.area_step(path))]

        return prompts

    def area_chunks(self, wildcards) -> list[int]:
        return list(range(wf.area_settings(self.cfg, wildcards.area).chunks))

    def area_model_inputs(self, wildcards) -> list[str]:
        server = wf.area_settings(self.cfg, wildcards.area).server
        return [] if server.type == "openai" else [self.model_dir(server.model)]

    def area_model(self, wildcards, input) -> str:
        if input.model:
            return input.model
        return wf.area_settings(self.cfg, wildcards.area).server.model

    @staticmethod
    def area_work(wildcards, input, output) -> str:
        work = [{"input": input.requests, "seeds": [0], "outputs": [output.generations]}]
        return json.dumps(work)

    def area_family(self, wildcards) -> str:
        return wf.area_family(self.cfg, wildcards.area)

    def area_gpus(self, wildcards) -> int:
        return wf.area_settings(self.cfg, wildcards.area).server.gpus

    def area_mem_mb(self, wildcards) -> int:
        return generation_mem_mb(self.area_gpus(wildcards))

    def check_benchmarks(self) -> list[str]:
        """Benchmarks the LLM contamination check compares the problems with."""
        return list(self.cfg.problem_processing.check_contamination.benchmarks)

    def contamination_check_benchmarks(self, wildcards) -> list[str]:
        if wildcards.step != "check_contamination":
            return []
        return [BENCHMARK_TEST.format(bench=b) for b in self.check_benchmarks()]

    def contamination_check_entries(self, wildcards, input) -> list[str]:
        pairs = zip(self.check_benchmarks(), input.benchmarks, strict=False)
        return [arg for name, path in pairs for arg in ("--benchmarks", f"{name}={path}")]

"""In-process backend on vLLM's own engine: no server, no HTTP.

The job's process holds vLLM's ``LLMEngine`` (the engine behind its offline ``LLM``) on the
job's GPUs, tensor parallel over ``server.tensor_parallel`` of them (default all); a job with
more GPUs than that runs one engine per group in processes of its own (data-parallel replicas),
each kept fed from one queue, and ``server.engines_per_gpu`` puts several such engines on each
group (a model so small that one engine's CPU side, not the GPU, is the limit). Prompts are
rendered with the model's chat template and tokenized here, a batch at a time, so one that
does not fit the model's window is found before it is submitted (``context_overflow``, as the
other backends); requests are fed to the engine as it takes them and each result is yielded as
soon as it finishes, so the job stores it at once (resume after a kill loses nothing
finished). For a small model this is several times faster than the same engine behind its HTTP
server (vLLM's API server, not the GPU, is then the limit), and there is no server to wait for.

``server.args`` are vLLM's own engine arguments, read by vLLM's parser exactly as ``vllm
serve`` reads them, so a config switches between ``vllm`` and ``vllm_engine`` unchanged;
``server.env`` is set before vLLM is imported.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from distillery.errors import DistilleryError
from distillery.generation.processes import ChildGuard
from distillery.generation.types import Request, Result, SamplingParams, fit_to_context

logger = logging.getLogger(__name__)

# the fields of vLLM's SamplingParams an ``inference.extra_body`` may set in-process (the
# server reads them from the request body too)
_EXTRA_SAMPLING = frozenset(
    {"ignore_eos", "min_tokens", "presence_penalty", "frequency_penalty", "skip_special_tokens",
     "spaces_between_special_tokens", "include_stop_str_in_output", "logprobs"}
)  # fmt: skip


def run_where_vllm_is(python: str, module: str) -> None:
    """Where this interpreter cannot import vLLM but ``python`` (``server.python``) is another
    one, runs the job again under it: same module and arguments, this package on its path. A
    job started by hand (``python -m distillery.generate``) thereby works from any environment
    that can reach vLLM's."""
    import importlib.util
    import shutil
    import sys
    from pathlib import Path

    from distillery.generation.pythonpath import with_source

    if importlib.util.find_spec("vllm") is not None:
        return
    target = shutil.which(python) or python
    # a venv's python is a link to the base interpreter: compare where they are, not what they
    # link to
    if not Path(target).is_file() or os.path.abspath(target) == os.path.abspath(sys.executable):
        return  # make_engine says what to do
    logger.info("vLLM is not importable here: running the job under %s", target)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    env = {**os.environ, "PYTHONPATH": with_source()}
    os.execve(target, [target, "-m", module, *sys.argv[1:]], env)


def engine_argv(model: str, tensor_parallel: int, dtype: str | None, args: Sequence[str]) -> list:
    """vLLM's engine arguments for one engine: the model, its tensor-parallel size, the CPU's
    number format where the job runs on one, then the config's own (the last flag wins, as on
    ``vllm serve``'s command line).

    Example:
        >>> engine_argv("/m", 2, None, ["--max-model-len", "4096"])
        ['--model', '/m', '--tensor-parallel-size', '2', '--max-model-len', '4096']
    """
    argv = ["--model", model, "--tensor-parallel-size", str(tensor_parallel)]
    if dtype:
        argv += ["--dtype", dtype]
    return argv + list(args)


def make_engine(argv: Sequence[str], env: dict[str, str]):
    """vLLM's ``LLMEngine`` built from command-line engine arguments (its own parser).

    The engine's core runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0`` unless
    ``env`` says otherwise): a job killed outright (``kill -9``) then takes its engine with it.
    ``server.env`` may turn it back on, for the overlap of scheduling and output handling it
    gives a small model's big batches; the backend then guards the core's process
    (:mod:`distillery.generation.processes`), which vLLM does not stop when the job dies."""
    os.environ.update(env)
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    try:
        from vllm import LLMEngine
        from vllm.usage.usage_lib import UsageContext
    except ImportError as err:
        raise DistilleryError(
            f"server type vllm_engine needs vLLM in the job's environment ({err}); install it "
            "(envs/vllm_engine.yaml), use its container, or name its interpreter in "
            "server.python"
        ) from None
    # the offline engine's batch defaults (LLM_CLASS: 1,024 sequences on an H100/H200), not the
    # bare engine's 128, which leaves a GPU mostly idle on a small model
    return LLMEngine.from_engine_args(engine_args(argv), usage_context=UsageContext.LLM_CLASS)


def engine_args(argv: Sequence[str]):
    """vLLM's ``EngineArgs`` from command-line engine arguments, with its offline engine's
    defaults where they differ from the bare engine's: no statistics (``LLM`` turns them off).
    With them on, every step records each running request's token counts and latencies for
    Prometheus (which nothing scrapes in a job) and a periodic log line: 4.5 ms more a step
    with 960 requests running on a 2-core CPU (``scripts/bench_engine_stats.py``), against a
    step of 35-55 ms for a 1.5B model on an H200, spent in the loop that feeds the GPU. The
    job's own progress and throughput lines give the rates."""
    from vllm.engine.arg_utils import EngineArgs

    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:  # vLLM before 0.11
        from vllm.utils import FlexibleArgumentParser

    parser = EngineArgs.add_cli_args(FlexibleArgumentParser())
    parser.set_defaults(disable_log_stats=True)
    return EngineArgs.from_cli_args(parser.parse_args(list(argv)))


def vllm_sampling(params: SamplingParams, max_tokens: int, extra: dict | None):
    """vLLM's ``SamplingParams`` for one request (a ``top_k`` of -1 is vLLM's 0: off)."""
    from vllm import SamplingParams as VllmSampling
    from vllm.sampling_params import RequestOutputKind

    options = {k: v for k, v in (extra or {}).items() if k in _EXTRA_SAMPLING}
    return VllmSampling(
        n=1,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=max(params.top_k, 0),
        min_p=params.min_p,
        repetition_penalty=params.repetition_penalty,
        max_tokens=max_tokens,
        seed=params.seed,
        stop=list(params.stop) or None,
        # the finished sample only, as vLLM's offline engine asks: the default (every step's
        # tokens so far) rebuilds each running request's output at every step
        output_kind=RequestOutputKind.FINAL_ONLY,
        **options,
    )


@dataclass(frozen=True)
class Prepared:
    """A request ready for an engine: its token ids and the ``max_tokens`` that fits."""

    index: int
    token_ids: list[int]
    params: SamplingParams
    max_tokens: int


def drive(
    engine, items: Callable[[bool], list], sampling: Callable, extra: dict | None, window: int
) -> Iterator[Result]:
    """Runs ``engine`` until ``items`` is exhausted: takes new requests whenever fewer than
    ``window`` are in the engine (``items(block)``: the next requests, waiting for some when
    ``block``; ``[None]`` when there are no more; ``sampling``: the engine's sampling settings
    of one), steps it, and yields each result as it finishes."""
    in_flight: dict[str, tuple[int, float]] = {}
    more = True
    while more or in_flight:
        while more and len(in_flight) < window:
            batch = items(not in_flight)
            if not batch:
                break
            for item in batch:
                if item is None:
                    more = False
                    break
                request_id = str(item.index)
                engine.add_request(
                    request_id,
                    {"prompt_token_ids": item.token_ids},
                    sampling(item.params, item.max_tokens, extra),
                )
                in_flight[request_id] = (item.index, time.time())
        if not in_flight:
            continue
        for output in engine.step():
            if not output.finished:
                continue
            index, began = in_flight.pop(output.request_id)
            completion = output.outputs[0]
            finish = completion.finish_reason or "stop"
            error = None if finish in ("stop", "length") else f"vLLM ended it with {finish!r}"
            yield Result(
                index,
                completion.text,
                len(completion.token_ids),
                "error" if error else finish,
                began,
                time.time(),
                error=error,
            )


class VLLMEngineBackend:
    """Generates every request of a job on in-process vLLM engines (see the module docstring).

    Args:
        model: the HF model directory.
        tensor_parallel: GPUs of one engine (1 on the CPU build).
        replica_gpus: ``CUDA_VISIBLE_DEVICES`` of each replica, or None for one engine in this
            process on whatever the job holds.
        dtype: ``--dtype`` on a CPU (None on GPUs: vLLM's own choice unless ``args`` say).
        args, env: ``server.args`` and ``server.env``.
        window: requests handed to each engine ahead of what it runs (``server.max_concurrency``).
        context_overflow: as for the other backends.
        extra_body: ``inference.extra_body`` (the sampling fields vLLM knows are used).
        engine_factory, sampling: build an engine from its argv, and its sampling settings
            (tests give stand-ins).
    """

    def __init__(
        self,
        model: str,
        tensor_parallel: int = 1,
        replica_gpus: list[str] | None = None,
        dtype: str | None = None,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        window: int = 512,
        context_overflow: str = "reduce_generation",
        extra_body: dict | None = None,
        tokenizer: str | None = None,
        engine_factory: Callable = make_engine,
        sampling: Callable = vllm_sampling,
    ):
        self.argv = engine_argv(model, tensor_parallel, dtype, args)
        self.env = dict(env or {})
        self.window = window
        self.context_overflow = context_overflow
        self.extra_body = extra_body
        self.replica_gpus = replica_gpus
        self.engine_factory = engine_factory
        self.sampling = sampling
        began = time.time()
        self.engine = None
        self.workers: list = []
        # SIGTERM (Snakemake, Slurm) ends the job through close(), which stops the engines
        self._previous_handler = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        self.guard = None
        if replica_gpus is not None:
            # the replicas import vLLM and load their engines while this process loads the
            # tokenizer (each import takes seconds)
            self._spawn_replicas()
        try:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or model)
            if replica_gpus is None:
                began = time.time()
                # the engine's core in processes of its own (server.env turned multiprocessing
                # on) dies with the job even when the job is killed outright
                self.engine, self.guard = ChildGuard.around(
                    lambda: engine_factory(self.argv, self.env)
                )
                self.context = _context_of(self.engine)
            else:
                self.context = self._await_replicas()
        except BaseException:
            self.close(wait=0)  # replicas still starting are stopped, not waited for
            raise
        logger.info(
            "vLLM engine%s ready in %.1fs (window %d tokens)",
            f"s: {len(replica_gpus)} replicas on GPUs {' | '.join(replica_gpus)}"
            if replica_gpus
            else "",
            time.time() - began,
            self.context,
        )

    def prepare(self, requests: Sequence[Request]) -> list[Prepared | Result]:
        """Each request's token ids and the ``max_tokens`` that fits the window, or its error
        sample (``context_overflow``). The prompts are tokenized as one batch: the fast
        tokenizer spreads a batch over the CPU's cores, where one prompt at a time kept the
        job's thread busy for as long as a small model's generation took."""
        from distillery.generation.hf import render_chat

        prompts = [render_chat(self.tokenizer, r.messages) for r in requests]
        ids = self.tokenizer(prompts, add_special_tokens=False).input_ids if prompts else []
        prepared: list[Prepared | Result] = []
        for request, tokens in zip(requests, ids, strict=True):
            max_tokens, error = fit_to_context(
                request.index,
                len(tokens),
                request.params.max_tokens,
                self.context,
                self.context_overflow,
            )
            if error is None:
                prepared.append(Prepared(request.index, tokens, request.params, max_tokens))
            else:
                now = time.time()
                prepared.append(Result(request.index, "", 0, "error", now, now, error=error))
        return prepared

    def generate(self, requests: Sequence[Request]) -> Iterator[Result]:
        """Yields a result per request, in the order they finish."""
        pending = deque(requests)
        rejected: list[Result] = []

        def take(count: int) -> list:
            """Up to ``count`` prepared requests; ``[None]`` once none are left (requests that
            do not fit go to ``rejected``)."""
            batch = []
            while pending and len(batch) < count:
                wanted = min(count - len(batch), len(pending))
                for item in self.prepare([pending.popleft() for _ in range(wanted)]):
                    (rejected if isinstance(item, Result) else batch).append(item)
            return batch or [None]

        if self.engine is not None:
            step = max(1, self.window // 4)
            feed = lambda block: take(step)  # noqa: E731
            for result in drive(self.engine, feed, self.sampling, self.extra_body, self.window):
                yield from _drain(rejected)
                yield result
            yield from _drain(rejected)
            return
        yield from self._generate_on_replicas(take, rejected)

    # --- data-parallel replicas -----------------------------------------------------------

    def _spawn_replicas(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.results = context.Queue()
        self.inboxes = []
        for rank, gpus in enumerate(self.replica_gpus):
            inbox = context.Queue()
            worker = context.Process(
                target=_replica,
                args=(rank, gpus, self.argv, self.env, self.extra_body, self.window, inbox,
                      self.results, self.engine_factory, self.sampling),
                # not a daemon: vLLM's engine core may be a process of the replica's own; the
                # replica dies with the job all the same (die_with_parent) and close() ends it
                daemon=False,
            )  # fmt: skip
            worker.start()
            self.inboxes.append(inbox)
            self.workers.append(worker)

    def _await_replicas(self) -> int:
        """The replicas' common window, once every one is ready."""
        windows = set()
        for _ in self.workers:
            kind, rank, value = self._next()
            if kind != "ready":
                raise DistilleryError(f"vLLM replica {rank} failed to start: {value}")
            windows.add(value)
        return min(windows)

    def _next(self):
        while True:
            try:
                return self.results.get(timeout=5)
            except queue.Empty:
                dead = [w for w in self.workers if not w.is_alive()]
                if dead:
                    raise DistilleryError(
                        f"a vLLM replica process died (exit code {dead[0].exitcode}); see the "
                        "job log above"
                    ) from None

    def _generate_on_replicas(self, take, rejected: list[Result]) -> Iterator[Result]:
        outstanding = [0] * len(self.workers)
        chunk = max(1, self.window // 4)
        exhausted = False

        def feed() -> bool:
            for rank in sorted(range(len(outstanding)), key=outstanding.__getitem__):
                if outstanding[rank] >= self.window:
                    continue
                batch = [item for item in take(chunk) if item is not None]
                if not batch:
                    return False
                self.inboxes[rank].put(batch)
                outstanding[rank] += len(batch)
            return True

        while True:
            if not exhausted:
                exhausted = not feed()
            yield from _drain(rejected)
            if exhausted and not any(outstanding):
                break
            kind, rank, value = self._next()
            if kind == "error":
                raise DistilleryError(f"vLLM replica {rank}: {value}")
            outstanding[rank] -= 1
            yield value

    def close(self, wait: float = 60) -> None:
        """Stops the engines: each replica finishes within ``wait`` seconds or is stopped."""
        signal.signal(signal.SIGTERM, self._previous_handler)
        for inbox in getattr(self, "inboxes", []):
            inbox.put(None)
        for worker in self.workers:
            worker.join(timeout=wait)
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=30)
        if self.guard is not None:
            self.guard.release()
        _shutdown(self.engine)
        self.engine = None


def _replica(rank, gpus, argv, env, extra, window, inbox, results, factory, sampling) -> None:
    """One data-parallel replica: an engine on ``gpus``, fed batches from ``inbox`` until
    ``None``, each result put on ``results``."""
    from distillery.cli import exit_now
    from distillery.generation.servers import die_with_parent

    die_with_parent()  # a job killed outright takes its replicas with it
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    os.environ["CUDA_VISIBLE_DEVICES"] = gpus
    try:
        engine, guard = ChildGuard.around(lambda: factory(argv, env))
        results.put(("ready", rank, _context_of(engine)))

        def items(block: bool) -> list:
            try:
                batch = inbox.get(block=block, timeout=None if block else 0)
            except queue.Empty:
                return []
            return [None] if batch is None else batch

        for result in drive(engine, items, sampling, extra, window):
            results.put(("result", rank, result))
        guard.release()
        _shutdown(engine)
    except BaseException as err:  # handed to the job's process, which stops with it
        results.put(("error", rank, f"{type(err).__name__}: {err}"))
    # the interpreter's teardown of vLLM's and CUDA's state takes seconds and the job waits
    # for it: the results sent, the replica ends here, as the job's own process does
    results.close()
    results.join_thread()
    exit_now()


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def _shutdown(engine) -> None:
    """Stops the engine's core process now rather than at interpreter exit (where vLLM waits
    and then kills it)."""
    core = getattr(engine, "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        try:
            core.shutdown()
        except Exception as err:  # already gone: nothing left to stop
            logger.debug("vLLM engine shutdown: %s", err)


def _context_of(engine) -> int:
    """The engine's window in tokens (prompt plus generation)."""
    config = getattr(engine, "model_config", None) or engine.vllm_config.model_config
    return int(config.max_model_len)


def _drain(items: list) -> Iterator:
    while items:
        yield items.pop(0)

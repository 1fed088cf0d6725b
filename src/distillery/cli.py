"""Command-line entry points for stages: a frozen dataclass config becomes an argparse parser.

Every stage module defines ``Config`` (a frozen dataclass whose fields carry ``help`` metadata and
whose ``__post_init__`` validates) and ``main(config)``, and ends with::

    if __name__ == "__main__":
        cli.run(main, Config)

A field whose type is a config block (a :mod:`distillery.settings` model) becomes
``--config-file``, ``--config-json`` and ``--set KEY=VALUE``, applied in that order: the rules
hand a stage its block as JSON, a user running one by hand may prefer a file and overrides.

``run`` parses the command line, configures logging, pins the thread count, logs the resolved
config (every default filled in) and turns a :class:`DistilleryError` into one error line and
exit status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import logging
import os
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from distillery.errors import DistilleryError

logger = logging.getLogger(__name__)

C = TypeVar("C")

_THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_parser(cls: type, description: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one ``--option`` per field of the dataclass ``cls``."""
    parser = argparse.ArgumentParser(
        description=description or (cls.__doc__ or "").strip().splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        tp, optional = _unwrap_optional(hints[field.name])
        if _is_block(tp):
            _add_block_options(parser, field.metadata.get("help", ""))
            continue
        kwargs: dict[str, Any] = {"help": field.metadata.get("help", ""), "dest": field.name}
        required = (
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        )
        if required:
            kwargs["required"] = True
        elif field.default is not dataclasses.MISSING:
            kwargs["default"] = field.default
        else:
            kwargs["default"] = field.default_factory()
        origin = typing.get_origin(tp)
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin in (list, tuple):
            (item,) = typing.get_args(tp)[:1]
            kwargs["nargs"] = "*"
            kwargs["type"] = item
        elif typing.get_origin(tp) is typing.Literal:
            choices = typing.get_args(tp)
            kwargs["choices"] = choices
            kwargs["type"] = type(choices[0])
        else:
            kwargs["type"] = _nullable(tp) if optional else tp
        parser.add_argument(_option(field.name), **kwargs)
        if field.metadata.get("positional"):
            # `summarize results/evals/x` as well as `--results-dir results/evals/x`
            parser.add_argument(
                _POSITIONAL + field.name, nargs="?", default=None, metavar=field.name.upper(),
                help=f"same as {_option(field.name)}",
            )  # fmt: skip
    return parser


_POSITIONAL = "positional_"


def _is_block(tp: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _add_block_options(parser: argparse.ArgumentParser, what: str) -> None:
    """A stage's config block (the YAML block of its stage, as the workflow hands it over):
    a file, JSON, then dotted overrides, each over the one before."""
    group = parser.add_argument_group("config block", what)
    group.add_argument(
        "--config-file", dest=_BLOCK_FILE, metavar="YAML", help="the block as a YAML mapping"
    )
    group.add_argument(
        "--config-json", dest=_BLOCK_JSON, metavar="JSON", help="the block as a JSON object"
    )
    group.add_argument(
        "--set",
        dest=_BLOCK_SET,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one key, e.g. --set inference.temperature=0.6 (value read as YAML)",
    )


_BLOCK_FILE, _BLOCK_JSON, _BLOCK_SET = "block_file_", "block_json_", "block_set_"


def read_block(model: type, file: str | None, text: str | None, overrides: Sequence[str]):
    """The block from ``--config-file``, ``--config-json`` and ``--set``, validated by
    ``model``; a problem is a :class:`DistilleryError` naming the option or config key."""
    import json

    import yaml

    from distillery.settings.base import parse, set_dotted

    data: dict = {}
    if file is not None:
        try:
            loaded = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise DistilleryError(f"{file}: not valid YAML: {err}") from None
        except OSError as err:
            raise DistilleryError(describe_os_error(err)) from None
        if not isinstance(loaded, dict | None):
            raise DistilleryError(f"{file}: the config block must be a mapping")
        data = loaded or {}
    if text is not None:
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as err:
            raise DistilleryError(f"--config-json is not JSON: {err}") from None
        if not isinstance(loaded, dict):
            raise DistilleryError("--config-json must be a JSON object")
        data = merge_blocks(data, loaded)
    for assignment in overrides:
        set_dotted(data, assignment)
    return parse(model, data)


def merge_blocks(base: dict, update: dict) -> dict:
    """``base`` with ``update`` on top, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = merge_blocks(merged[key], value)
        merged[key] = value
    return merged


def _nullable(tp: type) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        return None if text.lower() in ("", "none", "null") else tp(text)

    convert.__name__ = tp.__name__
    return convert


def parse_config(cls: type[C], argv: Sequence[str] | None = None) -> C:
    """Parses ``argv`` into an instance of the dataclass ``cls``.

    A value that ``cls.__post_init__`` rejects becomes an argparse error naming the option.
    """
    parser = build_parser(cls)
    namespace = parser.parse_args(argv)
    values = vars(namespace)
    block_parts = [values.pop(k, None) for k in (_BLOCK_FILE, _BLOCK_JSON, _BLOCK_SET)]
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        tp, _ = _unwrap_optional(hints[field.name])
        if _is_block(tp):
            try:
                values[field.name] = read_block(tp, *block_parts)
            except DistilleryError as err:
                parser.error(str(err))
    for name in [n for n in values if n.startswith(_POSITIONAL)]:
        given = values.pop(name)
        option = name[len(_POSITIONAL) :]
        if given is not None:
            if values[option] not in (None, given):
                parser.error(f"give {option.upper()} or {_option(option)}, not both")
            values[option] = given
    for name, value in values.items():
        if typing.get_origin(_unwrap_optional(hints[name])[0]) is tuple and value is not None:
            values[name] = tuple(value)
    try:
        return cls(**values)
    except DistilleryError as err:
        parser.error(str(err))
        raise  # unreachable: parser.error exits


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines with time and module to stderr (the rule's log file under Snakemake)."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    if not sys.stderr.isatty():
        # Progress bars written into a log file become one unreadable line of carriage returns.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")


def pin_threads(threads: int) -> None:
    """Limits OpenMP/BLAS and torch to ``threads`` threads.

    Concurrent jobs on a small machine oversubscribe the cores otherwise, and OpenMP throughput
    collapses. The environment variables only take effect if set before torch is imported, which
    is why stages import torch inside ``main``.
    """
    for var in _THREAD_ENV_VARS:
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)


def run(main: Callable[[C], Any], cls: type[C], argv: Sequence[str] | None = None) -> None:
    """Runs a stage: parse, log the resolved config, call ``main``, report errors."""
    configure_logging()
    config = parse_config(cls, argv)
    threads = getattr(config, "threads", None)
    if threads:
        pin_threads(threads)
    logger.info("%s config: %s", main.__module__, resolved(config))
    try:
        main(config)
    except DistilleryError as err:
        logger.error("%s", err)
        sys.exit(1)
    except OSError as err:
        # a full disk, a read-only directory, a corrupt model file: one line, not a traceback
        logger.error("%s", describe_os_error(err))
        sys.exit(1)


def exit_now() -> None:
    """Ends a finished job's process at once, its logs flushed. For jobs that held vLLM or
    CUDA: the interpreter's own teardown of their state takes seconds a job and writes
    nothing a job's outputs need (they are closed and renamed before this)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


def resolved(config: Any) -> dict:
    """The stage's settings with every default filled in, as logged at its start."""
    from pydantic import BaseModel

    return {
        f.name: v.model_dump() if isinstance(v, BaseModel) else v
        for f in dataclasses.fields(config)
        for v in [getattr(config, f.name)]
    }


_OS_ERROR_FIXES = {
    errno.ENOSPC: "the disk is full: free space (or point results/ at a larger disk) and rerun",
    errno.EDQUOT: "the disk quota is exceeded: free space and rerun",
    errno.EROFS: "the file system is read-only: run from a writable directory",
    errno.EACCES: "permission denied: fix the directory's permissions or run elsewhere",
    errno.EPERM: "operation not permitted: fix the permissions or run elsewhere",
    errno.ENOENT: "no such file or directory: build it first or fix its path in the config",
}


def describe_os_error(err: OSError) -> str:
    """One line for an error of the machine or its files: the path and what to do.

    Example:
        >>> describe_os_error(OSError(28, "No space left on device", "out.jsonl")).split(":")[:2]
        ['out.jsonl', ' the disk is full']
    """
    fix = _OS_ERROR_FIXES.get(err.errno)
    if fix and err.filename:
        return f"{err.filename}: {fix}"
    if fix:
        return f"{err.strerror or err}: {fix}"
    # libraries (transformers on a corrupt config.json) put the path in the message
    where = f"{err.filename}: " if err.filename else ""
    return (
        f"{where}{str(err).splitlines()[0] if str(err) else type(err).__name__}; check that "
        "file, or delete it and rerun the rule that builds it"
    )

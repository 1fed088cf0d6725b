"""What every config block shares: strict validation, and errors that name the config key.

Example:
    >>> data = {"inference": {"temperature": 0.0}}
    >>> set_dotted(data, "inference.temperature=0.6")
    >>> data
    {'inference': {'temperature': 0.6}}
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from distillery.errors import DistilleryError

# A key of `models`, `benchmarks` or `evaluation.runs`: it becomes part of file paths.
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Dtype = Literal["auto", "float32", "bfloat16", "float16"]


def nullable(schema: dict) -> None:
    """``json_schema_extra`` of the few fields a config may set to null (``key: ~``); every
    other field rejects null, in the schema and in :func:`parse` alike."""
    schema["type"] = [schema["type"], "null"]


class Block(BaseModel):
    """A config block: exactly the keys of its YAML mapping."""

    # strict: the schema does not turn "4" into 4, so parsing does not either
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _check_keys(cls, data: Any) -> Any:
        # extra="forbid" would reject unknown keys too, but its error cannot list the allowed
        # ones; it stays for the schema's additionalProperties: false
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        unknown = [k for k in data if k not in fields]
        if unknown:
            raise PydanticCustomError(
                "unknown_keys", "unknown keys {keys}", {"keys": unknown, "allowed": sorted(fields)}
            )
        nulls = [
            k for k, v in data.items() if v is None and fields[k].json_schema_extra is not nullable
        ]
        if nulls:
            raise PydanticCustomError(
                "null_values",
                "must not be null (leave the key out for its default)",
                {"keys": nulls},
            )
        return data


def missing_keys(block: BaseModel, keys: list[str], why: str) -> None:
    """Raises the error of a required-if key (e.g. ``repo`` with ``source: hf``) left out."""
    absent = [k for k in keys if k not in block.model_fields_set]
    if absent:
        raise PydanticCustomError(
            "missing_keys", "is missing ({why})", {"keys": absent, "why": why}
        )


def conflicts(found: list[tuple[str, str]]) -> PydanticCustomError:
    """The error of settings that cannot go together: ``(key of the block, what to do)`` for
    each pair found, every one reported."""
    return PydanticCustomError("conflicts", "settings exclude each other", {"found": found})


def conflict(key: str, message: str) -> PydanticCustomError:
    return conflicts([(key, message)])


B = TypeVar("B", bound=BaseModel)

_BOUNDS = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}
_TYPES = {
    "int": "integer",
    "float": "number",
    "string": "string",
    "bool": "boolean",
    "list": "array",
    "dict": "object",
    "model": "object",
}


def _config_path(data: Any, error: dict) -> list:
    """The error's location as config keys: pydantic's location also names union members and
    dict keys ('[key]'), which are not in the data."""
    path, node, loc = [], data, error["loc"]
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int):
            node = node[part]
        elif not (i == len(loc) - 1 and error["type"] == "missing"):
            continue
        path.append(part)
    return path


def _describe(data: Any, error: dict, key: str) -> list[str]:
    path = [*([key] if key else []), *map(str, _config_path(data, error))]
    where = ".".join(path) or "<top level>"
    kind, ctx, got = error["type"], error.get("ctx", {}), error.get("input")
    if kind == "unknown_keys":
        allowed = ", ".join(ctx["allowed"])
        return [
            f"config key '{'.'.join([*path, k])}' is not allowed; allowed keys of '{where}': "
            f"{allowed}"
            for k in ctx["keys"]
        ]
    if kind in ("null_values", "missing_keys"):
        return [f"config key '{'.'.join([*path, k])}' {error['msg']}" for k in ctx["keys"]]
    if kind == "conflicts":
        return [f"config key '{'.'.join([*path, key])}': {text}" for key, text in ctx["found"]]
    if kind == "missing":
        return [f"config key '{where}' is missing"]
    if kind == "literal_error":
        options = ctx["expected"].replace(" or ", ", ")
        return [f"config key '{where}' must be one of {options}, got {got!r}"]
    if kind == "too_short":
        return [f"config key '{where}' must have at least {ctx['min_length']} entries"]
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        return [f"config key '{where}' must be {_BOUNDS[kind]} {bound}, got {got!r}"]
    if kind.endswith("_type") and kind[: -len("_type")] in _TYPES:
        expected = _TYPES[kind[: -len("_type")]]
        return [f"config key '{where}' must be of type {expected}, got {got!r}"]
    return [f"config key '{where}': {error['msg']}"]


def parse(cls: type[B], data: dict, key: str = "") -> B:
    """``data`` validated as ``cls``; ``key`` is where the block sits in the config (e.g.
    ``evaluation``). Raises :class:`DistilleryError` with one line per problem."""
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        lines = [line for e in err.errors() for line in _describe(data, e, key)]
        raise DistilleryError("invalid config:\n" + "\n".join(f"  - {x}" for x in lines)) from None


_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def setting(block: dict | None, model: type[BaseModel], key: str) -> Any:
    """``block[key]`` of a raw config block, or ``model``'s default for it: the planner reads
    a setting the user may leave out without restating its default.

    Example:
        >>> class Demo(Block):
        ...     seeds: int = 1
        >>> setting({}, Demo, "seeds"), setting({"seeds": 4}, Demo, "seeds")
        (1, 4)
    """
    if block and key in block:
        return block[key]
    return model.model_fields[key].get_default(call_default_factory=True)


def _value(text: str):
    """A value written on the command line, read as YAML; ``1e-5`` is a number (YAML 1.1,
    which PyYAML reads, wants ``1.0e-5``).

    Example:
        >>> _value("1e-5"), _value("[a, b]"), _value("true")
        (1e-05, ['a', 'b'], True)
    """
    value = yaml.safe_load(text)
    if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
        return float(value)
    return value


def set_dotted(data: dict, assignment: str) -> None:
    """Applies an override ``a.b.c=value`` to ``data``, creating blocks as needed; the value is
    read as YAML (``0.6``, ``true``, ``[a, b]``). A name with dots (``models.qwen2.5-7b.dtype``)
    is matched against the keys already there."""
    dotted, sep, text = assignment.partition("=")
    parts = dotted.strip().split(".")
    if not sep or not all(parts):
        raise DistilleryError(
            f"override {assignment!r} is not KEY=VALUE, e.g. inference.temperature=0.6"
        )
    node, done = data, []
    while True:
        n = max((n for n in range(1, len(parts) + 1) if ".".join(parts[:n]) in node), default=1)
        done.append(".".join(parts[:n]))
        parts = parts[n:]
        if not parts:
            node[done[-1]] = _value(text)
            return
        node = node.setdefault(done[-1], {})
        if not isinstance(node, dict):
            raise DistilleryError(
                f"override {assignment!r}: config key '{'.'.join(done)}' is not a mapping"
            )

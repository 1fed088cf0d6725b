"""The config's JSON Schema, generated from the settings models.

Usage::

    python -m distillery.settings.schema           # rewrite workflow/schemas/config.schema.yaml
    python -m distillery.settings.schema --check   # exit 1 if the file is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from distillery.settings.workflow import WorkflowConfig

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"
COMMAND = "python -m distillery.settings.schema"
HEADER = (
    f"# Generated from src/distillery/settings by `{COMMAND}`; do not edit by hand.\n"
    "# Every key, its type, default, bounds and description is declared there once.\n"
)

# key order in each schema object, for a reader: what it is first, its parts last
_ORDER = {key: i for i, key in enumerate((
    "$schema", "$ref", "description", "type", "enum", "const", "pattern", "minimum",
    "exclusiveMinimum", "maximum", "minItems", "minProperties", "propertyNames", "items",
    "default", "required", "additionalProperties", "properties", "not", "oneOf", "allOf", "if",
    "then", "else", "$defs",
))}  # fmt: skip
# children that are not schemas (values) or are maps of names to schemas (kept in their order)
_VALUES = {"default", "enum", "const", "required"}
_NAMED = {"properties", "$defs"}


class _Generator(GenerateJsonSchema):
    """Pydantic's schema, written the way the hand-written one was: no titles, null only where
    a field says so, enums as enums, name-keyed maps as propertyNames."""

    def generate(self, schema, mode="validation"):
        return {"$schema": self.schema_dialect, **super().generate(schema, mode)}

    def field_title_should_be_set(self, schema) -> bool:
        return False

    def model_schema(self, schema):
        json_schema = super().model_schema(schema)
        json_schema.pop("title", None)
        if "description" in json_schema:  # a class docstring, wrapped in the source
            json_schema["description"] = " ".join(json_schema["description"].split())
        return json_schema

    def nullable_schema(self, schema):
        # an optional key is left out, not set to null (base.nullable marks the exceptions)
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema):
        default = schema.get("default")
        if default is None or isinstance(default, BaseModel):
            # "none" and a whole block's defaults say nothing its own keys do not
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)

    def literal_schema(self, schema):
        return {"enum": list(schema["expected"])}

    def dict_schema(self, schema):
        json_schema = super().dict_schema(schema)
        if "patternProperties" in json_schema:
            # patternProperties alone would let other keys through unchecked
            ((pattern, values),) = json_schema.pop("patternProperties").items()
            json_schema["propertyNames"] = {"pattern": pattern}
            json_schema["additionalProperties"] = values
        return json_schema


def _count_refs(node, counts: dict) -> dict:
    if isinstance(node, dict):
        if "$ref" in node:
            counts[node["$ref"]] = counts.get(node["$ref"], 0) + 1
        for value in node.values():
            _count_refs(value, counts)
    elif isinstance(node, list):
        for value in node:
            _count_refs(value, counts)
    return counts


def _tidy(node, defs: dict, once: set, key: str | None = None):
    """Inlines the blocks used once (so the file reads top-down like the config) and orders
    each object's keys."""
    if isinstance(node, list):
        return [_tidy(v, defs, once) for v in node]
    if not isinstance(node, dict) or key in _VALUES:
        return node
    if key in _NAMED:
        return {name: _tidy(v, defs, once) for name, v in node.items()}
    if node.get("$ref") in once:
        node = {**defs[node["$ref"]], **{k: v for k, v in node.items() if k != "$ref"}}
    keys = sorted(node, key=lambda k: _ORDER.get(k, len(_ORDER)))
    return {k: _tidy(node[k], defs, once, k) for k in keys}


def json_schema() -> dict:
    schema = WorkflowConfig.model_json_schema(schema_generator=_Generator)
    defs = {f"#/$defs/{name}": s for name, s in schema.pop("$defs", {}).items()}
    once = {ref for ref, n in _count_refs([schema, *defs.values()], {}).items() if n == 1}
    kept = {ref.split("/")[-1]: s for ref, s in defs.items() if ref not in once}
    schema = _tidy(schema, defs, once)
    if kept:
        schema["$defs"] = _tidy(kept, defs, once, "$defs")
    return schema


class _Dumper(yaml.SafeDumper):
    """Small leaves on one line (``items: {type: string}``, ``enum: [a, b]``), the rest as
    blocks."""

    def ignore_aliases(self, data) -> bool:
        return True  # a list shared by two schemas is written out twice, not as &id001


def _one_line(node) -> bool:
    if isinstance(node, dict):
        return (
            "description" not in node
            and len(str(node)) <= 80
            and all(map(_one_line, node.values()))
        )
    return not isinstance(node, list) or all(map(_one_line, node))


def _represent_dict(dumper, data):
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=_one_line(data))


def _represent_list(dumper, data):
    flat = not any(isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flat or _one_line(data))


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)


def render() -> str:
    body = yaml.dump(json_schema(), Dumper=_Dumper, sort_keys=False, width=10_000)
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if SCHEMA_PATH.read_text() != text:
            sys.stderr.write(f"{SCHEMA_PATH} is stale: regenerate it with `{COMMAND}`\n")
            return 1
        return 0
    SCHEMA_PATH.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A model's chat template and token counts without importing transformers (and torch).

Data stages handle millions of records on CPU-only nodes: importing transformers pulls torch in
(~300 MB resident before any data). The template is rendered the way transformers renders it
(sandboxed Jinja, ``trim_blocks``, ``lstrip_blocks``, the same helper functions), from the same
files (``chat_template.jinja`` or ``tokenizer_config.json``); a test checks the result is
identical to ``apply_chat_template``.
"""

from __future__ import annotations

import datetime
import json
from functools import cached_property
from pathlib import Path

from distillery.errors import DistilleryError


def _raise_exception(message: str):
    from jinja2.exceptions import TemplateError

    raise TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _token_text(value) -> str | None:
    if isinstance(value, dict):
        return value.get("content")
    return value


class ChatTemplate:
    """The chat template and special tokens of a model directory.

    Example:
        >>> template = ChatTemplate.from_pretrained("results/models/smollm2-135m")  # doctest: +SKIP
        >>> template.render([{"role": "user", "content": "hi"}], True)  # doctest: +SKIP
    """

    def __init__(self, source: str, special_tokens: dict[str, str | None], origin: str = ""):
        self.source = source
        self.special_tokens = special_tokens
        self.origin = origin

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> ChatTemplate:
        directory = Path(directory)
        config_path = directory / "tokenizer_config.json"
        config = json.loads(config_path.read_text()) if config_path.is_file() else {}
        jinja_path = directory / "chat_template.jinja"
        if jinja_path.is_file():
            source = jinja_path.read_text()
        else:
            source = config.get("chat_template")
            if isinstance(source, list):
                named = {t["name"]: t["template"] for t in source}
                source = named.get("default")
        if not source:
            raise DistilleryError(
                f"{directory}: the model has no chat template (no chat_template.jinja and none in "
                "tokenizer_config.json); use an instruct model or add a template"
            )
        names = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token")
        tokens = {name: _token_text(config.get(name)) for name in names}
        return cls(source, tokens, str(directory))

    @cached_property
    def _compiled(self):
        from jinja2 import nodes
        from jinja2.ext import Extension, loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        class Generation(Extension):
            """``{% generation %}`` marks assistant text for masks; here it renders its body."""

            tags = {"generation"}

            def parse(self, parser):
                lineno = next(parser.stream).lineno
                body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
                return nodes.Scope(body).set_lineno(lineno)

        environment = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols]
        )
        environment.filters["tojson"] = _tojson
        environment.globals["raise_exception"] = _raise_exception
        environment.globals["strftime_now"] = _strftime_now
        return environment.from_string(self.source)

    def render(self, messages: list[dict], add_generation_prompt: bool = False, **kwargs) -> str:
        """The conversation as the model sees it."""
        return self._compiled.render(
            messages=messages,
            add_generation_prompt=add_generation_prompt,
            **self.special_tokens,
            **kwargs,
        )


class TokenCounter:
    """Token counts with the model's fast tokenizer (``tokenizer.json``), no special tokens."""

    def __init__(self, directory: str | Path):
        path = Path(directory) / "tokenizer.json"
        if not path.is_file():
            raise DistilleryError(f"{directory}: no tokenizer.json to count tokens with")
        self.path = path

    @cached_property
    def _tokenizer(self):
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(self.path))

    def __call__(self, texts: list[str]) -> list[int]:
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]

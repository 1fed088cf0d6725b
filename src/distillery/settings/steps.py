"""The settings every LLM processing step shares (its model server, sampling, prompt, and how
its answers are read); each step's own settings live with its code in
``distillery.processing.steps``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from distillery.processing.parsers import PARSES
from distillery.settings.base import conflict
from distillery.settings.generation import CHUNKS, Generation, Inference, Server

GREEDY = Inference(temperature=0.0, max_tokens=1024)


class Step(Generation):
    """An LLM processing step: its model server, sampling and prompt."""

    server: Server
    inference: Inference = GREEDY
    chunks: int = Field(1, ge=1, description=CHUNKS)

    # the field naming the step's prompt file (a str), or its prompt files by name (a dict)
    PROMPT_FIELD: ClassVar[str] = "prompt"

    @model_validator(mode="after")
    def _whole_input(self) -> Step:
        # a step answers every request it selects, with its prompt file's messages
        if self.system is not None:
            raise conflict("system", "a processing step's system prompt goes in its prompt file")
        if self.max_samples != -1:
            raise conflict("max_samples", "a processing step answers all its rows")
        return self

    @classmethod
    def prompt_files(cls, block: dict) -> dict[str, str]:
        """The prompt files a config block of this step names, by name, defaults filled in
        (read from the raw block: the planner resolves them before the block is validated)."""
        field = cls.PROMPT_FIELD
        value = block.get(field)
        if value is None:
            value = cls.model_fields[field].default
        return dict(value) if isinstance(value, dict) else {field: value}

    @classmethod
    def with_prompt_files(cls, block: dict, files: dict[str, str]) -> dict:
        """``block`` naming ``files`` (as :meth:`prompt_files` gives them) as its prompts."""
        field = cls.PROMPT_FIELD
        is_dict = isinstance(cls.model_fields[field].default, dict)
        return {**block, field: dict(files) if is_dict else files[field]}


class ParsedStep(Step):
    """A step whose outputs are read back by a parser."""

    parse: Literal[PARSES] = Field(  # type: ignore[valid-type]
        "nemo-skills",
        description="how the model's outputs are read: nemo-skills = exactly as NeMo-Skills' "
        "recipe reads them; lenient (deviation) = also chattier forms (case, markdown, a verdict "
        "after some text); docs/parity.md",
    )

"""Prompt configs: YAML files with a system message, a user template and few-shot examples.

Format (NeMo-Skills' prompt-config convention: Python ``str.format`` fields filled from the
input row; literal braces are doubled, e.g. ``\\boxed{{}}``)::

    system: "You are a careful math tutor."            # optional
    user: "Solve ... \\boxed{{}}.\\n\\n{problem}"        # required
    few_shot:                                           # optional; earlier chat turns
      - input: {problem: "What is 2 + 2?"}
        output: "2 + 2 = 4. The answer is \\boxed{4}."

Few-shot examples become user/assistant turns before the real question, each user turn filled
from the example's ``input`` with the same template. Small models follow examples given as turns
more reliably than examples pasted into one message.

NeMo-Skills' own prompt configs load too (``nemo-skills:<name>``, see
:mod:`distillery.nemo_skills_prompts`): their ``few_shot_examples`` block describes example sets
we do not ship, so its ``{examples}`` field is empty, as it is in NeMo-Skills without an
``examples_type``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from distillery.errors import DistilleryError

_ALLOWED_KEYS = {"system", "user", "few_shot", "few_shot_examples"}


@dataclass(frozen=True)
class FewShotExample:
    input: dict
    output: str


@dataclass(frozen=True)
class PromptConfig:
    """A loaded prompt config. Build it with :func:`load_prompt`."""

    user: str
    system: str | None = None
    few_shot: tuple[FewShotExample, ...] = ()
    source: str = "<inline>"
    # fields the prompt fills itself where a row has none (NeMo-Skills' empty {examples})
    defaults: tuple[tuple[str, str], ...] = ()

    def fields(self) -> set[str]:
        """Names of the row fields the templates use (and the prompt does not fill itself)."""
        used = template_fields(self.user, self.source) | (
            template_fields(self.system, self.source) if self.system else set()
        )
        return used - {name for name, _ in self.defaults}

    def check_rows(
        self, rows: list[dict], data_path: str, line_numbers: list[int] | None = None
    ) -> None:
        """Raises if any row lacks a field the prompt uses (before any request is sent)."""
        _check_rows(self.source, self.fields(), rows, data_path, line_numbers)

    def with_system(self, text: str) -> PromptConfig:
        """This prompt with ``text`` as its system message, taken literally (braces in it are
        not fields).

        Example:
            >>> PromptConfig(user="{problem}").with_system("Box it: {}").messages(
            ...     {"problem": "1+1"})[0]["content"]
            'Box it: {}'
        """
        return replace(self, system=text.replace("{", "{{").replace("}", "}}"))

    def messages(self, row: dict) -> list[dict]:
        """The chat messages for one input row."""
        if self.defaults:
            row = {**dict(self.defaults), **row}
        messages = []
        if self.system:
            messages.append({"role": "system", "content": self.system.format(**row)})
        for example in self.few_shot:
            messages.append({"role": "user", "content": self.user.format(**example.input)})
            messages.append({"role": "assistant", "content": example.output})
        messages.append({"role": "user", "content": self.user.format(**row)})
        return messages


def _check_rows(source, needed, rows, data_path, line_numbers) -> None:
    numbers = line_numbers or range(1, len(rows) + 1)
    for number, row in zip(numbers, rows, strict=True):
        missing = sorted(f for f in needed if row.get(f) is None)
        if missing:
            present = ", ".join(sorted(row)) or "none"
            raise DistilleryError(
                f"{source} uses {{{'}, {'.join(missing)}}}, but {data_path}:{number} has no "
                f"value for it (fields present: {present}); fix the prompt or the data"
            )


MESSAGES_FIELD = "_messages"


@dataclass(frozen=True)
class RenderedPrompt:
    """Rows that carry their chat messages already, rendered from a prompt config by an
    earlier stage (a processing step's selection, which fills each row's prompt from several
    sources); ``generate`` sends them as they are."""

    source: str = f"rows' {MESSAGES_FIELD}"

    def fields(self) -> set[str]:
        return {MESSAGES_FIELD}

    def check_rows(self, rows, data_path, line_numbers=None) -> None:
        _check_rows(self.source, self.fields(), rows, data_path, line_numbers)

    def messages(self, row: dict) -> list[dict]:
        return row[MESSAGES_FIELD]

    def with_system(self, text: str) -> RenderedPrompt:
        raise DistilleryError("rows with rendered messages take no system setting")


def template_fields(template: str, source: str = "<inline>") -> set[str]:
    """The ``{field}`` names in a ``str.format`` template.

    Example:
        >>> sorted(template_fields("Solve {problem} in \\\\boxed{{}}"))
        ['problem']
    """
    names = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise DistilleryError(
            f"{source}: template is not a valid format string ({err}); write literal braces "
            "doubled, as in \\boxed{{}}"
        ) from None
    for _, name, _, _ in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise DistilleryError(
                f"{source}: template field {{{name}}} is not a plain field name; write literal "
                "braces doubled, as in \\boxed{{}}"
            )
        names.add(name)
    return names


def load_prompt(path: str | Path) -> PromptConfig:
    """Loads and validates a prompt config file."""
    path = Path(path)
    if not path.is_file():
        raise DistilleryError(f"{path}: prompt config does not exist; fix the path in the config")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise DistilleryError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("user"), str):
        raise DistilleryError(f"{path}: a prompt config needs a 'user' template string")
    unknown = set(data) - _ALLOWED_KEYS
    if unknown:
        raise DistilleryError(
            f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_ALLOWED_KEYS)}"
        )
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        raise DistilleryError(f"{path}: 'system' must be a string")
    examples = []
    for number, example in enumerate(data.get("few_shot") or [], start=1):
        if (
            not isinstance(example, dict)
            or set(example) != {"input", "output"}
            or not isinstance(example["input"], dict)
            or not isinstance(example["output"], str)
        ):
            raise DistilleryError(
                f"{path}: few_shot example {number} must have 'input' (a mapping of fields) and "
                "'output' (the assistant's answer)"
            )
        examples.append(FewShotExample(dict(example["input"]), example["output"]))
    if data.get("few_shot_examples") is not None and not isinstance(
        data["few_shot_examples"], dict
    ):
        raise DistilleryError(
            f"{path}: 'few_shot_examples' must be a mapping (NeMo-Skills' format)"
        )
    # NeMo-Skills' example sets are not shipped: its {examples} is empty, as without examples_type
    defaults = (("examples", ""),) if "few_shot_examples" in data else ()
    prompt = PromptConfig(
        user=data["user"],
        system=system,
        few_shot=tuple(examples),
        source=str(path),
        defaults=defaults,
    )
    needed = prompt.fields()
    for number, example in enumerate(prompt.few_shot, start=1):
        missing = sorted(needed - set(example.input))
        if missing:
            raise DistilleryError(
                f"{path}: few_shot example {number} lacks field(s) {missing} the template uses"
            )
    return prompt

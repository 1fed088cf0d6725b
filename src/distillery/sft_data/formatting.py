"""The student's chat format for SFT records, fast.

``input`` is the prompt with the chat template applied and the generation prompt added;
``output`` is what the template adds for the assistant turn (the answer and end-of-turn tokens),
so ``input + output`` is exactly the rendered conversation, as NeMo-RL's prompt-response datasets
expect. Rendering a Jinja template per record is slow at a million records, so each conversation
shape (the sequence of roles) is rendered once with placeholder contents and filled in by string
substitution; the first records of each shape are also rendered for real and compared, and a
template that does not survive the comparison is rendered per record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

Render = Callable[[list[dict], bool], str]


def _placeholder(index: int) -> str:
    return f"\x00distillery-content-{index}\x00"


class ChatFormatter:
    """Splits conversations into ``(input, output)`` strings with ``render``.

    Args:
        render: ``render(messages, add_generation_prompt)`` applies the chat template.
        verify: records of each shape also rendered for real and compared.
    """

    def __init__(self, render: Render, verify: int = 32):
        self.render = render
        self.verify = verify
        self._skeletons: dict[tuple, tuple[str, str] | None] = {}
        self._checked: dict[tuple, int] = {}

    def split(self, messages: list[dict]) -> tuple[str, str]:
        """``(input, output)`` of a conversation that ends with the assistant's answer."""
        shape = tuple(m["role"] for m in messages)
        if shape not in self._skeletons:
            self._skeletons[shape] = self._skeleton(shape)
        skeleton = self._skeletons[shape]
        if skeleton is None:
            return self._slow(messages)
        fast = self._fill(skeleton, messages)
        if self._checked.get(shape, 0) < self.verify:
            self._checked[shape] = self._checked.get(shape, 0) + 1
            slow = self._slow(messages)
            if slow != fast:
                logger.info("chat template changes message contents; rendering every record")
                self._skeletons[shape] = None
                return slow
        return fast

    def _slow(self, messages: list[dict]) -> tuple[str, str]:
        text_input = self.render(messages[:-1], True)
        full = self.render(messages, False)
        if not full.startswith(text_input):
            raise ValueError(
                "the chat template renders the prompt differently inside the full conversation; "
                "cannot split it into input and output"
            )
        return text_input, full[len(text_input) :]

    def _skeleton(self, shape: tuple) -> tuple[str, str] | None:
        messages = [{"role": role, "content": _placeholder(i)} for i, role in enumerate(shape)]
        try:
            text_input, text_output = self._slow(messages)
        except ValueError:
            return None
        full = text_input + text_output
        if any(full.count(_placeholder(i)) != 1 for i in range(len(shape))):
            return None
        if _placeholder(len(shape) - 1) not in text_output:
            return None
        return text_input, text_output

    @staticmethod
    def _fill(skeleton: tuple[str, str], messages: list[dict]) -> tuple[str, str]:
        text_input, text_output = skeleton
        for i, message in enumerate(messages):
            marker = _placeholder(i)
            if marker in text_input:
                text_input = text_input.replace(marker, message["content"])
            else:
                text_output = text_output.replace(marker, message["content"])
        return text_input, text_output

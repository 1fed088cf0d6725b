"""Reading the verdicts and answers of the LLM processing steps out of their generations.

Each parser returns ``None`` for an output it cannot read; the steps count those, log them
with the row's id, and treat them as no verdict (never as a positive one).
"""

from __future__ import annotations

import re

from distillery.grading.answers import last_boxed

_WORD = re.compile(r"[a-z]+")
_MARKUP = re.compile(r"[*_`#>\"']")


def parse_yes_no(text: str | None) -> bool | None:
    """A classifier's yes or no: the first word when it is one (``Yes, because ...``), else
    the last standalone ``yes``/``no`` of the text (a verdict after some chatter), else
    ``None``.

    Example:
        >>> parse_yes_no("**Yes**"), parse_yes_no("The problem asks for a proof.\\nAnswer: no")
        (True, False)
        >>> parse_yes_no("It is hard to say.") is None
        True
    """
    if not text:
        return None
    words = _WORD.findall(_MARKUP.sub(" ", text.lower()))
    if not words:
        return None
    if words[0] in ("yes", "no"):
        return words[0] == "yes"
    verdicts = [w for w in words if w in ("yes", "no")]
    return verdicts[-1] == "yes" if verdicts else None


def parse_judgement(text: str | None) -> bool | None:
    """An answer judge's verdict in NeMo-Skills' format: the text after the last
    ``Judgement:`` starts with yes or no (any case, markdown around it ignored); ``None``
    without the marker or with anything else after it.

    Example:
        >>> parse_judgement("Reasoning: 1/2 and 0.5 are equal.\\nJudgement: Yes")
        True
        >>> parse_judgement("**Judgement:** no.")
        False
        >>> parse_judgement("Judgement: maybe") is None, parse_judgement("Yes") is None
        (True, True)
    """
    if not text or "judgement:" not in text.lower():
        return None
    tail = text[text.lower().rfind("judgement:") + len("judgement:") :]
    words = _WORD.findall(_MARKUP.sub(" ", tail.lower()))
    if words and words[0] in ("yes", "no"):
        return words[0] == "yes"
    return None


NOT_FOUND = re.compile(r"answer\s+not\s+found|no\s+answer\s+(?:was\s+)?found", re.IGNORECASE)
_ANSWER_LINE = re.compile(r"^\W*answer[\s*_]*:[\s*_]*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def parse_extracted_answer(text: str | None) -> tuple[str | None, bool]:
    """The final answer a forum discussion gives, from the last ``Answer: ...`` line (a
    ``\\boxed{}`` in it: its content): ``(answer, True)``; ``(None, True)`` when the model says
    there is none (``Answer not found``); ``(None, False)`` when the output cannot be read.

    Example:
        >>> parse_extracted_answer("Post 2 computes it.\\nAnswer: $\\\\boxed{42}$")
        ('42', True)
        >>> parse_extracted_answer("The posts disagree.\\nAnswer not found.")
        (None, True)
        >>> parse_extracted_answer("I think the thread is about geometry.")
        (None, False)
    """
    if not text:
        return None, False
    lines = list(_ANSWER_LINE.finditer(text))
    not_found = list(NOT_FOUND.finditer(text))
    # the model may think aloud first ("post 1: no answer found ... Answer: 42"): the later wins
    if not_found and (not lines or not_found[-1].start() > lines[-1].start()):
        return None, True
    if not lines:
        return None, False
    answer = lines[-1].group(1).strip().rstrip(".").strip()
    if "\\boxed" in answer:
        answer = last_boxed(answer) or answer
    answer = answer.strip().strip("$").strip()
    if not answer or NOT_FOUND.search(answer) or answer.lower() in ("none", "n/a"):
        return None, True
    return answer, True


def parse_true_false(text: str | None) -> bool | None:
    """A contamination check's verdict: ``True`` (the two problems are the same) or
    ``False``, as the first word, else the last one in the text; ``None`` otherwise.

    Example:
        >>> parse_true_false("True"), parse_true_false("They differ in the numbers. False.")
        (True, False)
    """
    if not text:
        return None
    words = _WORD.findall(_MARKUP.sub(" ", text.lower()))
    if words and words[0] in ("true", "false"):
        return words[0] == "true"
    verdicts = [w for w in words if w in ("true", "false")]
    return verdicts[-1] == "true" if verdicts else None


_PREAMBLE = re.compile(
    r"^[\s*_]*(?:new|converted|rewritten|reformulated)?\s*problem[\s*_]*:[\s*_]*",
    re.IGNORECASE,
)


def parse_converted_problem(text: str | None) -> str | None:
    """The answerable problem a proof was rewritten into: the output without a leading
    ``Problem:`` label; ``None`` when empty or when the model refused (a proof cannot be
    rewritten).

    Example:
        >>> parse_converted_problem("New problem: Find the least n such that n! > 10^6.")
        'Find the least n such that n! > 10^6.'
    """
    if not text or not text.strip():
        return None
    problem = _PREAMBLE.sub("", text.strip(), count=1).strip()
    lowered = problem.lower()
    if not problem or lowered.startswith(("cannot", "i cannot", "i can't", "not possible")):
        return None
    return problem

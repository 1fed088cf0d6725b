"""Reading the verdicts and answers of the LLM processing steps out of their generations.

By default each parser reads an output exactly as NeMo-Skills' OpenMathReasoning recipe reads
it (``docs/parity.md`` names the file each follows); ``lenient=True`` (a step's ``parse:
lenient``) also reads the chattier forms a weaker model writes. Each returns ``None`` for an
output it cannot read; the steps count those, log them with the row's id, and treat them as no
verdict, which is what NeMo-Skills makes of them too (never a positive one).
"""

from __future__ import annotations

import re

from distillery.grading.answers import last_boxed

PARSES = ("nemo-skills", "lenient")

_WORD = re.compile(r"[a-z]+")
_MARKUP = re.compile(r"[*_`#>\"']")


def _words(text: str) -> list[str]:
    return _WORD.findall(_MARKUP.sub(" ", text.lower()))


def parse_label(text: str | None, label: str, lenient: bool = False) -> bool | None:
    """A classifier's answer: whether the output starts with the class's label (``proof``,
    ``mcq``, ``binary``, ``invalid``), as NeMo-Skills' ``postprocess_classification`` decides;
    ``False`` for ``not <label>``, ``None`` for anything else (which NeMo-Skills also puts in
    the "no" pile).

    ``lenient``: where that reads nothing, case and markdown ignored, ``not <label>`` or
    ``<label>`` anywhere (the last wins), or a yes/no answer (:func:`parse_yes_no`).

    Example:
        >>> parse_label("proof", "proof"), parse_label("not proof", "proof")
        (True, False)
        >>> parse_label("**Proof**", "proof") is None, parse_label("**Proof**", "proof", True)
        (True, True)
    """
    if not text:
        return None
    if text.startswith(label):
        return True
    if text.startswith(f"not {label}"):
        return False
    if not lenient:
        return None
    lowered = " ".join(_words(text))
    found = list(re.finditer(rf"\b(not (?:an? )?)?{re.escape(label)}\b", lowered))
    if found:
        return found[-1].group(1) is None
    return parse_yes_no(text)


def parse_yes_no(text: str | None) -> bool | None:
    """A yes or no: the first word when it is one (``Yes, because ...``), else the last
    standalone ``yes``/``no`` of the text (a verdict after some chatter), else ``None``.

    Example:
        >>> parse_yes_no("**Yes**"), parse_yes_no("The problem asks for a proof.\\nAnswer: no")
        (True, False)
        >>> parse_yes_no("It is hard to say.") is None
        True
    """
    if not text:
        return None
    words = _words(text)
    if not words:
        return None
    if words[0] in ("yes", "no"):
        return words[0] == "yes"
    verdicts = [w for w in words if w in ("yes", "no")]
    return verdicts[-1] == "yes" if verdicts else None


def parse_judgement(text: str | None, lenient: bool = False) -> bool | None:
    """An answer judge's verdict, as NeMo-Skills' ``is_correct_judgement`` reads it: the text
    after the last case-sensitive ``Judgement:``, stripped, starts with yes or no (any case);
    ``None`` without the marker or with anything else after it (NeMo-Skills: incorrect). So
    ``**Judgement:** Yes`` and ``Judgement: **Yes**`` are no verdict.

    ``lenient``: the marker in any case, markdown around it and around the verdict ignored.

    Example:
        >>> parse_judgement("Reasoning: 1/2 and 0.5 are equal.\\nJudgement: Yes")
        True
        >>> parse_judgement("**Judgement:** no.") is None
        True
        >>> parse_judgement("**Judgement:** no.", lenient=True)
        False
        >>> parse_judgement("Judgement: maybe") is None, parse_judgement("Yes") is None
        (True, True)
    """
    if not text:
        return None
    if not lenient:
        if "Judgement:" not in text:
            return None
        verdict = text.rsplit("Judgement:", 1)[1].strip().lower()
        if verdict.startswith("yes"):
            return True
        return False if verdict.startswith("no") else None
    if "judgement:" not in text.lower():
        return None
    tail = text[text.lower().rfind("judgement:") + len("judgement:") :]
    words = _words(tail)
    if words and words[0] in ("yes", "no"):
        return words[0] == "yes"
    return None


def judged_correct(text: str | None, lenient: bool = False) -> bool:
    """Whether a judgement says the answer is correct (no verdict: incorrect, as NeMo-Skills
    counts it)."""
    return parse_judgement(text, lenient) is True


NOT_FOUND = re.compile(r"answer\s+not\s+found|no\s+answer\s+(?:was\s+)?found", re.IGNORECASE)
_ANSWER_LINE = re.compile(r"^\W*answer[\s*_]*:[\s*_]*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def parse_extracted_answer(text: str | None, lenient: bool = False) -> tuple[str | None, bool]:
    """The final answer a forum discussion gives, as NeMo-Skills'
    ``postprocess_answer_extraction`` reads it: after the first ``Output:`` (up to a second
    one), ``Answer not found`` anywhere means none; otherwise the text between the first
    ``Answer:`` and the next (a ``\\boxed{}`` in it: the last box's content). Returns
    ``(answer, True)``; ``(None, True)`` when the model says there is none; ``(None, False)``
    when the output has no ``Answer:`` (NeMo-Skills: no answer as well).

    ``lenient``: the last ``Answer: ...`` line (any case), ``Answer not found`` only when it
    comes after it, ``$`` and a final period dropped.

    Example:
        >>> parse_extracted_answer("Post 2 computes it.\\nAnswer: \\\\boxed{42}")
        ('42', True)
        >>> parse_extracted_answer("Answer: 3\\nAnswer: 4")
        ('3', True)
        >>> parse_extracted_answer("The posts disagree.\\nAnswer not found.")
        (None, True)
        >>> parse_extracted_answer("I think the thread is about geometry.")
        (None, False)
    """
    if not text:
        return None, False
    if lenient:
        return _lenient_answer(text)
    if "Output:" in text:
        text = text.split("Output:")[1].strip()
    if "Answer not found" in text:
        return None, True
    if "Answer:" not in text:
        return None, False
    answer = text.split("Answer:")[1].strip()
    if "\\boxed{" in answer:
        answer = last_boxed(answer)
    return answer or None, True


def _lenient_answer(text: str) -> tuple[str | None, bool]:
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


def parse_true_false(text: str | None, lenient: bool = False) -> bool | None:
    """A contamination check's verdict, as NeMo-Skills' ``check_contamination`` reads it: the
    output, stripped, is exactly ``True`` (the two problems are the same) or ``False``;
    anything else is ``None`` (NeMo-Skills: not contaminated).

    ``lenient``: ``true``/``false`` as the first word (any case, markdown and a period
    ignored), else the last one in the text.

    Example:
        >>> parse_true_false(" True\\n"), parse_true_false("True.") is None
        (True, True)
        >>> parse_true_false("They differ in the numbers. False.", lenient=True)
        False
    """
    if not text:
        return None
    if not lenient:
        verdict = text.strip()
        return True if verdict == "True" else (False if verdict == "False" else None)
    words = _words(text)
    if words and words[0] in ("true", "false"):
        return words[0] == "true"
    verdicts = [w for w in words if w in ("true", "false")]
    return verdicts[-1] == "true" if verdicts else None


_PREAMBLE = re.compile(
    r"^[\s*_]*(?:new|converted|rewritten|reformulated)?\s*problem[\s*_]*:[\s*_]*",
    re.IGNORECASE,
)


def parse_converted_problem(text: str | None, lenient: bool = False) -> str | None:
    """The answerable problem a proof was rewritten into: the whole output, as NeMo-Skills'
    ``postprocess_proof_conversion`` takes it; ``None`` for an empty one (a request the server
    refused).

    ``lenient``: a leading ``Problem:`` label dropped, and a refusal ("cannot be rewritten")
    read as no problem.

    Example:
        >>> parse_converted_problem("New problem: Find the least n such that n! > 10^6.", True)
        'Find the least n such that n! > 10^6.'
    """
    if not text or not text.strip():
        return None
    if not lenient:
        return text
    problem = _PREAMBLE.sub("", text.strip(), count=1).strip()
    lowered = problem.lower()
    if not problem or lowered.startswith(("cannot", "i cannot", "i can't", "not possible")):
        return None
    return problem

"""Answer extraction and equivalence: what decides ``symbolic_correct``.

``extract_answer`` takes the last brace-matched ``\\boxed{...}``, else (if enabled) the last match
of a regex, as NeMo-Skills' math grader does. ``is_equivalent`` first compares normalised strings
(cheap, and right about cases math-verify and NeMo-Skills get wrong, such as ``016`` vs ``16``),
then asks math-verify with the gold answer first.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from fractions import Fraction

from distillery.grading.numeric import same_value

# Python refuses to convert longer digit strings to int (sys.get_int_max_str_digits)
_MAX_NUMBER_LENGTH = 4000

logger = logging.getLogger(__name__)

DEFAULT_EXTRACT_REGEX = r"The final answer is (.+)$"


@dataclass(frozen=True)
class ExtractionConfig:
    """How to find the answer in a generation (NeMo-Skills' ``extract_answer`` arguments).

    Attributes:
        extract_from_boxed: look for the last ``\\boxed{}``.
        extract_regex: the regex; its first group (or whole match) is the answer.
        use_regex_fallback: NeMo-Skills' ``relaxed``: the boxed answer, else (none, or an
            empty box) the regex. Off, the answer comes from the box alone (or, with
            ``extract_from_boxed`` off, the regex alone): NeMo-Skills' math default.
    """

    extract_from_boxed: bool = True
    extract_regex: str = DEFAULT_EXTRACT_REGEX
    use_regex_fallback: bool = False


# NeMo-Skills' multiple-choice evaluator reads the box, then the regex (``relaxed``)
MULTICHOICE_EXTRACTION = ExtractionConfig(use_regex_fallback=True)


def regex_extraction(extract_regex: str | None, regex_fallback: bool = False) -> ExtractionConfig:
    """The math extraction with ``grading.extract_regex`` and ``grading.regex_fallback`` (what
    the stages that label solutions take on their command line)."""
    if extract_regex is None:
        return ExtractionConfig(use_regex_fallback=regex_fallback)
    return ExtractionConfig(extract_regex=extract_regex, use_regex_fallback=regex_fallback)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}``, read as NeMo-Skills reads it: the last
    ``\\boxed`` must open its brace at once (``\\boxed {x}`` gives ``None``) and close it;
    the content is returned as written (not stripped; an empty box gives ``""``).

    Example:
        >>> last_boxed(r"so \\boxed{\\frac{1}{2}} and then \\boxed{3}")
        '3'
        >>> last_boxed(r"\\boxed{\\frac{1}{2}}")
        '\\\\frac{1}{2}'
        >>> last_boxed(r"\\boxed{2} then \\boxed 3") is None, last_boxed(r"\\boxed{ }")
        (True, ' ')
    """
    start = text.rfind("\\boxed")
    if start < 0 or not text.startswith("\\boxed{", start):
        return None
    brace = start + len("\\boxed")
    depth = 0
    for position in range(brace, len(text)):
        if text[position] == "{":
            depth += 1
        elif text[position] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : position]
    return None


@functools.lru_cache(maxsize=32)
def _compiled(regex: str) -> re.Pattern:
    return re.compile(regex)


def last_regex_match(text: str, regex: str) -> str | None:
    """The last match of ``regex`` in ``text``: its first group, or the whole match."""
    match = None
    for match in _compiled(regex).finditer(text):  # noqa: B007 (the last one is wanted)
        pass
    if match is None:
        return None
    return match.group(1) if match.re.groups else match.group(0)


def extract_answer(text: str | None, config: ExtractionConfig = ExtractionConfig()) -> str | None:
    """The predicted answer in ``text``, or ``None`` if it gives none; as written (NeMo-Skills
    compares raw answers when it counts majority votes).

    Example:
        >>> extract_answer("so \\\\boxed{56}.")
        '56'
        >>> extract_answer("7*8 = 56. The final answer is 56") is None
        True
        >>> relaxed = ExtractionConfig(use_regex_fallback=True)
        >>> extract_answer("7*8 = 56. The final answer is 56", relaxed)
        '56'
    """
    if not text:
        return None
    if config.use_regex_fallback:
        return last_boxed(text) or last_regex_match(text, config.extract_regex)
    if config.extract_from_boxed:
        return last_boxed(text)
    return last_regex_match(text, config.extract_regex)


# control characters are never part of an answer (and make sympy's parser crawl)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
# units or words in \text{} after a number ("17\text{ cm}", "\frac{1}{2}\text{ hours}")
_TRAILING_TEXT = re.compile(r"^(.*?[\d}])\s*(?:\\(?:text|textbf|mathrm|mbox)\{[^{}]*\}\s*)+\.?$")
_ASSIGNMENT = re.compile(r"^[a-zA-Z]\s*=\s*(?!=)")
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def normalize(answer: str) -> str:
    """A canonical string form for cheap comparison (not a parser).

    Example:
        >>> normalize(r"x = \\dfrac{3}{4}")
        '\\\\frac{3}{4}'
        >>> normalize("016.")
        '16'
    """
    text = _CONTROL.sub("", answer).strip()
    if "\\boxed" in text:
        text = last_boxed(text) or text
    text = text.strip("$").strip()
    if text.startswith("\\(") and text.endswith("\\)"):
        text = text[2:-2].strip()
    trailing = _TRAILING_TEXT.match(text)
    if trailing and re.search(r"\d", trailing.group(1)):
        text = trailing.group(1)  # NeMo-Skills drops them too
    text = _TEXT_WRAPPER.sub(r"\1", text)
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = text.replace("\\left", "").replace("\\right", "").replace("\\!", "")
    text = _ASSIGNMENT.sub("", text)
    text = text.rstrip(".").rstrip("\\").strip()
    if text.endswith("\\%"):
        text = text[:-2].strip()
    elif text.endswith("%"):
        text = text[:-1].strip()
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    text = text.replace(" ", "")
    if _NUMBER.match(text):
        text = _canonical_number(text)
    return text


def _canonical_number(text: str) -> str:
    if len(text) > _MAX_NUMBER_LENGTH:
        return text  # Fraction and str() refuse numbers this long (int_max_str_digits)
    value = Fraction(text)
    return str(value.numerator) if value.denominator == 1 else str(float(value))


def is_equivalent(gold: str | None, predicted: str | None, timeout_seconds: int = 10) -> bool:
    """Whether ``predicted`` is mathematically the same answer as ``gold``.

    Plain numbers and fractions are decided exactly without sympy; everything else goes to
    math-verify (``verify(parse(gold), parse(predicted))``, gold first as it is asymmetric),
    except what is too long or too deeply nested for it (:func:`over_budget`): not equivalent.
    In this process, math-verify's own timeouts bound it; :mod:`distillery.grading.pool` adds
    a hard one.

    Example:
        >>> is_equivalent("16", "016")
        True
        >>> is_equivalent("\\\\frac{1}{2}", "0.5")
        True
    """
    verdict = fast_verdict(gold, predicted)
    if verdict is not None:
        return verdict
    gold_n, predicted_n = normalize(str(gold)), normalize(str(predicted))
    if over_budget(gold_n, predicted_n):
        return False
    return symbolic_equal(gold_n, predicted_n, timeout_seconds)


_WORDS = re.compile(r"[a-zA-Z ,]+")


def fast_verdict(gold: str | None, predicted: str | None) -> bool | None:
    """The verdict when it needs no sympy, else ``None``.

    Decided here: a missing answer; equal normal forms; two simple numeric answers (exact
    arithmetic, see :mod:`distillery.grading.numeric`); two plain words or lists of words,
    compared as strings as NeMo-Skills does (so anagrams, which math-verify reads as equal
    products of symbols, differ).
    """
    if gold is None or predicted is None:
        return False
    try:
        return _fast_verdict(str(gold), str(predicted))
    except Exception as err:
        # this runs outside the workers' timeout: a failure leaves the pair to them
        logger.debug("fast path failed on gold=%.80r predicted=%.80r: %s", gold, predicted, err)
        return None


def _fast_verdict(gold: str, predicted: str) -> bool | None:
    gold_n, pred_n = normalize(gold), normalize(predicted)
    if gold_n == pred_n:
        return True
    verdict = same_value(gold_n, pred_n)
    if verdict is not None:
        return verdict
    if _WORDS.fullmatch(gold_n) and _WORDS.fullmatch(pred_n):
        return False
    return None


# Beyond these, sympy is not tried: no benchmark answer is this long or nested this deep, and
# parsing such input can take minutes or exhaust the stack.
MAX_SYMBOLIC_LENGTH = 2_000
MAX_SYMBOLIC_DEPTH = 64


def over_budget(gold: str, predicted: str) -> bool:
    """Whether a pair the fast path left undecided is too long or too deeply nested for sympy
    (it then counts as not equivalent, and as timed out).

    Example:
        >>> over_budget("1", "(" * 100 + "1" + ")" * 100), over_budget("1", "(1)")
        (True, False)
    """
    return any(
        len(text) > MAX_SYMBOLIC_LENGTH or _depth(text) > MAX_SYMBOLIC_DEPTH
        for text in (gold, predicted)
    )


def _depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "({[":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")}]":
            depth = max(0, depth - 1)
    return deepest


def _wrap_latex(text: str) -> str:
    if re.search(r"\$.*\$|\\\(.*\\\)|\\\[.*\\\]|\\boxed\{", text):
        return text
    return f"${text}$"


def symbolic_equal(gold: str, predicted: str, timeout_seconds: int) -> bool:
    from math_verify import parse, verify

    try:
        gold_parsed = parse(_wrap_latex(gold), parsing_timeout=timeout_seconds)
        pred_parsed = parse(_wrap_latex(predicted), parsing_timeout=timeout_seconds)
        if not gold_parsed or not pred_parsed:
            return False
        return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout_seconds))
    except MemoryError:
        raise  # the caller's budget was exceeded: not a verdict
    except Exception as err:  # math-verify raises many types on odd input; a failure is "wrong"
        logger.warning("math-verify failed on gold=%r predicted=%r: %s", gold, predicted, err)
        return False


_LETTER = re.compile(r"\b[A-Z]\b")
# "Answer: X" with optional markdown around "Answer" (NeMo-Skills' last resort, from Artificial
# Analysis' multiple-choice methodology): X one letter, not followed by a letter or digit
_ANSWER_LETTER = re.compile(
    r"(?i)[\*\_]{0,2}Answer[\*\_]{0,2}\s*:[\s\*\_]{0,2}\s*([A-Z])(?![a-zA-Z0-9])"
)
# What grading.letter_extraction: lenient also accepts, and prefers: an option named outright
# anywhere ("**Answer: (D)**", "the answer is (D)", "\boxed{\text{D}}")
_EXPLICIT_LETTER = re.compile(
    r"(?:(?i:answer)[\*\_]{0,2}\s*:[\s\*\_]{0,3}\(?([A-Ja-j])\)?(?![a-zA-Z0-9])"
    r"|(?i:answer)\s+is:?[\s\*\_]{0,3}\(?([A-J])\)?(?![a-zA-Z0-9])"
    r"|\\boxed\{\s*(?:\\text(?:bf)?\{)?\s*\(?([A-J])\)?\s*\}?\s*\})"
)

LETTER_EXTRACTIONS = ("nemo-skills", "lenient")


def extract_letter(
    text: str | None,
    config: ExtractionConfig = MULTICHOICE_EXTRACTION,
    method: str = "nemo-skills",
) -> str | None:
    """A multiple-choice answer, read as NeMo-Skills' multichoice evaluator reads it.

    The extracted answer (the last ``\\boxed{}``, else the ``extract_regex`` match) is the
    letter when it is one character (as written: ``\\boxed{c}`` gives ``c``), else the last
    standalone capital letter in it; only when that gives nothing, the last ``Answer: X``
    (``*`` or ``_`` around "Answer" allowed; X a single letter, upper-cased). So ``Answer: (C)``
    and "the answer is (D)" give no answer, and ``\\boxed{C} ... Answer: D`` gives ``C``.

    ``method="lenient"`` (``grading.letter_extraction: lenient``) first takes the last option
    named outright, parentheses allowed (``Answer: (C)``, "the answer is (D)", a box holding
    only the letter), and only without one reads as above.

    Example:
        >>> extract_letter("The correct option is \\\\boxed{C}.")
        'C'
        >>> extract_letter("**Answer:** b")
        'B'
        >>> extract_letter("Answer: (C)") is None, extract_letter("Answer: (C)", method="lenient")
        (True, 'C')
        >>> extract_letter("\\\\boxed{C}, so... Answer: D")
        'C'
    """
    if not text:
        return None
    if method == "lenient":
        explicit = _EXPLICIT_LETTER.findall(text)
        if explicit:
            return next(letter for letter in explicit[-1] if letter).upper()
    elif method != "nemo-skills":
        raise ValueError(f"letter extraction {method!r}: use one of {LETTER_EXTRACTIONS}")
    letter = None
    answer = extract_answer(text, config)
    if answer is not None:
        if len(answer) == 1:
            letter = answer
        elif answer:
            found = _LETTER.findall(answer)
            letter = found[-1] if found else None
    if letter is None:
        found = _ANSWER_LETTER.findall(text)
        letter = found[-1].upper() if found else None
    return letter

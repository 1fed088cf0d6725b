"""Exact arithmetic on simple LaTeX answers, so most answers are graded without sympy.

Handles what AIME/MATH answers mostly are: integers, fractions, sums, products, integer powers
(``2^{10}``), surds (``3\\sqrt{12}``) and tuples or intervals of those. Anything else returns
``None`` and goes to math-verify. Values with more than ``MAX_DIGITS`` digits are not computed:
their size alone tells they differ from any ordinary answer, which is how the power towers and
long products of powers that hang sympy (Math-Verify issue #65) are graded in microseconds.

It runs in the grading job's own process, outside the workers' timeout, so every step is bounded
and nothing raises: each operation's result is capped at ``MAX_DIGITS`` digits (sums of
fractions at ``MAX_SUM_DIGITS``), nesting at ``MAX_DEPTH`` levels, the input at ``MAX_LENGTH``
characters and ``MAX_TOKENS`` tokens; what the caps stop is left undecided (``None``).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

MAX_DIGITS = 10_000
# Huge values are this far above the cap: sums of ordinary values (at most MAX_DIGITS digits,
# fewer than 10**15 terms) stay below it, so a huge value never equals an ordinary one.
_HUGE = MAX_DIGITS + 16
# sums of fractions: common denominators grow with every term, and each step costs a gcd
MAX_SUM_DIGITS = 2_000
MAX_DEPTH = 64
MAX_LENGTH = 20_000
MAX_TOKENS = 4_000


class Huge:
    """A value too large to compute: only a lower bound of its order of magnitude (log10) is
    known, which is enough to tell it from any ordinary answer."""

    def __init__(self, log10: float):
        self.log10 = log10


def _log10(n: int) -> float:
    return math.log10(abs(n)) if n else 0.0


def _digits(value: Fraction) -> float:
    """log10 of the larger of numerator and denominator: about how many digits it has."""
    return max(_log10(value.numerator), _log10(value.denominator))


def _magnitude(value: Fraction) -> float:
    """log10 of ``|value|``, for a nonzero value."""
    return _log10(value.numerator) - _log10(value.denominator)


def _too_large(size: float, magnitude: float) -> Huge:
    """A result of ``size`` digits (over the cap): huge if its magnitude is, else undecided."""
    if magnitude > _HUGE:
        return Huge(magnitude)
    raise ValueError(f"a value of about {size:.0f} digits is not computed exactly")


def _number(token: str) -> Fraction | Huge:
    integral, _, fractional = token.partition(".")
    if len(token) > MAX_DIGITS:
        return _too_large(len(token), len(integral.lstrip("0")) - 1)
    return Fraction(_int(integral + fractional), 10 ** len(fractional))


def _int(digits: str) -> int:
    """``int(digits)`` past Python's limit on converting long strings (4,300 digits), in pieces
    under it (at most MAX_DIGITS digits get here)."""
    value = 0
    for start in range(0, len(digits), 4000):
        piece = digits[start : start + 4000]
        value = value * 10 ** len(piece) + int(piece)
    return value


_TOKEN = re.compile(r"\s*(\\frac|\\dfrac|\\tfrac|\\cdot|\\times|\\div|\d+\.\d+|\d+|[-+*/^(){}])")


def _tokenize(text: str) -> list[str] | None:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            return None
        tokens.append(match.group(1))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.position = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(f"expected {expected!r}, got {token!r}")
        self.position += 1
        return token

    def expression(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ValueError("nested too deeply")
        value = self.term()
        while self.peek() in ("+", "-"):
            sign = self.take()
            right = self.term()
            value = _combine(value, right, sign)
        self.depth -= 1
        return value

    def term(self):
        value = self.unary()
        while self.peek() in ("*", "/", "\\cdot", "\\times", "\\div"):
            operator = self.take()
            right = self.unary()
            value = _combine(value, right, "/" if operator in ("/", "\\div") else "*")
        return value

    def unary(self):
        negative = False
        while self.peek() in ("-", "+"):  # a loop: thousands of signs must not recurse
            negative ^= self.take() == "-"
        value = self.power()
        return -value if negative and not isinstance(value, Huge) else value

    def power(self):
        base = self.atom()
        if self.peek() == "^":
            self.take()
            exponent = self.unary() if self.peek() != "{" else self.atom()
            return _power(base, exponent)
        return base

    def atom(self):
        token = self.take()
        if token in ("\\frac", "\\dfrac", "\\tfrac"):
            self.take("{")
            numerator = self.expression()
            self.take("}")
            self.take("{")
            denominator = self.expression()
            self.take("}")
            return _combine(numerator, denominator, "/")
        if token in ("(", "{"):
            value = self.expression()
            self.take(")" if token == "(" else "}")
            return value
        if re.fullmatch(r"\d+(\.\d+)?", token):
            return _number(token)
        raise ValueError(f"unexpected {token!r}")


def _combine(left, right, operator: str):
    if isinstance(left, Huge) or isinstance(right, Huge):
        return _combine_huge(left, right, operator)
    if operator == "/" and right == 0:
        raise ValueError("division by zero")
    if operator in "+-" and left.denominator == 1 and right.denominator == 1:
        return left + right if operator == "+" else left - right  # one digit longer at most
    if left == 0 or right == 0:
        return _apply(left, right, operator)
    # numerators and denominators multiply (a sum's too, by its common denominator): the
    # result's size is known before computing it
    size = _digits(left) + _digits(right)
    if operator in "+-" and size > MAX_SUM_DIGITS:
        raise ValueError(f"a sum of about {size:.0f} digits is not computed exactly")
    if size > MAX_DIGITS:
        if operator != "*":
            raise ValueError(f"a value of about {size:.0f} digits is not computed exactly")
        return _too_large(size, _magnitude(left) + _magnitude(right))
    return _apply(left, right, operator)


def _apply(left: Fraction, right: Fraction, operator: str) -> Fraction:
    if operator == "+":
        return left + right
    if operator == "-":
        return left - right
    return left * right if operator == "*" else left / right


def _combine_huge(left, right, operator: str) -> Huge:
    """Where a huge value dominates the result: plus or minus an ordinary value, times a value
    of magnitude at least 1, or times another huge value. Whatever could cancel (a difference
    of two huge values, a quotient) is undecided."""
    if isinstance(left, Huge) and isinstance(right, Huge):
        if operator == "*":
            return Huge(left.log10 + right.log10)
        raise ValueError("sum, difference or quotient of huge values")
    huge, other = (left, right) if isinstance(left, Huge) else (right, left)
    if operator in "+-" or (operator == "*" and abs(other) >= 1):
        return huge
    raise ValueError("product or quotient of a huge value")


def _power(base, exponent):
    if isinstance(exponent, Huge):
        if isinstance(base, Fraction) and abs(base) > 1:
            return Huge(math.inf)
        raise ValueError("huge exponent")
    if isinstance(base, Huge):
        if exponent.denominator == 1 and exponent >= 1:
            return Huge(base.log10 * float(exponent))
        raise ValueError("power of a huge value")
    if exponent.denominator != 1:
        raise ValueError("power not handled exactly")
    if base == 0 or abs(base) == 1:
        if base == 0 and exponent < 0:
            raise ValueError("division by zero")
        if base == -1:
            return Fraction(-1 if exponent.numerator % 2 else 1)
        return abs(base) if exponent else Fraction(1)
    size = float(abs(exponent)) * _digits(base)
    if size > MAX_DIGITS:
        return _too_large(size, float(exponent) * _magnitude(base))
    return base ** int(exponent)


def evaluate(text: str) -> Fraction | Huge | None:
    """The exact value of a simple numeric LaTeX expression, or ``None`` if it is not one.

    Example:
        >>> evaluate("\\\\frac{3}{4} + 2^{3}")
        Fraction(35, 4)
        >>> isinstance(evaluate("9^{9^{9^{9}}}"), Huge)
        True
    """
    if len(text) > MAX_LENGTH:
        return None
    tokens = _tokenize(text)
    if not tokens or len(tokens) > MAX_TOKENS:
        return None
    parser = _Parser(tokens)
    try:
        value = parser.expression()
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if parser.peek() is None else None


_SURD = re.compile(r"^(\d*)\\sqrt\{(\d+)\}$")


def surd(text: str) -> tuple[int, int] | None:
    """``c\\sqrt{n}`` as ``(coefficient, square-free radicand)``.

    Example:
        >>> surd("\\\\sqrt{12}"), surd("2\\\\sqrt{3}")
        ((2, 3), (2, 3))
    """
    match = _SURD.match(text)
    if not match:
        return None
    if len(match.group(1)) > 100 or len(match.group(2)) > 10:
        return None  # trial division stays under 10**5 steps
    coefficient = int(match.group(1) or 1)
    radicand = int(match.group(2))
    factor = 2
    while factor * factor <= radicand:
        while radicand % (factor * factor) == 0:
            radicand //= factor * factor
            coefficient *= factor
        factor += 1
    return coefficient, radicand


def same_value(a: str, b: str) -> bool | None:
    """Whether two simple answers are equal, decided exactly; ``None`` when not both simple.

    Decimals compare exactly only when equal: math-verify rounds them, so unequal decimals are
    left to it. Tuples and intervals compare element by element with their brackets.
    """
    if len(a) > MAX_LENGTH or len(b) > MAX_LENGTH:
        return None
    surd_a, surd_b = surd(a), surd(b)
    if surd_a and surd_b:
        return surd_a == surd_b
    value_a, value_b = evaluate(a), evaluate(b)
    if value_a is not None and value_b is not None:
        if isinstance(value_a, Huge) or isinstance(value_b, Huge):
            if isinstance(value_a, Huge) and isinstance(value_b, Huge):
                return None
            return False
        if value_a == value_b:
            return True
        return None if "." in a or "." in b else False
    return _same_sequence(a, b)


_SEQUENCE = re.compile(r"^([\[(])(.*)([\])])$")


def _same_sequence(a: str, b: str) -> bool | None:
    match_a, match_b = _SEQUENCE.match(a), _SEQUENCE.match(b)
    if not (match_a and match_b):
        return None
    items_a, items_b = match_a.group(2).split(","), match_b.group(2).split(",")
    if len(items_a) < 2 or len(items_b) < 2:
        return None
    verdicts = []
    if len(items_a) == len(items_b):
        for x, y in zip(items_a, items_b, strict=True):
            x_value, y_value = evaluate(x), evaluate(y)
            if not isinstance(x_value, Fraction) or not isinstance(y_value, Fraction):
                return None
            verdicts.append(x_value == y_value)
    else:
        if not all(isinstance(evaluate(x), Fraction) for x in items_a + items_b):
            return None
        return False
    same_brackets = (match_a.group(1), match_a.group(3)) == (match_b.group(1), match_b.group(3))
    return all(verdicts) and same_brackets

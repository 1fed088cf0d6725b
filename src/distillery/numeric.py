"""Exact arithmetic on simple LaTeX answers, so most answers are graded without sympy.

Handles what AIME/MATH answers mostly are: integers, fractions, sums, products, integer powers
(``2^{10}``), surds (``3\\sqrt{12}``) and tuples or intervals of those. Anything else returns
``None`` and goes to math-verify. Powers whose result would have more than ``MAX_DIGITS`` digits
are not computed: their size alone tells they differ from any ordinary answer, which is how the
power towers that hang sympy (Math-Verify issue #65) are graded in microseconds.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

MAX_DIGITS = 10_000


class Huge:
    """A value too large to compute; only its order of magnitude (log10) is known."""

    def __init__(self, log10: float):
        self.log10 = log10


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

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(f"expected {expected!r}, got {token!r}")
        self.position += 1
        return token

    def expression(self):
        value = self.term()
        while self.peek() in ("+", "-"):
            sign = self.take()
            right = self.term()
            value = _combine(value, right, sign)
        return value

    def term(self):
        value = self.unary()
        while self.peek() in ("*", "/", "\\cdot", "\\times", "\\div"):
            operator = self.take()
            right = self.unary()
            value = _combine(value, right, "/" if operator in ("/", "\\div") else "*")
        return value

    def unary(self):
        if self.peek() == "-":
            self.take()
            value = self.unary()
            return Huge(value.log10) if isinstance(value, Huge) else -value
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

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
            return Fraction(token)
        raise ValueError(f"unexpected {token!r}")


def _combine(left, right, operator: str):
    if isinstance(left, Huge) or isinstance(right, Huge):
        if operator in "+-":
            big = max((v for v in (left, right) if isinstance(v, Huge)), key=lambda v: v.log10)
            return Huge(big.log10)
        raise ValueError("product or quotient of a huge value")
    if operator == "+":
        return left + right
    if operator == "-":
        return left - right
    if operator == "*":
        return left * right
    if right == 0:
        raise ValueError("division by zero")
    return left / right


def _power(base, exponent):
    if isinstance(exponent, Huge):
        if isinstance(base, Fraction) and abs(base) > 1:
            return Huge(math.inf)
        raise ValueError("huge exponent")
    if isinstance(base, Huge) or exponent.denominator != 1:
        raise ValueError("power not handled exactly")
    if base == 0 or abs(base) == 1:
        if base == 0 and exponent < 0:
            raise ValueError("division by zero")
        return base**exponent
    size = abs(int(exponent)) * max(
        abs(math.log10(abs(base.numerator))), abs(math.log10(base.denominator)), 1e-9
    )
    if size > MAX_DIGITS:
        if exponent < 0:
            raise ValueError("vanishingly small power")
        return Huge(size)
    return base ** int(exponent)


def evaluate(text: str) -> Fraction | Huge | None:
    """The exact value of a simple numeric LaTeX expression, or ``None`` if it is not one.

    Example:
        >>> evaluate("\\\\frac{3}{4} + 2^{3}")
        Fraction(35, 4)
        >>> isinstance(evaluate("9^{9^{9^{9}}}"), Huge)
        True
    """
    tokens = _tokenize(text)
    if not tokens:
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
    coefficient = int(match.group(1) or 1)
    radicand = int(match.group(2))
    if radicand > 10**12:
        return None
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

from fractions import Fraction

import pytest

from distillery.grading.numeric import Huge, evaluate, same_value, surd


@pytest.mark.parametrize(
    "text,value",
    [
        ("12", Fraction(12)),
        ("-3", Fraction(-3)),
        ("\\frac{7}{10}", Fraction(7, 10)),
        ("\\dfrac{-1}{4}", Fraction(-1, 4)),
        ("7/10", Fraction(7, 10)),
        ("2^{10}", Fraction(1024)),
        ("2^-1", Fraction(1, 2)),
        ("3 \\cdot 4 + 1", Fraction(13)),
        ("(1+2)\\times 3", Fraction(9)),
        ("0.25", Fraction(1, 4)),
        ("\\frac{1}{2}+\\frac{1}{3}", Fraction(5, 6)),
    ],
)
def test_evaluate(text, value):
    assert evaluate(text) == value


@pytest.mark.parametrize("text", ["x+1", "\\sqrt{2}", "1/0", "2^{1/2}", "", "1 2", "\\pi"])
def test_not_simple(text):
    assert evaluate(text) is None


def test_power_towers_are_huge_not_computed():
    assert isinstance(evaluate("9^{9^{9^{9}}}"), Huge)
    assert isinstance(evaluate("2^{100000}"), Huge)
    assert same_value("1", "9^{9^{9^{9}}}") is False
    assert same_value("9^{9^{9^{9}}}", "9^{9^{9^{9}}}+1") is None


def test_surds():
    assert surd("\\sqrt{117}") == (3, 13)
    assert same_value("3\\sqrt{13}", "\\sqrt{117}") is True
    assert same_value("2\\sqrt{3}", "3\\sqrt{2}") is False


@pytest.mark.parametrize(
    "a,b,verdict",
    [
        ("(1,2)", "(1,2)", True),
        ("(1,2)", "(2,1)", False),
        ("[1,\\frac{1}{2})", "[1,0.5)", True),
        ("[1,3)", "(1,3]", False),
        ("(1,2,3)", "(1,2)", False),
        ("(x,2)", "(x,2)", None),
    ],
)
def test_sequences(a, b, verdict):
    assert same_value(a, b) is verdict


def test_unequal_decimals_are_left_to_math_verify():
    assert same_value("\\frac{1}{3}", "0.3333333") is None
    assert same_value("\\frac{1}{4}", "0.25") is True

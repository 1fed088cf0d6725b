import re

import sympy

from distillery.data.demo import (
    make_benchmark,
    make_forum_posts,
    make_problems,
    split_of,
)


def test_deterministic_by_seed():
    assert make_forum_posts(20, seed=3) == make_forum_posts(20, seed=3)
    assert make_forum_posts(20, seed=3) != make_forum_posts(20, seed=4)
    assert make_benchmark(10, seed=1) == make_benchmark(10, seed=1)


def test_benchmark_is_held_out_from_forum_posts():
    benchmark = {row["problem"] for row in make_benchmark(300, seed=1)}
    posts = " ".join(p["forum_post"] for p in make_forum_posts(600, seed=0))
    assert all(split_of(problem) == "test" for problem in benchmark)
    assert not [problem for problem in benchmark if problem in posts]


def test_problems_are_distinct():
    problems = [p.problem for p in make_problems(500, seed=2, split="train")]
    assert len(set(problems)) == len(problems)


def _recompute(problem: str) -> sympy.Expr:
    """Solve the problem text independently of the generator."""
    numbers = [int(n) for n in re.findall(r"\d+", problem)]
    if problem.startswith("Solve for x"):
        a, b, c = numbers
        return sympy.Rational(c - b, a)
    if "plus" in problem:
        a, b, c = numbers
        return sympy.Integer(a + b * c)
    if "% of" in problem:
        return sympy.Rational(numbers[0] * numbers[1], 100)
    if problem.startswith("What is 1/"):
        return sympy.Rational(1, numbers[1]) + sympy.Rational(1, numbers[3])
    if "gets" in problem:
        return sympy.Integer(numbers[0] + numbers[1])
    if "gave away" in problem:
        return sympy.Integer(numbers[0] - numbers[1])
    if "box holds" in problem:
        return sympy.Integer(numbers[0] * numbers[1])
    if "shared equally" in problem:
        return sympy.Rational(numbers[0], numbers[1])
    if "km every hour" in problem:
        return sympy.Integer(numbers[0] * numbers[1])
    raise AssertionError(f"unknown family: {problem}")


def test_answers_are_right():
    for problem in make_problems(400, seed=5, split="train"):
        expected = sympy.sympify(
            problem.expected_answer.replace("\\frac{", "(").replace("}{", ")/(").replace("}", ")")
        )
        assert expected == _recompute(problem.problem), problem


def test_post_fields_and_shares():
    posts = make_forum_posts(400, seed=0, unlabeled_share=0.5, chatter_share=0.2)
    assert all(
        set(p) == {"id", "forum_post", "forum_discussions", "expected_answer"} for p in posts
    )
    chatter = sum("Post 2" not in p["forum_discussions"] for p in posts)
    unlabeled = sum(p["expected_answer"] is None for p in posts) - chatter
    assert 40 < chatter < 120
    assert 110 < unlabeled < 210

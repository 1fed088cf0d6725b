"""Generated forum posts and a benchmark with known answers, so the whole pipeline runs offline.

Problems are short arithmetic and algebra word problems. Each answer is computed with sympy from
the same numbers that fill the text, so it is right by construction. The space of problems is
split in two by a hash of the problem text: forum posts only draw "train" problems and the demo
benchmark only "test" ones, so the benchmark is held out from the training data whatever seeds and
sizes are configured (both generators assert it).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sympy

NAMES = ["Tom", "Sara", "Ali", "Mia", "Ken", "Lena", "Omar", "Zoe", "Ivan", "Nina"]
ITEMS = ["apples", "pens", "stickers", "marbles", "books", "coins", "cards", "shells"]

TEST_SHARE = 0.3  # share of the problem space reserved for the benchmark


@dataclass(frozen=True)
class DemoProblem:
    """A word problem and its answer as a LaTeX-free string (``"12"``, ``"\\frac{5}{6}"``)."""

    problem: str
    expected_answer: str
    family: str


def _answer(value: sympy.Expr) -> str:
    value = sympy.nsimplify(value)
    if value.is_Integer:
        return str(int(value))
    return sympy.latex(value)


def _add(rng: random.Random) -> DemoProblem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    text = f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?"
    return DemoProblem(text, _answer(sympy.Integer(a) + b), "add")


def _subtract(rng: random.Random) -> DemoProblem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a = rng.randint(10, 60)
    b = rng.randint(1, a - 1)
    text = f"{name} had {a} {item} and gave away {b}. How many {item} does {name} have left?"
    return DemoProblem(text, _answer(sympy.Integer(a) - b), "subtract")


def _multiply(rng: random.Random) -> DemoProblem:
    item = rng.choice(ITEMS)
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    text = f"A box holds {a} {item}. How many {item} are in {b} boxes?"
    return DemoProblem(text, _answer(sympy.Integer(a) * b), "multiply")


def _divide(rng: random.Random) -> DemoProblem:
    item = rng.choice(ITEMS)
    each, friends = rng.randint(2, 12), rng.randint(2, 9)
    text = (
        f"{each * friends} {item} are shared equally among {friends} friends. "
        f"How many {item} does each friend get?"
    )
    return DemoProblem(text, _answer(sympy.Rational(each * friends, friends)), "divide")


def _linear(rng: random.Random) -> DemoProblem:
    x = sympy.Symbol("x")
    a, sol, b = rng.randint(2, 9), rng.randint(1, 15), rng.randint(1, 30)
    c = a * sol + b
    (root,) = sympy.solve(sympy.Eq(a * x + b, c), x)
    return DemoProblem(f"Solve for x: {a}x + {b} = {c}.", _answer(root), "linear")


def _order_of_operations(rng: random.Random) -> DemoProblem:
    a, b, c = rng.randint(1, 20), rng.randint(2, 9), rng.randint(2, 9)
    value = sympy.sympify(f"{a} + {b} * {c}")
    return DemoProblem(f"What is {a} plus {b} times {c}?", _answer(value), "order_of_operations")


def _percent(rng: random.Random) -> DemoProblem:
    pct = rng.choice([10, 20, 25, 50, 75])
    whole = rng.choice([20, 40, 60, 80, 100, 120, 200])
    value = sympy.Rational(pct, 100) * whole
    return DemoProblem(f"What is {pct}% of {whole}?", _answer(value), "percent")


def _distance(rng: random.Random) -> DemoProblem:
    speed, hours = rng.choice([30, 40, 50, 60, 70, 80]), rng.randint(2, 6)
    text = f"A car travels {speed} km every hour. How far does it travel in {hours} hours, in km?"
    return DemoProblem(text, _answer(sympy.Integer(speed) * hours), "distance")


def _fraction_sum(rng: random.Random) -> DemoProblem:
    a, b = rng.sample(range(2, 10), 2)
    value = sympy.Rational(1, a) + sympy.Rational(1, b)
    text = f"What is 1/{a} + 1/{b}? Give the answer as a fraction in lowest terms."
    return DemoProblem(text, _answer(value), "fraction_sum")


FAMILIES: dict[str, Callable[[random.Random], DemoProblem]] = {
    "add": _add,
    "subtract": _subtract,
    "multiply": _multiply,
    "divide": _divide,
    "linear": _linear,
    "order_of_operations": _order_of_operations,
    "percent": _percent,
    "distance": _distance,
    "fraction_sum": _fraction_sum,
}


def split_of(problem: str) -> str:
    """``"test"`` for the benchmark's share of the problem space, ``"train"`` otherwise."""
    digest = hashlib.sha256(problem.encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < TEST_SHARE else "train"


def iter_problems(seed: int, split: str) -> Iterator[DemoProblem]:
    """Endless stream of distinct problems of one split, deterministic in ``seed``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    rng = random.Random(seed)
    families = list(FAMILIES.values())
    seen: set[str] = set()
    misses = 0
    while True:
        candidate = rng.choice(families)(rng)
        if candidate.problem in seen or split_of(candidate.problem) != split:
            misses += 1
            if misses > 100_000:
                raise RuntimeError("the demo problem space is exhausted; ask for fewer problems")
            continue
        misses = 0
        seen.add(candidate.problem)
        yield candidate


def make_problems(count: int, seed: int, split: str) -> list[DemoProblem]:
    """``count`` distinct problems of ``split``."""
    stream = iter_problems(seed, split)
    problems = [next(stream) for _ in range(count)]
    assert all(split_of(p.problem) == split for p in problems)
    return problems


INTROS = [
    "Hi all, I'm stuck on this one from my homework:",
    "Quick question from class today.",
    "My teacher gave us this and I can't get it to work:",
    "Found this in an old practice sheet.",
    "This has been bugging me all week.",
    "Can someone check my reasoning on this?",
]
OUTROS = ["Any hints?", "Thanks in advance!", "Is there a trick?", "", "Please explain."]
REPLIES = [
    "Write down what you know first, then set up one equation.",
    "Try a smaller example and look for the pattern.",
    "Read the question again: what exactly is being asked?",
]
CHATTER = [
    "Does anyone know if the olympiad registration deadline moved?",
    "Can anyone recommend a good book on geometry for beginners?",
    "Nice solution in the previous thread, thanks for sharing.",
    "Is the forum going to have a problem-solving marathon this summer?",
]


def make_forum_posts(
    num_posts: int, seed: int, unlabeled_share: float = 0.25, chatter_share: float = 0.1
) -> list[dict]:
    """Forum-post-like records in the raw-data contract.

    Each record has ``forum_post`` and ``forum_discussions`` like the OpenMathReasoning raw data,
    plus ``id`` and ``expected_answer``. Posts that ask no problem (``chatter_share``) and posts
    whose answer is withheld (``unlabeled_share``, answer ``None``) exercise the extraction's
    "No problems identified" path and the majority-vote labelling.
    """
    rng = random.Random(seed)
    stream = iter_problems(seed, "train")
    posts = []
    for index in range(num_posts):
        if rng.random() < chatter_share:
            post = rng.choice(CHATTER)
            discussion = f"Post 1:\n{rng.choice(REPLIES)}"
            answer = None
        else:
            problem = next(stream)
            assert split_of(problem.problem) == "train"
            parts = (rng.choice(INTROS), problem.problem, rng.choice(OUTROS))
            post = " ".join(part for part in parts if part)
            discussion = (
                f"Post 1:\n{rng.choice(REPLIES)}\n\nPost 2:\nI got {problem.expected_answer}."
            )
            answer = None if rng.random() < unlabeled_share else problem.expected_answer
        posts.append(
            {
                "id": f"demo-post-{index:05d}",
                "forum_post": post,
                "forum_discussions": discussion,
                "expected_answer": answer,
            }
        )
    return posts


def make_benchmark(size: int, seed: int) -> list[dict]:
    """Benchmark rows (``id``, ``problem``, ``expected_answer``) drawn from the held-out split."""
    return [
        {"id": f"demo-{i}", "problem": p.problem, "expected_answer": p.expected_answer}
        for i, p in enumerate(make_problems(size, seed, "test"))
    ]

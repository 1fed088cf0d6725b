"""check_contamination: the benchmark problems nearest to each problem are retrieved, the model
asked whether each pair is the same problem, and the contaminated problems dropped
(NeMo-Skills: the nearest by embedding, always asked; an identical text is contaminated
without asking)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from distillery.jsonl import read_jsonl
from distillery.processing.base import (
    REF,
    Answers,
    Outcome,
    ProcessingStep,
    StepFiles,
    lenient,
    request,
)
from distillery.processing.parsers import parse_true_false
from distillery.prompts import PromptConfig, load_prompt
from distillery.settings.base import conflict
from distillery.settings.generation import Inference
from distillery.settings.steps import ParsedStep

# NeMo-Skills' OpenMathReasoning recipe checks its problems against these benchmarks
# (recipes/openmathreasoning/configs/problem_sdg/qwen-instruct.yaml, decontamination_datasets)
DECONTAMINATION_BENCHMARKS = (
    "math", "aime24", "aime25", "amc23", "college_math", "gaokao2023en", "gsm8k",
    "minerva_math", "olympiadbench", "omni-math",
)  # fmt: skip


class ContaminationCheck(ParsedStep):
    """retrieve the benchmark problems nearest to each problem, ask the model whether each pair
    is the same problem, drop the contaminated (NeMo-Skills: the nearest by embedding, always
    asked; an identical text is contaminated without asking)"""

    prompt: str = Field("prompts/check-contamination.yaml", description="prompt config file")
    benchmarks: list[str] = Field(
        list(DECONTAMINATION_BENCHMARKS),
        description="benchmarks (definitions, groups or keys of `benchmarks`) to check against; "
        "default NeMo-Skills' recipe's ten",
    )
    retrieval: Literal["embedding", "ngram"] = Field(
        "embedding",
        description="how candidates are found: embedding = the top_k nearest benchmark problems "
        "by cosine of embedding_model's mean-pooled embeddings, each asked about (NeMo-Skills); "
        "ngram (deviation) = only benchmark problems sharing a word n-gram, most shared first",
    )
    embedding_model: str | None = Field(
        None,
        description="the encoder for retrieval: embedding, a key of `models` or a directory "
        "(NeMo-Skills uses sentence-transformers/multi-qa-MiniLM-L6-cos-v1); with retrieval: "
        "ngram, optional (its nearest problem is a candidate too)",
    )
    ngram: int = Field(6, ge=1, description="retrieval: ngram: words per n-gram a candidate shares")
    top_k: int = Field(1, ge=1, description="candidates checked per problem, nearest first")
    inference: Inference = Inference(temperature=0.0, max_tokens=16)

    @model_validator(mode="after")
    def _retrieval_needs_an_encoder(self) -> ContaminationCheck:
        if self.retrieval == "embedding" and self.embedding_model is None:
            raise conflict(
                "embedding_model",
                "retrieval: embedding needs an encoder: add one under `models` (NeMo-Skills "
                "uses sentence-transformers/multi-qa-MiniLM-L6-cos-v1, source: hf) and name it "
                "here, or set retrieval: ngram",
            )
        return self


def same_problem(problem: str, candidate: str) -> bool:
    """Identical apart from case and surrounding whitespace: contaminated without asking a
    model (NeMo-Skills' prefilled verdict)."""
    return problem.strip().lower() == candidate.strip().lower()


def candidates(
    problems: list[str], references: list[tuple[str, str, str]], block: ContaminationCheck
) -> list[list[int]]:
    """The reference indices retrieved for each problem, nearest first."""
    from distillery.sft_data.contamination import NearestIndex, nearest_by_embedding

    if block.retrieval == "embedding":
        return nearest_by_embedding(problems, references, block.embedding_model, block.top_k)
    index = NearestIndex(references, block.ngram)
    found = [[r for r, _ in index.nearest(p, block.top_k)] for p in problems]
    if block.embedding_model:
        nearest = nearest_by_embedding(problems, references, block.embedding_model, 1)
        for mine, extra in zip(found, nearest, strict=True):
            mine += [r for r in extra if r not in mine]
    return found


def pair_requests(
    rows: list[dict],
    references: list[tuple[str, str, str]],
    prompt: PromptConfig,
    retrieved: list[list[int]],
) -> list[dict]:
    """One request per (problem, candidate): ``retrieved[i]`` are the reference indices for
    row i, nearest first. A candidate identical to the problem is decided without the model
    (``_verdict: true``). The prompt gets ``{problem}`` and ``{benchmark_problem}``, also as
    NeMo-Skills' ``{problem1}`` and ``{problem2}``."""
    requests = []
    for position, row in enumerate(rows):
        for rank, reference in enumerate(retrieved[position]):
            text, benchmark, benchmark_id = references[reference]
            ref = f"{position}:{rank}"
            extra = {
                "benchmark": benchmark,
                "benchmark_id": benchmark_id,
                "benchmark_problem": text,
            }
            if same_problem(row["problem"], text):
                requests.append({REF: ref, **extra, "_verdict": True})
            else:
                pair = {"problem": row["problem"], "benchmark_problem": text}
                pair.update(problem1=pair["problem"], problem2=text)
                requests.append(request(ref, prompt, pair, f"problem {position + 1}", **extra))
    return requests


def select(files: StepFiles, block: ContaminationCheck) -> list[dict]:
    from distillery.sft_data.contamination import load_benchmarks

    rows = read_jsonl(files.inputs[0], allow_empty=True)
    references = load_benchmarks(files.benchmarks)
    retrieved = candidates([row["problem"] for row in rows], references, block)
    return pair_requests(rows, references, load_prompt(block.prompt), retrieved)


def apply(files: StepFiles, block: ContaminationCheck, answers: Answers) -> Outcome:
    """Drops each problem the model (or an identical text) found to be a benchmark problem;
    ``verdicts``: the verdict of every checked pair."""
    where = files.inputs[0]
    rows = read_jsonl(where, allow_empty=True)
    generations = answers.by_ref
    requests = sorted(
        answers.generated + answers.prefilled,
        key=lambda r: tuple(int(p) for p in r[REF].split(":")),
    )
    out = Outcome(verdicts=[])
    contaminated: dict[int, dict] = {}
    for item in requests:
        position = int(item[REF].split(":")[0])
        if "_verdict" in item:
            verdict, text = item["_verdict"], None
        else:
            text = generations.get(item[REF], {}).get("generation")
            verdict = parse_true_false(text, lenient(block))
            if verdict is None:
                out.unparsed(f"{where}:{position + 1} vs {item['benchmark']}", text)
        out.verdicts.append(
            {
                "problem": rows[position]["problem"],
                "benchmark": item["benchmark"],
                "benchmark_id": item["benchmark_id"],
                "benchmark_problem": item.get("benchmark_problem"),
                "contaminated": verdict,
                "check_contamination_gen": text,
            }
        )
        out.counts["pairs"] += 1
        if verdict:
            contaminated.setdefault(position, item)
    for position, row in enumerate(rows):
        if position in contaminated:
            match = contaminated[position]
            out.dropped.append(
                {**row, "contaminated_by": f"{match['benchmark']}/{match['benchmark_id']}"}
            )
        else:
            out.kept.append(row)
    out.counts["contaminated"] = len(contaminated)
    return out


STEP = ProcessingStep("check_contamination", ContaminationCheck, select, apply, position=40)

"""Contamination check: does a training problem overlap a benchmark problem?

The n-gram pass (13 words by default, as in the GPT-3 and Llama reports) flags a problem that
shares any word n-gram with a benchmark problem; problems shorter than n words are compared whole.
The optional embedding pass flags pairs whose embeddings have cosine similarity above a
threshold (NeMo-Skills' `retrieve_similar`, without the LLM judge; the LLM step in
:mod:`distillery.processing.steps.check_contamination` retrieves with :func:`nearest_by_embedding`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from distillery.errors import DistilleryError
from distillery.jsonl import iter_jsonl

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Match:
    benchmark: str
    benchmark_id: str
    overlap: str


class NGramIndex:
    """Word n-grams of benchmark problems, for membership tests of training problems."""

    def __init__(self, n: int = 13):
        self.n = n
        self._grams: dict[int, Match] = {}

    def add(self, text: str, benchmark: str, benchmark_id: str) -> None:
        tokens = words(text)
        for gram in self._grams_of(tokens):
            self._grams.setdefault(hash(gram), Match(benchmark, benchmark_id, " ".join(gram)))

    def _grams_of(self, tokens: list[str]) -> Iterable[tuple[str, ...]]:
        return _grams(tokens, self.n)

    def match(self, text: str) -> Match | None:
        """The first benchmark problem sharing an n-gram with ``text``, or ``None``."""
        for gram in self._grams_of(words(text)):
            found = self._grams.get(hash(gram))
            if found is not None and found.overlap == " ".join(gram):
                return found
        return None

    def __len__(self) -> int:
        return len(self._grams)


class Encoder:
    """A Hugging Face encoder directory, pooled the way sentence-transformers pools it: the
    directory's ``1_Pooling/config.json`` says mean or CLS pooling (mean without one), its
    ``sentence_bert_config.json`` the maximum length (512 without one); embeddings are
    normalised, so a dot product is the cosine."""

    def __init__(self, model_path: str, batch_size: int = 64):
        import json
        from pathlib import Path

        from transformers import AutoModel, AutoTokenizer

        from distillery.errors import DistilleryError

        directory = Path(model_path)
        if not directory.is_dir():
            raise DistilleryError(
                f"{model_path}: encoder directory does not exist; build it first (a key of "
                "`models`) or fix embedding_model"
            )
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModel.from_pretrained(directory).eval()
        pooling = directory / "1_Pooling" / "config.json"
        self.cls = pooling.is_file() and json.loads(pooling.read_text()).get(
            "pooling_mode_cls_token", False
        )
        settings = directory / "sentence_bert_config.json"
        self.max_length = (
            json.loads(settings.read_text()).get("max_seq_length", 512)
            if settings.is_file()
            else 512
        )
        self.batch_size = batch_size

    def embed(self, texts: list[str]):
        import torch

        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[start : start + self.batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            with torch.inference_mode():
                hidden = self.model(**batch).last_hidden_state
            if self.cls:
                pooled = hidden[:, 0]
            else:
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(pooled.float(), dim=-1))
        return torch.cat(out)


def nearest_by_embedding(
    problems: list[str], references: list[tuple[str, str, str]], model_path: str, top_k: int
) -> list[list[int]]:
    """For each problem, the indices of its ``top_k`` nearest ``references`` (``(text,
    benchmark, id)``) by cosine of their embeddings, nearest first (NeMo-Skills'
    ``retrieve_similar``)."""
    import torch

    if not problems:
        return []
    if not references:
        return [[] for _ in problems]
    encoder = Encoder(model_path)
    reference_vectors = encoder.embed([text for text, _, _ in references])
    k = min(top_k, len(references))
    found: list[list[int]] = []
    for start in range(0, len(problems), 4096):
        vectors = encoder.embed(problems[start : start + 4096])
        found += torch.topk(vectors @ reference_vectors.T, k=k, dim=1).indices.tolist()
    return found


def embedding_matches(
    problems: list[str],
    references: list[tuple[str, str, str]],
    model_path: str,
    threshold: float,
) -> dict[int, tuple[Match, float]]:
    """``{index in problems: (closest reference, cosine)}`` for pairs at or above ``threshold``
    (the SFT data's embedding pass; ``references`` are ``(text, benchmark, id)``)."""
    if not problems or not references:
        return {}
    encoder = Encoder(model_path)
    reference_vectors = encoder.embed([text for text, _, _ in references])
    found = {}
    for start in range(0, len(problems), 4096):
        vectors = encoder.embed(problems[start : start + 4096])
        scores, best = (vectors @ reference_vectors.T).max(dim=1)
        for offset, (score, index) in enumerate(zip(scores.tolist(), best.tolist(), strict=True)):
            if score >= threshold:
                text, benchmark, benchmark_id = references[index]
                found[start + offset] = (Match(benchmark, benchmark_id, text[:200]), score)
    return found


class NearestIndex:
    """Benchmark problems by their word n-grams, to retrieve the ones sharing the most n-grams
    with a training problem (the candidates an LLM then checks)."""

    def __init__(self, references: list[tuple[str, str, str]], n: int):
        self.n = n
        self.references = references
        self._postings: dict[int, list[int]] = {}
        for position, (text, _, _) in enumerate(references):
            for gram in set(_grams(words(text), n)):
                self._postings.setdefault(hash(gram), []).append(position)

    def nearest(self, text: str, top_k: int) -> list[tuple[int, int]]:
        """``(reference index, shared n-grams)`` of the ``top_k`` references sharing the most
        n-grams with ``text``, most first (ties: the earlier reference)."""
        shared: dict[int, int] = {}
        for gram in set(_grams(words(text), self.n)):
            for position in self._postings.get(hash(gram), ()):
                shared[position] = shared.get(position, 0) + 1
        ranked = sorted(shared.items(), key=lambda item: (-item[1], item[0]))
        return ranked[:top_k]


def _grams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    if len(tokens) < n:
        return [tuple(tokens)] if tokens else []
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def load_benchmarks(entries: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """``(problem, benchmark, id)`` of every benchmark problem."""
    problems = []
    for entry in entries:
        name, path = entry.split("=", 1)
        for number, row in iter_jsonl(path):
            if not row.get("problem"):
                raise DistilleryError(f"{path}:{number}: benchmark row has no 'problem'")
            problems.append((row["problem"], name, str(row.get("id", number))))
    return problems

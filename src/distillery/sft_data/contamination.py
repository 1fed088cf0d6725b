"""Contamination check: does a training problem overlap a benchmark problem?

The n-gram pass (13 words by default, as in the GPT-3 and Llama reports) flags a problem that
shares any word n-gram with a benchmark problem; problems shorter than n words are compared whole.
The optional embedding pass flags pairs whose mean-pooled embeddings have cosine similarity
above a threshold (NeMo-Skills' `retrieve_similar` idea, without the LLM judge).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

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


def embedding_matches(
    problems: list[str],
    references: list[tuple[str, str, str]],
    model_path: str,
    threshold: float,
    batch_size: int = 64,
) -> dict[int, tuple[Match, float]]:
    """``{index in problems: (closest reference, cosine)}`` for pairs at or above ``threshold``.

    ``references`` are ``(text, benchmark, id)``. The model is any Hugging Face encoder
    directory (e.g. a sentence-transformers MiniLM); embeddings are mean-pooled, normalised.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModel.from_pretrained(model_path).eval()

    def embed(texts: list[str]) -> torch.Tensor:
        out = []
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            )
            with torch.inference_mode():
                hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(out)

    if not problems or not references:
        return {}
    reference_vectors = embed([text for text, _, _ in references])
    found = {}
    for start in range(0, len(problems), 4096):
        vectors = embed(problems[start : start + 4096])
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


def same_text(a: str, b: str) -> bool:
    """Equal after case and whitespace are ignored: contaminated without asking a model."""
    return " ".join(a.lower().split()) == " ".join(b.lower().split())

"""Quality gates for variants, and the figures the report shows about them.

A variant is rejected, with a reason, when it is the same as another variant of
its source (``aug_identical``; one equal to the source is no variant at all), loses a
protected span (``aug_protected_lost``: a fact of the source, found by ``augment.facts``,
is no longer in the variant verbatim and as often), comes back from
back-translation without its placeholders (``aug_placeholder_lost``),
grows or shrinks too much (``aug_length_ratio``), drifts in meaning under a
configured sentence-embedding model (``aug_low_similarity``), or near-duplicates a
held-out validation/test text (``aug_near_holdout``): a variant must not smuggle
an evaluation example into training. The held-out check asks the same held-out index
as decontamination (``cleaners.heldout``), with the same threshold.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from augment.config import FidelityConfig
from augment.text import FactRules, TextBatch

Embedder = Callable[[Sequence[str]], np.ndarray]

IDENTICAL = "aug_identical"
NEAR_HOLDOUT = "aug_near_holdout"
LENGTH_RATIO = "aug_length_ratio"
PROTECTED_LOST = "aug_protected_lost"
PLACEHOLDER_LOST = "aug_placeholder_lost"
LOW_SIMILARITY = "aug_low_similarity"
REASONS = (IDENTICAL, PLACEHOLDER_LOST, PROTECTED_LOST, LENGTH_RATIO, LOW_SIMILARITY, NEAR_HOLDOUT)


def sentence_transformer(model: str, batch_size: int = 64) -> Embedder:
    """An embedder from a sentence-transformers model (imported only when configured)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "fidelity.embedding_model is set but sentence-transformers is not installed "
            "(pip install sentence-transformers)"
        ) from e
    encoder = SentenceTransformer(model)

    def embed(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(encoder.encode(list(texts), batch_size=batch_size, normalize_embeddings=True))

    return embed


class Fidelity:
    """Length ratio, protected spans kept and (optionally) embedding similarity, per (source, variant) pair."""

    def __init__(
        self,
        cfg: FidelityConfig | None = None,
        extra_words: Sequence[str] = (),
        embedder: Embedder | None = None,
        rules: FactRules | None = None,
    ):
        self.cfg = cfg or FidelityConfig()
        self.extra_words = list(extra_words)
        self.rules = rules
        self.embedder = embedder
        if self.embedder is None and self.cfg.embedding_model:
            self.embedder = sentence_transformer(self.cfg.embedding_model, self.cfg.embedding_batch_size)

    def check(
        self,
        sources: Sequence[str],
        variants: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]] | None = None,
    ) -> list[tuple[str, str] | None]:
        """(reason, detail) for each rejected pair, None for a pair that passes.

        ``spans`` are each source's protected spans (the stage's, with echoes and corpus terms); without
        them the per-text rules find them.
        """
        out: list[tuple[str, str] | None] = [None] * len(sources)
        if not self.cfg.enabled or not sources:
            return out
        lo, hi = self.cfg.min_length_ratio, self.cfg.max_length_ratio
        if self.cfg.require_protected:
            batch = TextBatch(sources, self.extra_words, self.rules, spans=spans)
        for i, (src, var) in enumerate(zip(sources, variants, strict=True)):
            if self.cfg.require_protected:
                lost = lost_spans(src, var, batch.spans(i))
                if lost:
                    out[i] = (PROTECTED_LOST, "lost: " + ", ".join(repr(x) for x in lost[:5]))
                    continue
            ratio = len(var) / max(1, len(src))
            if not lo <= ratio <= hi:
                out[i] = (LENGTH_RATIO, f"length ratio {ratio:.2f} outside [{lo}, {hi}]")
        if self.embedder is not None:
            todo = [i for i, r in enumerate(out) if r is None]
            if todo:
                a = self.embedder([sources[i] for i in todo])
                b = self.embedder([variants[i] for i in todo])
                sims = cosine(a, b)
                for i, sim in zip(todo, sims.tolist(), strict=True):
                    if sim < self.cfg.min_similarity:
                        out[i] = (LOW_SIMILARITY, f"cosine {sim:.3f} < {self.cfg.min_similarity}")
        return out


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(na * nb, 1e-12)


def lost_spans(source: str, variant: str, spans: Sequence[tuple[int, int]]) -> list[str]:
    """Protected strings of ``source`` that ``variant`` holds fewer times than the source does."""
    need = Counter(source[s:e] for s, e in spans)
    return [text for text, n in need.items() if variant.count(text) < n]


class Diversity:
    """distinct-1/2 over variants and mean word-level edit rate vs source, on the first ``cap`` variants."""

    def __init__(self, cap: int = 5000) -> None:
        self.cap = cap
        self.n = 0
        self.unigrams: set[str] = set()
        self.bigrams: set[tuple[str, str]] = set()
        self.total1 = self.total2 = 0
        self.edit_sum = 0.0

    def add(self, source: str, variant: str) -> None:
        if self.n >= self.cap:
            return
        self.n += 1
        words = variant.lower().split()
        self.unigrams.update(words)
        self.bigrams.update(zip(words, words[1:], strict=False))
        self.total1 += len(words)
        self.total2 += max(0, len(words) - 1)
        self.edit_sum += edit_rate(source, variant)

    def summary(self) -> dict[str, Any]:
        return {
            "variants": self.n,
            "distinct_1": round(len(self.unigrams) / self.total1, 4) if self.total1 else None,
            "distinct_2": round(len(self.bigrams) / self.total2, 4) if self.total2 else None,
            "edit_rate": round(self.edit_sum / self.n, 4) if self.n else None,
        }


def edit_rate(source: str, variant: str) -> float:
    """Share of the source's words replaced, deleted or moved (insertions count too), by a word diff; at most 1."""
    a, b = source.split(), variant.split()
    ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    changed = sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in ops if tag != "equal")
    return min(1.0, changed / max(1, len(a)))

"""Remove (or report) train records that overlap validation/test text.

Two checks, as NeMo Curator and the GPT-3 paper do: any shared word 13-gram
(lowercased, punctuation stripped), and a MinHash near-duplicate match against
the held-out records. Held-out n-grams that occur in many train records are stock
phrasing (a signature line, a template sentence), not leakage, and are ignored,
as the GPT-3 decontamination did for frequent n-grams. Grouped splitting already keeps near-duplicate clusters
together; this catches what slips past it (a shared paragraph, a quoted answer).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from tuneprep.records import document_text
from tuneprep.stage import Stage, StageOutput


class DecontamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    ngram: int = Field(13, ge=3)
    min_shared: int = Field(1, ge=1, description="shared n-grams that make a train record contaminated")
    max_train_docs: int | None = Field(
        10, ge=1, description="a held-out n-gram found in more train records than this is stock phrasing, not leakage"
    )
    near_threshold: float | None = Field(
        0.8, gt=0, lt=1, description="MinHash Jaccard to a held-out record; None = off"
    )
    action: Literal["drop", "report"] = "drop"
    gram_sample: int = Field(1, ge=1, description="keep 1 in k n-grams (by hash) to bound memory; 1 = exact")
    heldout_splits: list[str] = ["validation", "test"]


_MUL = np.uint64(0x9E3779B97F4A7C15)


def ngram_hashes_batch(texts: list[str], n: int, sample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every word n-gram (lowercased) of every text, and the index of the text each came from.

    Words are hashed once by polars and combined into n-grams with a polynomial in
    uint64 arithmetic, all vectorised; ``sample`` > 1 keeps one n-gram in ``sample``
    by hash value (the same n-grams on both sides), to bound memory on huge held-out sets.
    """
    if not texts:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    words = pl.Series(texts, dtype=pl.Utf8).fill_null("").str.to_lowercase().str.extract_all(r"\w+")
    lengths = words.list.len().to_numpy().astype(np.int64)
    flat = words.explode().drop_nulls()
    if flat.len() < n:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    wh = flat.hash(seed=0).to_numpy()  # stable within one polars version, which is all one run needs
    powers = np.array([pow(int(_MUL), n - 1 - k, 1 << 64) for k in range(n)], dtype=np.uint64)
    with np.errstate(over="ignore"):
        windows = np.lib.stride_tricks.sliding_window_view(wh, n)
        grams = (windows * powers).sum(axis=1, dtype=np.uint64)
    doc_start = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    doc_of = np.repeat(np.arange(len(texts)), lengths)[: grams.size]
    valid = np.arange(grams.size) - doc_start[doc_of] <= lengths[doc_of] - n
    grams, doc_of = grams[valid], doc_of[valid]
    if sample > 1:
        keep = grams % np.uint64(sample) == 0
        grams, doc_of = grams[keep], doc_of[keep]
    return grams, doc_of


def ngram_hashes(text: str, n: int) -> np.ndarray:
    """The distinct n-gram hashes of one text (empty when it has fewer than n words)."""
    return np.unique(ngram_hashes_batch([text], n)[0])


class Decontaminator(Stage):
    """Checks the train split against an index of held-out records built with ``add_heldout``."""

    name: ClassVar[str] = "decontaminate"

    def __init__(self, cfg: DecontamConfig | None = None, minhash=None) -> None:
        self.cfg = cfg or DecontamConfig()
        self.minhash = minhash  # cleaners.dedup.MinHasher; None turns the near-duplicate check off
        self.index = None
        self.heldout_ids: list[str] = []
        self._parts: list[tuple[np.ndarray, np.ndarray]] = []
        self._built = True
        self.grams = np.empty(0, np.uint64)  # sorted, distinct held-out n-grams
        self.owner = np.empty(0, np.int32)  # the first held-out record holding each
        self.train_df = np.zeros(0, np.int32)  # train records containing each held-out n-gram
        self.common = np.zeros(0, bool)
        self.flagged: list[dict] = []

    @property
    def heldout(self) -> int:
        return len(self.heldout_ids)

    def add_heldout(self, ids: Iterable[str], texts: Iterable[str]) -> None:
        ids, texts = list(ids), list(texts)
        grams, doc = ngram_hashes_batch(texts, self.cfg.ngram, self.cfg.gram_sample)
        self._parts.append((grams, (doc + len(self.heldout_ids)).astype(np.int32)))
        self.heldout_ids.extend(ids)
        self._built = False
        if self.minhash is not None and self.cfg.near_threshold is not None and ids:
            from cleaners.config import optimal_bands
            from cleaners.dedup import LSHIndex

            if self.index is None:
                bands, rows = optimal_bands(self.cfg.near_threshold, self.minhash.num_perm)
                self.index = LSHIndex(self.minhash.num_perm, bands, rows)
            self.index.extend(ids, self.minhash.signatures(texts))

    def _build(self) -> None:
        """Sort the held-out n-grams once, after the last ``add_heldout``; the first holder of each is kept."""
        if self._built:
            return
        grams = np.concatenate([g for g, _ in self._parts]) if self._parts else np.empty(0, np.uint64)
        owners = np.concatenate([d for _, d in self._parts]) if self._parts else np.empty(0, np.int32)
        self._parts = []
        order = np.argsort(grams, kind="stable")
        grams, owners = grams[order], owners[order]
        del order
        first = np.ones(grams.size, bool)
        first[1:] = grams[1:] != grams[:-1]
        self.grams, self.owner = grams[first], owners[first]
        self._parts = [(self.grams, self.owner)]
        self.train_df = np.zeros(self.grams.size, np.int32)
        self.common = np.zeros(self.grams.size, bool)
        self._built = True

    def _hits(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(held-out n-gram position, text index) for every n-gram of ``texts`` found in the held-out set."""
        self._build()
        grams, doc = ngram_hashes_batch(texts, self.cfg.ngram, self.cfg.gram_sample)
        if not self.grams.size or not grams.size:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        pos = np.searchsorted(self.grams, grams).clip(max=self.grams.size - 1)
        hit = self.grams[pos] == grams
        return pos[hit], doc[hit]

    def count_train(self, texts: Iterable[str]) -> None:
        """First pass over the train split: how many records contain each held-out n-gram."""
        pos, doc = self._hits(list(texts))
        if pos.size:
            pairs = np.unique(np.stack([pos, doc]), axis=1)
            self.train_df += np.bincount(pairs[0], minlength=self.grams.size).astype(np.int32)
        limit = self.cfg.max_train_docs
        self.common = self.train_df > limit if limit is not None else np.zeros(self.grams.size, bool)

    def _checks(self, texts: list[str], sigs: np.ndarray | None) -> list[tuple[str, str] | None]:
        pos, doc = self._hits(texts)
        keep = ~self.common[pos]
        pos, doc = pos[keep], doc[keep]
        shared = np.bincount(doc, minlength=len(texts))
        out: list[tuple[str, str] | None] = [None] * len(texts)
        n = self.cfg.ngram
        for i in np.flatnonzero(shared >= self.cfg.min_shared).tolist():
            owner = self.heldout_ids[int(self.owner[pos[doc == i][0]])]
            out[i] = (f"contaminated_{n}gram", f"{int(shared[i])} shared {n}-grams with {owner}")
        if sigs is not None and self.index is not None and len(self.index):
            rows, sims = self.index.best_matches(sigs, self.cfg.near_threshold)
            for i in np.flatnonzero(rows >= 0).tolist():
                if out[i] is None:
                    key = self.index.keys[int(rows[i])]
                    out[i] = ("contaminated_near_dup", f"jaccard {sims[i]:.2f} with {key}")
        return out

    def process(self, batch: pl.DataFrame) -> StageOutput:
        self._build()
        if not self.cfg.enabled or batch.height == 0 or (not self.grams.size and self.index is None):
            return StageOutput.keep_all(batch, self.name)
        train_rows = np.flatnonzero((batch["split"] == "train").fill_null(False).to_numpy())
        texts = document_text(batch).gather(train_rows).to_list()
        sigs = self.minhash.signatures(texts) if self.index is not None and texts else None
        reasons: list[str | None] = [None] * batch.height
        details: list[str | None] = [None] * batch.height
        ids = batch["id"].to_list()
        for row, found in zip(train_rows.tolist(), self._checks(texts, sigs), strict=True):
            if found:
                reasons[row], details[row] = found
                self.flagged.append({"id": ids[row], "reason": found[0], "detail": found[1]})
        hit = pl.Series([r is not None for r in reasons])
        if self.cfg.action == "report" or not hit.any():
            return StageOutput.keep_all(batch, self.name)
        dropped = self.drop(batch.filter(hit), "contaminated").with_columns(
            pl.Series("reason", [r for r in reasons if r], dtype=pl.Utf8),
            pl.Series("detail", [d for d in details if d], dtype=pl.Utf8),
        )
        return StageOutput(batch.filter(~hit), dropped)

    def summary(self) -> dict:
        return {
            "heldout_records": self.heldout,
            "heldout_ngrams": int(self.grams.size),
            "flagged": len(self.flagged),
            "common_ngrams_ignored": int(self.common.sum()),
            "action": self.cfg.action,
            "examples": self.flagged[:5],
        }

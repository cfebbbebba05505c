"""Remove (or report) train records that overlap validation/test text.

Two checks, as NeMo Curator and the GPT-3 paper do: any shared word 13-gram
(lowercased, punctuation stripped), and a MinHash near-duplicate match against
the held-out records. Held-out n-grams that occur in many train records are stock
phrasing (a signature line, a template sentence), not leakage, and are ignored,
as the GPT-3 decontamination did for frequent n-grams. Grouped splitting already keeps near-duplicate clusters
together; this catches what slips past it (a shared paragraph, a quoted answer).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar, Literal

import numpy as np
import polars as pl
import xxhash
from pydantic import BaseModel, ConfigDict, Field

from tuneprep.records import document_text
from tuneprep.stage import Stage, StageOutput

_WORD = re.compile(r"\w+")


class DecontamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    ngram: int = Field(13, ge=3)
    min_shared: int = Field(1, ge=1, description="shared n-grams that make a train record contaminated")
    max_train_docs: int | None = Field(
        10, ge=1, description="a held-out n-gram found in more train records than this is stock phrasing, not leakage"
    )
    near_threshold: float | None = Field(0.8, gt=0, lt=1, description="MinHash Jaccard to a held-out record; None = off")
    action: Literal["drop", "report"] = "drop"
    heldout_splits: list[str] = ["validation", "test"]


def ngram_hashes(text: str, n: int) -> np.ndarray:
    """64-bit hashes of the text's word n-grams (lowercased), empty when it has fewer than n words."""
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < n:
        return np.empty(0, dtype=np.uint64)
    return np.unique(
        np.fromiter(
            (xxhash.xxh64_intdigest(" ".join(words[i : i + n])) for i in range(len(words) - n + 1)),
            dtype=np.uint64,
            count=len(words) - n + 1,
        )
    )


class Decontaminator(Stage):
    """Checks the train split against an index of held-out records built with ``add_heldout``."""

    name: ClassVar[str] = "decontaminate"

    def __init__(self, cfg: DecontamConfig | None = None, minhash=None) -> None:
        self.cfg = cfg or DecontamConfig()
        self.grams: dict[int, str] = {}
        self.train_df: dict[int, int] = {}  # held-out n-gram -> train records containing it
        self.common: set[int] = set()
        self.minhash = minhash  # cleaners.dedup.MinHasher; None turns the near-duplicate check off
        self.index = None
        self.heldout = 0
        self.flagged: list[dict] = []

    def add_heldout(self, ids: Iterable[str], texts: Iterable[str]) -> None:
        ids, texts = list(ids), list(texts)
        self.heldout += len(ids)
        for rid, text in zip(ids, texts, strict=True):
            for h in ngram_hashes(text, self.cfg.ngram).tolist():
                self.grams.setdefault(h, rid)
        if self.minhash is not None and self.cfg.near_threshold is not None and ids:
            from cleaners.config import optimal_bands
            from cleaners.dedup import LSHIndex

            if self.index is None:
                bands, rows = optimal_bands(self.cfg.near_threshold, self.minhash.num_perm)
                self.index = LSHIndex(self.minhash.num_perm, bands, rows)
            self.index.extend(ids, self.minhash.signatures(texts))

    def count_train(self, texts: Iterable[str]) -> None:
        """First pass over the train split: how many records contain each held-out n-gram."""
        for text in texts:
            for h in ngram_hashes(text, self.cfg.ngram).tolist():
                if h in self.grams:
                    self.train_df[h] = self.train_df.get(h, 0) + 1
        limit = self.cfg.max_train_docs
        self.common = {h for h, n in self.train_df.items() if limit is not None and n > limit}

    def _check(self, text: str, sig: np.ndarray | None) -> tuple[str, str] | None:
        hashes = ngram_hashes(text, self.cfg.ngram)
        hits = [self.grams[h] for h in hashes.tolist() if h in self.grams and h not in self.common]
        if len(hits) >= self.cfg.min_shared:
            return f"contaminated_{self.cfg.ngram}gram", f"{len(hits)} shared {self.cfg.ngram}-grams with {hits[0]}"
        if sig is not None and self.index is not None and len(self.index):
            match = self.index.best_match(sig, self.cfg.near_threshold)
            if match is not None:
                return "contaminated_near_dup", f"jaccard {match[1]:.2f} with {match[0]}"
        return None

    def process(self, batch: pl.DataFrame) -> StageOutput:
        if not self.cfg.enabled or batch.height == 0 or (not self.grams and self.index is None):
            return StageOutput.keep_all(batch, self.name)
        is_train = (batch["split"] == "train").fill_null(False).to_list()
        texts = document_text(batch).to_list()
        train_rows = [i for i, t in enumerate(is_train) if t]
        sigs = None
        if self.index is not None and train_rows:
            sigs = self.minhash.signatures([texts[i] for i in train_rows])
        reasons: list[str | None] = [None] * batch.height
        details: list[str | None] = [None] * batch.height
        for k, i in enumerate(train_rows):
            found = self._check(texts[i], None if sigs is None else sigs[k])
            if found:
                reasons[i], details[i] = found
                self.flagged.append({"id": batch["id"][i], "reason": found[0], "detail": found[1]})
        hit = pl.Series([r is not None for r in reasons])
        if self.cfg.action == "report" or not hit.any():
            return StageOutput.keep_all(batch, self.name)
        dropped = self.drop(batch.filter(hit), "contaminated").with_columns(
            pl.Series("reason", [r for r in reasons if r], dtype=pl.Utf8),
            pl.Series("detail", [d for d in details if d], dtype=pl.Utf8),
        )
        return StageOutput(batch.filter(~hit), dropped)

    def summary(self) -> dict:
        return {"heldout_records": self.heldout, "heldout_ngrams": len(self.grams), "flagged": len(self.flagged),
                "common_ngrams_ignored": len(self.common),
                "action": self.cfg.action, "examples": self.flagged[:5]}

"""The held-out index: MinHash LSH over the validation/test records, built once after the split.

Decontamination drops train records that near-duplicate a held-out record, and the augmentation
gate drops variants that do; both ask this one index, with one threshold (``heldout.near_threshold``),
so what counts as leakage is the same in both places. It is saved beside the run (``index/heldout.idx``)
so the augment step, a later process, reads the index the decontaminate step built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from cleaners.config import DedupConfig, HeldoutConfig, optimal_bands
from cleaners.dedup import LSHIndex, MinHasher
from tuneprep.records import document_text


class HeldoutIndex:
    """Held-out records by id; ``match`` names the one a text near-duplicates (estimated Jaccard >= threshold)."""

    def __init__(
        self,
        hasher: MinHasher | None = None,
        threshold: float = HeldoutConfig().near_threshold,
        splits: Sequence[str] = tuple(HeldoutConfig().splits),
        sig_path: str | Path | None = None,
    ) -> None:
        self.hasher = hasher or MinHasher.from_config(DedupConfig())
        self.threshold = threshold
        self.splits = list(splits)
        bands, rows = optimal_bands(threshold, self.hasher.num_perm)
        self.index = LSHIndex(self.hasher.num_perm, bands, rows, sig_path)

    @classmethod
    def from_config(
        cls, cfg: HeldoutConfig, dedup: DedupConfig, sig_path: str | Path | None = None
    ) -> HeldoutIndex | None:
        """The index the config asks for, sharing dedup's shingling; None when the near-duplicate check is off."""
        if cfg.near_threshold is None:
            return None
        return cls(MinHasher.from_config(dedup), cfg.near_threshold, cfg.splits, sig_path)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def keys(self):
        return self.index.keys

    def add(self, texts: Sequence[str], ids: Sequence[str] | None = None, sigs: np.ndarray | None = None) -> None:
        """Index ``texts`` (``sigs``: their signatures, when the caller has them from the clean step)."""
        texts = list(texts)
        if not texts:
            return
        start = len(self.index)
        ids = list(ids) if ids is not None else [f"holdout:{start + i}" for i in range(len(texts))]
        self.index.extend(ids, self.hasher.signatures(texts) if sigs is None else sigs)

    def add_records(self, read_batches: Callable[[], Iterable[pl.DataFrame]]) -> None:
        """Index every record of the held-out splits, in file order."""
        for batch in read_batches():
            held = batch.filter(pl.col("split").is_in(self.splits))
            self.add(document_text(held).to_list(), held["id"].to_list())

    def best_matches(self, texts: Sequence[str], sigs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per text, the row of its closest held-out record at or above the threshold (-1: none) and the Jaccard
        (``sigs``: the texts' signatures, when the caller has them)."""
        if not texts or not len(self.index):
            return np.full(len(texts), -1, np.int64), np.zeros(len(texts))
        return self.index.best_matches(self.hasher.signatures(list(texts)) if sigs is None else sigs, self.threshold)

    def match(self, texts: Sequence[str]) -> list[tuple[str, float] | None]:
        """Per text, (held-out id, estimated Jaccard) of the closest held-out record at or above the threshold."""
        rows, sims = self.best_matches(texts)
        return [None if r < 0 else (self.index.keys[int(r)], float(s)) for r, s in zip(rows, sims, strict=True)]

    def save(self, path: str | Path) -> None:
        self.index.save(
            path,
            {"threshold": self.threshold, "splits": self.splits, "hasher": self.hasher.params(), "kind": "heldout"},
        )

    @classmethod
    def load(cls, path: str | Path, sig_path: str | Path | None = None) -> HeldoutIndex:
        params = LSHIndex.read_params(path)
        if params.get("kind") != "heldout":
            raise ValueError(f"{path}: not a held-out index")
        index = cls(MinHasher(**params["hasher"]), params["threshold"], params["splits"], sig_path)
        index.index.load_rows(path)
        return index

    def close(self) -> None:
        self.index.close()

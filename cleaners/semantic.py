"""Optional semantic near-duplicate removal: sentence embeddings, keep-first within a cosine threshold.

MinHash only sees shared word n-grams; a reworded or re-templated copy of a document shares few of
them but embeds close to the original. This stage is off by default (``dedup.semantic.enabled``)
because it needs a model and ``sentence-transformers`` (the ``semantic`` extra), imported lazily.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from cleaners.config import SemanticDedupConfig
from tuneprep.records import document_text
from tuneprep.stage import Stage, StageOutput

_BLOCK_ROWS = 16_384  # kept embeddings per matrix product: 16k x 2k-record batch x 4 B = 128 MiB of scores at most
_INNER_ROWS = 1_024  # batch rows per block of the within-batch similarity matrix


def load_model(cfg: SemanticDedupConfig) -> Any:
    """`SentenceTransformer(name_or_path)`, imported here so the package is only needed when the stage is on."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("semantic dedup needs sentence-transformers: pip install 'tuneprep[semantic]'") from e
    model = SentenceTransformer(cfg.model, device=None if cfg.device == "auto" else cfg.device)
    if cfg.max_seq_length:
        model.max_seq_length = cfg.max_seq_length
    return model


class SemanticDeduper(Stage):
    """Drops a record whose embedding has cosine >= `threshold` with a record kept earlier (here or in a loaded index).

    The rule is the same keep-first rule as MinHash dedup: records are judged in corpus order, a
    duplicate's `detail` is the kept record it is most similar to (earliest on ties), and dropped
    records never become match targets. Embeddings are L2-normalised, so cosine is a dot product,
    computed exactly in blocks against all kept records: right for the corpora this pipeline
    fine-tunes on (up to some 10^5 records on CPU). At scale one would search an ANN index
    (FAISS IVF-PQ or HNSW) for the top-k neighbours and verify only those, or cluster the
    embeddings with k-means and compare within clusters as SemDeDup does.
    """

    name = "semantic_dedup"

    def __init__(self, cfg: SemanticDedupConfig | None = None, model: Any = None) -> None:
        self.cfg = cfg or SemanticDedupConfig()
        self._model = model
        self.keys: list[str] = []
        self._emb: np.ndarray | None = None  # [capacity, dim] float32, rows [:len(keys)] in use

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = load_model(self.cfg)
        return self._model

    @property
    def embeddings(self) -> np.ndarray:
        return np.empty((0, 0), np.float32) if self._emb is None else self._emb[: len(self.keys)]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""
        emb = self.model.encode(
            list(texts),
            batch_size=self.cfg.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(emb, dtype=np.float32).reshape(len(texts), -1)

    def process(self, batch: pl.DataFrame) -> StageOutput:
        if batch.height == 0:
            return StageOutput.keep_all(batch, self.name)
        ids = batch["id"].to_list()
        dup_of = self.assign(ids, self.embed(document_text(batch).to_list()))
        dup = pl.Series("detail", dup_of, dtype=pl.Utf8)
        mask = dup.is_not_null()
        kept = batch.filter(~mask).with_columns(pl.coalesce("group_id", "id").alias("group_id"))
        return StageOutput(kept, self.drop(batch.filter(mask), "semantic_duplicate", pl.lit(dup.filter(mask))))

    def assign(self, ids: Sequence[str], emb: np.ndarray) -> list[str | None]:
        """Per record, the kept id it duplicates (None: kept, and added to the index)."""
        thr = np.float32(self.cfg.threshold)
        n = emb.shape[0]
        best_sim = np.full(n, -np.inf, np.float32)
        best_row = np.full(n, -1, np.int64)
        kept_emb = self.embeddings
        for lo in range(0, kept_emb.shape[0], _BLOCK_ROWS):
            sims = emb @ kept_emb[lo : lo + _BLOCK_ROWS].T
            j = sims.argmax(axis=1)  # first maximum: earliest kept record on ties
            s = sims[np.arange(n), j]
            better = s > best_sim  # strictly: an earlier block wins ties
            best_sim[better], best_row[better] = s[better], lo + j[better]
        dup_of: list[str | None] = [self.keys[r] if s >= thr else None for r, s in zip(best_row, best_sim, strict=True)]
        # Within the batch, whether an earlier record is kept decides whether it can be matched: one pass in
        # order, over row blocks of the batch's own similarity matrix so memory stays bounded for any batch size.
        kept = np.array([d is None for d in dup_of], bool)
        for lo in range(0, n, _INNER_ROWS):
            hi = min(lo + _INNER_ROWS, n)
            inner = emb[lo:hi] @ emb[:hi].T
            for i in range(max(lo, 1), hi):
                cand = np.flatnonzero(kept[:i])
                if cand.size == 0:
                    continue
                k = int(np.argmax(inner[i - lo, cand]))
                s = inner[i - lo, cand[k]]
                if s >= thr and s > (best_sim[i] if dup_of[i] is not None else -np.inf):
                    dup_of[i] = ids[cand[k]]
                    kept[i] = False
        keep = np.flatnonzero(kept)
        self._append([ids[i] for i in keep.tolist()], emb[keep])
        return dup_of

    def _append(self, keys: list[str], emb: np.ndarray) -> None:
        if not keys:
            return
        have = len(self.keys)
        if self._emb is None or have + len(keys) > self._emb.shape[0]:
            cap = max(have + len(keys), 2 * (0 if self._emb is None else self._emb.shape[0]), 1024)
            grown = np.empty((cap, emb.shape[1]), np.float32)
            if self._emb is not None:
                grown[:have] = self._emb[:have]
            self._emb = grown
        self._emb[have : have + len(keys)] = emb
        self.keys.extend(keys)

    def summary(self) -> dict:
        return {"index_size": len(self.keys), "model": self.cfg.model, "threshold": self.cfg.threshold}

    def save(self, path: str | Path) -> None:
        """Kept embeddings and ids, so a later data drop is deduplicated against this one (same model only)."""
        with open(path, "wb") as f:
            np.savez_compressed(
                f,
                emb=self.embeddings,
                keys=np.array(self.keys, dtype=np.str_),
                params=np.array(json.dumps({"config": self.cfg.model_dump()})),
            )

    @classmethod
    def load(cls, path: str | Path, cfg: SemanticDedupConfig | None = None, model: Any = None) -> SemanticDeduper:
        with np.load(path, allow_pickle=False) as z:
            emb, keys, params = z["emb"], z["keys"].tolist(), json.loads(str(z["params"]))
        saved = SemanticDedupConfig(**params["config"])
        cfg = cfg or saved
        if cfg.model != saved.model:
            raise ValueError(f"index was embedded with {saved.model!r}, not {cfg.model!r}: not compatible")
        dd = cls(cfg, model)
        dd._append(keys, emb.astype(np.float32))
        return dd


__all__ = ["SemanticDeduper", "load_model"]

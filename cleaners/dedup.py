"""Exact and near-duplicate removal that works across batches and, through saved indexes, across data drops."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import xxhash

from cleaners.config import DedupConfig, optimal_bands
from tuneprep.records import document_text
from tuneprep.stage import Stage, StageOutput

PRIME = np.uint64(4294967291)  # largest prime below 2**32: a*x+b stays inside uint64 for 32-bit x, a, b
_MUL = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_LOW32 = np.uint64(0xFFFFFFFF)
_CHUNK = 1 << 13  # shingles per vectorised block: 8k x 128 perms x 8 bytes = 8 MiB, cache-friendly
_MAX_VEC_TOKEN = 32
_WS = re.compile(r"\s+")


def canonical_text(text: str | None) -> str:
    """Lowercased, whitespace-collapsed text: the form duplicates are judged on."""
    return _WS.sub(" ", (text or "").lower()).strip()


def _fmix(h: np.ndarray) -> np.ndarray:
    """murmur3 finaliser: spreads structured 64-bit values before they are folded to 32 bits."""
    h = h ^ (h >> np.uint64(33))
    h = h * _MIX1
    h = h ^ (h >> np.uint64(33))
    h = h * _MIX2
    return h ^ (h >> np.uint64(33))


def _fold32(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint64(32)) ^ (h & _LOW32)


def _windows(units: np.ndarray, n: int) -> np.ndarray:
    """Hash of every run of n consecutive units (polynomial combination, wrapping in uint64)."""
    k = units.size - n + 1
    h = units[:k].copy()
    for j in range(1, n):
        h = h * _MUL + units[j : j + k]
    return h


def jaccard_estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> float | np.ndarray:
    """Share of equal MinHash slots; with `sig_b` of shape [k, num_perm] returns k estimates."""
    eq = np.asarray(sig_a) == np.asarray(sig_b)
    return float(eq.mean()) if eq.ndim == 1 else eq.mean(axis=-1)


class MinHasher:
    """MinHash signatures of word or char n-gram shingle sets, with permutations (a*x + b) mod p."""

    def __init__(
        self, num_perm: int = 128, ngram: int = 5, shingle: Literal["word", "char"] = "word", seed: int = 1
    ) -> None:
        self.num_perm, self.ngram, self.shingle, self.seed = num_perm, ngram, shingle, seed
        # Derived from xxhash, not numpy's RNG, so signatures in a saved index stay valid across numpy versions.
        p = int(PRIME)
        self.a = np.array(
            [1 + xxhash.xxh64_intdigest(f"a{i}".encode(), seed) % (p - 1) for i in range(num_perm)], np.uint64
        )
        self.b = np.array([xxhash.xxh64_intdigest(f"b{i}".encode(), seed) % p for i in range(num_perm)], np.uint64)

    @classmethod
    def from_config(cls, cfg: DedupConfig) -> MinHasher:
        return cls(cfg.num_perm, cfg.ngram, cfg.shingle, cfg.seed)

    def units(self, texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """Hashed words (or chars) of all canonical texts concatenated, and how many each text has (>= 1)."""
        joined = "\x00".join((t or "").replace("\x00", " ").strip() for t in texts).lower()
        cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32)
        seps = np.flatnonzero(cps == 0)
        is_word, is_space = _char_tables()
        if self.shingle == "word":
            edge = np.diff(is_word[cps].astype(np.int8), prepend=np.int8(0), append=np.int8(0))
            starts, ends = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
            units = _hash_spans(joined, cps, starts, ends - starts)
            pos = starts
        else:
            space = is_space[cps]
            keep = (cps != 0) & ~(space & np.concatenate(([False], space[:-1])))
            pos = np.flatnonzero(keep)
            units = _fmix(np.where(space[pos], np.uint32(32), cps[pos]).astype(np.uint64))
        counts = np.bincount(np.searchsorted(seps, pos), minlength=len(texts))
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            fallback = [
                xxhash.xxh3_64_intdigest(canonical_text(texts[i]).encode("utf-8", "surrogatepass")) for i in empty
            ]
            units = np.insert(units, np.cumsum(counts)[empty], np.array(fallback, np.uint64))
            counts[empty] = 1
        return units, counts

    def shingles(self, texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """32-bit shingle hashes of all texts concatenated, and each text's start offset into them."""
        if not texts:
            return np.empty(0, np.uint64), np.empty(0, np.int64)
        allu, lengths = self.units(texts)
        n = self.ngram
        counts = np.maximum(lengths - n + 1, 1)
        ustart = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        out_start = np.concatenate(([0], np.cumsum(counts)[:-1]))
        out = np.empty(int(counts.sum()), np.uint64)
        long_docs = lengths >= n
        if allu.size >= n and long_docs.any():
            full = _windows(allu, n)
            # Only windows lying inside one doc; index arithmetic keeps this vectorised.
            within = _ranges(counts[long_docs])
            out[np.repeat(out_start[long_docs], counts[long_docs]) + within] = full[
                np.repeat(ustart[long_docs], counts[long_docs]) + within
            ]
        for i in np.flatnonzero(~long_docs):  # shorter than one n-gram: the whole doc is its only shingle
            out[out_start[i]] = _windows(allu[ustart[i] : ustart[i] + lengths[i]], int(lengths[i]))[0]
        return _fold32(_fmix(out)), out_start

    def signatures(self, texts: Sequence[str | None]) -> np.ndarray:
        """uint32 signatures, shape [len(texts), num_perm]."""
        sh, starts = self.shingles(texts)
        n_docs = len(texts)
        sig = np.empty((n_docs, self.num_perm), np.uint32)
        if n_docs == 0:
            return sig
        ends = np.append(starts[1:], sh.size)
        buf = np.empty((self.num_perm, _CHUNK), np.uint64)
        lo = 0
        while lo < n_docs:
            hi = int(np.searchsorted(ends, starts[lo] + _CHUNK, side="right"))
            if hi <= lo:  # one doc with more shingles than a block: fold its blocks into a running minimum
                acc = np.full(self.num_perm, PRIME, np.uint64)
                for off in range(starts[lo], ends[lo], _CHUNK):
                    v = self._permute(sh[off : min(off + _CHUNK, ends[lo])], buf)
                    np.minimum(acc, v.min(axis=1), out=acc)
                sig[lo] = acc
                lo += 1
                continue
            v = self._permute(sh[starts[lo] : ends[hi - 1]], buf)
            sig[lo:hi] = np.minimum.reduceat(v, starts[lo:hi] - starts[lo], axis=1).T
            lo = hi
        return sig

    def _permute(self, x: np.ndarray, buf: np.ndarray) -> np.ndarray:
        """(a*x + b) mod p for every permutation (rows) and shingle (columns), so reduceat runs on contiguous rows."""
        v = buf[:, : x.size]
        np.multiply(self.a[:, None], x[None, :], out=v)
        v += self.b[:, None]
        return np.remainder(v, PRIME, out=v)

    __call__ = signatures


@cache
def _char_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per code point: is it a regex \\w char, is it whitespace (built once, ~1 MiB each)."""
    n = sys.maxunicode + 1
    word = np.fromiter((chr(c).isalnum() for c in range(n)), bool, n)
    word[ord("_")] = True
    space = np.fromiter((chr(c).isspace() for c in range(n)), bool, n)
    return word, space


def _hash_spans(text: str, cps: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """64-bit hash of each code-point span: vectorised over spans, one step per character position."""
    out = np.empty(starts.size, np.uint64)
    long = lens > _MAX_VEC_TOKEN
    for i in np.flatnonzero(long):  # rare (URLs, base64): hashing them one by one beats thousands of steps
        out[i] = xxhash.xxh3_64_intdigest(text[starts[i] : starts[i] + lens[i]].encode("utf-8", "surrogatepass"))
    short = np.flatnonzero(~long)
    order = short[np.argsort((_MAX_VEC_TOKEN - lens[short]).astype(np.int8), kind="stable")]  # radix sort
    s, neg_len = starts[order], -lens[order]
    h = np.zeros(order.size, np.uint64)
    for k in range(int(-neg_len[0]) if order.size else 0):
        c = int(np.searchsorted(neg_len, -k, side="left"))  # spans longer than k sort first
        h[:c] = h[:c] * _MUL + cps[s[:c] + k] + np.uint64(1)
    out[order] = _fmix(h)
    return out


def _ranges(counts: np.ndarray) -> np.ndarray:
    """[0..c0-1, 0..c1-1, ...] without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


class LSHIndex:
    """Banded LSH over MinHash signatures: one dict of bucket -> row numbers per band."""

    def __init__(self, num_perm: int, bands: int, rows: int) -> None:
        if bands * rows > num_perm:
            raise ValueError(f"bands*rows = {bands * rows} exceeds num_perm = {num_perm}")
        self.num_perm, self.bands, self.rows = num_perm, bands, rows
        self.keys: list[str] = []
        self._sigs = np.empty((1024, num_perm), np.uint32)
        self._buckets: list[dict[int, list[int]]] = [{} for _ in range(bands)]

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def sigs(self) -> np.ndarray:
        return self._sigs[: len(self.keys)]

    def band_hashes(self, sigs: np.ndarray) -> np.ndarray:
        """One uint64 key per band per signature, shape [n, bands]."""
        s = np.asarray(sigs)[:, : self.bands * self.rows].reshape(-1, self.bands, self.rows).astype(np.uint64)
        h = np.zeros(s.shape[:2], np.uint64)
        for j in range(self.rows):
            h = h * _MUL + s[:, :, j] + np.uint64(1)
        return _fmix(h)

    def insert(self, key: str, sig: np.ndarray, bands: Sequence[int] | None = None) -> int:
        """Add one signature; returns its row number."""
        i = len(self.keys)
        if i == self._sigs.shape[0]:
            self._sigs = np.concatenate([self._sigs, np.empty_like(self._sigs)])
        self._sigs[i] = sig
        self.keys.append(key)
        hs = self.band_hashes(np.asarray(sig)[None, :])[0].tolist() if bands is None else bands
        for bucket, h in zip(self._buckets, hs, strict=True):
            bucket.setdefault(h, []).append(i)
        return i

    def candidate_rows(self, sig: np.ndarray, bands: Sequence[int] | None = None) -> list[int]:
        """Row numbers sharing at least one band with `sig`, in insertion order."""
        hs = self.band_hashes(np.asarray(sig)[None, :])[0].tolist() if bands is None else bands
        found: set[int] = set()
        for bucket, h in zip(self._buckets, hs, strict=True):
            hit = bucket.get(h)
            if hit:
                found.update(hit)
        return sorted(found)

    def query(self, sig: np.ndarray, bands: Sequence[int] | None = None) -> list[str]:
        """Keys of candidate near-duplicates (any band collision), unverified."""
        return [self.keys[i] for i in self.candidate_rows(sig, bands)]

    def best_match(
        self, sig: np.ndarray, threshold: float, bands: Sequence[int] | None = None
    ) -> tuple[str, float] | None:
        """The most similar candidate at or above `threshold` (earliest on ties), or None."""
        rows = self.candidate_rows(sig, bands)
        if not rows:
            return None
        sims = (self._sigs[rows] == sig).mean(axis=1)
        j = int(np.argmax(sims))
        return (self.keys[rows[j]], float(sims[j])) if sims[j] >= threshold else None

    def save(self, path: str | Path, meta: dict | None = None) -> None:
        """Signatures and keys; buckets are rebuilt on load, so band settings may change between drops."""
        params = {"num_perm": self.num_perm, "bands": self.bands, "rows": self.rows, **(meta or {})}
        with open(path, "wb") as f:
            np.savez_compressed(
                f, sigs=self.sigs, keys=np.array(self.keys, dtype=np.str_), params=np.array(json.dumps(params))
            )

    @staticmethod
    def read(path: str | Path) -> tuple[np.ndarray, list[str], dict]:
        with np.load(path, allow_pickle=False) as z:
            return z["sigs"], z["keys"].tolist(), json.loads(str(z["params"]))

    @classmethod
    def load(cls, path: str | Path, bands: int | None = None, rows: int | None = None) -> LSHIndex:
        sigs, keys, params = cls.read(path)
        index = cls(params["num_perm"], bands or params["bands"], rows or params["rows"])
        index.extend(keys, sigs)
        return index

    def extend(self, keys: Sequence[str], sigs: np.ndarray) -> None:
        for key, sig, hs in zip(keys, sigs, self.band_hashes(sigs).tolist(), strict=True):
            self.insert(key, sig, hs)


class ExactDeduper(Stage):
    """Drops records whose canonical document text was already seen, in this batch, earlier ones or a loaded index."""

    name = "exact_dedup"

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    @staticmethod
    def key(text: str | None) -> str:
        return xxhash.xxh3_128_hexdigest(canonical_text(text).encode("utf-8", "surrogatepass"))

    def process(self, batch: pl.DataFrame) -> StageOutput:
        dup_of: list[str | None] = []
        for text, rid in zip(document_text(batch).to_list(), batch["id"].to_list(), strict=True):
            k = self.key(text)
            first = self.seen.get(k)
            if first is None:
                self.seen[k] = rid
            dup_of.append(first)
        dup = pl.Series("detail", dup_of, dtype=pl.Utf8)
        mask = dup.is_not_null()
        return StageOutput(
            batch.filter(~mask), self.drop(batch.filter(mask), "exact_duplicate", pl.lit(dup.filter(mask)))
        )

    def summary(self) -> dict:
        return {"index_size": len(self.seen)}

    def state_dict(self) -> dict:
        return {"hash": "xxh3_128/canonical-v1", "seen": dict(self.seen)}

    def load_state_dict(self, state: dict) -> None:
        if state.get("hash") != "xxh3_128/canonical-v1":
            raise ValueError(f"incompatible exact-dedup index: {state.get('hash')!r}")
        self.seen = dict(state["seen"])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.state_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> ExactDeduper:
        dd = cls()
        dd.load_state_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        return dd


class MinHashDeduper(Stage):
    """Near-duplicate removal: the first record of a cluster is kept, later ones within `threshold` are dropped."""

    name = "near_dedup"

    def __init__(self, cfg: DedupConfig | None = None) -> None:
        self.cfg = cfg or DedupConfig()
        self.hasher = MinHasher.from_config(self.cfg)
        bands, rows = self.cfg.lsh_params()
        self.index = LSHIndex(self.cfg.num_perm, bands, rows)

    def process(self, batch: pl.DataFrame) -> StageOutput:
        sigs = self.hasher(document_text(batch).to_list())
        band_keys = self.index.band_hashes(sigs).tolist()
        threshold = self.cfg.threshold
        dup_of: list[str | None] = []
        for rid, sig, hs in zip(batch["id"].to_list(), sigs, band_keys, strict=True):
            match = self.index.best_match(sig, threshold, hs)
            if match is None:
                self.index.insert(rid, sig, hs)
                dup_of.append(None)
            else:
                dup_of.append(match[0])
        dup = pl.Series("detail", dup_of, dtype=pl.Utf8)
        mask = dup.is_not_null()
        # An upstream group (e.g. one source conversation) wins; otherwise each kept record is its own group.
        kept = batch.filter(~mask).with_columns(pl.coalesce("group_id", "id").alias("group_id"))
        return StageOutput(kept, self.drop(batch.filter(mask), "near_duplicate", pl.lit(dup.filter(mask))))

    def summary(self) -> dict:
        return {"index_size": len(self.index), "bands": self.index.bands, "rows": self.index.rows}

    def save(self, path: str | Path) -> None:
        self.index.save(path, {"config": self.cfg.model_dump()})

    @classmethod
    def load(cls, path: str | Path, cfg: DedupConfig | None = None) -> MinHashDeduper:
        """Restore an index; a new `cfg` may change threshold/bands but not how signatures are computed."""
        sigs, keys, params = LSHIndex.read(path)
        saved = DedupConfig(**params["config"])
        cfg = cfg or saved
        hashing = ("num_perm", "ngram", "shingle", "seed")
        if any(getattr(cfg, k) != getattr(saved, k) for k in hashing):
            raise ValueError(f"index was built with {saved.model_dump(include=set(hashing))}, not compatible")
        dd = cls(cfg)
        dd.index.extend(keys, sigs)
        return dd


def dedup_stages(cfg: DedupConfig | None = None) -> list[Stage]:
    """The dedup stages the config enables, exact first (cheap, and it keeps the near index smaller)."""
    cfg = cfg or DedupConfig()
    stages: list[Stage] = []
    if cfg.exact:
        stages.append(ExactDeduper())
    if cfg.near:
        stages.append(MinHashDeduper(cfg))
    return stages


__all__ = [
    "ExactDeduper",
    "LSHIndex",
    "MinHashDeduper",
    "MinHasher",
    "canonical_text",
    "dedup_stages",
    "jaccard_estimate",
    "optimal_bands",
]

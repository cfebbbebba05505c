"""Exact and near-duplicate removal that works across batches and, through saved indexes, across data drops."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import xxhash

from cleaners.config import DedupConfig, optimal_bands
from cleaners.keystore import (
    GrowingArray,
    IdList,
    SignatureStore,
    SortedRuns,
    is_index_zip,
    read_array_chunks,
    read_ids,
    read_params,
    write_index,
)
from tuneprep.files import tmp_name
from tuneprep.records import document_text
from tuneprep.runner import iter_batches
from tuneprep.stage import Stage, StageOutput

# The permutations are part of the index format, not a run setting: every run draws the same ones, so an index
# saved by one run (a data drop, a held-out index) can be queried by another whatever its seed.
MINHASH_SEED = 1
SCHEME = "ms64-v2"  # how signatures are computed; saved in indexes, which refuse to load under another scheme
_MUL = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_BLOCK_BYTES = 8 << 20  # permuted-shingle block (num_perm x shingles x 8 bytes): stays in cache, bounds memory
_MAX_VEC_TOKEN = 32
_SPACES = np.array([c for c in range(0x3001) if chr(c).isspace()], np.uint32)  # no code point above is a space


def canonical_text(text: str | None) -> str:
    """Lowercased, whitespace-collapsed text: the form duplicates are judged on. ``str.split`` splits where
    ``\\s+`` matches (both use ``str.isspace``), 3x faster than the regex; the keys stay those of old indexes."""
    return " ".join((text or "").lower().split())


def _fmix(h: np.ndarray) -> np.ndarray:
    """murmur3 finaliser: spreads structured 64-bit values before they are folded to 32 bits."""
    h = h ^ (h >> np.uint64(33))
    h = h * _MIX1
    h = h ^ (h >> np.uint64(33))
    h = h * _MIX2
    return h ^ (h >> np.uint64(33))


def _fold32(h: np.ndarray) -> np.ndarray:
    return (h >> _SHIFT32) ^ (h & _LOW32)


def jaccard_estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> float | np.ndarray:
    """Share of equal MinHash slots; with `sig_b` of shape [k, num_perm] returns k estimates."""
    eq = np.asarray(sig_a) == np.asarray(sig_b)
    return float(eq.mean()) if eq.ndim == 1 else eq.mean(axis=-1)


class MinHasher:
    """MinHash signatures of word or char n-gram shingle sets, computed for a whole batch at once in numpy.

    Why this shape: every step is a few numpy passes over the batch's concatenated text, never a
    Python call per word or shingle. Words are hashed from their UTF-8 bytes, 8 at a time through an
    unaligned uint64 view; n-grams combine word hashes (no joined strings); each permutation is
    multiply-shift hashing of the 32-bit shingle hash, ``((a*x + b) mod 2**64) >> 32`` with random
    64-bit ``a`` (odd) and ``b``, a strongly universal family that needs no modulo, and as the shift is
    monotone the minimum is taken on the 64-bit values and shifted once per slot.

    ``sketch="rensa"`` hands the same shingle hashes to rensa's Rust R-MinHash (Fast Similarity
    Sketching): ~8x faster sketching and ~30% lower estimate variance, but it exports signatures only
    as Python lists (converting costs 3x its compute), so the dedup stage gains ~1.25x and the
    end-to-end bench (with its I/O) is within noise of numpy. It stays opt-in: a compiled extra
    dependency, and a rensa release that bumps its algorithm version changes every signature in a
    saved index (the scheme check then refuses the index).
    datasketch was 10-20x slower (a Python call per document). A pure 32-bit ``a*x + b`` family
    would sketch ~1.5x faster but is not 2-independent.
    """

    def __init__(
        self,
        num_perm: int = 128,
        ngram: int = 5,
        shingle: Literal["word", "char"] = "word",
        seed: int = 1,
        sketch: Literal["numpy", "rensa"] = "numpy",
    ) -> None:
        self.num_perm, self.ngram, self.shingle, self.seed, self.sketch_kind = num_perm, ngram, shingle, seed, sketch
        self.scheme = SCHEME
        if sketch == "rensa":
            try:
                from rensa import RMinHash
            except ImportError as e:
                raise ImportError("dedup.sketch = 'rensa' needs rensa: pip install 'tuneprep[rensa]'") from e
            self._rensa = RMinHash
            self.scheme = f"{SCHEME}+rensa-a{RMinHash.ALGORITHM_VERSION}"
        # Derived from xxhash, not numpy's RNG, so signatures in a saved index stay valid across numpy versions.
        self.a = np.array([xxhash.xxh64_intdigest(f"a{i}".encode(), seed) | 1 for i in range(num_perm)], np.uint64)
        self.b = np.array([xxhash.xxh64_intdigest(f"b{i}".encode(), seed) for i in range(num_perm)], np.uint64)
        self._block = max(1024, _BLOCK_BYTES // (8 * num_perm))

    @classmethod
    def from_config(cls, cfg: DedupConfig) -> MinHasher:
        return cls(cfg.num_perm, cfg.ngram, cfg.shingle, MINHASH_SEED, cfg.sketch)

    def params(self) -> dict:
        """The constructor's arguments: what makes two signatures comparable."""
        return {
            "num_perm": self.num_perm,
            "ngram": self.ngram,
            "shingle": self.shingle,
            "seed": self.seed,
            "sketch": self.sketch_kind,
        }

    def units(self, texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """Hashed words (or chars) of all canonical texts concatenated, and how many each text has (>= 1)."""
        joined = "\x00".join((t or "").replace("\x00", " ").strip() for t in texts).lower()
        ascii_only = joined.isascii()  # the common case: one byte per char, 4x less memory traffic
        if ascii_only:
            raw = joined.encode("ascii")
            cps: np.ndarray = np.frombuffer(raw, np.uint8)
        else:
            cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32)
        seps = np.flatnonzero(cps == 0)
        if self.shingle == "word":
            edge = np.diff(_is_word(cps).astype(np.int8), prepend=np.int8(0), append=np.int8(0))
            starts, ends = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
            if not ascii_only:  # words as UTF-8 byte spans, so both paths hash the same bytes
                raw = joined.encode("utf-8", "surrogatepass")
                offset = np.concatenate(([0], np.cumsum(_utf8_len(cps))))
                starts, ends = offset[starts], offset[ends]
                seps = offset[seps]
            units = _hash_spans(raw, starts, ends - starts)
            pos = starts
        else:
            space = np.isin(cps, _SPACES)
            keep = (cps != 0) & ~(space & np.concatenate(([False], space[:-1])))
            pos = np.flatnonzero(keep)
            units = _fmix(np.where(space[pos], 32, cps[pos]).astype(np.uint64))
        bounds = np.searchsorted(pos, seps)  # units before each separator
        counts = np.diff(np.concatenate(([0], bounds, [pos.size])))
        empty = np.flatnonzero(counts == 0)
        if empty.size:  # no word at all ("!!!", ""): the canonical text itself is the only unit
            fallback = [
                xxhash.xxh3_64_intdigest(canonical_text(texts[i]).encode("utf-8", "surrogatepass")) for i in empty
            ]
            units = np.insert(units, np.cumsum(counts)[empty], np.array(fallback, np.uint64))
            counts[empty] = 1
        return units, counts

    def shingles(self, texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """32-bit shingle hashes (as uint64) of all texts concatenated, and each text's start offset into them."""
        if not len(texts):
            return np.empty(0, np.uint64), np.empty(0, np.int64)
        units, lengths = self.units(texts)
        n = self.ngram
        counts = np.maximum(lengths - n + 1, 1)
        out_start = np.concatenate(([0], np.cumsum(counts)[:-1]))
        ustart = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        # Window hash at every unit position (polynomial, wrapping in uint64); windows that run past the end
        # of their doc are masked out below, so one pass serves all docs.
        h = units.copy()
        for j in range(1, n):
            h[:-j] = h[:-j] * _MUL + units[j:]
        valid = np.zeros(units.size + 1, np.int8)
        long_docs = lengths >= n
        np.add.at(valid, ustart[long_docs], 1)
        np.add.at(valid, ustart[long_docs] + lengths[long_docs] - n + 1, -1)
        windows = h[np.cumsum(valid[:-1]).astype(bool)]
        short = np.flatnonzero(~long_docs)
        if short.size == 0:
            out = windows
        else:  # shorter than one n-gram: the whole doc is its only shingle
            out = np.empty(int(counts.sum()), np.uint64)
            slot = np.ones(out.size, bool)
            slot[out_start[short]] = False
            out[slot] = windows
            for i in short:
                w = units[ustart[i] : ustart[i] + lengths[i]]
                acc = w[:1].copy()  # arrays wrap silently where numpy scalars warn
                for k in range(1, w.size):
                    acc = acc * _MUL + w[k : k + 1]
                out[out_start[i]] = acc[0]
        return _fold32(_fmix(out)), out_start

    def signatures(self, texts: Sequence[str | None]) -> np.ndarray:
        """uint32 signatures, shape [len(texts), num_perm]."""
        sh, starts = self.shingles(texts)
        return self.sketch(sh, starts)

    def sketch(self, sh: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Min over each doc's shingles of every permutation, a block of whole docs at a time."""
        n_docs = starts.size
        sig = np.empty((n_docs, self.num_perm), np.uint32)
        if n_docs == 0:
            return sig
        if self.sketch_kind == "rensa":
            offsets = np.append(starts, sh.size).astype(np.uint64)
            m = self._rensa.digest_matrix_from_flat_token_hashes(sh, offsets, self.num_perm, self.seed)
            sig[:] = m.to_rows()  # its only export: Python lists, which cost more than its sketching
            return sig
        block = self._block
        ends = np.append(starts[1:], sh.size)
        buf = np.empty((self.num_perm, block), np.uint64)
        lo = 0
        while lo < n_docs:
            hi = int(np.searchsorted(ends, starts[lo] + block, side="right"))
            if hi <= lo:  # one doc with more shingles than a block: fold its blocks into a running minimum
                acc = np.full(self.num_perm, np.iinfo(np.uint64).max, np.uint64)
                for off in range(starts[lo], ends[lo], block):
                    v = self._permute(sh[off : min(off + block, ends[lo])], buf)
                    np.minimum(acc, v.min(axis=1), out=acc)
                sig[lo] = acc >> _SHIFT32
                lo += 1
                continue
            v = self._permute(sh[starts[lo] : ends[hi - 1]], buf)
            sig[lo:hi] = (np.minimum.reduceat(v, starts[lo:hi] - starts[lo], axis=1) >> _SHIFT32).T
            lo = hi
        return sig

    def _permute(self, x: np.ndarray, buf: np.ndarray) -> np.ndarray:
        """a*x + b (mod 2**64) for every permutation (rows) and shingle (columns); reduceat runs along rows."""
        v = buf[:, : x.size]
        np.multiply(self.a[:, None], x[None, :], out=v)
        v += self.b[:, None]
        return v

    __call__ = signatures


@cache
def _word_table() -> np.ndarray:
    """Per code point below 2**16: is it a regex \\w char (alphanumeric or underscore)."""
    n = 1 << 16
    word = np.fromiter((chr(c).isalnum() for c in range(n)), bool, n)
    word[ord("_")] = True
    return word


def _is_word(cps: np.ndarray) -> np.ndarray:
    """Python's \\w per code point: a 64k table for the BMP, a per-distinct-value check above it."""
    table = _word_table()
    if cps.dtype == np.uint8:
        return table[cps]
    out = table[np.minimum(cps, np.uint32(0xFFFF))]
    astral = cps > 0xFFFF
    if astral.any():
        vals, inv = np.unique(cps[astral], return_inverse=True)
        out[astral] = np.array([chr(int(c)).isalnum() for c in vals], bool)[inv]
    return out


def _utf8_len(cps: np.ndarray) -> np.ndarray:
    """Bytes each code point takes in UTF-8 (surrogates, passed through, take 3)."""
    return 1 + (cps >= 0x80).astype(np.int64) + (cps >= 0x800) + (cps >= 0x10000)


_BYTE_MASK = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], np.uint64)


def _hash_spans(raw: bytes, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """64-bit hash of each byte span of `raw`, read 8 bytes at a time through an unaligned uint64 view.

    The first 8 bytes of every span are one gather; each further 8 touch only the spans that long,
    so a corpus of ordinary words costs about two passes. Spans over 32 bytes (URLs, base64) are
    hashed one by one with xxh3.
    """
    words = np.ndarray((len(raw) + 1,), np.dtype("<u8"), raw + bytes(8), 0, (1,))  # words[i] = bytes i..i+7
    h = words[np.minimum(starts, len(raw))] & _BYTE_MASK[np.minimum(lens, 8)]
    for k in range(8, _MAX_VEC_TOKEN, 8):
        idx = np.flatnonzero(lens > k)
        if idx.size == 0:
            break
        chunk = words[starts[idx] + k] & _BYTE_MASK[np.minimum(lens[idx] - k, 8)]
        h[idx] = h[idx] * _MUL + chunk
    out = _fmix(h + lens.astype(np.uint64))
    for i in np.flatnonzero(lens > _MAX_VEC_TOKEN).tolist():
        out[i] = xxhash.xxh3_64_intdigest(raw[starts[i] : starts[i] + lens[i]])
    return out


class LSHIndex:
    """Banded LSH over MinHash signatures, held in sorted numpy runs instead of per-band dicts.

    Why: a dict of Python ints per band costs ~1 KiB per document and a Python call per lookup; here
    each band key is 12 bytes (uint64 key + uint32 row) in sorted arrays (``SortedRuns``), a batch is
    looked up with one ``searchsorted`` per run. The band index is mixed into each key, so all bands
    share one key space. Signatures, the bulk of the index, go to ``sig_path`` when given and only
    candidate rows are read back, so the index of a large corpus costs disk rather than RAM.
    """

    def __init__(self, num_perm: int, bands: int, rows: int, sig_path: str | Path | None = None) -> None:
        if bands * rows > num_perm:
            raise ValueError(f"bands*rows = {bands * rows} exceeds num_perm = {num_perm}")
        self.num_perm, self.bands, self.rows = num_perm, bands, rows
        self.keys = IdList()
        self.store = SignatureStore(num_perm, sig_path)
        self.buckets = SortedRuns()

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def sigs(self) -> np.ndarray:
        return self.store.all()

    def band_hashes(self, sigs: np.ndarray) -> np.ndarray:
        """One uint64 key per band per signature, shape [n, bands]; the band number is part of the key."""
        s = np.asarray(sigs)[:, : self.bands * self.rows].reshape(-1, self.bands, self.rows).astype(np.uint64)
        h = np.broadcast_to(np.arange(1, self.bands + 1, dtype=np.uint64), s.shape[:2]).copy()
        for j in range(self.rows):
            h = h * _MUL + s[:, :, j] + np.uint64(1)
        return _fmix(h)

    def add(self, keys: Sequence[str], sigs: np.ndarray, band_keys: np.ndarray | None = None) -> None:
        """Append signatures (rows numbered in order) and index their bands."""
        sigs = np.asarray(sigs, np.uint32).reshape(-1, self.num_perm)
        if len(keys) != sigs.shape[0]:
            raise ValueError(f"{len(keys)} keys for {sigs.shape[0]} signatures")
        if not len(keys):
            return
        bk = self.band_hashes(sigs) if band_keys is None else np.asarray(band_keys, np.uint64)
        first, n = len(self.keys), sigs.shape[0]
        self.store.append(sigs)
        self.keys.extend(keys)
        self.buckets.push(bk.reshape(-1), np.repeat(np.arange(first, first + n, dtype=np.uint32), self.bands))

    def insert(self, key: str, sig: np.ndarray, bands: Sequence[int] | None = None) -> int:
        """Add one signature; returns its row number."""
        self.add([key], np.asarray(sig)[None, :], None if bands is None else np.asarray([bands], np.uint64))
        return len(self.keys) - 1

    def extend(self, keys: Sequence[str], sigs: np.ndarray) -> None:
        self.add(keys, sigs)

    def candidate_pairs(self, band_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query number, row) for every indexed row sharing a band with a query; unique, sorted by query then row."""
        q = np.asarray(band_keys, np.uint64).reshape(-1, self.bands)
        qi, rows = self.buckets.lookup(q.reshape(-1))
        if qi.size == 0:
            return qi, rows
        pairs = np.unique(((qi // self.bands) << 32) | rows)
        return pairs >> 32, pairs & 0xFFFFFFFF

    def best_matches(
        self, sigs: np.ndarray, threshold: float, band_keys: np.ndarray | None = None, chunk: int = 1 << 16
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per query: the most similar indexed row at or above `threshold` (earliest on ties) and its
        estimated Jaccard; row -1 where there is none."""
        sigs = np.asarray(sigs).reshape(-1, self.num_perm)
        bk = self.band_hashes(sigs) if band_keys is None else band_keys
        qi, rows = self.candidate_pairs(bk)
        best_row = np.full(sigs.shape[0], -1, np.int64)
        best_sim = np.zeros(sigs.shape[0])
        if qi.size == 0:
            return best_row, best_sim
        sims = np.empty(qi.size)
        for lo in range(0, qi.size, chunk):  # bounded memory however crowded a bucket is
            sl = slice(lo, lo + chunk)
            wanted, inverse = np.unique(rows[sl], return_inverse=True)
            sims[sl] = (sigs[qi[sl]] == self.store.take(wanted)[inverse]).mean(axis=1)
        ok = sims >= threshold
        qi, rows, sims = qi[ok], rows[ok], sims[ok]
        order = np.lexsort((rows, -sims, qi))  # per query: highest estimate, then earliest row
        qi, rows, sims = qi[order], rows[order], sims[order]
        first = np.flatnonzero(np.diff(qi, prepend=-1) != 0)
        best_row[qi[first]] = rows[first]
        best_sim[qi[first]] = sims[first]
        return best_row, best_sim

    def candidate_rows(self, sig: np.ndarray, bands: Sequence[int] | None = None) -> list[int]:
        """Row numbers sharing at least one band with `sig`, in insertion order."""
        bk = self.band_hashes(np.asarray(sig)[None, :]) if bands is None else np.asarray([bands], np.uint64)
        return self.candidate_pairs(bk)[1].tolist()

    def query(self, sig: np.ndarray, bands: Sequence[int] | None = None) -> list[str]:
        """Keys of candidate near-duplicates (any band collision), unverified."""
        return self.keys.take(self.candidate_rows(sig, bands))

    def best_match(
        self, sig: np.ndarray, threshold: float, bands: Sequence[int] | None = None
    ) -> tuple[str, float] | None:
        """The most similar candidate at or above `threshold` (earliest on ties), or None."""
        bk = None if bands is None else np.asarray([bands], np.uint64)
        row, sim = self.best_matches(np.asarray(sig)[None, :], threshold, bk)
        return (self.keys[int(row[0])], float(sim[0])) if row[0] >= 0 else None

    def save(self, path: str | Path, meta: dict | None = None) -> None:
        """Signatures and keys, streamed; buckets are rebuilt on load, so band settings may change between drops."""
        params = {"num_perm": self.num_perm, "bands": self.bands, "rows": self.rows, **(meta or {})}
        shape = (len(self), self.num_perm)
        write_index(path, params, {"sigs": (shape, "<u4", self.store.chunks())}, self.keys)

    @staticmethod
    def read_params(path: str | Path) -> dict:
        return read_params(path)

    def load_rows(self, path: str | Path) -> None:
        """Append a saved index's rows, chunk by chunk (bands recomputed with this index's settings)."""
        ids = read_ids(path)
        lo = 0
        for sigs in read_array_chunks(path, "sigs"):
            self.add(ids.take(range(lo, lo + sigs.shape[0])), sigs)
            lo += sigs.shape[0]

    @classmethod
    def load(
        cls, path: str | Path, bands: int | None = None, rows: int | None = None, sig_path: str | Path | None = None
    ) -> LSHIndex:
        params = cls.read_params(path)
        index = cls(params["num_perm"], bands or params["bands"], rows or params["rows"], sig_path)
        index.load_rows(path)
        return index

    def close(self) -> None:
        """Remove the signature file, if any (the saved index is a separate copy)."""
        self.store.close()


def _resolve(stage: Stage, batch: pl.DataFrame, dup_of: list[str | None], reason: str) -> StageOutput:
    """Drop the duplicates (detail = the kept id), or with ``action: group`` keep them in their original's group.

    Kept records keep an upstream group (e.g. an earlier dedup stage's) or become their own group.
    """
    dup = pl.Series("detail", dup_of, dtype=pl.Utf8)
    mask = dup.is_not_null()
    grouped = batch.with_columns(pl.coalesce("group_id", "id").alias("group_id"))
    if getattr(stage, "action", "drop") == "group":
        groups = stage.groups
        for rid, gid in zip(grouped["id"].to_list(), grouped["group_id"].to_list(), strict=True):
            if rid != gid:
                groups[rid] = gid
        originals = [None if d is None else groups.get(d, d) for d in dup_of]
        out = grouped.with_columns(
            pl.when(mask).then(pl.Series(originals, dtype=pl.Utf8)).otherwise(pl.col("group_id")).alias("group_id")
        )
        stage.grouped += int(mask.sum())
        return StageOutput.keep_all(out, stage.name)
    return StageOutput(grouped.filter(~mask), stage.drop(batch.filter(mask), reason, pl.lit(dup.filter(mask))))


class ExactDeduper(Stage):
    """Drops records whose canonical document text was already seen, in this batch, earlier ones or a loaded index.

    The index is the 128-bit xxh3 of each kept text: its high half in ``SortedRuns`` (found by
    ``searchsorted``), its low half per row to confirm, and the kept id per row, about 40 bytes a
    record where a dict of hex strings cost ~250.
    """

    name = "exact_dedup"
    HASH = "xxh3_128/canonical-v1"

    def __init__(self, action: str = "drop") -> None:
        self.hi = SortedRuns()
        self.lo = GrowingArray(np.uint64)
        self.ids = IdList()
        self.action = action
        self.groups: dict[str, str] = {}
        self.grouped = 0

    def __len__(self) -> int:
        return len(self.ids)

    @staticmethod
    def key(text: str | None) -> str:
        return xxhash.xxh3_128_hexdigest(canonical_text(text).encode("utf-8", "surrogatepass"))

    @staticmethod
    def keys(texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """High and low 64 bits of every text's key."""
        ks = [xxhash.xxh3_128_intdigest(canonical_text(t).encode("utf-8", "surrogatepass")) for t in texts]
        return np.array([k >> 64 for k in ks], np.uint64), np.array([k & 0xFFFFFFFFFFFFFFFF for k in ks], np.uint64)

    def seen(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Per key, the row of the first indexed record with it, or -1."""
        first = np.full(hi.size, -1, np.int64)
        qi, rows = self.hi.lookup(hi)
        match = self.lo.values[rows] == lo[qi] if rows.size else np.zeros(0, bool)
        qi, rows = qi[match], rows[match]
        if qi.size:
            order = np.lexsort((rows, qi))
            qi, rows = qi[order], rows[order]
            head = np.flatnonzero(np.diff(qi, prepend=-1) != 0)
            first[qi[head]] = rows[head]
        return first

    def add(self, ids: Sequence[str], hi: np.ndarray, lo: np.ndarray) -> None:
        n = len(self.ids)
        self.hi.push(hi, np.arange(n, n + hi.size, dtype=np.uint32))
        self.lo.append(lo)
        self.ids.extend(ids)

    def process(self, batch: pl.DataFrame) -> StageOutput:
        ids = batch["id"].to_list()
        hi, lo = self.keys(document_text(batch).to_list())
        first = self.seen(hi, lo).tolist()
        dup_of: list[str | None] = []
        local: dict[tuple[int, int], str] = {}
        new: list[int] = []
        for i, (h, low, rid) in enumerate(zip(hi.tolist(), lo.tolist(), ids, strict=True)):
            earlier = self.ids[first[i]] if first[i] >= 0 else local.get((h, low))
            if earlier is None:
                local[(h, low)] = rid
                new.append(i)
            dup_of.append(earlier)
        self.add([ids[i] for i in new], hi[new], lo[new])
        return _resolve(self, batch, dup_of, "exact_duplicate")

    def summary(self) -> dict:
        return {"index_size": len(self), **({"grouped": self.grouped} if self.action == "group" else {})}

    def save(self, path: str | Path) -> None:
        shape = (len(self),)
        his = np.empty(len(self), np.uint64)
        for keys, rows in self.hi.runs:
            his[rows] = keys
        arrays = {"hi": (shape, "<u8", [his]), "lo": (shape, "<u8", [self.lo.values])}
        write_index(path, {"hash": self.HASH}, arrays, self.ids)

    @classmethod
    def load(cls, path: str | Path, action: str = "drop") -> ExactDeduper:
        """Restore a saved index (to dedup a new data drop against it); ``action`` is this run's choice."""
        dd = cls(action)
        if not is_index_zip(path):
            raise ValueError(f"{path}: not a tuneprep index (a zip with params.json)")
        if read_params(path).get("hash") != cls.HASH:
            raise ValueError(f"incompatible exact-dedup index: {read_params(path).get('hash')!r}")
        ids = read_ids(path)
        lo = 0
        for hi, low in zip(read_array_chunks(path, "hi"), read_array_chunks(path, "lo"), strict=True):
            dd.add(ids.take(range(lo, lo + hi.size)), hi, low)
            lo += hi.size
        return dd


class MinHashDeduper(Stage):
    """Near-duplicate removal: the first record of a cluster is kept, later ones within `threshold` are dropped.

    Batches must be fed in corpus order: the index holds every record kept so far (and, after
    `load`, every record kept from earlier data drops), so a duplicate is dropped however far
    apart the two records are. A dropped record's `detail` is the id of the kept record it matched
    best (highest estimated Jaccard, earliest on ties), verified on full signatures, not just on a
    shared LSH band.
    """

    name = "near_dedup"

    def __init__(self, cfg: DedupConfig | None = None, sig_path: str | Path | None = None) -> None:
        self.cfg = cfg or DedupConfig()
        self.hasher = MinHasher.from_config(self.cfg)
        bands, rows = self.cfg.lsh_params()
        self.index = LSHIndex(self.cfg.num_perm, bands, rows, sig_path)
        self.action = self.cfg.action
        self.groups: dict[str, str] = {}
        self.grouped = 0
        self.signed = FedSignatures(self.hasher)

    def use_feed(self, feed: SignatureFeed) -> None:
        """Take signatures computed ahead (per partition, in parallel) instead of hashing each batch here."""
        self.signed = FedSignatures(self.hasher, feed)

    def checkpoint(self) -> object:
        return self.signed.position()

    def rollback(self, state: object) -> None:
        self.signed.seek(state)

    def signatures(self, batch: pl.DataFrame, ids: list[str]) -> np.ndarray:
        return self.signed(batch, ids)

    def process(self, batch: pl.DataFrame) -> StageOutput:
        ids = batch["id"].to_list()
        dup_of = self.assign(ids, self.signatures(batch, ids))
        return _resolve(self, batch, dup_of, "near_duplicate")

    def assign(self, ids: Sequence[str], sigs: np.ndarray) -> list[str | None]:
        """Per record, the kept id it duplicates (None: kept, and added to the index), same result as
        taking the records one by one.

        Matches against the index are found for the whole batch at once; only records sharing a band
        with another record of the same batch need the one-by-one pass, since whether an earlier one
        is kept decides whether it can be matched.
        """
        threshold, index = self.cfg.threshold, self.index
        band_keys = index.band_hashes(sigs)
        best_row, best_sim = index.best_matches(sigs, threshold, band_keys)
        dup_of: list[str | None] = [None if r < 0 else index.keys[r] for r in best_row.tolist()]
        kept = best_row < 0
        flat = band_keys.reshape(-1)
        order = np.argsort(flat, kind="stable")
        same = np.flatnonzero(flat[order][1:] == flat[order][:-1])
        shared = np.zeros(flat.size, bool)
        shared[order[same]] = shared[order[same + 1]] = True
        local: dict[int, list[int]] = {}  # band key -> records of this batch kept so far
        for i in np.flatnonzero(shared.reshape(band_keys.shape).any(axis=1)).tolist():
            hs = band_keys[i].tolist()
            cands = sorted({j for h in hs for j in local.get(h, ())})
            if cands:
                sims = (sigs[cands] == sigs[i]).mean(axis=1)
                j = int(np.argmax(sims))  # earliest of the best
                # An index match is earlier than any record of this batch, so it wins ties.
                if sims[j] >= threshold and (best_row[i] < 0 or sims[j] > best_sim[i]):
                    dup_of[i] = ids[cands[j]]
                    kept[i] = False
            if kept[i]:
                for h in hs:
                    local.setdefault(h, []).append(i)
        keep = np.flatnonzero(kept)
        index.add([ids[i] for i in keep.tolist()], sigs[keep], band_keys[keep])
        return dup_of

    def summary(self) -> dict:
        out = {"index_size": len(self.index), "bands": self.index.bands, "rows": self.index.rows}
        if self.signed.lost:
            out["signature_feed_lost"] = self.signed.lost
        return out | ({"grouped": self.grouped} if self.action == "group" else {})

    def save(self, path: str | Path) -> None:
        self.index.save(path, {"config": self.cfg.model_dump(), "scheme": self.hasher.scheme})

    @classmethod
    def load(
        cls, path: str | Path, cfg: DedupConfig | None = None, sig_path: str | Path | None = None
    ) -> MinHashDeduper:
        """Restore an index; a new `cfg` may change threshold/bands but not how signatures are computed."""
        params = LSHIndex.read_params(path)
        saved = DedupConfig(**params["config"])
        cfg = cfg or saved
        hashing = ("num_perm", "ngram", "shingle", "sketch")
        if any(getattr(cfg, k) != getattr(saved, k) for k in hashing):
            raise ValueError(f"index was built with {saved.model_dump(include=set(hashing))}, not compatible")
        dd = cls(cfg, sig_path)
        if params.get("scheme") != dd.hasher.scheme:
            raise ValueError(
                f"index signatures use scheme {params.get('scheme', 'v1')!r}, this version computes "
                f"{dd.hasher.scheme!r}: not compatible, rebuild the index from the kept records"
            )
        dd.index.load_rows(path)
        return dd


class FeedOutOfStep(LookupError):
    """A record near-dedup sees is not next in the precomputed signatures (they were made for other records)."""


class SignatureFeed:
    """MinHash signatures computed ahead of near-dedup, one file per partition of the corpus, in corpus order.

    Computing signatures is the costly, parallel half of near-dedup; assigning duplicates against the
    index is the sequential half. The files hold every cleaned record's id and signature; near-dedup asks
    for the signatures of each batch it sees, whose ids come in the same order (exact dedup before it only
    removes records), so one forward walk over the files serves the whole pass. A record whose signature
    could not be computed ahead is marked missing, and near-dedup hashes it itself (where a failure
    quarantines that record alone).
    """

    def __init__(self, files: Sequence[str | Path]) -> None:
        self.files = [Path(f) for f in files]
        self.params = self._load(self.files[0])[2] if self.files else {}
        self._next = 0
        self._ids: list[str] = []
        self._sigs = np.empty((0, 0), np.uint32)
        self._ok = np.empty(0, bool)
        self._pos = 0

    @staticmethod
    def write(path: str | Path, ids: Sequence[str], sigs: np.ndarray, ok: np.ndarray, hasher: MinHasher) -> None:
        """Save one partition's ids and signatures (``ok``: computed) atomically, with the hasher's settings."""
        path = Path(path)
        params = json.dumps({**hasher.params(), "scheme": hasher.scheme}, sort_keys=True)
        tmp = tmp_name(path)
        with open(tmp, "wb") as f:
            np.savez(f, ids=np.array(list(ids), dtype=np.str_), sigs=sigs, ok=ok, params=np.array(params))
        os.replace(tmp, path)

    def position(self) -> tuple:
        """Where the walk is, for ``seek`` (a batch retried after a failure reads its signatures again)."""
        return self._next, self._pos, self._ids, self._sigs, self._ok

    def seek(self, position: tuple) -> None:
        self._next, self._pos, self._ids, self._sigs, self._ok = position

    @staticmethod
    def _load(path: Path) -> tuple[list[str], np.ndarray, dict, np.ndarray]:
        with np.load(path, allow_pickle=False) as z:
            return z["ids"].tolist(), z["sigs"], json.loads(str(z["params"])), z["ok"]

    def take(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Signatures of ``ids`` (which follow the files' order: records may be skipped, not reordered), and
        which of them were computed ahead (the others' rows are zeros)."""
        rows, have = [], []
        for rid in ids:
            while True:
                while self._pos >= len(self._ids):
                    if self._next >= len(self.files):
                        raise FeedOutOfStep(f"record {rid} not found in the precomputed signatures (out of step)")
                    self._ids, self._sigs, _, self._ok = self._load(self.files[self._next])
                    self._next, self._pos = self._next + 1, 0
                self._pos += 1
                if self._ids[self._pos - 1] == rid:
                    rows.append(self._sigs[self._pos - 1])
                    have.append(bool(self._ok[self._pos - 1]))
                    break
        width = self._sigs.shape[1] if self._sigs.ndim == 2 else 0
        sigs = np.stack(rows).astype(np.uint32) if rows else np.empty((0, width), np.uint32)
        return sigs, np.array(have, bool)


def _isolated_signatures(hasher: MinHasher, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Signatures of the texts, and which were computed: a batch that fails is retried in halves, so one
    text the hasher cannot handle is left out alone (near-dedup then meets the failure and quarantines it)."""
    try:
        return hasher(texts), np.ones(len(texts), bool)
    except Exception:  # noqa: BLE001 - isolated here, raised again by near-dedup on that record alone
        if len(texts) <= 1:
            return np.zeros((len(texts), hasher.num_perm), np.uint32), np.zeros(len(texts), bool)
        half = len(texts) // 2
        (a, ok_a), (b, ok_b) = _isolated_signatures(hasher, texts[:half]), _isolated_signatures(hasher, texts[half:])
        return np.concatenate([a, b]), np.concatenate([ok_a, ok_b])


class FedSignatures:
    """Records' signatures from a ``SignatureFeed`` while the records come in its order, else hashed here: the
    same numbers either way, only slower without the feed. ``lost`` says why the feed was given up, if it was.

    The clean step MinHashes every record it keeps; near-dedup and the held-out checks of decontamination
    read those signatures instead of hashing the same texts again.
    """

    def __init__(self, hasher: MinHasher, feed: SignatureFeed | None = None) -> None:
        if feed is not None:
            mine = {**hasher.params(), "scheme": hasher.scheme}
            if feed.params != mine:
                raise ValueError(f"precomputed signatures use {feed.params}, this stage computes {mine}")
        self.hasher = hasher
        self.feed = feed
        self.lost: str | None = None

    def position(self) -> object:
        """Where the feed is, for ``seek`` (a batch retried after a failure reads its signatures again)."""
        return self.feed.position() if self.feed is not None else None

    def seek(self, state: object) -> None:
        if self.feed is not None and state is not None:
            self.feed.seek(state)

    def __call__(self, records: pl.DataFrame, ids: list[str] | None = None) -> np.ndarray:
        """Signatures of ``records`` (their document text), ``ids`` their ids when the caller has them."""
        if self.feed is not None:
            try:
                sigs, have = self.feed.take(records["id"].to_list() if ids is None else ids)
            except FeedOutOfStep as e:
                self.feed, self.lost = None, str(e)
            else:
                if not have.all():  # not computed ahead: hash here, where a failure is this record's alone
                    missing = np.flatnonzero(~have)
                    sigs[missing] = self.hasher(document_text(records[missing.tolist()]).to_list())
                return sigs
        return self.hasher(document_text(records).to_list())


class SignatureWriter:
    """MinHash signatures of records as they go by (``add`` a batch at a time), saved by ``write`` for a
    ``SignatureFeed``: the clean step signs each batch it keeps as it writes it."""

    def __init__(self, cfg: DedupConfig) -> None:
        self.hasher = MinHasher.from_config(cfg)
        self.ids: list[str] = []
        self._sigs = [np.empty((0, cfg.num_perm), np.uint32)]
        self._oks = [np.empty(0, bool)]

    def add(self, batch: pl.DataFrame) -> None:
        """Sign the batch's records (their document text, as near-dedup will see it)."""
        self.ids += batch["id"].to_list()
        sig, ok = _isolated_signatures(self.hasher, document_text(batch).to_list())
        self._sigs.append(sig)
        self._oks.append(ok)

    def write(self, dst: str | Path) -> int:
        SignatureFeed.write(dst, self.ids, np.concatenate(self._sigs), np.concatenate(self._oks), self.hasher)
        return len(self.ids)


def write_signatures(src: str | Path, dst: str | Path, cfg: DedupConfig, batch_size: int) -> int:
    """MinHash every record of a Parquet file (its document text, as near-dedup will see it) into ``dst``."""
    writer = SignatureWriter(cfg)
    for batch in iter_batches(Path(src), batch_size):
        writer.add(batch)
    return writer.write(dst)


def dedup_stages(
    cfg: DedupConfig | None = None,
    workdir: str | Path | None = None,
    reuse_index: str | Path | None = None,
    log: Callable[[str], object] | None = None,
) -> list[Stage]:
    """The dedup stages the config enables, exact first (cheap, and it keeps the near index smaller).

    With a ``workdir`` the near-dup signatures are kept in a file there instead of in memory. With
    ``reuse_index`` (an earlier run's folder or its ``index/``), each stage resumes from the index that run
    saved, so this run's records are deduplicated against everything kept there (a new data drop).
    """
    cfg = cfg or DedupConfig()
    sig_path = Path(workdir) / "near_dedup.sigs" if workdir else None
    saved = None
    if reuse_index:
        saved = Path(reuse_index)
        saved = saved / "index" if (saved / "index").is_dir() else saved
    stages: list[Stage] = []
    if cfg.exact:
        path = saved / f"{ExactDeduper.name}.idx" if saved else None
        stages.append(ExactDeduper.load(path, cfg.action) if path and path.exists() else ExactDeduper(cfg.action))
    if cfg.near:
        path = saved / f"{MinHashDeduper.name}.idx" if saved else None
        exists = path is not None and path.exists()
        stages.append(MinHashDeduper.load(path, cfg, sig_path) if exists else MinHashDeduper(cfg, sig_path))
    if cfg.semantic.enabled:  # last: the most expensive per record, so it sees the fewest
        from cleaners.semantic import SemanticDeduper

        stages.append(SemanticDeduper(cfg.semantic))
    if saved and log:
        for stage in stages:
            if (saved / f"{stage.name}.idx").exists():
                log(
                    f"{stage.name}: resuming from {saved / f'{stage.name}.idx'} ({stage.summary()['index_size']} records already kept)"
                )
    return stages


def save_indexes(stages: Sequence[Stage], folder: str | Path) -> None:
    """Save each stage's index as ``<name>.idx`` for a later data drop, and free what the stages hold on disk."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stage in stages:
        if hasattr(stage, "save"):
            stage.save(folder / f"{stage.name}.idx")
        if isinstance(stage, MinHashDeduper):
            stage.index.close()


__all__ = [
    "SCHEME",
    "ExactDeduper",
    "LSHIndex",
    "MinHashDeduper",
    "MinHasher",
    "FedSignatures",
    "SignatureFeed",
    "SignatureWriter",
    "canonical_text",
    "dedup_stages",
    "jaccard_estimate",
    "save_indexes",
    "optimal_bands",
    "write_signatures",
]

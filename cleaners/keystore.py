"""Compact, append-only index structures for the dedup stages, so their memory stays small as a corpus grows.

The dedup indexes are the only state that grows with the corpus. Here each record
costs a few bytes per index entry in numpy arrays instead of Python objects, the
MinHash signatures (the bulk: 4 bytes x num_perm per record) can live in a file
from which only candidate rows are read back, and ids are held as Arrow strings.
Saved indexes are zip files written and read in chunks, never whole in memory.
"""

from __future__ import annotations

import bisect
import io
import json
import os
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from tuneprep.arrow import string_array
from tuneprep.files import tmp_name

MAX_RUN = 1 << 21  # entries per sorted run beyond which runs are no longer merged: bounds the merge's scratch memory
CHUNK_ROWS = 1 << 16


def ranges(counts: np.ndarray) -> np.ndarray:
    """[0..c0-1, 0..c1-1, ...] without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


class SortedRuns:
    """uint64 key -> uint32 row multimap in sorted numpy runs, merged LSM-style as batches arrive.

    12 bytes per entry; a batch of queries is one ``searchsorted`` per run. Runs stop
    merging at ``max_run`` entries, so the scratch memory of a merge stays bounded
    however large the index grows (a lookup then visits a few more runs).
    """

    def __init__(self, max_run: int = MAX_RUN) -> None:
        self.max_run = max_run
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return sum(k.size for k, _ in self.runs)

    @property
    def nbytes(self) -> int:
        return sum(k.nbytes + r.nbytes for k, r in self.runs)

    def push(self, keys: np.ndarray, rows: np.ndarray) -> None:
        if keys.size == 0:
            return
        order = np.argsort(keys, kind="stable")  # equal keys keep row order: earliest first
        self.runs.append((keys[order], rows.astype(np.uint32)[order]))
        while len(self.runs) > 1:
            (k1, r1), (k2, r2) = self.runs[-2], self.runs[-1]
            if k1.size > 2 * k2.size or k1.size + k2.size > self.max_run:
                break
            self.runs[-2:] = []
            k, r = np.concatenate([k1, k2]), np.concatenate([r1, r2])
            del k1, r1, k2, r2
            order = np.argsort(k, kind="stable")  # timsort: merging two sorted runs is linear
            self.runs.append((k[order], r[order]))

    def lookup(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query number, row) for every entry whose key equals a query's; unsorted."""
        qs, rs = [], []
        for rk, rr in self.runs:
            lo = np.searchsorted(rk, queries, side="left")
            cnt = np.searchsorted(rk, queries, side="right") - lo
            hit = np.flatnonzero(cnt)
            if hit.size:
                reps = cnt[hit]
                qs.append(np.repeat(hit, reps))
                rs.append(rr[np.repeat(lo[hit], reps) + ranges(reps)].astype(np.int64))
        if not qs:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(qs), np.concatenate(rs)


class GrowingArray:
    """A 1-D or row array that grows by appending, with amortised doubling."""

    def __init__(self, dtype: np.dtype, width: int | None = None) -> None:
        self.width = width
        self._a = np.empty((1024,) if width is None else (1024, width), dtype)
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def append(self, values: np.ndarray) -> None:
        values = np.asarray(values, self._a.dtype)
        need = self.n + values.shape[0]
        if need > self._a.shape[0]:
            grown = np.empty((max(need, 2 * self._a.shape[0]), *self._a.shape[1:]), self._a.dtype)
            grown[: self.n] = self._a[: self.n]
            self._a = grown
        self._a[self.n : need] = values
        self.n = need

    @property
    def values(self) -> np.ndarray:
        return self._a[: self.n]


class SignatureStore:
    """Fixed-width uint32 rows (MinHash signatures), in memory or appended to a file.

    With a ``path`` the rows cost disk, not RAM: dedup reads back only the rows of
    candidate matches, through a memory map opened for that read and closed after it.
    """

    def __init__(self, width: int, path: str | Path | None = None) -> None:
        self.width = width
        self.path = Path(path) if path else None
        self._mem = GrowingArray(np.uint32, width) if self.path is None else None
        self._f = None
        self.n = 0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "wb")  # noqa: SIM115 - closed in close(); a stale file is overwritten

    def __len__(self) -> int:
        return self.n

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, np.uint32).reshape(-1, self.width)
        if self._mem is not None:
            self._mem.append(rows)
        else:
            self._f.write(rows.tobytes())
        self.n += rows.shape[0]

    def take(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        if self._mem is not None:
            return self._mem.values[rows]
        if rows.size == 0 or self.n == 0:
            return np.empty((0, self.width), np.uint32)
        self._f.flush()
        mm = np.memmap(self.path, np.uint32, "r", shape=(self.n, self.width))
        try:
            return np.array(mm[rows])
        finally:
            del mm

    def chunks(self, size: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
        if self._mem is not None:
            for lo in range(0, self.n, size):
                yield self._mem.values[lo : lo + size]
            return
        self._f.flush()
        with open(self.path, "rb") as f:
            for lo in range(0, self.n, size):
                yield np.fromfile(f, np.uint32, min(size, self.n - lo) * self.width).reshape(-1, self.width)

    def all(self) -> np.ndarray:
        if self._mem is not None:
            return self._mem.values
        return np.concatenate([np.empty((0, self.width), np.uint32), *self.chunks()])

    def close(self, remove: bool = True) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
            if remove and self.path is not None:
                self.path.unlink(missing_ok=True)

    def __del__(self) -> None:
        self.close()


class IdList:
    """Record ids as Arrow string chunks: ~len+8 bytes per id where a Python list costs ~60 more."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._chunks: list[pa.Array] = []
        self._ends: list[int] = []
        self.extend(list(ids))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def extend(self, ids: Sequence[str] | pa.Array) -> None:
        arr = ids if isinstance(ids, pa.Array) else string_array(list(ids))
        if len(arr) == 0:
            return
        self._chunks.append(arr.cast(pa.large_string()))
        self._ends.append(len(self) + len(arr))
        if len(self._chunks) > 64:
            self._chunks = [pa.concat_arrays(self._chunks)]
            self._ends = [self._ends[-1]]

    def __getitem__(self, i: int) -> str:
        if not 0 <= i < len(self):
            raise IndexError(i)
        c = bisect.bisect_right(self._ends, i)
        start = self._ends[c - 1] if c else 0
        return self._chunks[c][i - start].as_py()

    def take(self, rows: Iterable[int]) -> list[str]:
        return [self[int(i)] for i in rows]

    def __iter__(self) -> Iterator[str]:
        for c in self._chunks:
            yield from c.to_pylist()

    def tolist(self) -> list[str]:
        return list(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdList) and self.tolist() == other.tolist()

    def arrow_chunks(self) -> list[pa.Array]:
        return list(self._chunks)


def write_index(
    path: str | Path, params: dict, arrays: dict[str, tuple[tuple, str, Iterable[np.ndarray]]], ids: IdList
):
    """A zip of ``.npy`` members (written chunk by chunk), ``ids.arrow`` and ``params.json``; atomic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("params.json", json.dumps(params))
        for name, (shape, dtype, chunks) in arrays.items():
            # stored: hashes barely compress (0-17%), and deflating 9 MB of them took 0.2 s
            member = zipfile.ZipInfo(f"{name}.npy")
            member.compress_type = zipfile.ZIP_STORED
            with zf.open(member, "w", force_zip64=True) as f:
                header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
                np.lib.format.write_array_header_2_0(f, header)
                for c in chunks:
                    f.write(np.ascontiguousarray(c, dtype).tobytes())
        schema = pa.schema([("id", pa.large_string())])
        with zf.open("ids.arrow", "w", force_zip64=True) as f, pa.ipc.new_stream(f, schema) as w:
            for c in ids.arrow_chunks():
                w.write_batch(pa.record_batch([c], names=["id"]))
    os.replace(tmp, path)


def is_index_zip(path: str | Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return "params.json" in zf.namelist()


def read_params(path: str | Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("params.json"))


def read_ids(path: str | Path) -> IdList:
    ids = IdList()
    with zipfile.ZipFile(path) as zf, zf.open("ids.arrow") as f:
        for batch in pa.ipc.open_stream(io.BufferedReader(f)):
            ids.extend(batch.column(0))
    return ids


def read_array_chunks(path: str | Path, name: str, rows: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
    """A ``.npy`` member of an index zip, ``rows`` leading-axis rows at a time."""
    with zipfile.ZipFile(path) as zf, zf.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
        width = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        left = shape[0]
        while left:
            n = min(rows, left)
            buf = f.read(n * width * dtype.itemsize)
            yield np.frombuffer(buf, dtype).reshape((n, *shape[1:]))
            left -= n

"""Drive stages over Parquet files batch by batch, writing kept, dropped and quarantined rows.

Only the current batch is in memory. Outputs are written under temporary names
and renamed when complete, so a file that exists is a file that was finished.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from tuneprep.records import DROP_COLUMNS, SCHEMA, Quarantined, conform
from tuneprep.stage import Stage, StageStats


class _Sink:
    """A file written under a temporary name: ``close`` renames it into place, ``abort`` (or leaving a ``with``
    block on an exception) removes it, so a failed step leaves neither a half file nor a stray temporary one."""

    tmp: Path

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        self._release()
        self.tmp.unlink(missing_ok=True)

    def _release(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is not None:
            self.abort()


class ParquetSink(_Sink):
    """Append polars frames to one Parquet file; the file appears under its name only on ``close``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None
        self.rows = 0
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, df: pl.DataFrame) -> None:
        if df.height == 0 and self.writer is not None:
            return
        table = df.to_arrow()
        if self.writer is None:
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
        else:
            table = table.cast(self.schema)
        self.writer.write_table(table)
        self.rows += df.height

    def close(self, empty_like: pl.DataFrame | None = None) -> None:
        if self.writer is None:
            if empty_like is None:
                return
            self.write(empty_like.clear())
        self.writer.close()
        os.replace(self.tmp, self.path)

    def _release(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
            self.writer = None


class JsonlSink(_Sink):
    """One JSON object a line; text that is not valid Unicode (lone surrogates) is written escaped, never fatal."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.rows = 0

    def write(self, rows: Iterable[dict]) -> None:
        for r in rows:
            try:
                line = json.dumps(r, ensure_ascii=False, sort_keys=True, default=str)
                line.encode("utf-8")
            except (UnicodeEncodeError, ValueError, RecursionError):
                line = json.dumps(r, ensure_ascii=True, sort_keys=True, default=repr)
            self.f.write(line + "\n")
            self.rows += 1

    def close(self) -> None:
        self.f.close()
        os.replace(self.tmp, self.path)

    def _release(self) -> None:
        self.f.close()


def empty_frame(schema: pa.Schema) -> pl.DataFrame:
    """No rows, the schema's columns. ``Schema.empty_table`` would import pandas (half a second a process)."""
    return pl.from_arrow(pa.Table.from_batches([], schema=schema))


_runs_freezing = 0  # how many ``frozen_between_steps`` blocks are open


@contextlib.contextmanager
def frozen_between_steps() -> Iterator[None]:
    """Within a run, what outlives a step (modules, caches, settings) is moved out of the collector's sight
    (``gc.freeze``) by ``release_memory``, so each step's full collection walks only what is new: ten of them
    walked the whole heap for 0.45 s a run. It all goes back to the collector when the run ends; data frames are
    freed by reference counting either way."""
    global _runs_freezing
    if gc.get_freeze_count() and not _runs_freezing:  # someone else froze objects: leave their heap alone
        yield
        return
    _runs_freezing += 1
    try:
        yield
    finally:
        _runs_freezing -= 1
        if not _runs_freezing:
            gc.unfreeze()


def release_memory() -> None:
    """Hand memory a finished step freed back to the OS, so the next step does not start on top of it.

    Python's allocator, Arrow's pool and glibc's malloc all keep freed memory for reuse; after a step
    (a sort, the tokenizer trainer) most of it will not be reused soon, and it counts against the peak.
    """
    gc.collect()
    if _runs_freezing:
        gc.freeze()
    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc (musl)
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def iter_batches(path: Path, batch_size: int) -> Iterator[pl.DataFrame]:
    # pre_buffer (pyarrow's default) keeps every buffered range for the file's life: memory grew with the file.
    pf = pq.ParquetFile(path, pre_buffer=False)
    if pf.metadata.num_rows == 0:
        return
    for batch in pf.iter_batches(batch_size=batch_size):
        yield pl.from_arrow(batch)


def iter_rows(path: Path, start: int, stop: int, batch_size: int) -> Iterator[pl.DataFrame]:
    """Rows ``[start, stop)`` of a Parquet file in batches of ``batch_size`` counted from ``start``.

    Only the row groups that overlap the range are read, batch by batch.
    """
    if stop <= start:
        return
    pf = pq.ParquetFile(path, pre_buffer=False)
    groups, offset, first = [], 0, None
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if offset + n > start and offset < stop:
            groups.append(g)
            first = offset if first is None else first
        offset += n
    if not groups:
        return
    pos = first
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in pf.iter_batches(batch_size=batch_size, row_groups=groups):
        lo, hi = max(start - pos, 0), min(stop - pos, batch.num_rows)
        pos += batch.num_rows
        if hi > lo:
            pending.append(batch.slice(lo, hi - lo))
            pending_rows += hi - lo
        while pending_rows >= batch_size:
            table = pa.Table.from_batches(pending)
            yield pl.from_arrow(table.slice(0, batch_size).combine_chunks())
            rest = table.slice(batch_size)
            pending, pending_rows = rest.to_batches(), rest.num_rows
        if pos >= stop:
            break
    if pending_rows:
        yield pl.from_arrow(pa.Table.from_batches(pending).combine_chunks())


EXCERPT_CHARS = 300


class StopRun(RuntimeError):
    """Raised by a ``check`` to stop a run on purpose (too much quarantined); the quarantine files written so far
    are finished rather than discarded, since they say why."""


def quarantine_entries(df: pl.DataFrame) -> Iterator[dict]:
    """Quarantine-file entries for records a stage could not handle: the ``Quarantined`` fields, the record's id as
    locator, an excerpt of its text, and the whole record (so nothing is lost: it can be fixed and fed again)."""
    meta = set(DROP_COLUMNS)
    for row in df.iter_rows(named=True):
        record = {k: v for k, v in row.items() if k not in meta}
        text = row.get("text")
        if text is None and row.get("messages"):
            text = "\n".join(f"{m.get('role')}: {m.get('content')}" for m in row["messages"])
        entry = Quarantined(
            source=row.get("source") or "",
            locator=f"id {row.get('id')}",
            reason=row.get("reason") or "",
            detail=row.get("detail") or "",
            raw=(text or "")[:EXCERPT_CHARS],
            stage=row.get("stage") or "",
        ).to_dict()
        yield {**entry, "record": record}


def run_stages(
    stages: list[Stage],
    src: Path,
    dst: Path,
    dropped_dir: Path,
    batch_size: int,
    extra_schema: dict | None = None,
    on_batch: Callable[[int], None] | None = None,
    quarantine_dir: Path | None = None,
    check: Callable[[list[StageStats]], None] | None = None,
    rows: tuple[int, int] | None = None,
    on_kept: Callable[[pl.DataFrame], None] | None = None,
    rebatch: Callable[[Iterator[pl.DataFrame]], Iterator[pl.DataFrame]] | None = None,
) -> list[StageStats]:
    """Feed every batch of ``src`` through ``stages`` in order; kept rows go to ``dst``, drops to
    ``dropped_dir/<stage>.parquet``, records a stage could not handle to ``quarantine_dir/<stage>.jsonl``
    (default: ``quarantine/`` beside ``dropped_dir``; written only when a stage quarantined something).

    ``check`` sees the running figures after every batch and may raise to stop the run (too much quarantined).
    ``rows`` = (start, stop) limits the run to that row range of ``src`` (one partition, see ``tuneprep.partitions``).
    ``on_kept`` sees each batch of kept rows as it is written (the clean step MinHashes them there).
    ``rebatch`` may cut the batches read from ``src`` smaller, rows in order (the clean step's
    ``cleaners.html.page_batches``).
    """
    quarantine_dir = quarantine_dir or dropped_dir.parent / "quarantine"
    stats = [StageStats(s.name) for s in stages]
    empty = conform(pl.DataFrame(schema=SCHEMA), extra_schema)
    with contextlib.ExitStack() as sinks:
        out = sinks.enter_context(ParquetSink(dst))
        drops = {s.name: sinks.enter_context(ParquetSink(dropped_dir / f"{s.name}.parquet")) for s in stages}
        bad: dict[str, JsonlSink] = {}
        try:
            batches = iter_batches(src, batch_size) if rows is None else iter_rows(src, *rows, batch_size)
            if rebatch is not None:
                batches = rebatch(batches)
            for batch in batches:
                n_in = batch.height
                for stage, st in zip(stages, stats, strict=True):
                    t0 = time.perf_counter()
                    result = stage(batch)
                    st.seconds += time.perf_counter() - t0
                    st.add(batch.height, result)
                    if result.dropped.height:
                        drops[stage.name].write(conform(result.dropped, {**(extra_schema or {}), **DROP_COLUMNS}))
                    if result.quarantined.height:
                        if stage.name not in bad:
                            bad[stage.name] = sinks.enter_context(JsonlSink(quarantine_dir / f"{stage.name}.jsonl"))
                        bad[stage.name].write(quarantine_entries(result.quarantined))
                    batch = result.kept
                    if getattr(stage, "adds_records", False):
                        st.added = st.kept - (st.read - st.dropped - st.quarantined)
                batch = conform(batch, extra_schema)
                out.write(batch)
                if on_kept:
                    on_kept(batch)
                if on_batch:
                    on_batch(n_in)
                if check:
                    check(stats)
        except StopRun:
            for sink in bad.values():
                sink.close()
            raise
        out.close(empty_like=empty)
        for stage, st in zip(stages, stats, strict=True):
            drops[stage.name].close(empty_like=conform(empty, {**(extra_schema or {}), **DROP_COLUMNS}))
            if stage.name in bad:
                bad[stage.name].close()
            else:  # a rerun into the same folder must not leave an earlier run's file behind
                (quarantine_dir / f"{stage.name}.jsonl").unlink(missing_ok=True)
            st.extra.update(stage.summary())
        sinks.pop_all()
    return stats


SORT_BUCKET_BYTES = 64 << 20  # rows of about this much Arrow data are sorted in memory at once


def _order_keys(ids: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Two uint64 per id that order ids as a string sort would for record ids (20 hex characters: the first 64
    and the last 16 bits); any other string is ordered by its xxh3 hash instead (not a string order, as
    deterministic)."""
    if ids.str.contains(r"^[0-9a-f]{20}$").fill_null(False).all():
        part = [ids.str.slice(i, 8).str.to_integer(base=16).cast(pl.UInt64).to_numpy() for i in (0, 8)]
        lo = ids.str.slice(16, 4).str.to_integer(base=16).cast(pl.UInt64).to_numpy()
        return (part[0] << np.uint64(32)) | part[1], lo
    hashed = [xxhash.xxh3_64_intdigest((i or "").encode("utf-8", "surrogatepass")) for i in ids]
    return np.array(hashed, np.uint64), np.zeros(len(ids), np.uint64)


def sort_parquet(src: Path, dst: Path, by: str = "id", batch_size: int = 4096) -> int:
    """Rewrite ``src`` as ``dst`` with its rows ordered by the column ``by`` (ties keep their file order).

    This is what makes a file's order canonical whatever order a stage wrote it in (batch by batch, worker by
    worker). Memory stays bounded: only an 80-bit key per row is held whole (24 bytes a row with the ranks); the
    rows go through on-disk buckets of ``SORT_BUCKET_BYTES`` and each bucket is sorted on its own. Returns the
    number of rows.
    """
    pf = pq.ParquetFile(src, pre_buffer=False)
    n = pf.metadata.num_rows
    hi, lo = np.empty(n, np.uint64), np.empty(n, np.uint64)
    pos = 0
    for batch in pf.iter_batches(batch_size=batch_size, columns=[by]):
        h, low = _order_keys(pl.from_arrow(batch)[by])
        hi[pos : pos + h.size], lo[pos : pos + h.size] = h, low
        pos += h.size
    rank = np.empty(n, np.int64)
    rank[np.lexsort((lo, hi))] = np.arange(n, dtype=np.int64)  # stable: ties keep their file order
    del hi, lo
    data_bytes = sum(pf.metadata.row_group(i).total_byte_size for i in range(pf.metadata.num_row_groups))
    bucket_rows = max(1, min(n, int(n * SORT_BUCKET_BYTES / max(data_bytes, 1)))) if n else 1
    n_buckets = max(1, -(-n // bucket_rows))
    if n_buckets == 1:  # it fits in one bucket: sorted in memory, no scratch files
        with ParquetSink(dst) as out:
            rows = pl.read_parquet(src).with_columns(pl.Series("_rank", rank)).sort("_rank").drop("_rank")
            for chunk in rows.iter_slices(batch_size):
                out.write(chunk)
            out.close(empty_like=empty_frame(pf.schema_arrow))
        return n
    scratch = dst.with_name(f".{dst.name}.sort-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        with contextlib.ExitStack() as stack:
            buckets = [stack.enter_context(ParquetSink(scratch / f"{b:05d}.parquet")) for b in range(n_buckets)]
            pos = 0
            for batch in iter_batches(src, batch_size):
                r = rank[pos : pos + batch.height]
                pos += batch.height
                batch = batch.with_columns(pl.Series("_rank", r))
                which = r // bucket_rows
                for b in np.unique(which).tolist():
                    buckets[b].write(batch.filter(pl.Series(which == b)))
            for sink in buckets:
                sink.close()
            stack.pop_all()
        with ParquetSink(dst) as out:
            for b in range(n_buckets):
                path = scratch / f"{b:05d}.parquet"
                if path.exists():  # written a batch at a time: readers decode one row group at a time
                    for chunk in pl.read_parquet(path).sort("_rank").drop("_rank").iter_slices(batch_size):
                        out.write(chunk)
            out.close(empty_like=empty_frame(pf.schema_arrow))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return n

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
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tuneprep.records import DROP_COLUMNS, SCHEMA, conform
from tuneprep.stage import Stage, StageStats


class ParquetSink:
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


class JsonlSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.rows = 0

    def write(self, rows: Iterable[dict]) -> None:
        for r in rows:
            self.f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
            self.rows += 1

    def close(self) -> None:
        self.f.close()
        os.replace(self.tmp, self.path)


def release_memory() -> None:
    """Hand memory a finished step freed back to the OS, so the next step does not start on top of it.

    Python's allocator, Arrow's pool and glibc's malloc all keep freed memory for reuse; after a step
    (a sort, the tokenizer trainer) most of it will not be reused soon, and it counts against the peak.
    """
    gc.collect()
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


def run_stages(
    stages: list[Stage],
    src: Path,
    dst: Path,
    dropped_dir: Path,
    batch_size: int,
    extra_schema: dict | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> list[StageStats]:
    """Feed every batch of ``src`` through ``stages`` in order; kept rows go to ``dst``, drops to ``dropped_dir/<stage>.parquet``."""
    stats = [StageStats(s.name) for s in stages]
    out = ParquetSink(dst)
    drops = {s.name: ParquetSink(dropped_dir / f"{s.name}.parquet") for s in stages}
    empty = conform(pl.DataFrame(schema=SCHEMA), extra_schema)
    for batch in iter_batches(src, batch_size):
        n_in = batch.height
        for stage, st in zip(stages, stats, strict=True):
            t0 = time.perf_counter()
            result = stage(batch)
            st.seconds += time.perf_counter() - t0
            st.add(batch.height, result)
            if result.dropped.height:
                drops[stage.name].write(conform(result.dropped, {**(extra_schema or {}), **DROP_COLUMNS}))
            batch = result.kept
            if getattr(stage, "adds_records", False):
                st.added = st.kept - (st.read - st.dropped)
        out.write(conform(batch, extra_schema))
        if on_batch:
            on_batch(n_in)
    out.close(empty_like=empty)
    for stage, st in zip(stages, stats, strict=True):
        drops[stage.name].close(empty_like=conform(empty, {**(extra_schema or {}), **DROP_COLUMNS}))
        st.extra.update(stage.summary())
    return stats

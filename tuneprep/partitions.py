"""Row-range partitions of a stage file, so a step can run one task per partition and merge the outputs in order.

A partition starts at a multiple of the batch size and is read (``tuneprep.runner.iter_rows``) in batches
cut at the same global row offsets as ``iter_batches`` over the whole file, so the stages see exactly the
batches an unpartitioned run feeds them: the merged output does not depend on how many partitions (or
workers) there were. Partition outputs are concatenated in partition order, which keeps the corpus order
that order-dependent stages (keep-first dedup) rely on.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from tuneprep.runner import ParquetSink, empty_frame


@dataclass(frozen=True)
class Partition:
    index: int
    start: int  # first row (inclusive)
    stop: int  # last row (exclusive)

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}"

    @property
    def rows(self) -> int:
        return self.stop - self.start


def partition_size(rows_per_partition: int, batch_size: int) -> int:
    """``rows_per_partition`` rounded up to whole batches, so partitions never split a batch."""
    return max(1, math.ceil(rows_per_partition / batch_size)) * batch_size


def plan_partitions(path: Path, rows_per_partition: int, batch_size: int) -> list[Partition]:
    """Consecutive row ranges covering the file; an empty file gets one empty partition (its outputs keep the schema)."""
    n = pq.ParquetFile(path).metadata.num_rows
    size = partition_size(rows_per_partition, batch_size)
    starts = range(0, max(n, 1), size)
    return [Partition(i, s, min(s + size, n)) for i, s in enumerate(starts)]


def concat_parquet(parts: Sequence[Path], dst: Path, batch_size: int) -> int:
    """Stream the parts, in order, into one Parquet file (written atomically); returns the row count.

    A single part is moved, not copied: the rows are the same, only the row groups differ, and no reader
    depends on those (batches are cut by row count).
    """
    if len(parts) == 1:
        rows = pq.ParquetFile(parts[0]).metadata.num_rows
        os.replace(parts[0], dst)
        return rows
    sink = ParquetSink(dst)
    empty = None
    for part in parts:
        pf = pq.ParquetFile(part, pre_buffer=False)
        if empty is None:
            empty = empty_frame(pf.schema_arrow)
        for batch in pf.iter_batches(batch_size=batch_size):
            sink.write(pl.from_arrow(batch))
    sink.close(empty_like=empty)
    return sink.rows

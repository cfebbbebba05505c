"""Arrow shards in the ``datasets.save_to_disk`` layout, streamed, atomic and reproducible.

The shards are written here rather than by ``Dataset.save_to_disk`` so that a
split never has to fit in memory: rows stream from the tokenized Parquet file in
batches into per-split shard files (Arrow IPC streams, as ``datasets`` expects),
with ``state.json`` and ``dataset_info.json`` beside them. The fingerprint is a
hash of the content, so the same rows give byte-identical folders. Each split
is written to a temporary folder and renamed into place: a killed run leaves the
old split or the new one, never half of one.

Readers: ``datasets.load_from_disk(split_dir)``; ``polars.read_ipc_stream(shard)``
or ``pyarrow.ipc.open_stream(shard)`` per shard (``datasets`` reads only the IPC
stream format, which ``polars.scan_ipc`` does not); with ``export_parquet`` also
``polars.scan_parquet(OUT/parquet/<split>/*.parquet)`` for lazy queries.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tuneprep.arrow import numeric_array, string_scalar
from tuneprep.files import atomic_replace_dir, sha256_file
from tuneprep.records import SPLITS

# Arrow types whose ``datasets`` feature is a plain ``Value`` of the same name.
_VALUE_TYPES = {
    pa.string(): "string", pa.large_string(): "large_string", pa.bool_(): "bool", pa.int8(): "int8",
    pa.int16(): "int16", pa.int32(): "int32", pa.int64(): "int64", pa.uint8(): "uint8", pa.uint16(): "uint16",
    pa.uint32(): "uint32", pa.uint64(): "uint64", pa.float16(): "float16", pa.float32(): "float32",
    pa.float64(): "float64",
}  # fmt: skip


class _NotMapped(Exception):
    pass


def _feature(t: pa.DataType) -> dict:
    if pa.types.is_large_list(t):
        return {"feature": _feature(t.value_type), "_type": "LargeList"}
    if pa.types.is_list(t):
        return {"feature": _feature(t.value_type), "_type": "List"}
    if pa.types.is_struct(t):
        return {t.field(i).name: _feature(t.field(i).type) for i in range(t.num_fields)}
    if t in _VALUE_TYPES:
        return {"dtype": _VALUE_TYPES[t], "_type": "Value"}
    raise _NotMapped(str(t))


def hf_features(schema: pa.Schema) -> dict:
    """``datasets.Features.from_arrow_schema(schema).to_dict()``: for the types shards hold (strings, numbers,
    lists and structs of them) without importing ``datasets`` (0.8 s a process); other types ask it."""
    try:
        return {f.name: _feature(f.type) for f in schema}
    except _NotMapped:
        import datasets

        return datasets.Features.from_arrow_schema(schema.remove_metadata()).to_dict()


def hf_schema(schema: pa.Schema) -> pa.Schema:
    """The schema with the ``huggingface`` features metadata ``datasets`` writes into its own shards."""
    plain = schema.remove_metadata()
    meta = {"huggingface": json.dumps({"info": {"features": hf_features(plain)}})}
    return plain.with_metadata(meta)


def dataset_info(schema: pa.Schema) -> dict:
    """What ``datasets`` writes to ``dataset_info.json`` for a dataset that only has features."""
    info = {"citation": "", "description": "", "features": hf_features(schema), "homepage": "", "license": ""}
    return {k: info[k] for k in sorted(info)}


CHUNK_ROWS = 1000  # record batches of a fixed size, so the bytes do not depend on how the input was batched


class SplitWriter:
    """One split's shard files, filled batch by batch, each holding at most ``rows_per_shard`` rows."""

    def __init__(self, out_dir: Path, split: str, total_rows: int, rows_per_shard: int, schema: pa.Schema) -> None:
        self.final = out_dir / split
        self.tmp = out_dir / f".{split}.tmp-{os.getpid()}"
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.schema = schema
        self.n_shards = max(1, math.ceil(total_rows / rows_per_shard))
        self.rows_per_shard = rows_per_shard
        self.index = -1
        self.writer: pa.ipc.RecordBatchStreamWriter | None = None
        self.sink = None
        self.shards: list[dict] = []
        self.labels: Counter = Counter()
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self._open_next()

    def _name(self, i: int) -> str:
        return f"data-{i:05d}-of-{self.n_shards:05d}.arrow"

    def _open_next(self) -> None:
        self._close_current()
        self.index += 1
        self.sink = pa.OSFile(str(self.tmp / self._name(self.index)), "wb")
        self.writer = pa.ipc.new_stream(self.sink, self.schema)
        self.shards.append({"file": self._name(self.index), "rows": 0, "tokens": 0})

    def _close_current(self) -> None:
        if self.writer is not None:
            self._flush(final=True)
            self.writer.close()
            self.sink.close()

    def _flush(self, final: bool = False) -> None:
        if not self.pending_rows or (not final and self.pending_rows < CHUNK_ROWS):
            return
        table = pa.concat_tables(self.pending)
        whole = table.num_rows if final else table.num_rows - table.num_rows % CHUNK_ROWS
        for start in range(0, whole, CHUNK_ROWS):
            # take() copies into compact buffers; a slice would carry its parent's unused bytes into the file
            rows = numeric_array(np.arange(start, min(start + CHUNK_ROWS, whole), dtype=np.int64))
            self.writer.write_table(table.take(rows).combine_chunks())
        rest = table.slice(whole)
        self.pending, self.pending_rows = ([rest], rest.num_rows) if rest.num_rows else ([], 0)

    def write(self, table: pa.Table) -> None:
        start = 0
        while start < table.num_rows:
            cur = self.shards[-1]
            if cur["rows"] >= self.rows_per_shard and self.index + 1 < self.n_shards:
                self._open_next()
                cur = self.shards[-1]
            room = self.rows_per_shard - cur["rows"] if self.index + 1 < self.n_shards else table.num_rows - start
            part = table.slice(start, room)
            self.pending.append(part)
            self.pending_rows += part.num_rows
            self._flush()
            cur["rows"] += part.num_rows
            if "n_tokens" in part.column_names:
                cur["tokens"] += int(pc.sum(part["n_tokens"]).as_py() or 0)
            if "label" in part.column_names:
                for v in pc.value_counts(part["label"]).to_pylist():
                    self.labels["(none)" if v["values"] is None else v["values"]] += v["counts"]
            start += part.num_rows

    def close(self) -> dict:
        """Finish the files, write the ``datasets`` metadata, swap the folder into place; return the split's summary."""
        while self.index + 1 < self.n_shards:  # fewer rows than planned cannot happen, but never leave a gap
            self._open_next()
        self._close_current()
        digests = []
        for s in self.shards:
            s["sha256"] = sha256_file(self.tmp / s["file"])
            digests.append(s["sha256"])
        state = {
            "_data_files": [{"filename": s["file"]} for s in self.shards],
            "_fingerprint": hashlib.sha256("".join(digests).encode()).hexdigest()[:16],
            "_format_columns": None,
            "_format_kwargs": {},
            "_format_type": None,
            "_output_all_columns": False,
            "_split": None,
        }
        (self.tmp / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
        (self.tmp / "dataset_info.json").write_text(json.dumps(dataset_info(self.schema.remove_metadata()), indent=2))
        atomic_replace_dir(self.tmp, self.final)
        base = self.final.parent.name
        return {
            "rows": sum(s["rows"] for s in self.shards),
            "tokens": sum(s["tokens"] for s in self.shards),
            "labels": dict(sorted(self.labels.items())),
            "shards": [{**s, "file": f"{base}/{self.final.name}/{s['file']}"} for s in self.shards],
        }


def write_shards(
    src: Path,
    out_dir: Path,
    rows_per_shard: int,
    batch_size: int = 4096,
    splits: tuple[str, ...] = SPLITS,
    parquet_dir: Path | None = None,
) -> dict[str, dict]:
    """Stream a tokenized Parquet file into per-split shard folders under ``out_dir``; one pass, bounded memory."""
    pf = pq.ParquetFile(src, pre_buffer=False)
    schema = hf_schema(pf.schema_arrow)
    split_col = pf.read(columns=["split"])["split"]  # pq.read_table would import pyarrow.dataset, and it pandas
    names = {s: string_scalar(s) for s in splits}
    totals = {s: int(pc.sum(pc.equal(split_col, names[s])).as_py() or 0) for s in splits}
    del split_col
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = {s: SplitWriter(out_dir, s, totals[s], rows_per_shard, schema) for s in splits}
    parquet = {}
    if parquet_dir is not None:
        for s in splits:
            (parquet_dir / s).mkdir(parents=True, exist_ok=True)
            parquet[s] = pq.ParquetWriter(
                parquet_dir / s / f".part-00000.parquet.tmp-{os.getpid()}", schema, compression="zstd"
            )
    for batch in pf.iter_batches(batch_size=batch_size):
        table = pa.Table.from_batches([batch]).cast(schema)
        for s in splits:
            part = table.filter(pc.equal(table["split"], names[s]))
            if part.num_rows:
                writers[s].write(part)
                if s in parquet:
                    parquet[s].write_table(part)
    for s, w in parquet.items():
        w.close()
        os.replace(parquet_dir / s / f".part-00000.parquet.tmp-{os.getpid()}", parquet_dir / s / "part-00000.parquet")
    return {s: writers[s].close() for s in splits}


def combine_splits(sources: list[Path], dst: Path) -> dict:
    """One ``load_from_disk`` folder over the shard files of several folders of the same split (one per corpus
    version), hard-linked where the filesystem allows, else copied; for training on every version at once."""
    tmp = dst.parent / f".{dst.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files, info, rows = [], None, 0
    for i, src in enumerate(sources):
        state = json.loads((src / "state.json").read_text())
        for entry in state["_data_files"]:
            name = f"{i:04d}-{entry['filename']}"
            try:
                os.link(src / entry["filename"], tmp / name)
            except OSError:
                shutil.copyfile(src / entry["filename"], tmp / name)
            files.append(name)
        info = info or (src / "dataset_info.json").read_text()
    digests = [sha256_file(tmp / f) for f in files]
    state = {
        "_data_files": [{"filename": f} for f in files],
        "_fingerprint": hashlib.sha256("".join(digests).encode()).hexdigest()[:16],
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": None,
    }
    (tmp / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
    (tmp / "dataset_info.json").write_text(info or "{}")
    for f in files:
        with pa.OSFile(str(tmp / f)) as source:
            rows += sum(batch.num_rows for batch in pa.ipc.open_stream(source))
    atomic_replace_dir(tmp, dst)
    return {"rows": rows, "files": len(files)}

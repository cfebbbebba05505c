"""Arrow shards in the ``datasets.save_to_disk`` layout, written atomically and reproducibly.

``save_to_disk`` stamps a random fingerprint on in-memory datasets; we set it to
a hash of the content so the same rows give byte-identical files. Each split is
written to a temporary folder and renamed into place, so a killed run leaves
either the old split or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def atomic_replace_dir(tmp: Path, final: Path) -> None:
    """Swap a finished folder into place; the old one (if any) is removed only after the swap."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _table_fingerprint(table: pa.Table) -> str:
    h = hashlib.sha256(table.schema.to_string().encode())
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    h.update(sink.getvalue().to_pybytes())
    return h.hexdigest()[:16]


def write_split(parquet_path: Path, out_dir: Path, split: str, max_rows_per_shard: int) -> dict:
    """Write one split from a Parquet file of tokenized rows; return rows, tokens and shard files with sha256."""
    import datasets

    table = pq.read_table(parquet_path)
    if "split" in table.column_names:
        mask = pa.compute.equal(table["split"], split)
        table = table.filter(mask)
    ds = datasets.Dataset(table)
    ds._fingerprint = _table_fingerprint(table)
    num_shards = max(1, math.ceil(table.num_rows / max_rows_per_shard))
    final = out_dir / split
    tmp = out_dir / f".{split}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    caching = datasets.is_caching_enabled()
    datasets.disable_caching()  # no fingerprint hashing of the table per shard (slow, and dill prints bytecode)
    try:
        ds.save_to_disk(str(tmp), num_shards=num_shards)
    finally:
        if caching:
            datasets.enable_caching()
    atomic_replace_dir(tmp, final)
    files = sorted(final.glob("*.arrow"))
    tokens = int(pa.compute.sum(table["n_tokens"]).as_py() or 0) if "n_tokens" in table.column_names else None
    return {
        "rows": table.num_rows,
        "tokens": tokens,
        "shards": [{"file": f.relative_to(out_dir.parent).as_posix(), "sha256": sha256_file(f)} for f in files],
    }


def read_manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())

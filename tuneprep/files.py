"""Atomic writes and content hashes: a file under its final name is a finished file."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def tmp_name(path: Path) -> Path:
    """A hidden sibling, unique per process, that a reader never mistakes for the real file."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write_text(path: Path, text: str) -> None:
    tmp = tmp_name(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any, **kwargs: Any) -> None:
    atomic_write_text(path, json.dumps(obj, **{"indent": 2, **kwargs}) + "\n")


def atomic_replace_dir(tmp: Path, final: Path) -> None:
    """Swap a finished folder into place; the old one (if any) is removed only after the swap."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def tree_sha256(folder: Path, skip: tuple[str, ...] = ()) -> str:
    """One hash over a folder's files (names and bytes, sorted by name), for identities such as a tokenizer's."""
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.name not in skip:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()

"""Completion markers: a rerun skips the steps (and partitions) an earlier or killed run finished.

A step's marker, ``OUT/.done/<step>.json``, holds a key — the sha256 of the step's name, its slice of the
config, the code it runs (a hash of its packages' source and the library versions) and the content of
every file it reads — with the files it wrote (size, mtime, sha256) and the small summary it returned.
A rerun skips the step when the key is the same and every output is still there with the same content,
and returns the recorded summary, so the manifest comes out byte-identical. Markers are written with an
atomic rename after the outputs are complete, so a kill leaves either no marker or a true one.

Why not Prefect's cache policies: its ``INPUTS`` policy hashes a path by its name, not its content,
``TASK_SOURCE`` covers only the task function, and cached results live under ``PREFECT_HOME``. These
markers live next to the data, check the data itself, and work the same under Prefect, Dask or none.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from flows.config import PROJECT_ROOT, PipelineConfig
from tuneprep.files import atomic_write_text

MARKERS = ".done"
MARKER_FORMAT = 1
# The project code a step runs, beside its own package(s): the bottom layer and the flows glue around steps.
COMMON_CODE = ("tuneprep", "flows/steps.py", "flows/partitioned.py", "flows/markers.py", "flows/config.py")
STEP_CODE: dict[str, tuple[str, ...]] = {
    "load": ("ingest",),
    "clean": ("cleaners",),
    "dedup": ("cleaners",),
    "split": ("shards",),
    "decontaminate": ("cleaners",),
    "augment": ("augment", "cleaners"),
    "tokenizer": ("shards",),
    "tokenize": ("shards",),
    "shards": ("shards",),
    "finetune": ("finetune", "shards", "flows/finetune.py"),
}
LIBRARIES = ("polars", "pyarrow", "numpy", "xxhash", "datasets", "transformers", "tokenizers", "sentencepiece")
LIBRARIES_BY_STEP = {"clean": ("trafilatura", "resiliparse", "ftfy", "py3langid", "lxml", "beautifulsoup4"),
                     "augment": ("nltk",), "finetune": ("torch",)}  # fmt: skip


@cache
def code_version(step: str) -> str:
    """sha256 of the source a step runs (its packages, the bottom layer, the flows glue) and its libraries' versions."""
    h = hashlib.sha256()
    for rel in sorted({*COMMON_CODE, *STEP_CODE.get(step, ("",))}):
        for name, digest in _source_digests(rel):
            h.update(name.encode() + b"\0")
            h.update(digest)
    for lib in (*LIBRARIES, *LIBRARIES_BY_STEP.get(step, ())):
        h.update(_library(lib).encode())
    return h.hexdigest()


@cache
def _source_digests(rel: str) -> tuple[tuple[str, bytes], ...]:
    """(path, sha256) of each source file under ``rel``: the steps share most of them, read once a process."""
    root = PROJECT_ROOT / rel
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return tuple(
        (str(f.relative_to(PROJECT_ROOT)), hashlib.sha256(f.read_bytes()).digest())
        for f in files
        if "__pycache__" not in f.parts and f.suffix != ".pyc"
    )


@cache
def _library(lib: str) -> str:
    from importlib import metadata

    try:
        return f"{lib}=={metadata.version(lib)}\0"
    except metadata.PackageNotFoundError:
        return f"{lib} absent\0"


def config_slice(cfg: PipelineConfig, fields: Iterable[str]) -> dict:
    """The named config fields (dotted paths such as ``dedup.num_perm``) as JSON-able values."""
    data = cfg.model_dump(mode="json")
    out = {}
    for field in fields:
        value: Any = data
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[field] = value
    return out


class Digests:
    """sha256 of files and folders, remembered by (path, size, mtime) so a file is hashed once per content."""

    def __init__(self) -> None:
        self.known: dict[str, tuple[int, int, str]] = {}

    def learn(self, records: dict[str, dict]) -> None:
        for path, r in records.items():
            self.known[path] = (r["bytes"], r["mtime_ns"], r["sha256"])

    def file(self, path: Path) -> dict:
        path = path.resolve()
        st = path.stat()
        hit = self.known.get(str(path))
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            sha = hit[2]
        else:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
            sha = h.hexdigest()
            self.known[str(path)] = (st.st_size, st.st_mtime_ns, sha)
        return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}

    def of(self, path: Path) -> str:
        """A file's sha256, or one over a folder's files (relative names and their sha256s)."""
        if path.is_dir():
            h = hashlib.sha256()
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                h.update(str(f.relative_to(path)).encode() + b"\0" + self.file(f)["sha256"].encode())
            return h.hexdigest()
        return self.file(path)["sha256"]

    def unchanged(self, path: Path, recorded: dict) -> bool:
        """The file is still what was recorded: same size, and same mtime or (after a copy) same content."""
        try:
            st = path.stat()
        except OSError:
            return False
        if st.st_size != recorded["bytes"]:
            return False
        return st.st_mtime_ns == recorded["mtime_ns"] or self.file(path)["sha256"] == recorded["sha256"]


def _scratch(name: str) -> bool:
    """A temporary file or folder, or the run lock: never a step's output."""
    return ".tmp-" in name or ".sort-" in name or name.startswith(".tuneprep.lock")


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every finished file under ``root``: no markers, no temporary files."""
    out = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != MARKERS and not _scratch(d)]
        for name in filenames:
            if _scratch(name):
                continue
            p = Path(dirpath) / name
            try:
                st = p.stat()
            except OSError:
                continue
            out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


class Markers:
    """The completion markers of one output folder."""

    def __init__(self, out: str | Path, learn: bool = True) -> None:
        """``learn``: remember the digests the markers recorded, so unchanged files are not hashed again."""
        self.out = Path(out)
        self.base = self.out.resolve()
        self.root = self.out / MARKERS
        self.digests = Digests()
        if learn and self.root.is_dir():
            for f in self.root.rglob("*.json"):
                try:
                    m = json.loads(f.read_text())
                except (OSError, ValueError):
                    continue
                if isinstance(m, dict) and "outputs" in m:
                    for records in (m.get("inputs", {}), m["outputs"]):
                        self.digests.learn({str(self._abs(p)): r for p, r in records.items()})

    def path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def key(self, name: str, config: dict, inputs: Iterable[Path | str], code: str) -> tuple[str, dict]:
        """The key of a step run on these inputs (files, folders, or other identities such as URLs), and the
        files it read with their digests (remembered in the marker, so the next run need not hash them again)."""
        read: dict[str, dict] = {}
        entries = []
        for item in inputs:
            if isinstance(item, Path):
                if not item.exists():
                    entries.append([str(item), None])
                    continue
                entries.append([self._rel(item), self.digests.of(item)])
                files = [item] if item.is_file() else [p for p in item.rglob("*") if p.is_file()]
                read.update({self._rel(f): self.digests.file(f) for f in files})
            else:
                entries.append([str(item), "identity"])
        blob = json.dumps({"step": name, "config": config, "code": code, "inputs": entries}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest(), read

    def done(self, name: str, key: str) -> dict | None:
        """The marker if the step finished with this key and its outputs are still what it wrote, else None."""
        try:
            m = json.loads(self.path(name).read_text())
        except (OSError, ValueError):
            return None
        if m.get("format") != MARKER_FORMAT or m.get("key") != key:
            return None
        if not all(self.digests.unchanged(self._abs(p), r) for p, r in m["outputs"].items()):
            return None
        return m

    def snapshot(self, root: Path | None = None) -> dict[str, tuple[int, int]]:
        return _listing(root or self.out)

    def written_since(self, before: dict[str, tuple[int, int]], root: Path | None = None) -> list[Path]:
        """Files under ``root`` created or rewritten since ``before`` was taken: what a step wrote."""
        return [Path(p) for p, st in sorted(self.snapshot(root).items()) if before.get(p) != st]

    def record(
        self, name: str, key: str, outputs: Iterable[Path], result: Any, read: dict | None = None, **extra: Any
    ) -> None:
        marker = {
            "format": MARKER_FORMAT,
            "step": name,
            "key": key,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "inputs": read or {},
            "outputs": {self._rel(p): self.digests.file(p) for p in outputs},
            "result": result,
            **extra,
        }
        self.path(name).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path(name), json.dumps(marker, indent=1) + "\n")

    def recorded_outputs(self) -> set[Path]:
        """Every file some marker lists as an output (resolved), valid or not."""
        out: set[Path] = set()
        for f in self.root.rglob("*.json") if self.root.is_dir() else []:
            try:
                m = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(m, dict):
                out.update(self._abs(p) for p in m.get("outputs", {}))
        return out

    def forget(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def _rel(self, p: Path) -> str:
        """Paths inside the output folder are kept relative to it, so a moved or copied run keeps its markers."""
        p = p.resolve()
        return str(p.relative_to(self.base)) if p.is_relative_to(self.base) else str(p)

    def _abs(self, p: str) -> Path:
        return (self.base / p).resolve() if not Path(p).is_absolute() else Path(p)


# tuneprep.files.tmp_name, SplitWriter, atomic_replace_dir, sort_parquet's scratch
TEMPORARY = re.compile(r"^\..+\.(tmp|old|sort)-\d+$")


def sweep_leftovers(out: str | Path) -> list[Path]:
    """Remove the temporary files and folders a killed run left under ``out`` (never read, but they take space).

    Call it when a run starts, before anything writes: a temporary name holds a writer's pid, and only
    a dead writer's leftovers may go (one run per output folder at a time).
    """
    removed = []
    for dirpath, dirnames, filenames in os.walk(out):
        for name in [*dirnames, *filenames]:
            if TEMPORARY.match(name):
                p = Path(dirpath) / name
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
                removed.append(p)
        dirnames[:] = [d for d in dirnames if not TEMPORARY.match(d)]
    return removed


def begin_run(out: str | Path) -> None:
    """A run into ``out`` starts: clear what a killed run left half-written, and a fresh log of this run."""
    sweep_leftovers(out)
    RunLog(out).begin()


class RunLog:
    """What this run did per step — ran or reused, seconds, partitions redone — kept in ``.done/run.json``."""

    def __init__(self, out: str | Path) -> None:
        self.path = Path(out) / MARKERS / "run.json"

    def begin(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, "{}\n")

    def read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def add(self, step: str, **entry: Any) -> None:
        log = self.read()
        log[step] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(log, indent=1) + "\n")


class Timer:
    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = round(time.perf_counter() - self.t0, 3)

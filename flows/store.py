"""The corpus store that data drops grow: versions of prepared shards, a ``latest`` pointer, a ledger of files.

```
STORE/
  versions/v0001/      a prepared run folder (shards/, manifest.json, index/, splits.parquet, model/ ...)
                       plus drop.json (the files, their hashes, what became of them, the counts)
  versions/v0002/ ...
  received/v0001/      the drop's files as they were taken in (copied), one folder per inbox
  latest -> versions/v0002   the newest complete version (a symlink, swapped atomically)
  ledger.jsonl         every file taken in: sha256, where it came from, the version, accepted or quarantined
  rejected.jsonl       files of a drop that failed ``max_attempts`` times, with the error
  .lock                held by the pass that is running
```

The commit point of a drop is the swap of ``latest``: a version folder beyond ``latest`` is a drop in
progress (or one that failed), which the next pass resumes if it is about the same files. The ledger is
derived from the committed versions' ``drop.json`` and rewritten after each commit (and repaired at the
start of a pass if a crash came between the two), so it never lists a file of a half-applied drop.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from tuneprep.files import atomic_write_json, atomic_write_text, tmp_name

VERSION = re.compile(r"^v(\d{4,})$")


class StoreBusy(RuntimeError):
    """Another pass holds the store's lock."""


@dataclass
class DropFile:
    """A file found in an inbox: where it is, what it holds, and where the version keeps its copy."""

    path: str
    sha256: str
    bytes: int
    inbox: str
    relative: str  # the copy's path under received/<version>/

    def to_dict(self) -> dict:
        return asdict(self)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


class CorpusStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.versions = self.root / "versions"
        self.latest_link = self.root / "latest"
        self.ledger_path = self.root / "ledger.jsonl"
        self.rejected_path = self.root / "rejected.jsonl"
        self.received = self.root / "received"

    # -- versions ---------------------------------------------------------------------------------------------
    def latest(self) -> Path | None:
        """The newest committed version, or None before the first drop."""
        if not self.latest_link.is_symlink():
            return None
        return self.versions / Path(os.readlink(self.latest_link)).name

    def committed(self) -> list[Path]:
        """Every committed version, oldest first."""
        latest = self.latest()
        if latest is None:
            return []
        n = int(VERSION.match(latest.name).group(1))
        found = [(int(m.group(1)), d) for d in self.versions.iterdir() if (m := VERSION.match(d.name))]
        return [d for i, d in sorted(found) if i <= n]

    def next_version(self) -> Path:
        latest = self.latest()
        n = int(VERSION.match(latest.name).group(1)) if latest else 0
        return self.versions / f"v{n + 1:04d}"

    def last_model(self) -> Path | None:
        """The model of the newest committed version whose fine-tune finished."""
        for version in reversed(self.committed()):
            if (version / "model" / "metrics.json").exists():
                return version / "model"
        return None

    # -- the lock ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One pass at a time. The OS releases the lock when its holder dies, so a killed pass leaves none."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as e:
                raise StoreBusy(f"{self.root}: another drops pass is running") from e
            try:
                f.seek(0)
                f.truncate()
                f.write(f"{os.getpid()}\n")
                f.flush()
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- the ledger -------------------------------------------------------------------------------------------
    def ledger_entries(self) -> list[dict]:
        """The ledger as the committed versions define it."""
        entries = []
        for version in self.committed():
            drop = json.loads((version / "drop.json").read_text())
            entries += drop["files"]
        return entries

    def reconcile(self) -> list[dict]:
        """Rewrite ``ledger.jsonl`` from the committed versions if it differs (a crash after a commit)."""
        entries = self.ledger_entries()
        text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)
        if not self.ledger_path.exists() or self.ledger_path.read_text() != text:
            atomic_write_text(self.ledger_path, text)
        return entries

    def rejected(self) -> dict[str, dict]:
        if not self.rejected_path.exists():
            return {}
        return {r["sha256"]: r for r in map(json.loads, self.rejected_path.read_text().splitlines())}

    def reject(self, files: list[DropFile], error: str) -> None:
        """Record files that failed too often, so later passes leave them alone (they stay in the inbox)."""
        rejected = self.rejected()
        when = datetime.now(UTC).isoformat(timespec="seconds")
        for f in files:
            rejected[f.sha256] = {**f.to_dict(), "error": error, "at": when}
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejected.values())
        atomic_write_text(self.rejected_path, text)

    # -- finding and staging new files ------------------------------------------------------------------------
    def scan(self, inboxes: list[str], min_age_s: float = 0.0) -> list[DropFile]:
        """Files in the inboxes whose content the store has not taken in (or rejected), oldest inbox first.

        Hidden files and folders are skipped (uploads in progress often use them), as are files modified
        less than ``min_age_s`` ago; the same content under two names is taken once.
        """
        known = {e["sha256"] for e in self.ledger_entries()} | set(self.rejected())
        names = _inbox_names(inboxes)
        now = time.time()
        found: list[DropFile] = []
        for inbox in inboxes:
            root = Path(inbox)
            if root.exists() and not root.is_dir():
                raise NotADirectoryError(f"drops.inbox: {inbox} is not a folder")
            root.mkdir(parents=True, exist_ok=True)  # a watcher set up before its first drop arrives
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    p = Path(dirpath) / name
                    if name.startswith(".") or not p.is_file():
                        continue
                    st = p.stat()
                    if now - st.st_mtime < min_age_s:
                        continue
                    sha = sha256_of(p)
                    if sha in known:
                        continue
                    known.add(sha)
                    rel = str(Path(names[inbox]) / p.relative_to(root))
                    found.append(DropFile(str(p.resolve()), sha, st.st_size, str(root.resolve()), rel))
        return found

    def stage(self, files: list[DropFile]) -> tuple[Path, bool]:
        """The folder of the next version, with the drop's files copied into ``received/<version>/``.

        A folder left by a failed pass over the same files is kept (its completion markers let the rerun
        resume); one about other files is cleared. Returns the folder and whether it was resumed.
        """
        version = self.next_version()
        pending = version / "drop.json"
        shas = sorted(f.sha256 for f in files)
        if pending.exists():
            old = json.loads(pending.read_text())
            # "committed" here means a crash came between drop.json and the swap of latest: finish that commit
            if sorted(f["sha256"] for f in old["files"]) == shas and old.get("status") in ("pending", "committed"):
                old["attempts"] = old.get("attempts", 1) + 1
                atomic_write_json(pending, old)
                return version, True
        inputs = self.inputs(version)
        for folder in (version, inputs):
            if folder.exists():
                shutil.rmtree(folder)
        version.mkdir(parents=True)
        for f in files:
            dst = inputs / f.relative
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = tmp_name(dst)
            shutil.copyfile(f.path, tmp)
            if sha256_of(tmp) != f.sha256:  # changed while we copied: leave it for the next pass
                raise RuntimeError(f"{f.path} changed while it was being copied; it is taken on the next pass")
            os.replace(tmp, dst)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        drop = {"version": version.name, "status": "pending", "attempts": 1, "started": started,
                "files": [{**f.to_dict(), "version": version.name} for f in files]}  # fmt: skip
        atomic_write_json(pending, drop)
        return version, False

    def inputs(self, version: Path) -> Path:
        """Where a version's files are kept: beside the version, not in it (a run never reads its own folder)."""
        return self.received / version.name

    def attempts(self, version: Path) -> int:
        return json.loads((version / "drop.json").read_text()).get("attempts", 1)

    def commit(self, version: Path, summary: dict, file_status: dict[str, dict]) -> dict:
        """Make ``version`` the latest: its drop.json final, then the ``latest`` swap, then the ledger."""
        drop = json.loads((version / "drop.json").read_text())
        for f in drop["files"]:
            f.update(file_status.get(f["relative"], {"status": "accepted"}))
        drop.update(status="committed", committed=datetime.now(UTC).isoformat(timespec="seconds"), summary=summary)
        atomic_write_json(version / "drop.json", drop)
        link = self.root / f".latest.tmp-{os.getpid()}"
        link.unlink(missing_ok=True)
        link.symlink_to(Path("versions") / version.name)
        os.replace(link, self.latest_link)  # the commit: atomic on POSIX
        self.reconcile()
        return drop


def _inbox_names(inboxes: list[str]) -> dict[str, str]:
    """A folder name per inbox under received/<version>/ (its own name, numbered where two share one)."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for i, inbox in enumerate(inboxes):
        base = Path(inbox).resolve().name or f"inbox{i}"
        name = base if base not in used else f"{base}-{i}"
        used.add(name)
        names[inbox] = name
    return names

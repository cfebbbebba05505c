"""One run per output folder: a lock file naming its holder (pid, host, process start time).

Two runs writing into one folder would interleave their files. The lock is created atomically (a finished
file hard-linked into place, so it is never seen half-written) and removed when the run ends. A lock whose
holder is gone (the pid is not running, or a different process now has that pid: its start time differs)
is stale, left by a killed run, and is taken over; a lock held by a live process, or by another host
(whose processes cannot be checked from here), refuses the second run with a message saying which.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

LOCK_NAME = ".tuneprep.lock"


class LockedError(RuntimeError):
    """Another live run holds the output folder."""


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def process_start_time(pid: int) -> float | None:
    """When a process started (Unix time, to about 10 ms), from /proc; None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    boot = _boot_time()
    if boot is None:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def holder_alive(info: dict) -> bool | None:
    """Whether the lock's holder still runs: True, False, or None when it cannot be told (another host)."""
    if info.get("host") != socket.gethostname():
        return None
    pid = info.get("pid")
    if not isinstance(pid, int) or not _running(pid):
        return False
    started, now_started = info.get("started"), process_start_time(pid)
    reused = started is not None and now_started is not None and abs(now_started - started) > 1.0
    return not reused  # a pid now held by a later process is not the holder


def describe(info: dict) -> str:
    started = info.get("acquired") or info.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, int | float) else "?"
    return f"pid {info.get('pid')} on {info.get('host')}, since {when} ({info.get('command', '?')})"


class RunLock:
    """``with RunLock(out):`` holds ``out/.tuneprep.lock`` for the block; re-entrant within one process.

    ``taken_over`` tells, after entering, whether a stale lock (its holder dead) was replaced.
    """

    _held: dict[Path, int] = {}
    _guard = threading.Lock()

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.taken_over: dict | None = None

    def _key(self) -> Path:
        return self.path.resolve()

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._guard:
            key = self._key()
            if self._held.get(key):
                self._held[key] += 1
                return
            self._create()
            self._held[key] = 1

    def _create(self) -> None:
        pid = os.getpid()
        info = {
            "pid": pid,
            "host": socket.gethostname(),
            "started": process_start_time(pid),
            "acquired": time.time(),
            "command": " ".join(sys.argv)[:300],
        }
        tmp = self.path.with_name(f"{LOCK_NAME}.tmp-{pid}-{threading.get_ident()}")
        tmp.write_text(json.dumps(info) + "\n")
        try:
            for _ in range(3):
                try:
                    os.link(tmp, self.path)  # atomic: fails if a lock is there
                    return
                except FileExistsError:
                    held = self.read()
                    alive = holder_alive(held) if held is not None else False
                    if alive is None:
                        raise LockedError(
                            f"{self.folder} is locked by a run on another host ({describe(held)}); if that run is "
                            f"gone, delete {self.path}"
                        ) from None
                    if alive:
                        raise LockedError(
                            f"{self.folder} is in use by another tuneprep run ({describe(held)}); "
                            "wait for it to finish or choose another --out"
                        ) from None
                    self.taken_over = held or {}
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path)  # stale: its holder is gone
            raise LockedError(f"could not take the lock {self.path}: it keeps coming back")
        finally:
            tmp.unlink(missing_ok=True)

    def read(self) -> dict | None:
        """The lock's contents, or None when it is absent or unreadable (an unreadable lock counts as stale)."""
        try:
            info = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def release(self) -> None:
        with self._guard:
            key = self._key()
            n = self._held.get(key, 0)
            if n > 1:
                self._held[key] = n - 1
                return
            self._held.pop(key, None)
            info = self.read()
            if info is not None and info.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


__all__ = ["LOCK_NAME", "LockedError", "RunLock", "holder_alive", "process_start_time"]

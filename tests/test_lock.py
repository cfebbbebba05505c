"""One run per output folder, a killed run's lock recognised as stale, and errors before Prefect starts."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuneprep.lock import LOCK_NAME, LockedError, RunLock, process_start_time

ROOT = Path(__file__).resolve().parents[1]
HOLD = "import sys, time; from tuneprep.lock import RunLock; l = RunLock(sys.argv[1]); l.acquire(); print('held', flush=True); time.sleep(60)"


def test_a_second_run_is_refused_while_the_first_lives(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match=f"in use by another tuneprep run \\(pid {holder.pid} on"):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path) as lock:  # the holder was killed: its lock is stale and taken over
        assert lock.taken_over["pid"] == holder.pid
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_reused_pid_does_not_keep_a_lock_alive(tmp_path):
    started = process_start_time(os.getpid())
    if started is None:
        pytest.skip("no /proc here to read process start times from")
    stale = {"pid": os.getpid(), "host": socket.gethostname(), "started": started - 3600, "acquired": time.time()}
    (tmp_path / LOCK_NAME).write_text(json.dumps(stale))
    with RunLock(tmp_path) as lock:  # same pid, but a process that started an hour later: not the holder
        assert lock.taken_over["started"] == stale["started"]


def test_a_lock_from_another_host_is_not_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "started": 0.0}))
    with pytest.raises(LockedError, match="another host"):
        RunLock(tmp_path).acquire()


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with RunLock(tmp_path), RunLock(tmp_path):
        assert (tmp_path / LOCK_NAME).exists()
    assert not (tmp_path / LOCK_NAME).exists()


def _cli(*args, cwd):
    code = (
        "import sys; from flows.cli import main; rc = main(sys.argv[1:]);"
        "print('PREFECT_IMPORTED' if 'prefect' in sys.modules else 'NO_PREFECT'); sys.exit(rc)"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )


def test_cli_errors_come_before_prefect_starts(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("A document that is long enough to be read by the pipeline.")
    cases = [
        (["prepare", str(tmp_path / "missing"), "--out", str(tmp_path / "o")], "input not found"),
        (["prepare", str(data), "--out", str(data / "run")], "inside the input folder"),
        (["prepare", str(data / "a.txt"), "--out", str(data / "a.txt")], "is a file, not a folder"),
        (["prepare", str(tmp_path / "no*such*"), "--out", str(tmp_path / "o")], "matches nothing"),
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text("dedup: {threshold: 1.5}\nmax_quarantine_fraction: 2\n")
    cases.append(
        (
            ["prepare", str(data), "--out", str(tmp_path / "o"), "--config", str(bad)],
            "dedup.threshold: Input should be less than 1",
        )
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("dedup: [threshold\n")
    cases.append((["prepare", str(data), "--out", str(tmp_path / "o"), "--config", str(broken)], "not valid YAML"))
    drop = tmp_path / "drop.yaml"
    drop.write_text(f"split: {{previous: {tmp_path / 'nowhere'}}}\n")
    cases.append((["prepare", str(data), "--out", str(tmp_path / "o"), "--config", str(drop)], "split.previous"))
    for argv, message in cases:
        r = _cli(*argv, cwd=tmp_path)
        err = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(err) == 1 and message in err[0], (argv, r.stderr)
        assert r.stdout.strip() == "NO_PREFECT", argv


def test_cli_refuses_a_folder_another_run_holds(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("A document that is long enough to be read by the pipeline.")
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        r = _cli("prepare", str(data), "--out", str(out), cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 2 and "in use by another tuneprep run" in r.stderr and f"pid {holder.pid}" in r.stderr
    assert r.stdout.strip() == "NO_PREFECT"

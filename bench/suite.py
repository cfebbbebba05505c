"""Run every benchmark under bench/ and write one summary table of their headline figures.

    .venv/bin/python -m bench [--quick] [--only NAME ...] [--skip NAME ...] [--timeout S] [--list]

A benchmark is a folder ``bench/<name>/`` with a ``run.py`` (run as ``python -m bench.<name>.run``); new
ones are found by that alone. Each runs in its own process, one after the other, with its output streamed
to the terminal and to ``bench/out/logs/<name>.log``; its headline lines (``bench.common.HEADLINE``) become
rows of ``bench/out/summary.md`` (also printed) and ``bench/out/summary.json``. ``--quick`` passes
``--quick`` to the benchmarks that accept it (a short run for a smoke test: the figures are not the note's).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.common import OUT, ROOT, SKIP_EXIT, Headline, compile_project, parse_headlines

BENCH = ROOT / "bench"


@dataclass
class Bench:
    """A discovered benchmark: ``bench/<name>/run.py``."""

    name: str
    script: Path

    @property
    def module(self) -> str:
        return f"bench.{self.name}.run"

    @property
    def has_quick(self) -> bool:
        """Whether the script takes ``--quick`` (the convention for a short run)."""
        return '"--quick"' in self.script.read_text(encoding="utf-8")

    def command(self, quick: bool) -> list[str]:
        return [sys.executable, "-m", self.module, *(["--quick"] if quick and self.has_quick else [])]


@dataclass
class Result:
    name: str
    status: str  # ok | skipped | failed | timeout
    seconds: float
    quick: bool
    headlines: list[Headline] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict:
        return {**self.__dict__, "headlines": [h.to_dict() for h in self.headlines]}


def discover(root: Path = BENCH) -> list[Bench]:
    """Every ``<root>/<name>/run.py``, by name."""
    return [Bench(p.parent.name, p) for p in sorted(root.glob("*/run.py")) if not p.parent.name.startswith((".", "_"))]


def outcome(rc: int | None, output: str) -> tuple[str, str]:
    """(status, note) from a benchmark's exit status and output; ``rc=None`` means it ran out of time."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    skip = next((ln[len("skip:") :].strip() for ln in reversed(lines) if ln.startswith("skip:")), None)
    if rc is None:
        return "timeout", ""
    if rc == SKIP_EXIT or (skip is not None and rc == 0):
        return "skipped", skip or "skipped"
    if rc != 0:
        return "failed", lines[-1][:300] if lines else f"exit status {rc}"
    return "ok", ""


def run_one(bench: Bench, quick: bool, timeout: float | None, logs: Path) -> Result:
    """Run one benchmark in its own process, streaming its output to the terminal and its log."""
    cmd = bench.command(quick)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.setdefault("PYTHONUNBUFFERED", "1")
    logs.mkdir(parents=True, exist_ok=True)
    print(f"\n=== {bench.name}: {' '.join([Path(cmd[0]).name, *cmd[1:]])}", flush=True)
    t0 = time.perf_counter()
    captured: list[str] = []
    with open(logs / f"{bench.name}.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group, so a timeout also ends the workers it started
        )
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, expire) if timeout else None
        if timer:
            timer.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            captured.append(line)
            log.write(line)
            print(f"[{bench.name}] {line}", end="", flush=True)
        rc: int | None = proc.wait()
        if timer:
            timer.cancel()
        if expired.is_set():
            rc = None
    output = "".join(captured)
    status, note = outcome(rc, output)
    return Result(
        bench.name, status, time.perf_counter() - t0, quick and bench.has_quick, parse_headlines(output), note
    )


def table(results: list[Result]) -> str:
    """One markdown row per headline (a benchmark without one gets a row with its status)."""
    rows = [
        "| bench | headline | figure | target | met | status | minutes |",
        "|---|---|---:|---|:-:|---|---:|",
    ]
    for r in results:
        status = r.status + (" (quick)" if r.quick else "") + (f": {r.note}" if r.note else "")
        minutes = f"{r.seconds / 60:.1f}"
        if not r.headlines:
            rows.append(f"| {r.name} | — | | | | {status} | {minutes} |")
        for h in r.headlines:
            met = {True: "yes", False: "**no**", None: ""}[h.met]
            rows.append(f"| {r.name} | {h.what} | {h.figure_text} | {h.target_text} | {met} | {status} | {minutes} |")
    return "\n".join(rows)


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def summary(results: list[Result], quick: bool, started: datetime, load: tuple[float, float]) -> str:
    mode = "quick runs (`--quick`: smoke figures, not the note's)" if quick else "full runs"
    head = (
        f"# Benchmark summary\n\n{started:%Y-%m-%d %H:%M} UTC, commit {_git_commit()}, {mode}; "
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} at the start and {load[1]:.1f} at the end; "
        f"Python {platform.python_version()}. Ratios are measured side by side within each benchmark; "
        "logs in `bench/out/logs/`.\n\n"
    )
    return head + table(results) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="pass --quick to the benchmarks that take it")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    ap.add_argument("--skip", nargs="+", default=[], metavar="NAME", help="leave these out")
    ap.add_argument("--timeout", type=float, help="seconds allowed per benchmark")
    ap.add_argument("--list", action="store_true", help="list the benchmarks found and exit")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    benches = discover()
    known = {b.name for b in benches}
    unknown = sorted(set(args.only or []) - known | set(args.skip) - known)
    if unknown:
        ap.error(f"no benchmark named {', '.join(unknown)}; found {', '.join(sorted(known))}")
    benches = [b for b in benches if (not args.only or b.name in args.only) and b.name not in args.skip]
    if args.list:
        for b in benches:
            print(f"{b.name:12s} python -m {b.module}{'   (has --quick)' if b.has_quick else ''}")
        return 0
    compile_project()  # every benchmark's processes load tuneprep's bytecode, as they load the baselines'
    started = datetime.now(UTC)
    load0 = os.getloadavg()[0]
    results = [run_one(b, args.quick, args.timeout, args.out / "logs") for b in benches]
    text = summary(results, args.quick, started, (load0, os.getloadavg()[0]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text(text, encoding="utf-8")
    (args.out / "summary.json").write_text(
        json.dumps(
            {"started": started.isoformat(), "quick": args.quick, "results": [r.to_dict() for r in results]}, indent=1
        ),
        encoding="utf-8",
    )
    print("\n" + text)
    print(f"wrote {(args.out / 'summary.md').relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 1 if any(r.status in ("failed", "timeout") for r in results) else 0

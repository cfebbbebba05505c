"""Back-translation on real text: tuneprep's apertium backend against the raw apertium pipe, side by side.

    .venv/bin/python -m bench.augment.backtranslation [--sentences 4000] [--repeats 3] [--workers 2] [--quick]

The corpus is banking77 customer queries and Bitext customer-support instructions from ``../shared/data``
(two thirds banking77, one third Bitext; attribution in bench/README.md#data). Each repeat times, one after the
other on the same machine:

- **raw**: ``apertium -u eng-spa | apertium -u spa-eng`` as one shell pipeline over all the sentences, one per
  paragraph: the fastest way to run apertium by hand (both directions' processes run at once);
- **tuneprep**: ``BackTranslator(ApertiumBackend(workers=W))`` with the pipeline's fact rules on, called on
  chunks of 256 sentences as the augment stage calls it, from a cold start (processes started inside the
  timing, closed at its end).

Both sides' CPU is counted from ``getrusage`` (ours: this process and every child; the raw pipe: its children),
so the report gives sentences/s, sentences per CPU-second, and the cores each kept busy (CPU s / wall s).
Writes ``bench/out/backtranslation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from bench.common import DATA, OUT, headline, skip

CHUNK = 256  # flows.steps.AUGMENT_CHUNK_ROWS: the augment stage's call size
PAIR_FILES = (
    DATA / "banking77" / "train.csv",
    DATA / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv",
)


def corpus(n: int) -> list[str]:
    """``n`` real sentences, two banking77 queries for each Bitext instruction, interleaved, newlines kept."""
    from bench.realdata import banking77, bitext

    bank = [r.text for r in banking77(splits=("train",))]
    instr = [e.instruction for e in bitext()]
    out: list[str] = []
    i = j = 0
    while len(out) < n and (i < len(bank) or j < len(instr)):
        for _ in range(2):
            if i < len(bank) and len(out) < n:
                out.append(bank[i])
                i += 1
        if j < len(instr) and len(out) < n:
            out.append(instr[j])
            j += 1
    return out


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(fn: Callable[[], object]) -> tuple[float, float, object]:
    """(wall s, CPU s of this process and its waited-for children, result)."""
    c0, t0 = _cpu(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, _cpu() - c0, out


def raw_pipe(texts: list[str]) -> list[str]:
    """The baseline: both directions as one shell pipeline over the sentences, one paragraph each."""
    data = "\n\n".join(" ".join(t.split()) for t in texts) + "\n"
    proc = subprocess.run(
        "apertium -u eng-spa | apertium -u spa-eng",
        shell=True,
        input=data.encode("utf-8"),
        capture_output=True,
        check=True,
    )
    return proc.stdout.decode("utf-8").split("\n\n")


BUSY_LOOP = "import sys\nx = 0\nfor i in range(int(sys.argv[1])):\n    x += i * i\n"


def two_process_ratio(loops: int = 3_000_000) -> float:
    """How many cores two CPU-bound processes get here: 2 x (one alone's wall time) / (two at once's wall time).

    2.0 on two free cores; on a machine shared with other jobs, what a second worker can add at best."""

    def wall(n: int) -> float:
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(loops)]) for _ in range(n)]
        for p in procs:
            p.wait()
        return time.perf_counter() - t0

    return 2 * wall(1) / wall(2)


def startup_cpu(workers: int) -> float:
    """CPU seconds (children included) a fresh backend with ``workers`` pairs spends to translate one sentence:
    the fixed cost a timed run pays once per pair (the raw pipe pays it once)."""
    from augment import ApertiumBackend

    def one() -> None:
        backend = ApertiumBackend(workers=workers, unit=1)  # one sentence per worker: every pair starts
        try:
            backend.pool.round_trip(["Hello there."] * workers, None)
        finally:
            backend.close()  # children count once waited for

    _, cpu, _ = measure(one)
    return cpu


def ours(texts: list[str], workers: int) -> list[object]:
    """tuneprep's back-translation as the augment stage runs it: fact rules on, 256-sentence calls, cold start."""
    from augment import ApertiumBackend, BackTranslator, seed_for
    from augment.config import ProtectConfig
    from augment.facts import rules_of

    bt = BackTranslator(ApertiumBackend(workers=workers), rules=rules_of(ProtectConfig()))
    out: list[object] = []
    try:
        for c in range(0, len(texts), CHUNK):
            chunk = texts[c : c + CHUNK]
            out += bt(chunk, [seed_for(f"s{c + i}", 0, "backtranslation") for i in range(len(chunk))])
    finally:
        bt.close()
    return out


def run(sentences: int = 4000, repeats: int = 3, workers: int = 2, quick: bool = False) -> dict | None:
    """Time both sides ``repeats`` times, alternating; print the table and headlines; None when it cannot run."""
    from augment.resources import apertium_available

    if quick:
        sentences, repeats = min(sentences, 600), 1
    if not all(p.exists() for p in PAIR_FILES):
        print(f"back-translation on real text: not measured (no data under {DATA})", file=sys.stderr)
        return None
    if not (apertium_available("eng-spa") and apertium_available("spa-eng")):
        print("back-translation on real text: not measured (apertium-eng-spa not installed)", file=sys.stderr)
        return None
    import augment.backtranslate  # noqa: F401 - imports are not what is timed
    import augment.facts  # noqa: F401

    texts = corpus(sentences)
    sides: dict[str, Callable[[], object]] = {
        "raw apertium pipe": lambda: raw_pipe(texts),
        f"tuneprep, workers={workers}": lambda: ours(texts, workers),
    }
    if workers != 1:
        sides["tuneprep, workers=1"] = lambda: ours(texts, 1)
    ours(texts[:20], 1)  # warm: lazy imports and first-use caches are not what is timed
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
    outputs: dict[str, object] = {}
    cores: list[float] = []
    for r in range(repeats):
        cores.append(two_process_ratio())
        print(f"repeat {r + 1}: two CPU-bound processes get {cores[-1]:.2f} cores", file=sys.stderr, flush=True)
        for name, fn in sides.items():
            wall, cpu, out = measure(fn)
            runs[name].append((wall, cpu))
            outputs[name] = out
            print(f"repeat {r + 1}: {name}: {wall:.2f} s wall, {cpu:.2f} s CPU", file=sys.stderr, flush=True)
    rows = []
    for name, times in runs.items():
        wall = statistics.median(t for t, _ in times)
        cpu = statistics.median(c for _, c in times)
        rows.append(
            {
                "side": name,
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3),
                "sentences_per_s": round(len(texts) / wall, 1),
                "sentences_per_cpu_s": round(len(texts) / cpu, 1),
                "cores_busy": round(cpu / wall, 2),
            }
        )
    cores.append(two_process_ratio())
    ours_out = outputs[f"tuneprep, workers={workers}"]
    made = sum(isinstance(o, str) for o in ours_out)  # type: ignore[union-attr]
    report = {
        "sentences": len(texts),
        "mean_words": round(sum(len(t.split()) for t in texts) / len(texts), 1),
        "repeats": repeats,
        "cpu_count": os.cpu_count(),
        "variants_made": made,
        "rows": rows,
        "two_process_cores": [round(c, 2) for c in cores],
        "startup_cpu_s": {w: round(startup_cpu(w), 3) for w in sorted({1, workers})},
        "raw_pipe_startup_cpu_s": round(measure(lambda: raw_pipe(["Hello there."]))[1], 3),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "backtranslation.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(render(report))
    raw, best = rows[0], rows[1]
    headline(
        best["sentences_per_s"] / raw["sentences_per_s"],
        "x",
        f"back-translation, tuneprep apertium ({workers} workers) / raw apertium pipe sentences/s, real text",
        ">",
        1,
    )
    headline(statistics.median(cores), "", "cores two CPU-bound processes got during the back-translation run (of 2)")
    for row in rows[1:]:
        headline(
            row["sentences_per_cpu_s"] / raw["sentences_per_cpu_s"],
            "x",
            f"back-translation, {row['side']} / raw apertium pipe sentences per CPU-second, real text",
            ">=",
            0.9,
        )
    return report


def render(report: dict) -> str:
    lines = [
        f"back-translation eng-spa-eng, {report['sentences']:,} real sentences (banking77 + Bitext instructions, "
        f"{report['mean_words']} words on average), median of {report['repeats']}, {report['cpu_count']} CPUs",
        "",
        "| side | sentences/s | sentences per CPU-s | cores busy | wall s | CPU s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['side']} | {r['sentences_per_s']:,.0f} | {r['sentences_per_cpu_s']:,.0f} | {r['cores_busy']:.2f} | "
            f"{r['wall_s']:.2f} | {r['cpu_s']:.2f} |"
        )
    lines.append(f"\nvariants made (not None): {report['variants_made']:,} of {report['sentences']:,}")
    lines.append(
        "two CPU-bound processes got "
        + ", ".join(f"{c:.2f}" for c in report["two_process_cores"])
        + " cores (before each repeat and after the last; 2.00 = two free cores)"
    )
    start = ", ".join(f"{w} worker(s) {c:.2f} s" for w, c in report["startup_cpu_s"].items())
    lines.append(
        f"start-up CPU (one sentence through a fresh backend): {start}; raw pipe {report['raw_pipe_startup_cpu_s']:.2f} s"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="600 sentences, one repeat (a smoke test)")
    args = ap.parse_args(argv)
    return run(args.sentences, args.repeats, args.workers, args.quick)


if __name__ == "__main__":
    if main() is None:
        skip("apertium-eng-spa or the real data (../shared/data) is missing")

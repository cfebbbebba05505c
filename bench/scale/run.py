"""Scale-out: the same corpus prepared with 1 and with 2 Dask workers; the partitioned steps should scale.

The partitioned steps (cleaning with the MinHash signatures, augmentation, tokenization) run one Prefect
task per partition on a Dask local cluster (``runner.kind: dask``, through prefect-dask). Each worker
is one process with one thread (and its polars/BLAS/tokenizers pools capped at one thread), so N
workers use N cores. The baseline is the same flow with 1 worker, measured in the same run; rounds
alternate 1 and 2 workers so machine noise hits both. Shards must come out byte-identical.

Corpus: real text from ../shared/data — banking77 queries, Bitext support instruction/response pairs,
Taskmaster-4 coffee dialogues and trafilatura's 134 evaluation web pages (run with default settings).

    python -m bench.scale.run [--data ../shared/data] [--partition-rows 1000] [--rounds 2] [--local] [--bt-workers 1]

Back-translation already runs `augment.backtranslation.workers` Apertium pipelines (default 2) inside each
worker, so with one Dask worker the augment step uses both cores; `--bt-workers 1` sets one pipeline per
worker, which measures what Dask's partitions alone gain.

The ratio printed last is the partitioned steps' wall time with 1 worker over that with 2 (target >= 1.7).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import headline

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out" / "scale"
PARALLEL = ("clean", "augment", "tokenize")


def _spin(n: int) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x ^= i * i
    return time.perf_counter() - t0


def capacity(n: int = 20_000_000) -> float:
    """How much faster two processes get a fixed amount of CPU work done than one: the ceiling for any
    2-worker speed-up on this machine right now (2.0 when two cores are free for this session; on a
    machine busy with other jobs, and with the kernel's per-session fair share, it can be near 1)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.map(_spin, [1000, 1000])  # start both processes before timing
        t0 = time.perf_counter()
        pool.map(_spin, [n], chunksize=1)
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        pool.map(_spin, [n // 2, n // 2], chunksize=1)
        two = time.perf_counter() - t0
    return round(one / two, 2)


def corpus(data: Path, work: Path) -> list[str]:
    """The inputs: three real datasets as they are, and Taskmaster's dialogues as chat JSONL."""
    files = [
        data / "banking77" / "train.csv",
        data / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv",
        data / "trafilatura_eval_en" / "html",
    ]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise SystemExit(f"bench/scale needs ../shared/data (not found: {', '.join(missing)})")
    chats = work / "taskmaster"
    chats.mkdir(parents=True, exist_ok=True)
    with open(chats / "coffee.jsonl", "w", encoding="utf-8") as f:
        for d in json.loads((data / "taskmaster4_coffee" / "data_07.json").read_text()):
            msgs = [{"role": u["speaker"], "content": u["text"]} for u in d["utterances"]]
            f.write(json.dumps({"messages": msgs, "label": "coffee"}) + "\n")
    return [str(f) for f in files] + [str(chats)]


def shard_digest(out: Path) -> str:
    h = hashlib.sha256()
    for f in sorted((out / "shards").rglob("*")):
        if f.is_file():
            h.update(f.relative_to(out).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def prepare_once(config: dict, out: Path) -> dict:
    """One prepare flow run into a fresh folder; seconds per step, as timings.json records them."""
    from flows.config import PipelineConfig
    from flows.prepare import prepare_flow

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    prepare_flow(config=PipelineConfig.model_validate(config), out=str(out))
    total = time.perf_counter() - t0
    steps = json.loads((out / "timings.json").read_text())["steps"]
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "total_s": round(total, 2),
        "steps_s": {k: v["seconds"] for k, v in steps.items()},
        "parallel_s": round(sum(steps[s]["seconds"] for s in PARALLEL), 2),
        "partitions": {s: steps[s]["partitions"] for s in PARALLEL},
        "records": manifest["stages"][0]["read"],
        "shards_sha256": shard_digest(out),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--partition-rows", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--local", action="store_true", help="also time the in-process runner (no Dask)")
    ap.add_argument("--bt-workers", type=int, help="augment.backtranslation.workers (default: the config's)")
    args = ap.parse_args()

    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="tuneprep-bench-prefect-"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from prefect.testing.utilities import prefect_test_harness

    OUT.mkdir(parents=True, exist_ok=True)
    inputs = corpus(args.data, OUT / "inputs")
    base = {"name": "scale", "inputs": inputs, "runner": {"partition_rows": args.partition_rows}}
    if args.bt_workers:
        base["augment"] = {"backtranslation": {"workers": args.bt_workers}}
    results: dict[str, list[dict]] = {"1": [], "2": []}
    ceiling = [capacity()]
    with prefect_test_harness(server_startup_timeout=180):  # one API server for the flow and every worker
        if args.local:
            results["local"] = [prepare_once(base, OUT / "local")]
        for r in range(args.rounds):
            for n in ("1", "2") if r % 2 == 0 else ("2", "1"):
                cfg = {**base, "runner": {**base["runner"], "kind": "dask", "workers": int(n)}}
                results[n].append(prepare_once(cfg, OUT / f"workers-{n}"))
                print(f"round {r + 1}, {n} worker(s): {results[n][-1]['steps_s']}", file=sys.stderr, flush=True)

    ceiling.append(capacity())
    digests = {x["shards_sha256"] for rs in results.values() for x in rs}
    one, two = (statistics.median(x["parallel_s"] for x in results[n]) for n in ("1", "2"))
    per_step = {
        s: round(statistics.median(x["steps_s"][s] for x in results["1"]) / statistics.median(
            x["steps_s"][s] for x in results["2"]), 2)
        for s in PARALLEL
    }  # fmt: skip
    summary = {
        "records": results["1"][0]["records"],
        "partition_rows": args.partition_rows,
        "bt_workers": args.bt_workers,
        "cpus": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
        "two_process_ceiling": ceiling,  # before and after the runs
        "runs": results,
        "parallel_s": {"1": one, "2": two},
        "per_step_ratio": per_step,
        "shards_identical": len(digests) == 1,
        "ratio": round(one / two, 3),
    }
    (OUT / f"result{f'-bt{args.bt_workers}' if args.bt_workers else ''}.json").write_text(json.dumps(summary, indent=2))
    print(f"corpus: {summary['records']:,} records; partitions of {args.partition_rows} records")
    print(f"{'step':10s} {'1 worker':>10s} {'2 workers':>10s} {'ratio':>7s}")
    for s in PARALLEL:
        a = statistics.median(x["steps_s"][s] for x in results["1"])
        b = statistics.median(x["steps_s"][s] for x in results["2"])
        print(f"{s:10s} {a:10.1f} {b:10.1f} {a / b:7.2f}")
    if "local" in results:
        print(f"in-process runner (no Dask): partitioned steps {results['local'][0]['parallel_s']:.1f} s")
    print(f"shards byte-identical across runs: {summary['shards_identical']}")
    print(f"this machine now: 2 processes do CPU work {ceiling[0]:.2f}x / {ceiling[1]:.2f}x as fast as 1 "
          "(before / after the runs; 2.0 = two free cores)")  # fmt: skip
    print(f"partitioned steps, 1 worker / 2 workers: {one:.1f} s / {two:.1f} s = {summary['ratio']:.2f}x")
    headline(summary["ratio"], "x", "partitioned steps, 1 Dask worker / 2 workers wall time", ">=", 1.7)


if __name__ == "__main__":
    main()

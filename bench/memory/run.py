"""Peak memory of the data pipeline against input size: it should stay flat.

Generates a synthetic corpus (JSONL parts of about 100 MB of English-like text,
deterministic), then runs the whole data part (``flows.steps.prepare``:
load, clean, dedup, split, decontaminate, tokenizer training, tokenize, shards)
in a fresh process per input size and records each step's own peak RSS (the
kernel's high-water mark, reset before every step) and what the step left
allocated; the run's peak is the largest step peak. Off here, all of them stateless batch-in/batch-out stages: augmentation
(back-translation runs at a few hundred sentences/s, hours for 2 GB), and the
language and quality filters (the generated word salad is not English and they
would drop all of it).

    python -m bench.memory.run [--sizes-mb 200 2000] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import headline

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out" / "memory"
PART_MB = 100


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_step_peak() -> None:
    """Linux resets the process's peak RSS (VmHWM) on "5" written to clear_refs: peaks per step."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def make_vocab(rng: np.random.Generator, n: int = 30_000) -> np.ndarray:
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    p = np.linspace(12, 1, len(letters))
    p /= p.sum()
    lengths = rng.integers(2, 11, size=n)
    return np.array(["".join(rng.choice(letters, size=k, p=p)) for k in lengths])


def write_part(path: Path, seed: int, vocab: np.ndarray, target_bytes: int) -> int:
    """One JSONL part of documents: Zipf-distributed words in sentences and paragraphs."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, len(vocab) + 1)
    probs = 1 / ranks**1.1
    probs /= probs.sum()
    written = docs = 0
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        while written < target_bytes:
            words = vocab[rng.choice(len(vocab), size=int(rng.integers(80, 600)), p=probs)]
            cuts = np.sort(rng.choice(np.arange(8, len(words)), size=max(1, len(words) // 14), replace=False))
            sentences = [" ".join(s).capitalize() + "." for s in np.split(words, cuts) if len(s)]
            paras = ["\n\n" if i and i % 5 == 0 else " " for i in range(len(sentences))]
            text = "".join(p + s for p, s in zip(paras, sentences, strict=True)).strip()
            line = json.dumps({"text": text, "label": f"topic{int(rng.integers(0, 8))}"}) + "\n"
            f.write(line)
            written += len(line)
            docs += 1
    os.replace(tmp, path)
    return docs


def ensure_corpus(total_mb: int) -> list[Path]:
    corpus = OUT / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    vocab = make_vocab(np.random.default_rng(0))
    parts = []
    for i in range(-(-total_mb // PART_MB)):
        p = corpus / f"part-{i:04d}.jsonl"
        if not p.exists():
            t0 = time.perf_counter()
            write_part(p, 1000 + i, vocab, PART_MB * 1_000_000)
            print(f"  wrote {p.name} in {time.perf_counter() - t0:.0f}s", flush=True)
        parts.append(p)
    return parts


def child(inputs: list[str], out: str) -> None:
    """Run the data pipeline step by step, recording the process's peak RSS after each."""
    from flows import steps as pipeline
    from flows.config import PipelineConfig
    from flows.layout import RunPaths
    from flows.manifest import finish

    cfg = PipelineConfig.model_validate(
        {
            "inputs": inputs,
            "clean": {"language": {"enabled": False}, "quality": {"enabled": False}},
            "augment": {"enabled": False},
            "tokenizer": {"vocab_size": 8000},
        }
    )
    paths = RunPaths(out).make()
    steps, results = [], {}
    t_all = time.perf_counter()
    for name in pipeline.STEPS:
        t0 = time.perf_counter()
        reset_step_peak()
        results[name] = pipeline.run_step(name, cfg, paths, lambda _m: None)
        steps.append(
            {
                "step": name,
                "seconds": round(time.perf_counter() - t0, 1),
                "step_peak_mb": round(_status_mb("VmHWM")),  # this step's own peak (after the reset)
                "after_mb": round(_status_mb("VmRSS")),  # what it left allocated for the next step
            }
        )
        print(json.dumps(steps[-1]), file=sys.stderr, flush=True)
    manifest = finish(cfg, paths, results)
    print(
        json.dumps(
            {
                "steps": steps,
                "seconds": round(time.perf_counter() - t_all, 1),
                "peak_rss_mb": max(s["step_peak_mb"] for s in steps),
                "docs": manifest["stages"][0]["read"],
                "accounting_ok": manifest["accounting"]["ok"],
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes-mb", type=int, nargs="+", default=[200, 2000])
    ap.add_argument("--keep", action="store_true", help="keep each run's output folder")
    ap.add_argument("--quick", action="store_true", help="100 and 300 MB instead of 200 and 2,000 MB")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.out)
        return
    if args.quick:
        args.sizes_mb = [100, 300]
    print(f"corpus: up to {max(args.sizes_mb)} MB in {PART_MB} MB parts under {OUT / 'corpus'}", flush=True)
    parts = ensure_corpus(max(args.sizes_mb))
    rows = []
    for mb in args.sizes_mb:
        inputs = [str(p) for p in parts[: max(1, mb // PART_MB)]]
        run_out = OUT / f"run-{mb}mb"
        shutil.rmtree(run_out, ignore_errors=True)
        print(f"running the pipeline on {mb} MB ...", flush=True)
        log = OUT / f"run-{mb}mb.log"  # per-step progress, readable while it runs
        with open(log, "w") as err:
            proc = subprocess.run(
                [sys.executable, "-m", "bench.memory.run", "--child", *inputs, "--out", str(run_out)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        if proc.returncode != 0:
            sys.exit(f"pipeline failed on {mb} MB:\n{log.read_text()[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append({"input_mb": mb, **result})
        if not args.keep:
            shutil.rmtree(run_out, ignore_errors=True)
    print(f"\n{'input':>8}{'docs':>11}{'seconds':>9}{'peak RSS MB':>13}   each step's own peak RSS (MB)")
    for r in rows:
        per_step = " ".join(f"{s['step']}={s['step_peak_mb']}" for s in r["steps"])
        print(f"{r['input_mb']:>6}MB{r['docs']:>11,}{r['seconds']:>9.0f}{r['peak_rss_mb']:>13,}   {per_step}")
    ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    print(f"peak RSS {rows[-1]['input_mb']} MB / {rows[0]['input_mb']} MB input: {ratio:.2f}x (target <= 1.25x)")
    for a, b in zip(rows[0]["steps"], rows[-1]["steps"], strict=True):
        print(
            f"  {a['step']:>14}: {a['step_peak_mb']:>6} -> {b['step_peak_mb']:>6} MB ({b['step_peak_mb'] / a['step_peak_mb']:.2f}x)"
        )
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "out" / "memory.json").write_text(json.dumps({"rows": rows, "ratio": ratio}, indent=2))
    size = f"{rows[-1]['input_mb']:,} MB / {rows[0]['input_mb']:,} MB input"
    headline(ratio, "x", f"peak RSS of the data pipeline, {size}", "<=", 1.25)


if __name__ == "__main__":
    main()

"""Near-dedup benchmark: tuneprep's MinHashDeduper against datatrove's MinHash pipeline on one generated corpus.

    .venv/bin/python -m bench.dedup.run [--docs 20000] [--seed 0] [--repeat 2] [--methods ...]

Every method runs in its own subprocess (so peak RSS is its own high-water mark), end to end from
the corpus JSONL on disk to deduplicated output on disk; rounds alternate the order of methods so
that load from other processes on the machine hits all of them alike. Quality is judged against the
planted pairs: recall per true-Jaccard band, precision per band of the removed doc's true Jaccard to
the doc it was matched to (tuneprep: `detail`; datatrove: its cluster's kept doc), and false removals
(a removed doc whose planted family has no kept member). Results go to bench/out/dedup.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import headline, skip
from bench.dedup.corpus import Corpus, generate, jaccard

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"
BANDS = [(0.0, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.0)]
CORPUS_VERSION = 2  # bump when the generator changes, so cached corpora are rebuilt

# name -> (kind, settings). "matched": tuneprep on datatrove's shingling (word 5-grams) with its threshold set to
# the midpoint of datatrove's 14x8 S-curve, (1/14)**(1/8) = 0.72, and candidates verified as usual.
# "14x8": datatrove's exact decision rule (112 permutations, 14 bands x 8 rows, any band collision is a duplicate,
# no verification), i.e. the same work, for a like-for-like speed comparison.
METHODS: dict[str, tuple[str, dict]] = {
    "tuneprep": ("tuneprep", {}),
    "tuneprep-matched": ("tuneprep", {"ngram": 5, "threshold": 0.72}),
    "tuneprep-14x8": ("tuneprep", {"ngram": 5, "num_perm": 112, "bands": 14, "rows": 8, "threshold": 0.01}),
    "datatrove": ("datatrove", {}),
    "datatrove-sha1": ("datatrove", {"hash_fc": "sha1"}),
    "datatrove-split": ("datatrove", {"tokenizer": "split"}),
    "tuneprep-rensa": ("tuneprep", {"sketch": "rensa"}),
    "datasketch": ("datasketch", {"ngram": 3, "threshold": 0.7, "num_perm": 128}),
}
# datatrove in the middle, so tuneprep runs both before and after it.
DEFAULT_METHODS = ["tuneprep", "tuneprep-matched", "datatrove", "tuneprep-14x8"]
NEEDS = {"datatrove": "datatrove", "datasketch": "datasketch", "rensa": "rensa"}  # kind/sketch -> module to import
SLOW = {"datatrove", "datasketch"}  # kinds that take minutes at 20k docs: run --slow-repeat times


# --- workers (run in a subprocess) ----------------------------------------------------------------------------


def _cpu() -> float:
    """User + system CPU seconds of this worker and its waited-for children: load from other jobs barely moves it."""
    return sum(
        r.ru_utime + r.ru_stime
        for r in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def _peak_rss_mib() -> float:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_kb, child_kb) / 1024


def work_tuneprep(corpus: Path, work: Path, settings: dict) -> dict:
    """Read JSONL, run MinHashDeduper over 2048-record batches in order and stream kept and dropped records to
    Parquet, as the pipeline's dedup step does; save the index at the end."""
    import polars as pl

    from cleaners.config import DedupConfig
    from cleaners.dedup import MinHashDeduper
    from tuneprep.records import conform
    from tuneprep.runner import ParquetSink

    t0, c0 = time.perf_counter(), _cpu()
    dd = MinHashDeduper(DedupConfig(**settings))
    kept, dropped = ParquetSink(work / "kept.parquet"), ParquetSink(work / "dropped.parquet")
    removed: dict[str, str] = {}
    extra = [pl.lit("bench").alias("source"), pl.lit("text").alias("format")]
    with corpus.open("rb") as f:  # streamed 2048 lines at a time, as datatrove's reader streams
        while lines := list(itertools.islice(f, 2048)):
            out = dd(conform(pl.read_ndjson(io.BytesIO(b"".join(lines))).with_columns(extra)))
            kept.write(out.kept)
            dropped.write(out.dropped)
            removed.update(zip(out.dropped["id"].to_list(), out.dropped["detail"].to_list(), strict=True))
    kept.close()
    dropped.close()
    dd.save(work / "near.idx")
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "removed": removed,
        "config": dd.cfg.model_dump(),
        "lsh": list(dd.cfg.lsh_params()),
    }


def work_datatrove(corpus: Path, work: Path, settings: dict) -> dict:
    """All four datatrove MinHash stages on local folders, one task at a time, as its example scripts run them."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.logging import logger

    logger.remove()  # its per-stage logs go to logging_dir; keep the terminal quiet
    settings = dict(settings)
    extra = {"language": _SplitTokenizer()} if settings.pop("tokenizer", None) == "split" else {}
    cfg = MinhashConfig(hash_config=HashConfig(**settings)) if settings else MinhashConfig()
    src = corpus.parent
    logs = work / "logs"
    t0, c0 = time.perf_counter(), _cpu()

    def run(pipeline: list, tasks: int, name: str) -> None:
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(logs / name)).run()

    signature = MinhashDedupSignature(output_folder=str(work / "sigs"), config=cfg, **extra)
    run([JsonlReader(str(src)), signature], 1, "sigs")
    run(
        [MinhashDedupBuckets(input_folder=str(work / "sigs"), output_folder=str(work / "buckets"), config=cfg)],
        cfg.num_buckets,
        "buckets",
    )
    run(
        [
            MinhashDedupCluster(
                input_folder=str(work / "buckets"), output_folder=str(work / "remove"), config=cfg, save_cluster_id=True
            )
        ],
        1,
        "cluster",
    )
    run(
        [
            JsonlReader(str(src)),
            MinhashDedupFilter(
                input_folder=str(work / "remove"),
                exclusion_writer=JsonlWriter(str(work / "removed")),
                load_cluster_ids=True,
            ),
            JsonlWriter(str(work / "output")),
        ],
        1,
        "filter",
    )
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    removed = _datatrove_matches(work)
    return {"seconds": seconds, "cpu_seconds": cpu, "removed": removed, "config": {"minhash": str(cfg)}}


def _SplitTokenizer() -> object:  # noqa: N802 - a factory, so datatrove is imported only in its worker
    """datatrove's best case: `str.split` instead of spaCy (its text is already lowercased, punctuation removed)."""
    from datatrove.utils.word_tokenizers import WordTokenizer

    class SplitTokenizer(WordTokenizer):
        def word_tokenize(self, text: str) -> list[str]:
            return text.split()

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            raise NotImplementedError

        def sent_tokenize(self, text: str) -> list[str]:
            raise NotImplementedError

    return SplitTokenizer()


def _datatrove_matches(work: Path) -> dict[str, str]:
    """Removed id -> the kept id of its cluster (datatrove keeps one doc per cluster)."""
    import gzip

    def read(folder: Path) -> list[dict]:
        rows: list[dict] = []
        for f in sorted(folder.glob("*.jsonl.gz")):
            with gzip.open(f, "rt", encoding="utf-8") as fh:
                rows.extend(json.loads(line) for line in fh)
        return rows

    keeper = {
        r["metadata"]["minhash_cluster_id"]: r["id"]
        for r in read(work / "output")
        if r["metadata"].get("minhash_cluster_id", -1) != -1
    }
    return {r["id"]: keeper.get(r["metadata"]["minhash_cluster_id"]) for r in read(work / "removed")}


def work_datasketch(corpus: Path, work: Path, settings: dict) -> dict:
    """datasketch MinHash + MinHashLSH, keep-first with verification, word n-grams as tuneprep tokenises them."""
    import re

    import polars as pl
    from datasketch import MinHash, MinHashLSH

    word = re.compile(r"\w+")
    t0, c0 = time.perf_counter(), _cpu()
    df = pl.read_ndjson(corpus)
    n, thr, perm = settings["ngram"], settings["threshold"], settings["num_perm"]
    lsh = MinHashLSH(threshold=thr, num_perm=perm)
    sigs: dict[str, MinHash] = {}
    removed: dict[str, str] = {}
    for rid, text in zip(df["id"].to_list(), df["text"].to_list(), strict=True):
        toks = word.findall(text.lower())
        grams = {" ".join(toks[i : i + n]).encode() for i in range(max(1, len(toks) - n + 1))}
        m = MinHash(num_perm=perm)
        m.update_batch(list(grams))
        best = max(((m.jaccard(sigs[k]), k) for k in lsh.query(m)), default=None, key=lambda t: t[0])
        if best is not None and best[0] >= thr:
            removed[rid] = best[1]
        else:
            lsh.insert(rid, m)
            sigs[rid] = m
    df.filter(~pl.col("id").is_in(list(removed))).write_parquet(work / "kept.parquet")
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": _cpu() - c0, "removed": removed, "config": settings}


WORKERS = {"tuneprep": work_tuneprep, "datatrove": work_datatrove, "datasketch": work_datasketch}


def worker_main(method: str, corpus: Path, result: Path) -> None:
    kind, settings = METHODS[method]
    with tempfile.TemporaryDirectory(prefix=f"dedup-{method}-") as tmp:
        res = WORKERS[kind](corpus, Path(tmp), settings)
    res["peak_rss_mib"] = _peak_rss_mib()
    result.write_text(json.dumps(res), encoding="utf-8")


# --- driver ---------------------------------------------------------------------------------------------------


def load_corpus(n_docs: int, seed: int) -> tuple[Corpus, Path]:
    """Generate (or reuse the cached) corpus; the JSONL sits alone in its folder for datatrove's reader."""
    folder = OUT / f"dedup-corpus-v{CORPUS_VERSION}-{n_docs}-{seed}"
    data, truth = folder / "input" / "corpus.jsonl", folder / "truth.json"
    if data.exists() and truth.exists():
        t = json.loads(truth.read_text(encoding="utf-8"))
        texts = [json.loads(line)["text"] for line in data.read_text(encoding="utf-8").splitlines()]
        return Corpus(t["ids"], texts, t["family"], t["pairs"]), data
    corpus = generate(n_docs, seed)
    data.parent.mkdir(parents=True, exist_ok=True)
    with data.open("w", encoding="utf-8") as f:
        for rid, text in zip(corpus.ids, corpus.texts, strict=True):
            f.write(json.dumps({"id": rid, "text": text}) + "\n")
    truth.write_text(json.dumps({"ids": corpus.ids, "family": corpus.family, "pairs": corpus.pairs}), encoding="utf-8")
    return corpus, data


def run_worker(method: str, data: Path) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result = Path(f.name)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.dedup.run", "--worker", method, "--corpus", str(data), "--result", str(result)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"},
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{proc.stderr[-4000:]}")
    res = json.loads(result.read_text(encoding="utf-8"))
    result.unlink()
    res["process_seconds"] = wall
    return res


def _band(j: float) -> int:
    return next(i for i, (lo, hi) in enumerate(BANDS) if j < hi or i == len(BANDS) - 1 and j <= hi)


def evaluate(corpus: Corpus, removed: dict[str, str | None], axis: str) -> dict:
    """Recall per band of planted pairs, precision per band of removals, false removals; `axis` is j3 or j5."""
    n = int(axis[1])
    fam = dict(zip(corpus.ids, corpus.family, strict=True))
    text = dict(zip(corpus.ids, corpus.texts, strict=True))
    kept_families = {fam[i] for i in corpus.ids if i not in removed}
    false_removals = sorted(r for r in removed if fam[r] not in kept_families)
    pair_j = {(p["dup"], p["orig"]): p[axis] for p in corpus.pairs}

    caught = np.zeros(len(BANDS), int)
    total = np.zeros(len(BANDS), int)
    for p in corpus.pairs:
        b = _band(p[axis])
        total[b] += 1
        caught[b] += p["orig"] in removed or p["dup"] in removed
    tp = np.zeros(len(BANDS), int)
    allr = np.zeros(len(BANDS), int)
    bad = set(false_removals)
    for r, m in removed.items():
        j = pair_j.get((r, m)) if m else None
        if j is None:
            j = jaccard(text[r], text[m], n) if m else 0.0
        b = _band(j)
        allr[b] += 1
        tp[b] += r not in bad
    return {
        "axis": axis,
        "bands": [f"[{lo:.1f},{hi:.1f}{']' if hi == 1.0 else ')'}" for lo, hi in BANDS],
        "pairs": total.tolist(),
        "recall": [round(c / t, 4) if t else None for c, t in zip(caught, total, strict=True)],
        "removals": allr.tolist(),
        "precision": [round(a / b, 4) if b else None for a, b in zip(tp, allr, strict=True)],
        "removed": len(removed),
        "false_removals": len(false_removals),
        "false_removal_examples": false_removals[:10],
    }


def _fmt(x: float | None) -> str:
    return "   -  " if x is None else f"{x:6.3f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each tuneprep method; order alternates per round")
    ap.add_argument("--slow-repeat", type=int, default=1, help="runs of each datatrove/datasketch method")
    ap.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, choices=sorted(METHODS))
    ap.add_argument("--out", type=Path, default=OUT / "dedup.json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="5,000 docs, each method once")
    args = ap.parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.corpus, args.result)
        return
    if args.quick:
        args.docs, args.repeat, args.slow_repeat = 5_000, 1, 1

    missing = [m for m in args.methods if not _available(m)]
    if missing:
        print(f"skipping {missing}: not installed (`make bench-setup` installs the baselines; rensa: the rensa extra)")
        args.methods = [m for m in args.methods if m not in missing]
    if "datatrove" in missing:
        skip("datatrove is not installed: `make bench-setup` (or pip install -e '.[bench]')")
    t0 = time.perf_counter()
    corpus, data = load_corpus(args.docs, args.seed)
    print(f"corpus: {len(corpus)} docs, {len(corpus.pairs)} planted pairs ({time.perf_counter() - t0:.1f}s)")
    runs: dict[str, list[dict]] = {m: [] for m in args.methods}
    for r in range(max(args.repeat, args.slow_repeat)):
        order = args.methods if r % 2 == 0 else args.methods[::-1]
        for m in order:
            if len(runs[m]) >= (args.slow_repeat if METHODS[m][0] in SLOW else args.repeat):
                continue
            res = run_worker(m, data)
            runs[m].append(res)
            print(
                f"  round {r + 1} {m:18s} {res['seconds']:7.2f}s  {len(corpus) / res['seconds']:8.0f} docs/s",
                flush=True,
            )

    results = {}
    for m, rs in runs.items():
        secs = sorted(x["seconds"] for x in rs)
        kind, settings = METHODS[m]
        axis = f"j{settings.get('ngram', 3 if kind == 'tuneprep' else 5)}"
        results[m] = {
            "settings": METHODS[m][1],
            "config": rs[0]["config"],
            "lsh_bands_rows": rs[0].get("lsh"),
            "seconds": secs,
            "median_seconds": float(np.median(secs)),
            "cpu_seconds": sorted(x["cpu_seconds"] for x in rs),
            "docs_per_cpu_s": len(corpus) / float(np.median([x["cpu_seconds"] for x in rs])),
            "docs_per_s": len(corpus) / float(np.median(secs)),
            "process_seconds": [x["process_seconds"] for x in rs],
            "peak_rss_mib": max(x["peak_rss_mib"] for x in rs),
            "quality": {ax: evaluate(corpus, rs[0]["removed"], ax) for ax in ("j5", "j3")},
            "own_axis": axis,
            "deterministic": all(x["removed"] == rs[0]["removed"] for x in rs),
        }
    _print_report(results, len(corpus))
    report = {
        "docs": len(corpus),
        "seed": args.seed,
        "planted_pairs": len(corpus.pairs),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "methods": results,
        "ratios": _ratios(results),
        "cpu_ratios": _ratios(results, "docs_per_cpu_s"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    if "tuneprep" in results and "datatrove" in results:
        cpu = report["cpu_ratios"]["tuneprep/datatrove"]
        headline(cpu, "x", "tuneprep / datatrove MinHash docs per CPU-second, defaults")
        headline(report["ratios"]["tuneprep/datatrove"], "x", "tuneprep / datatrove MinHash docs/s, defaults", ">=", 5)
        fr = results["tuneprep"]["quality"]["j5"]["false_removals"]
        headline(fr, "", "false removals by tuneprep (planted corpus)", "<=", 0)


def _available(method: str) -> bool:
    kind, settings = METHODS[method]
    module = NEEDS.get(settings.get("sketch", kind))
    return module is None or importlib.util.find_spec(module) is not None


def _ratios(results: dict, key: str = "docs_per_s") -> dict:
    """docs/s (or docs per CPU-second) of each tuneprep variant over each datatrove variant in the run."""
    ours = [m for m in results if m.startswith("tuneprep")]
    theirs = [m for m in results if m.startswith("datatrove")]
    return {f"{a}/{b}": results[a][key] / results[b][key] for b in theirs for a in ours}


def _print_report(results: dict, n_docs: int) -> None:
    print(
        f"\n{'method':18s} {'docs/s':>8s} {'median s':>9s} {'docs/CPU-s':>11s} {'peak RSS':>9s} {'removed':>8s}"
        f" {'false rm':>8s}"
    )
    for m, r in results.items():
        q = r["quality"]["j5"]
        print(
            f"{m:18s} {r['docs_per_s']:8.0f} {r['median_seconds']:9.2f} {r['docs_per_cpu_s']:11.0f}"
            f" {r['peak_rss_mib']:7.0f}Mi {q['removed']:8d} {q['false_removals']:8d}"
        )
    for axis, label in (("j5", "word 5-gram"), ("j3", "word 3-gram")):
        first = next(iter(results.values()))["quality"][axis]
        print(f"\nrecall / precision per true-Jaccard band ({label} shingles of lowercased \\w+ tokens)")
        print(f"{'band':12s} {'pairs':>6s}  " + "  ".join(f"{m[:15]:>15s}" for m in results))
        for i, band in enumerate(first["bands"]):
            cells = []
            for r in results.values():
                q = r["quality"][axis]
                cells.append(f"{_fmt(q['recall'][i])}/{_fmt(q['precision'][i])}".rjust(15))
            print(f"{band:12s} {first['pairs'][i]:6d}  " + "  ".join(cells))
    cpu = _ratios(results, "docs_per_cpu_s")
    for k, v in _ratios(results).items():
        print(f"speed ratio {k}: {v:.1f}x (per CPU-second {cpu[k]:.1f}x)")


if __name__ == "__main__":
    main()

"""Whole-pipeline benchmark: ``prepare`` (augmentation off) against a datatrove pipeline doing the same work.

    .venv/bin/python -m bench.pipeline.run [--rounds 3] [--quick] [--data ../shared/data]

Corpus (real, from ``../shared/data``; written once under ``bench/out/pipeline/``, not timed): the 13,083
banking77 queries (train + test), the 4,514 Bitext exchanges and the 210 Taskmaster-4 coffee dialogues as
plain documents (a conversation's turns joined as ``User: ...`` / ``Assistant: ...`` lines), in one JSONL
file both sides read, and trafilatura's 134 English evaluation pages: tuneprep reads the ``.html`` files,
datatrove (which has no HTML-file reader) the same pages as one JSONL of ``{id, text: html}``.

Tokenizer (trained once, before any timing, stored with the corpus): tuneprep's default SentencePiece
unigram model (vocab 2,000) trained on the corpus's text documents and saved as a transformers folder. Both
sides encode with it, so the headline compares the same work: datatrove has no tokenizer trainer, and
training one is not what its pipeline does.

Sides, each in its own process, timed from the first read to the last write (imports excluded):

- datatrove 0.10.1, as its FineWeb example runs: [pages reader → ``Trafilatura`` extractor; text reader] →
  ``FTFYFormatter`` → ``PIIFormatter`` → ``GopherRepetitionFilter`` → ``GopherQualityFilter`` →
  ``C4QualityFilter`` → JSONL; then MinHash in its four stages (signatures, buckets, cluster, filter) →
  JSONL → ``DocumentTokenizer`` (the shared ``tokenizer.json``, EOS after each document, its default
  in-file shuffle; fed by the dedup writer, so the kept documents are not read again). ``LocalPipelineExecutor``
  with one worker; the filters configured like tuneprep's defaults where they have a matching knob (see
  ``datatrove_filters``). Language ID is off on both sides: datatrove's ``LanguageFilter`` downloads a
  fastText model from the hub at run time, which this machine cannot.
- ``tuneprep`` (the headline): ``flows.steps.prepare`` (what the Prefect flow's tasks call, without the
  orchestration) with the defaults but ``augment.enabled: false``, ``clean.language.enabled: false`` and
  ``tokenizer.pretrained`` set to the shared tokenizer: main-text extraction, normalisation, PII redaction,
  length and quality filters, exact and MinHash near dedup, tokenization into windows, Arrow shards — and
  the work datatrove's pipeline does not do: split, decontamination, manifest and dropped-record files.
  Its pages are extracted by its default two worker processes (``clean.html.workers``) while the main one
  waits, so it uses up to two cores there where datatrove's one worker uses one: the docs-per-CPU-second
  ratio is the like-for-like figure.
- ``tuneprep-train`` (a second row): the same but with the default ``tokenizer`` settings, so it trains its
  own SentencePiece model on the train split first, as ``tuneprep prepare`` does out of the box.

Still not the same on both sides, in datatrove's favour: at tuneprep's thresholds, datatrove's Gopher
filters (which have no word-count gates) drop ~12k of the short banking77/Bitext texts that tuneprep keeps,
so datatrove dedups and tokenizes ~3.3k documents where tuneprep does ~17.6k; and tuneprep also splits,
decontaminates and writes a manifest.

Rounds alternate which side goes first, so load from other processes hits both alike; the headline is the
ratio of median docs/s (input documents over seconds). Figures go to ``bench/out/pipeline.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import realdata
from bench.common import DATA, OUT, ROOT, compile_project, headline, require_modules

WORK = OUT / "pipeline"
CORPUS_VERSION = 2  # bump when the corpus layout changes, so the cached copy is rebuilt
TOKENIZER = "tokenizer"  # the corpus folder's shared tokenizer, trained once before any timing
EOS = "</s>"
SIDES = ("datatrove", "tuneprep", "tuneprep-train")
# tuneprep's steps that do what datatrove's pipeline does (its ``tokenizer`` step only loads the shared one)
SHARED_STEPS = ("load", "clean", "dedup", "tokenizer", "tokenize", "shards")


# --- corpus (not timed) ---------------------------------------------------------------------------------------


def build_corpus(data: Path) -> tuple[Path, dict]:
    """Write the shared corpus once; returns its folder and a description (counts per source)."""
    docs: list[dict] = []
    for i, r in enumerate(realdata.banking77(data)):
        docs.append({"id": f"banking77-{i}", "text": r.text, "label": r.label})
    for i, e in enumerate(realdata.bitext(data)):
        docs.append({"id": f"bitext-{i}", "text": realdata.joined(e.messages), "label": e.label})
    for d in realdata.taskmaster(data):
        docs.append({"id": f"taskmaster-{d.id}", "text": realdata.joined(d.messages), "label": d.label})
    pages = realdata.trafilatura_pages(data)
    digest = hashlib.sha256(json.dumps(docs).encode() + b"".join(p.name.encode() for p in pages)).hexdigest()[:12]
    folder = WORK / f"corpus-v{CORPUS_VERSION}-{digest}"
    info = {
        "folder": str(folder),
        "documents": len(docs) + len(pages),
        "sources": {
            "banking77 (train + test queries)": sum(d["id"].startswith("banking77-") for d in docs),
            "bitext_customer_support (instruction + response, joined)": sum(
                d["id"].startswith("bitext-") for d in docs
            ),
            "taskmaster4_coffee (dialogues, turns joined)": sum(d["id"].startswith("taskmaster-") for d in docs),
            "trafilatura_eval_en (HTML pages)": len(pages),
        },
        "html_folder": str(pages[0].parent),
    }
    if not (folder / "done").exists():
        for sub in ("text", "pages"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        with open(folder / "text" / "docs.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
        with open(folder / "pages" / "pages.jsonl", "w", encoding="utf-8") as f:
            for p in pages:  # decoded as tuneprep's loader decodes a page
                html = p.read_bytes().decode("utf-8", "replace")
                f.write(json.dumps({"id": p.name, "text": html}, ensure_ascii=False) + "\n")
        (folder / "info.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
        train_shared_tokenizer([d["text"] for d in docs], folder / TOKENIZER)
        (folder / "done").touch()
    info["text_chars"] = sum(len(d["text"]) for d in docs)
    return folder, info


def train_shared_tokenizer(texts: list[str], out: Path) -> None:
    """The tokenizer both sides encode with: tuneprep's default SentencePiece model (vocab 2,000) trained on the
    corpus's text documents, saved as a transformers folder whose ``tokenizer.json`` datatrove loads."""
    from shards.config import TokenizerConfig
    from shards.tokenization import train_sentencepiece

    train_sentencepiece(texts, TokenizerConfig(), out)


# --- the sides (each runs in a subprocess) -----------------------------------------------------------------


def cpu_seconds() -> float:
    """User + system CPU of this process and the children it has waited for (datatrove's extraction sandbox)."""
    return sum(
        r.ru_utime + r.ru_stime
        for r in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def tuneprep_config(corpus: Path, html_folder: Path, pretrained: bool = True):
    """Defaults, augmentation and language ID off; with ``pretrained`` the shared tokenizer instead of training one."""
    from flows.config import PipelineConfig

    return PipelineConfig.model_validate(
        {
            "inputs": [str(corpus / "text"), str(html_folder)],
            "clean": {"language": {"enabled": False}},
            "augment": {"enabled": False},
            **({"tokenizer": {"pretrained": str(corpus / TOKENIZER)}} if pretrained else {}),
        }
    )


def work_tuneprep(corpus: Path, html_folder: Path, work: Path, pretrained: bool = True) -> dict:
    from flows import steps

    cfg = tuneprep_config(corpus, html_folder, pretrained)
    step_seconds: dict[str, float] = {}
    step_cpu: dict[str, float] = {}
    run_step = steps.run_step

    def timed_step(name: str, *args, **kwargs):  # wall and CPU seconds per step, around what prepare() calls
        t, c = time.perf_counter(), cpu_seconds()
        try:
            return run_step(name, *args, **kwargs)
        finally:
            step_seconds[name] = round(time.perf_counter() - t, 2)
            step_cpu[name] = round(cpu_seconds() - c, 2)

    steps.run_step = timed_step
    t0, c0 = time.perf_counter(), cpu_seconds()
    manifest = steps.prepare(cfg, work / "run", log=lambda _msg: None)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    step_seconds["manifest"] = round(seconds - sum(step_seconds.values()), 2)
    step_cpu["manifest"] = round(cpu - sum(step_cpu.values()), 2)
    stages = {s["name"]: s for s in manifest["stages"]}
    kept = {
        "after quality filters": stages.get("quality_filter", {}).get("kept"),
        "after dedup": stages.get("near_dedup", {}).get("kept"),
        "in the shards": _shard_records(work / "run" / "shards"),
    }
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "read": manifest["stages"][0]["read"],
        "dropped": {s["name"]: s.get("reasons", {}) for s in manifest["stages"] if s.get("dropped")},
        "kept": kept,
        "step_seconds": step_seconds,
        "step_cpu_seconds": step_cpu,
        "accounting_ok": manifest["accounting"]["ok"],
    }


def _shard_records(shards: Path) -> int:
    """Distinct records (not windows) in the Arrow shards of every split."""
    import polars as pl

    ids: set[str] = set()
    for f in shards.glob("*/*.arrow"):
        ids.update(pl.read_ipc_stream(f, columns=["id"])["id"].to_list())
    return len(ids)


def datatrove_filters() -> list:
    """datatrove's Gopher and C4 filters set like tuneprep's `clean.quality` defaults, knob by knob.

    Same thresholds; what datatrove cannot express is tuneprep's word-count gates (ratio rules from 20
    words, word-length/stop-word/repetition rules from 50), so it applies every rule to short texts too.
    ``min_doc_words=5`` is tuneprep's length filter (`clean.filter.min_words`). tuneprep's C4 defaults keep
    only the lorem-ipsum rule, so the other C4 rules are off (with ``split_paragraph`` C4QualityFilter
    still rejoins the stripped lines).
    """
    from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter, GopherRepetitionFilter

    return [
        GopherRepetitionFilter(
            dup_line_frac=0.3,
            dup_para_frac=0.3,
            dup_line_char_frac=0.2,
            dup_para_char_frac=0.2,
            top_n_grams=((2, 0.20), (3, 0.18), (4, 0.16)),
            dup_n_grams=((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)),
        ),
        GopherQualityFilter(
            min_doc_words=5,
            max_doc_words=100_000,
            min_avg_word_length=3,
            max_avg_word_length=10,
            max_symbol_word_ratio=0.1,
            max_bullet_lines_ratio=0.9,
            max_ellipsis_lines_ratio=0.3,
            max_non_alpha_words_ratio=0.8,
            min_stop_words=2,
        ),
        C4QualityFilter(
            split_paragraph=True,
            remove_citations=False,
            filter_no_terminal_punct=False,
            min_num_sentences=-1,
            min_words_per_line=-1,
            max_word_length=-1,
            filter_lorem_ipsum=True,
            filter_javascript=False,
            filter_curly_bracket=False,
            filter_policy=False,
        ),
    ]


def work_datatrove(corpus: Path, html_folder: Path, work: Path) -> dict:
    """datatrove's filtering stage, then its four MinHash stages, one task at a time, as its examples run them."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
    )
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.tokens import DocumentTokenizer
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.logging import logger

    del html_folder  # datatrove reads the same pages from corpus/pages/pages.jsonl
    logger.remove()  # per-stage logs go to logging_dir
    cfg = MinhashConfig()
    logs = work / "logs"
    stats: dict[str, list] = {}

    def run(name: str, pipeline: list, tasks: int = 1) -> None:
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(logs / name)).run()
        stats[name] = json.loads((logs / name / "stats.json").read_text(encoding="utf-8"))

    t0, c0 = time.perf_counter(), cpu_seconds()
    run(
        "filter",
        [
            JsonlReader(str(corpus / "pages")),
            Trafilatura(timeout=30),  # its default 1 s drops pages on a busy machine; no page needs 30 s
            JsonlReader(str(corpus / "text")),  # a reader after other steps passes their documents on first
            FTFYFormatter(),
            PIIFormatter(),
            *datatrove_filters(),
            JsonlWriter(str(work / "filtered"), compression=None),
        ],
    )
    run("signatures", [JsonlReader(str(work / "filtered")), MinhashDedupSignature(str(work / "sigs"), config=cfg)])
    run(
        "buckets",
        [MinhashDedupBuckets(input_folder=str(work / "sigs"), output_folder=str(work / "buckets"), config=cfg)],
        tasks=cfg.num_buckets,
    )
    run(
        "cluster",
        [MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove"), config=cfg)],
    )
    run(
        "dedup",
        [
            JsonlReader(str(work / "filtered")),
            MinhashDedupFilter(input_folder=str(work / "remove")),
            JsonlWriter(str(work / "output"), compression=None),
            DocumentTokenizer(  # the writer passes each document on: no second read
                str(work / "tokens"), str(corpus / TOKENIZER / "tokenizer.json"), eos_token=EOS, seed=0
            ),
        ],
    )
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "read": _count_lines(corpus / "text") + _count_lines(corpus / "pages"),
        "dropped": _datatrove_drops(stats["filter"]),
        "kept": {
            "after quality filters": _count_lines(work / "filtered"),
            "after dedup": _count_lines(work / "output"),
        },
        "step_seconds": _datatrove_step_seconds(stats),
        "pages_not_extracted": _step_stat(stats["filter"], "Trafilatura", ("timeout", "clean_error", "dropped")),
    }


def _count_lines(folder: Path) -> int:
    return sum(sum(1 for _ in open(f, "rb")) for f in folder.glob("*.jsonl"))


def _datatrove_step_seconds(stats: dict[str, list]) -> dict[str, float]:
    """Seconds per pipeline step, from each stage's merged stats.json (its time_stats total)."""
    out: dict[str, float] = {}
    for stage, steps in stats.items():
        for step in steps:
            total = (step.get("time_stats") or {}).get("total")
            if total is not None:
                out[f"{stage}: {step['name'].split(' ', 1)[-1]}"] = round(total, 2)
    return out


def _total(value: int | float | dict) -> float:
    """A datatrove stat is saved as its total alone, or as a dict with one."""
    return value.get("total", 0) if isinstance(value, dict) else value


def _step_stat(steps: list, name: str, keys: tuple[str, ...]) -> dict:
    step = next((s for s in steps if name in s["name"]), {})
    return {k: _total((step.get("stats") or {}).get(k, 0)) for k in keys}


def _datatrove_drops(steps: list) -> dict[str, dict[str, float]]:
    """Per filter step, its drop reasons and counts (the stats other than totals and line counters)."""
    out: dict[str, dict[str, float]] = {}
    for step in steps:
        if "FILTER" not in step["name"]:
            continue
        stats = step.get("stats") or {}
        reasons = {
            k: _total(v)
            for k, v in stats.items()
            if k not in ("total", "forwarded", "dropped") and not k.startswith("line-")
        }
        out[step["name"].split(" ", 1)[-1].strip()] = {"dropped": _total(stats.get("dropped", 0)), **reasons}
    return out


WORKERS = {
    "datatrove": work_datatrove,
    "tuneprep": work_tuneprep,
    "tuneprep-train": lambda corpus, html, work: work_tuneprep(corpus, html, work, pretrained=False),
}


def worker_main(side: str, corpus: Path, html_folder: Path, result: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=f"pipeline-{side}-") as tmp:
        res = WORKERS[side](corpus, html_folder, Path(tmp))
    kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    res["peak_rss_mib"] = round(kb / 1024)
    result.write_text(json.dumps(res), encoding="utf-8")


# --- driver ------------------------------------------------------------------------------------------------------


def run_side(side: str, corpus: Path, html_folder: Path) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result = Path(f.name)
    cmd = [sys.executable, "-m", "bench.pipeline.run", "--worker", side, "--corpus", str(corpus)]
    cmd += ["--html", str(html_folder), "--result", str(result)]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TOKENIZERS_PARALLELISM": os.environ.get("TOKENIZERS_PARALLELISM", "true"),
    }
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{proc.stderr[-4000:]}")
    res = json.loads(result.read_text(encoding="utf-8"))
    result.unlink()
    res["process_seconds"] = round(wall, 2)
    res["load_average_1m"] = round(os.getloadavg()[0], 2)  # at the end of the run
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="runs of each side, alternating which goes first")
    ap.add_argument("--quick", action="store_true", help="one round")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=OUT / "pipeline.json")
    ap.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--html", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.corpus, args.html, args.result)
        return
    if args.quick:
        args.rounds = 1
    require_modules("datatrove", "xxhash", "spacy")
    compile_project()
    corpus, info = build_corpus(args.data)
    html_folder = Path(info["html_folder"])
    n_docs = info["documents"]
    print(f"corpus: {n_docs:,} documents under {corpus.relative_to(ROOT)}", flush=True)
    for source, n in info["sources"].items():
        print(f"  {n:>6,}  {source}")
    runs: dict[str, list[dict]] = {s: [] for s in SIDES}
    for r in range(args.rounds):
        for side in SIDES if r % 2 == 0 else SIDES[::-1]:
            res = run_side(side, corpus, html_folder)
            runs[side].append(res)
            print(
                f"  round {r + 1} {side:14s} {res['seconds']:7.1f}s  {n_docs / res['seconds']:7.0f} docs/s  "
                f"peak {res['peak_rss_mib']:,} MiB  load {res['load_average_1m']:.1f}",
                flush=True,
            )
    summary = {}
    for side, rs in runs.items():
        secs = [x["seconds"] for x in rs]
        med = statistics.median(secs)
        summary[side] = {
            "seconds": secs,
            "median_seconds": med,
            "docs_per_s": n_docs / med,
            "cpu_seconds": [x["cpu_seconds"] for x in rs],
            "docs_per_cpu_s": n_docs / statistics.median(x["cpu_seconds"] for x in rs),
            "peak_rss_mib": max(x["peak_rss_mib"] for x in rs),
            "load_average_1m": [x["load_average_1m"] for x in rs],
            "kept": rs[0]["kept"],
            "dropped": rs[0]["dropped"],
            "step_seconds": rs[len(rs) // 2]["step_seconds"],
            **{k: rs[len(rs) // 2][k] for k in ("step_cpu_seconds",) if k in rs[0]},
            **{k: rs[0][k] for k in ("accounting_ok", "pages_not_extracted") if k in rs[0]},
        }
    tp, dt = summary["tuneprep"], summary["datatrove"]
    shared = [sum(x["step_seconds"].get(s, 0) for s in SHARED_STEPS) for x in runs["tuneprep"]]
    tp["shared_steps_seconds"] = shared
    ratio = tp["docs_per_s"] / dt["docs_per_s"]
    cpu_ratio = tp["docs_per_cpu_s"] / dt["docs_per_cpu_s"]
    shared_ratio = dt["median_seconds"] / statistics.median(shared)
    train_ratio = summary["tuneprep-train"]["docs_per_s"] / dt["docs_per_s"]
    _print_report(summary)
    report = {
        "corpus": info,
        "rounds": args.rounds,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "platform": platform.platform(),
        },
        "versions": _versions(),
        "sides": summary,
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "shared_steps_ratio": shared_ratio,
        "train_ratio": train_ratio,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    print(
        f"the work both do (tuneprep's {', '.join(SHARED_STEPS)} steps, median {statistics.median(shared):.1f}s,"
        f" against datatrove's whole run): {shared_ratio:.1f}x"
    )
    headline(shared_ratio, "x", f"datatrove's whole run / tuneprep's {'+'.join(SHARED_STEPS)} steps, seconds")
    headline(train_ratio, "x", "tuneprep prepare training its own tokenizer / datatrove pipeline docs/s")
    headline(cpu_ratio, "x", "tuneprep prepare / datatrove pipeline docs per CPU-second, real corpus")
    headline(ratio, "x", "tuneprep prepare / datatrove pipeline docs/s, same tokenizer, real corpus", ">=", 5)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("datatrove", "trafilatura", "spacy", "polars", "tokenizers"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def _print_report(summary: dict) -> None:
    print(f"\n{'side':14s} {'docs/s':>8s} {'median s':>9s} {'docs/CPU-s':>11s} {'peak RSS':>9s}  kept")
    for side, s in summary.items():
        kept = ", ".join(f"{k} {v:,}" for k, v in s["kept"].items() if v is not None)
        print(
            f"{side:14s} {s['docs_per_s']:8.0f} {s['median_seconds']:9.1f} {s['docs_per_cpu_s']:11.0f}"
            f" {s['peak_rss_mib']:7,}Mi  {kept}"
        )
    for side, s in summary.items():
        print(f"{side} drops: {json.dumps(s['dropped'], ensure_ascii=False)}")
    for side, s in summary.items():
        cpu = s.get("step_cpu_seconds", {})
        steps = ", ".join(
            f"{k} {v:.1f}s" + (f" ({cpu[k]:.1f} CPU-s)" if k in cpu else "")
            for k, v in s["step_seconds"].items()
            if isinstance(v, int | float)
        )
        print(f"{side} steps (wall): {steps}")


if __name__ == "__main__":
    main()

"""The pipeline's steps as plain functions over paths, with no Prefect in sight.

Each step reads the previous step's Parquet file under ``OUT/work/``, writes
its own, and returns a small JSON-able summary. ``flows/`` wraps these in Prefect
tasks; a notebook or a test can call them directly.

Order: load -> clean -> dedup -> split -> augment -> tokenize -> shards. The
split comes before augmentation and tokenizer training so that variants stay in
their source's split and the tokenizer never sees validation or test text.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import polars as pl
import xxhash

from tuneprep.config import PROJECT_ROOT, PipelineConfig
from tuneprep.records import SPLITS, document_text, empty_records
from tuneprep.runner import JsonlSink, ParquetSink, iter_batches, release_memory, run_stages
from tuneprep.shards import atomic_write_text, sha256_file, write_shards
from tuneprep.sources import LoadStats, iter_record_batches, list_files
from tuneprep.split import assign_splits
from tuneprep.stage import StageStats, balanced

Log = Callable[[str], None]


class RunPaths:
    """Where each artifact of a run lives; the output layout is a contract."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.work = self.out / "work"
        self.dropped = self.out / "dropped"
        self.quarantine = self.out / "quarantine"
        self.tokenizer = self.out / "tokenizer"
        self.shards = self.out / "shards"
        self.model = self.out / "model"
        self.manifest = self.out / "manifest.json"
        self.report = self.out / "report.md"

    def stage_file(self, name: str) -> Path:
        return self.work / f"{name}.parquet"

    def make(self) -> RunPaths:
        for d in (self.work, self.dropped, self.quarantine):
            d.mkdir(parents=True, exist_ok=True)
        return self


def load_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    """Read every input into records; unreadable units go to ``quarantine/load.jsonl``."""
    t0 = time.perf_counter()
    stats = LoadStats()
    out = ParquetSink(paths.stage_file("loaded"))
    bad = JsonlSink(paths.quarantine / "load.jsonl")
    reasons: dict[str, int] = {}
    batches = iter_record_batches(
        cfg.inputs, cfg.load, cfg.batch_size, stats, scrape=cfg.scrape, raw_dir=paths.out / "raw"
    )
    for batch, quarantined in batches:
        out.write(batch)
        bad.write(q.to_dict() for q in quarantined)
        for q in quarantined:
            reasons[q.reason] = reasons.get(q.reason, 0) + 1
        log(f"load: {stats.read} records read from {stats.files} files so far")
    out.close(empty_like=empty_records())
    bad.close()
    st = StageStats("load", read=stats.read, kept=stats.kept, quarantined=stats.quarantined)
    st.reasons.update(reasons)
    st.seconds = time.perf_counter() - t0
    st.extra["files"] = stats.files
    if stats.scrape:
        st.extra["scrape"] = stats.scrape.to_dict()
    return st.to_dict()


def input_inventory(cfg: PipelineConfig) -> list[dict]:
    """Every input file with its sha256, and every dataset or URL input by name, for the manifest."""
    files = [
        {"source": source, "bytes": p.stat().st_size, "sha256": sha256_file(p)}
        for p, source in list_files(cfg.inputs, cfg.load)
        if p.is_file()
    ]
    remote = [
        {"source": item, "kind": "hub" if item.startswith("hf://") else "url"} for item in cfg.inputs if "://" in item
    ]
    return files + remote


def clean_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> list[dict]:
    from cleaners import LanguageFilter, LengthFilter, Normalize, QualityFilter, RedactPII, StripHtml

    # PII goes before any filter so it never reaches dropped/*.parquet; language before quality so the
    # English stop-word rule only sees English.
    c = cfg.clean
    stages = [StripHtml(c.html), Normalize(c.normalize), RedactPII(c.pii), LengthFilter(c.filter)]
    stages += [LanguageFilter(c.language)] if c.language.enabled else []
    stages += [QualityFilter(c.quality)] if c.quality.enabled else []
    stats = run_stages(stages, paths.stage_file("loaded"), paths.stage_file("cleaned"), paths.dropped, cfg.batch_size)
    for s in stats:
        log(f"{s.name}: {s.read} in, {s.kept} kept, {s.dropped} dropped {dict(s.reasons)}")
    return [s.to_dict() for s in stats]


def dedup_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> list[dict]:
    from cleaners import ExactDeduper, MinHashDeduper, dedup_stages

    stages = dedup_stages(cfg.dedup, paths.work)
    if cfg.dedup.reuse_index:  # a new data drop, deduplicated against everything an earlier run kept
        prev = Path(cfg.dedup.reuse_index)
        prev = prev / "index" if (prev / "index").is_dir() else prev
        for i, stage in enumerate(stages):
            saved = prev / f"{stage.name}.idx"
            if isinstance(stage, ExactDeduper) and saved.exists():
                stages[i] = ExactDeduper.load(saved)
                stages[i].action = cfg.dedup.action
            elif isinstance(stage, MinHashDeduper) and saved.exists():
                stage.index.close()
                stages[i] = MinHashDeduper.load(saved, cfg.dedup, paths.work / "near_dedup.sigs")
            else:
                continue
            log(f"{stage.name}: reusing {saved} ({stages[i].summary()['index_size']} records already kept)")
    stats = run_stages(stages, paths.stage_file("cleaned"), paths.stage_file("deduped"), paths.dropped, cfg.batch_size)
    (paths.out / "index").mkdir(exist_ok=True)
    for stage in stages:
        if hasattr(stage, "save"):
            stage.save(paths.out / "index" / f"{stage.name}.idx")
        if isinstance(stage, MinHashDeduper):
            stage.index.close()
    for s in stats:
        log(f"{s.name}: {s.read} in, {s.kept} kept, {s.dropped} dropped")
    return [s.to_dict() for s in stats]


def split_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    """Assign splits from the (small) key columns, then stream the records through with their split."""
    src = paths.stage_file("deduped")
    columns = ["id", "source", "group_id"] + ([cfg.split.stratify_by] if _has(src, cfg.split.stratify_by) else [])
    keys = pl.read_parquet(src, columns=list(dict.fromkeys(columns)))
    previous = _previous_assignment(cfg.split.previous)
    plan = assign_splits(keys, cfg.split, cfg.seed, previous)
    n_records, splits = keys.height, plan.assignment["split"]  # in file order: sliced per batch, no join
    del keys
    plan.groups.write_parquet(paths.out / "splits.parquet")
    per_split = {s: 0 for s in SPLITS} | dict(plan.assignment.group_by("split").len().iter_rows())
    plan.assignment = plan.groups = None
    out = ParquetSink(paths.stage_file("split"))
    offset = 0
    for batch in iter_batches(src, cfg.batch_size):
        out.write(batch.with_columns(splits.slice(offset, batch.height).alias("split")))
        offset += batch.height
    out.close(empty_like=pl.DataFrame(schema=pl.read_parquet_schema(src)))
    log(f"split: {per_split}; strata too small to split: {plan.small_strata or 'none'}")
    if previous is not None:
        log(f"split: {plan.kept_from_previous} groups kept the split they had in {cfg.split.previous}")
    st = StageStats("split", read=n_records, kept=n_records)
    st.extra = {
        "per_split": per_split,
        "small_strata": plan.small_strata,
        "groups_per_stratum": plan.strata,
        "groups_from_previous": plan.kept_from_previous,
    }
    return st.to_dict()


def _previous_assignment(path: str | None) -> pl.DataFrame | None:
    if not path:
        return None
    p = Path(path)
    p = p / "splits.parquet" if p.is_dir() else p
    if not p.exists():
        raise FileNotFoundError(f"split.previous: no splits.parquet at {path}")
    return pl.read_parquet(p, columns=["group", "split"])


def decontaminate_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    """Index validation/test text, then drop (or report) train records that share 13-grams or near-duplicate it.

    The n-gram join spills to ``work/decontaminate``, removed when the step ends (and at the start of a rerun).
    """
    from cleaners.decontaminate import Decontaminator
    from cleaners.dedup import MinHasher

    src = paths.stage_file("split")
    stage = Decontaminator(cfg.decontaminate, MinHasher.from_config(cfg.dedup), workdir=paths.work / "decontaminate")
    try:
        if cfg.decontaminate.enabled:
            for batch in iter_batches(src, cfg.batch_size):
                held = batch.filter(pl.col("split").is_in(cfg.decontaminate.heldout_splits))
                stage.add_heldout(held["id"].to_list(), document_text(held).to_list())
            for batch in iter_batches(src, cfg.batch_size):  # the same train records, in the order run_stages reads
                stage.count_train(document_text(batch.filter(pl.col("split") == "train")).to_list())
        (st,) = run_stages([stage], src, paths.stage_file("decontaminated"), paths.dropped, cfg.batch_size)
    finally:
        stage.close()
    log(
        f"decontaminate: {st.extra.get('flagged', 0)} train records overlap validation/test ({cfg.decontaminate.action})"
    )
    return st.to_dict()


def _has(path: Path, column: str) -> bool:
    return column in pl.read_parquet_schema(path)


def augment_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    from augment import Augment

    src = paths.stage_file("decontaminated")
    held_ids, held_texts = [], []
    if cfg.augment.enabled and cfg.augment.leakage.enabled:  # the gate against near-copies of held-out text
        for batch in iter_batches(src, cfg.batch_size):
            held = batch.filter(pl.col("split").is_in(["validation", "test"]))
            held_ids += held["id"].to_list()
            held_texts += document_text(held).to_list()
    stage = Augment(cfg.augment, seed=cfg.seed, log=log, holdout_texts=held_texts, holdout_ids=held_ids)
    (st,) = run_stages([stage], src, paths.stage_file("augmented"), paths.dropped, cfg.batch_size)
    log(f"augment: {st.read} in, {st.added} variants made, {st.dropped} rejected by the gates")
    return st.to_dict()


def tokenizer_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    """Train SentencePiece on the train split (originals and variants), or load the named tokenizer."""
    from tuneprep.tokenization import load_pretrained, tokenizer_identity, train_sentencepiece

    src = paths.stage_file("augmented")
    if cfg.tokenizer.pretrained:
        load_pretrained(cfg.tokenizer.pretrained, paths.tokenizer, cfg.tokenizer.extra_special_tokens)
        log(f"tokenizer: loaded {cfg.tokenizer.pretrained}")
    else:
        total = train_chars(src)
        share = min(1.0, cfg.tokenizer.max_train_chars / max(total, 1))

        def train_texts():
            for batch in iter_batches(src, cfg.batch_size):
                train = batch.filter(pl.col("split") == "train")
                if share < 1.0:
                    train = train.filter(pl.Series(sampled(train["id"].to_list(), share, cfg.seed)))
                yield from document_text(train).to_list()

        train_sentencepiece(train_texts(), cfg.tokenizer, paths.tokenizer)
        sample = "the train split" if share == 1.0 else f"a {share:.1%} sample of the train split ({total:,} chars)"
        log(f"tokenizer: trained SentencePiece unigram, vocab {cfg.tokenizer.vocab_size}, on {sample}")
    return tokenizer_identity(paths.tokenizer, cfg.tokenizer.pretrained)


def train_chars(path: Path) -> int:
    """Characters of train-split text (plain text and chat turns), by a lazy scan."""
    turns = pl.col("messages").list.eval(pl.element().struct.field("content").str.len_chars()).list.sum()
    query = pl.scan_parquet(path).filter(pl.col("split") == "train")
    total = query.select(pl.col("text").str.len_chars().fill_null(0).sum() + turns.fill_null(0).sum()).collect()
    return int(total.item())


def sampled(ids: list[str], share: float, seed: int) -> list[bool]:
    """A deterministic ``share`` of records by a hash of their id: the same ids are picked on every run."""
    limit = int(share * 2**64)
    return [xxhash.xxh3_64_intdigest(i.encode("utf-8", "surrogatepass"), seed) < limit for i in ids]


def tokenize_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    from transformers import AutoTokenizer

    from tuneprep.tokenization import encode_records

    tok = AutoTokenizer.from_pretrained(str(paths.tokenizer))
    t0 = time.perf_counter()
    out = ParquetSink(paths.stage_file("tokenized"))
    read = windows = 0
    for batch in iter_batches(paths.stage_file("augmented"), cfg.batch_size):
        enc = encode_records(batch, tok, cfg.tokenizer.max_length)
        out.write(enc)
        read += batch.height
        windows += enc.height
        log(f"tokenize: {read} records -> {windows} windows")
    if out.writer is None:
        raise RuntimeError("no records left to tokenize: every input was dropped or quarantined (see the report)")
    out.close()
    st = StageStats("tokenize", read=read, kept=read, seconds=time.perf_counter() - t0)
    st.extra = {"windows": windows}
    return st.to_dict()


def shard_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    parquet_dir = paths.out / "parquet" if cfg.shards.export_parquet else None
    result = write_shards(
        paths.stage_file("tokenized"),
        paths.shards,
        cfg.shards.max_rows_per_shard,
        cfg.batch_size,
        parquet_dir=parquet_dir,
    )
    for split, info in result.items():
        log(f"shards/{split}: {info['rows']} rows, {info['tokens']} tokens in {len(info['shards'])} shard(s)")
    return result


# The data part of the pipeline, in order; each takes (cfg, paths, log) and returns a small summary.
STEPS: dict[str, Callable[[PipelineConfig, RunPaths, Log], dict | list[dict]]] = {
    "load": load_step,
    "clean": clean_step,
    "dedup": dedup_step,
    "split": split_step,
    "decontaminate": decontaminate_step,
    "augment": augment_step,
    "tokenizer": tokenizer_step,
    "tokenize": tokenize_step,
    "shards": shard_step,
}


def finish(cfg: PipelineConfig, paths: RunPaths, results: dict) -> dict:
    """Gather the steps' summaries into the manifest."""
    stages: list[dict] = []
    for name in STEPS:
        if name in ("tokenizer", "shards"):
            continue
        r = results[name]
        stages.extend(r if isinstance(r, list) else [r])
    summary = {
        "inputs": input_inventory(cfg),
        "stages": stages,
        "shards": results["shards"],
        "profile": dataset_profile(paths),
        "tokenizer": results["tokenizer"],
    }
    return write_manifest(cfg, paths, summary)


def prepare(cfg: PipelineConfig, out: str | Path, log: Log = print) -> dict:
    """The whole data part without Prefect (for notebooks, benchmarks and tests); returns the manifest."""
    paths = RunPaths(Path(out)).make()
    results = {name: run_step(name, cfg, paths, log) for name in STEPS}
    return finish(cfg, paths, results)


def run_step(name: str, cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict | list[dict]:
    """One step of ``STEPS``, then the memory it freed goes back to the OS before the next one starts."""
    try:
        return STEPS[name](cfg, paths, log)
    finally:
        release_memory()


def dataset_profile(paths: RunPaths, lengths: bool = False) -> dict:
    """Per-split counts by label and origin (original or augmented), and optionally every example's length.

    Documents are counted once (their first window); the queries run lazily over the Parquet file.
    """
    rows = pl.scan_parquet(paths.stage_file("tokenized"))
    docs = rows.filter(pl.col("window") == 0)
    labels = (
        docs.select("split", pl.col("label").fill_null("(none)"))
        .group_by("split", "label")
        .len()
        .sort("split", "label")
    ).collect()
    per_label = {s: {} for s in SPLITS}
    for split, label, n in labels.iter_rows():
        per_label[split][label] = n
    origin = (
        docs.group_by("split")
        .agg(
            pl.col("aug_of").is_null().sum().alias("original"), pl.col("aug_of").is_not_null().sum().alias("augmented")
        )
        .collect()
    )
    per_split = {s: {"original": 0, "augmented": 0} for s in SPLITS}
    for r in origin.iter_rows(named=True):
        per_split[r["split"]] = {"original": r["original"], "augmented": r["augmented"]}
    out = {"per_split": per_split, "per_label": per_label}
    if lengths:
        out["token_lengths"] = {
            s: rows.filter(pl.col("split") == s).select("n_tokens").collect()["n_tokens"].to_list() for s in SPLITS
        }
    return out


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    names = [
        "tuneprep",
        "polars",
        "pyarrow",
        "datasets",
        "transformers",
        "tokenizers",
        "sentencepiece",
        "torch",
        "prefect",
        "nltk",
        "beautifulsoup4",
        "lxml",
    ]
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def write_manifest(cfg: PipelineConfig, paths: RunPaths, summary: dict) -> dict:
    """The run's record: inputs, config, versions, per-stage accounting, shards and tokenizer identity."""
    stages = summary["stages"]
    manifest = {
        "tuneprep_manifest": 1,
        "name": cfg.name,
        "inputs": summary["inputs"],
        "config": cfg.model_dump(mode="json"),
        "versions": versions(),
        "git_commit": git_commit(),
        "python_executable": sys.executable,
        "stages": stages,
        "dropped_by_reason": _reasons(stages, "dropped"),
        "quarantined_by_reason": {k: v for s in stages if s["quarantined"] for k, v in s["reasons"].items()},
        "accounting": accounting(stages),
        "splits": summary["shards"],
        "profile": summary["profile"],
        "tokenizer": summary["tokenizer"],
    }
    atomic_write_text(paths.manifest, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest


def _reasons(stages: list[dict], kind: str) -> dict:
    out: dict[str, int] = {}
    for s in stages:
        if s[kind] and not s["quarantined"]:
            for reason, n in s["reasons"].items():
                out[f"{s['name']}:{reason}"] = n
    return out


def accounting(stages: list[dict]) -> dict:
    """read == kept - added + dropped + quarantined for every stage, and each stage reads what the last kept."""
    rows, ok, prev_kept = [], True, None
    for s in stages:
        ok_here = balanced(s)
        chained = prev_kept is None or s["read"] == prev_kept
        ok &= ok_here and chained
        rows.append({"stage": s["name"], "balanced": ok_here, "reads_previous_kept": chained})
        prev_kept = s["kept"]
    return {"ok": ok, "stages": rows}


def report_step(paths: RunPaths, metrics_path: Path | None = None) -> str:
    """Write ``report.md`` from the manifest and, when there is one, the model's metrics."""
    from tuneprep.report import render

    manifest = json.loads(paths.manifest.read_text())
    metrics = json.loads(metrics_path.read_text()) if metrics_path and metrics_path.exists() else None
    lengths = dataset_profile(paths, lengths=True)["token_lengths"] if paths.stage_file("tokenized").exists() else None
    text = render(manifest, metrics, lengths)
    atomic_write_text(paths.report, text)
    return text

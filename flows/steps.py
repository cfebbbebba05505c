"""The pipeline's steps as plain functions over paths, with no Prefect in sight.

Each step reads the previous step's Parquet file under ``OUT/work/``, writes its own, and
returns a small JSON-able summary. ``flows.prepare`` wraps each in a Prefect task; a notebook,
a benchmark or a test calls them (or ``prepare``) directly. The work itself lives in the stage
packages; a step only says which file goes in, which comes out, and what to log.

Order: load -> clean -> dedup -> split -> decontaminate -> augment -> tokenizer -> tokenize -> shards.
The split comes before augmentation and tokenizer training so that variants stay in their
source's split and the tokenizer never sees validation or test text.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import polars as pl

from flows.config import PipelineConfig
from flows.layout import RunPaths
from flows.manifest import finish
from tuneprep.hashing import sampled
from tuneprep.records import SPLITS, document_text, empty_records
from tuneprep.runner import JsonlSink, ParquetSink, iter_batches, release_memory, run_stages
from tuneprep.stage import StageStats

Log = Callable[[str], None]


def load_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    """Read every input into records; unreadable units go to ``quarantine/load.jsonl``."""
    from ingest.sources import LoadStats, iter_record_batches

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


def clean_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> list[dict]:
    from cleaners import clean_stages

    stats = run_stages(
        clean_stages(cfg.clean), paths.stage_file("loaded"), paths.stage_file("cleaned"), paths.dropped, cfg.batch_size
    )
    for s in stats:
        log(f"{s.name}: {s.read} in, {s.kept} kept, {s.dropped} dropped {dict(s.reasons)}")
    return [s.to_dict() for s in stats]


def dedup_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> list[dict]:
    from cleaners import dedup_stages, save_indexes

    stages = dedup_stages(cfg.dedup, paths.work, reuse_index=cfg.dedup.reuse_index, log=log)
    stats = run_stages(stages, paths.stage_file("cleaned"), paths.stage_file("deduped"), paths.dropped, cfg.batch_size)
    save_indexes(stages, paths.index)
    for s in stats:
        log(f"{s.name}: {s.read} in, {s.kept} kept, {s.dropped} dropped")
    return [s.to_dict() for s in stats]


def split_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    """Assign splits from the (small) key columns, then stream the records through with their split."""
    from shards.split import assign_splits, previous_assignment

    src = paths.stage_file("deduped")
    stratify = [cfg.split.stratify_by] if cfg.split.stratify_by in pl.read_parquet_schema(src) else []
    keys = pl.read_parquet(src, columns=list(dict.fromkeys(["id", "source", "group_id", *stratify])))
    previous = previous_assignment(cfg.split.previous)
    plan = assign_splits(keys, cfg.split, cfg.seed, previous)
    n_records, splits = keys.height, plan.assignment["split"]  # in file order: sliced per batch, no join
    del keys
    plan.groups.write_parquet(paths.splits)
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


def decontaminate_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    """Drop (or report) train records that overlap validation/test text.

    The n-gram join spills to ``work/decontaminate``, removed when the step ends (and at the start of a rerun).
    """
    from cleaners.decontaminate import Decontaminator
    from cleaners.heldout import HeldoutIndex

    src = paths.stage_file("split")
    heldout = HeldoutIndex.from_config(cfg.heldout, cfg.dedup, sig_path=paths.work / "heldout.sigs")
    stage = Decontaminator(cfg.decontaminate, heldout, cfg.heldout.splits, workdir=paths.work / "decontaminate")
    try:
        stage.fit(partial(iter_batches, src, cfg.batch_size))
        (st,) = run_stages([stage], src, paths.stage_file("decontaminated"), paths.dropped, cfg.batch_size)
        if heldout is not None:  # the augmentation gate asks the same index
            heldout.save(paths.heldout_index)
    finally:
        stage.close()
        if heldout is not None:
            heldout.close()
    log(
        f"decontaminate: {st.extra.get('flagged', 0)} train records overlap validation/test ({cfg.decontaminate.action})"
    )
    return st.to_dict()


def augment_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    from augment import Augment
    from cleaners.heldout import HeldoutIndex

    src = paths.stage_file("decontaminated")
    gate = cfg.augment.enabled and cfg.augment.leakage.enabled and paths.heldout_index.exists()
    holdout = HeldoutIndex.load(paths.heldout_index, paths.work / "heldout.sigs") if gate else None
    stage = Augment(cfg.augment, seed=cfg.seed, log=log, holdout=holdout)
    try:
        (st,) = run_stages([stage], src, paths.stage_file("augmented"), paths.dropped, cfg.batch_size)
    finally:
        if holdout is not None:
            holdout.close()
    log(f"augment: {st.read} in, {st.added} variants made, {st.dropped} rejected by the gates")
    return st.to_dict()


def tokenizer_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    """Train SentencePiece on the train split (originals and variants), or load the named tokenizer."""
    from shards.tokenization import load_pretrained, tokenizer_identity, train_chars, train_sentencepiece

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


def tokenize_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    from transformers import AutoTokenizer

    from shards.tokenization import encode_records

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
    from shards.writer import write_shards

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


def run_step(name: str, cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict | list[dict]:
    """One step of ``STEPS``, then the memory it freed goes back to the OS before the next one starts."""
    try:
        return STEPS[name](cfg, paths, log)
    finally:
        release_memory()


def prepare(cfg: PipelineConfig, out: str | Path, log: Log = print) -> dict:
    """The whole data part without Prefect (for notebooks, benchmarks and tests); returns the manifest."""
    paths = RunPaths(out).make()
    results = {name: run_step(name, cfg, paths, log) for name in STEPS}
    return finish(cfg, paths, results)

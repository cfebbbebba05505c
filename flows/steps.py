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

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import polars as pl

from flows.config import PipelineConfig
from flows.layout import RunPaths
from flows.manifest import finish
from tuneprep.files import atomic_replace_dir
from tuneprep.hashing import sampled
from tuneprep.lock import RunLock
from tuneprep.records import SPLITS, document_text, empty_records
from tuneprep.runner import JsonlSink, ParquetSink, StopRun, iter_batches, release_memory, run_stages, sort_parquet
from tuneprep.stage import StageStats

Log = Callable[[str], None]

# The augment stage reads its input in chunks of this many records whatever ``batch_size`` is: apertium's tagger
# carries numeric state from one text to the next within a call, so a back-translation depends on the texts
# before it in its chunk, and chunks cut at fixed positions of the (canonically ordered) input keep the variants,
# hence the shards, the same for any batch_size.
AUGMENT_CHUNK_ROWS = 256


class QuarantineLimit(StopRun):
    """More of the input was quarantined than ``max_quarantine_fraction`` allows."""


class QuarantineGuard:
    """Stops the run once more than ``max_quarantine_fraction`` of the input's units are quarantined (by loading and
    every stage together), naming the files most of them came from.

    The share is of the units loading read (files, lines, rows, pages); what earlier steps quarantined is counted
    from ``quarantine/*.jsonl``, the running step's figures are added as they come.
    """

    def __init__(self, cfg: PipelineConfig, paths: RunPaths) -> None:
        self.limit = cfg.max_quarantine_fraction
        self.paths = paths
        self.earlier = sum(_count_lines(f) for f in paths.quarantine.glob("*.jsonl"))
        loaded = paths.stage_file("loaded")
        self.total = self._loaded_units(loaded) if loaded.exists() else 0

    def _loaded_units(self, loaded: Path) -> int:
        import pyarrow.parquet as pq

        return pq.ParquetFile(loaded).metadata.num_rows + _count_lines(self.paths.quarantine / "load.jsonl")

    def __call__(self, stats: list[StageStats] | None = None) -> None:
        running = sum(s.quarantined for s in stats or [])
        quarantined = self.earlier + running
        if not self.total or quarantined <= self.limit * self.total:
            return
        current = Counter()
        errors = []
        for s in stats or []:
            for reason, n in s.quarantine_reasons.items():
                current[f"{s.name}:{reason}"] += n
            errors += [f"{s.name}: {e}" for e in s.errors[:1]]
        example = f"; e.g. {errors[0]}" if errors else ""
        raise QuarantineLimit(
            f"{quarantined:,} of {self.total:,} input units quarantined ({quarantined / self.total:.0%}), over "
            f"max_quarantine_fraction={self.limit}; most from {worst_files(self.paths, current)}{example}; "
            f"see {self.paths.quarantine}/"
        )


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def worst_files(paths: RunPaths, running: Counter | None = None, n: int = 3) -> str:
    """The sources with the most quarantine entries, each with its commonest reason, in one line."""
    per_source: dict[str, Counter] = {}
    for f in sorted(paths.quarantine.glob("*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                try:
                    q = json.loads(line)
                except ValueError:
                    continue
                per_source.setdefault(q.get("source") or "?", Counter())[f"{q.get('stage')}:{q.get('reason')}"] += 1
    ranked = sorted(per_source.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:n]
    parts = [f"{src} ({sum(c.values()):,}, {c.most_common(1)[0][0]})" for src, c in ranked]
    if running:
        parts.append("the running step: " + ", ".join(f"{k} {v:,}" for k, v in running.most_common(2)))
    return "; ".join(parts) or "nowhere"


def load_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    """Read every input into records; unreadable units go to ``quarantine/load.jsonl``."""
    from ingest.sources import LoadStats, iter_record_batches

    t0 = time.perf_counter()
    stats = LoadStats()
    reasons: Counter = Counter()
    batches = iter_record_batches(
        cfg.inputs, cfg.load, cfg.batch_size, stats, scrape=cfg.scrape, raw_dir=paths.out / "raw"
    )
    with ParquetSink(paths.stage_file("loaded")) as out, JsonlSink(paths.quarantine / "load.jsonl") as bad:
        for batch, quarantined in batches:
            out.write(batch)
            bad.write(q.to_dict() for q in quarantined)
            reasons.update(q.reason for q in quarantined)
            log(f"load: {stats.read} units read from {stats.files} inputs so far, {stats.quarantined} quarantined")
        out.close(empty_like=empty_records())
        bad.close()
    st = StageStats("load", read=stats.read, kept=stats.kept, quarantined=stats.quarantined)
    st.quarantine_reasons.update(reasons)
    st.seconds = time.perf_counter() - t0
    st.extra["files"] = stats.files
    st.extra["per_input"] = {source: ledger.to_dict() for source, ledger in stats.per_input.items()}
    if stats.skipped:
        st.extra["skipped_files"] = {"count": len(stats.skipped), "examples": stats.skipped[:10]}
        log(f"load: {len(stats.skipped)} files skipped, no loadable extension (e.g. {stats.skipped[0]})")
    if stats.scrape:
        st.extra["scrape"] = stats.scrape.to_dict()
    if reasons:
        log(f"load: {stats.quarantined} units quarantined {dict(reasons)}; see {paths.quarantine / 'load.jsonl'}")
    return st.to_dict()


def _stage_log(s: StageStats) -> str:
    q = f", {s.quarantined} quarantined {dict(s.quarantine_reasons)}" if s.quarantined else ""
    return f"{s.name}: {s.read} in, {s.kept} kept, {s.dropped} dropped {dict(s.reasons)}{q}"


def clean_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> list[dict]:
    from cleaners import clean_stages

    stages = clean_stages(cfg.clean)
    try:
        stats = run_stages(
            stages,
            paths.stage_file("loaded"),
            paths.stage_file("cleaned"),
            paths.dropped,
            cfg.batch_size,
            quarantine_dir=paths.quarantine,
            check=QuarantineGuard(cfg, paths),
        )
    finally:
        for stage in stages:
            if hasattr(stage, "close"):
                stage.close()
    for s in stats:
        log(_stage_log(s))
    return [s.to_dict() for s in stats]


def dedup_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> list[dict]:
    from cleaners import dedup_stages, save_indexes

    stages = dedup_stages(cfg.dedup, paths.work, reuse_index=cfg.dedup.reuse_index, log=log)
    stats = run_stages(
        stages,
        paths.stage_file("cleaned"),
        paths.stage_file("deduped"),
        paths.dropped,
        cfg.batch_size,
        quarantine_dir=paths.quarantine,
        check=QuarantineGuard(cfg, paths),
    )
    save_indexes(stages, paths.index)
    for s in stats:
        log(_stage_log(s))
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


def _originals_per_split(path: Path) -> dict[str, int]:
    counts = pl.scan_parquet(path).filter(pl.col("aug_of").is_null()).group_by("split").len().collect()
    return {s: 0 for s in SPLITS} | {k: int(v) for k, v in counts.iter_rows() if k is not None}


def split_shift(before: dict[str, int], after: dict[str, int], ratios: dict[str, float], limit: float) -> dict:
    """Each split's share of originals before and after a step, against the configured ratios; ``warning`` names
    the splits the step moved more than ``limit`` away from their ratio (and further than they were)."""
    total_b, total_a = sum(before.values()) or 1, sum(after.values()) or 1
    shares = {
        s: {
            "configured": r,
            "before": round(before.get(s, 0) / total_b, 4),
            "after": round(after.get(s, 0) / total_a, 4),
        }
        for s, r in ratios.items()
    }
    moved = [
        s
        for s, v in shares.items()
        if abs(v["after"] - v["configured"]) > limit
        and abs(v["after"] - v["configured"]) > abs(v["before"] - v["configured"])
    ]
    out: dict = {"shares": shares}
    if moved:
        out["warning"] = (
            "decontamination moved the split of originals more than "
            f"{limit:.0%} from the configured ratios: "
            + ", ".join(
                f"{s} {shares[s]['before']:.1%} -> {shares[s]['after']:.1%} (configured {shares[s]['configured']:.0%})"
                for s in moved
            )
        )
    return out


def decontaminate_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    """Drop train records that leak held-out text: near-duplicates of validation/test records, and records sharing
    n-grams with the external evaluation sets of ``decontaminate.against``; n-grams shared with the corpus's own
    held-out records are reported.

    The n-gram join spills to ``work/decontaminate``, removed when the step ends (and at the start of a rerun).
    """
    from cleaners.decontaminate import Decontaminator
    from cleaners.heldout import HeldoutIndex
    from ingest.sources import LoadStats, iter_record_batches

    src = paths.stage_file("split")
    dcfg = cfg.decontaminate
    heldout = HeldoutIndex.from_config(cfg.heldout, cfg.dedup, sig_path=paths.work / "heldout.sigs")
    stage = Decontaminator(dcfg, heldout, cfg.heldout.splits, workdir=paths.work / "decontaminate")
    loads: list[LoadStats] = []  # one per pass over the `against` files
    quarantined: Counter = Counter()

    def external():
        loads.append(LoadStats())
        for batch, bad in iter_record_batches(dcfg.against, cfg.load, cfg.batch_size, loads[-1]):
            if len(loads) == 1:
                quarantined.update(q.reason for q in bad)
            yield batch.with_columns((pl.col("source") + pl.lit(":") + pl.col("id")).alias("id"))

    try:
        stage.fit(partial(iter_batches, src, cfg.batch_size), external if dcfg.against else None)
        (st,) = run_stages(
            [stage],
            src,
            paths.stage_file("decontaminated"),
            paths.dropped,
            cfg.batch_size,
            quarantine_dir=paths.quarantine,
            check=QuarantineGuard(cfg, paths),
        )
        if heldout is not None:  # the augmentation gate asks the same index
            heldout.save(paths.heldout_index)
    finally:
        stage.close()
        if heldout is not None:
            heldout.close()
    if dcfg.against:
        st.extra["against"] = {
            "inputs": list(dcfg.against),
            "files": loads[0].files if loads else 0,
            "records": len(stage.sides["x"].ids),
            "quarantined": dict(quarantined),
        }
    shift = split_shift(
        _originals_per_split(src),
        _originals_per_split(paths.stage_file("decontaminated")),
        cfg.split.ratios,
        dcfg.max_split_shift,
    )
    st.extra["split_shift"] = shift
    reasons = ", ".join(f"{k} {v}" for k, v in st.extra.get("by_reason", {}).items()) or "none"
    log(f"decontaminate: {st.extra.get('flagged', 0)} train records flagged ({reasons}); {st.dropped} dropped")
    if "warning" in shift:
        log(f"WARNING: {shift['warning']}")
    return st.to_dict()


def augment_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    """Augment the train split, then put the records in their canonical order (by id, variants included).

    The augmenter appends each batch's variants after that batch, so its output order depends on
    ``batch_size``; the tokenizer trainer and the shard writer read the sorted file, so the shards' bytes
    do not (nor would they on how workers split the work).
    """
    from augment import Augment
    from cleaners.heldout import HeldoutIndex

    src = paths.stage_file("decontaminated")
    unordered = paths.stage_file("augment-output")
    gate = cfg.augment.enabled and cfg.augment.leakage.enabled and paths.heldout_index.exists()
    holdout = HeldoutIndex.load(paths.heldout_index, paths.work / "heldout.sigs") if gate else None
    stage = Augment(cfg.augment, seed=cfg.seed, log=log, holdout=holdout)
    try:
        stage.fit(partial(iter_batches, src, cfg.batch_size))  # corpus terms, before the first batch is augmented
        (st,) = run_stages(
            [stage],
            src,
            unordered,
            paths.dropped,
            AUGMENT_CHUNK_ROWS,
            quarantine_dir=paths.quarantine,
            check=QuarantineGuard(cfg, paths),
        )
    finally:
        if holdout is not None:
            holdout.close()
    sort_parquet(unordered, paths.stage_file("augmented"), "id", cfg.batch_size)
    unordered.unlink()
    log(f"augment: {st.read} in, {st.added} variants made, {st.dropped} rejected by the gates")
    return st.to_dict()


def earlier_run(cfg: PipelineConfig) -> Path | None:
    """The earlier run a data drop builds on (``split.previous``, else ``dedup.reuse_index``), if it has a tokenizer."""
    for ref in (cfg.split.previous, cfg.dedup.reuse_index):
        if not ref:
            continue
        p = Path(ref)
        run = p.parent if p.is_file() or p.name == "index" else p
        if (run / "tokenizer").is_dir():
            return run
    return None


def tokenizer_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    """Train SentencePiece on the train split (originals and variants), or load the named tokenizer.

    A data drop with nothing new to train on (every record already in the earlier run) reuses the earlier run's
    tokenizer, so its (empty) shards match the earlier ones.
    """
    from shards.tokenization import load_pretrained, tokenizer_identity, train_chars, train_sentencepiece

    src = paths.stage_file("augmented")
    total = 0 if cfg.tokenizer.pretrained else train_chars(src)
    earlier = earlier_run(cfg)
    if cfg.tokenizer.pretrained:
        load_pretrained(cfg.tokenizer.pretrained, paths.tokenizer, cfg.tokenizer.extra_special_tokens)
        log(f"tokenizer: loaded {cfg.tokenizer.pretrained}")
    elif total == 0 and earlier is not None:
        tmp = paths.tokenizer.with_name(f".{paths.tokenizer.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(earlier / "tokenizer", tmp)
        atomic_replace_dir(tmp, paths.tokenizer)
        log(f"tokenizer: nothing new to train on; reusing {earlier / 'tokenizer'}")
        identity = tokenizer_identity(paths.tokenizer)
        earlier_identity = _manifest(earlier).get("tokenizer", {})
        return {**identity, "name": earlier_identity.get("name", identity["name"]), "reused_from": str(earlier)}
    elif total == 0:
        raise ValueError(
            "no text left in the train split to train a tokenizer on: every record was dropped or quarantined, "
            "or went to validation/test (see the report, dropped/ and quarantine/)"
        )
    else:
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


def _manifest(run: Path) -> dict:
    try:
        return json.loads((run / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def tokenize_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict:
    """Records -> windows of token ids. The unit from here on is the window: a record cut into k windows adds
    k - 1, a window with no loss token is dropped (``dropped/tokenize.parquet``), and a record the tokenizer
    cannot encode goes to ``quarantine/tokenize.jsonl``."""
    from transformers import AutoTokenizer

    from shards.encode import Tokenize
    from tuneprep.runner import quarantine_entries

    stage = Tokenize(AutoTokenizer.from_pretrained(str(paths.tokenizer)), cfg.tokenizer.max_length)
    st = StageStats(stage.name)
    guard = QuarantineGuard(cfg, paths)
    src = paths.stage_file("augmented")
    t0 = time.perf_counter()
    windows = cut = 0
    with (
        ParquetSink(paths.stage_file("tokenized")) as out,
        JsonlSink(paths.quarantine / "tokenize.jsonl") as bad,
        ParquetSink(paths.dropped / "tokenize.parquet") as dropped,
    ):
        try:
            for batch in iter_batches(src, cfg.batch_size):
                result = stage(batch)
                out.write(result.kept)
                if result.dropped.height:
                    dropped.write(result.dropped)
                bad.write(quarantine_entries(result.quarantined))
                made = result.kept.height + result.dropped.height
                st.read += batch.height
                st.kept += result.kept.height
                st.dropped += result.dropped.height
                st.added += made - (batch.height - result.quarantined.height)
                st.quarantined += result.quarantined.height
                st.quarantine_reasons.update(result.quarantined["reason"].to_list())
                st.reasons.update(result.dropped["reason"].to_list())
                windows += made
                if made:
                    ids = pl.concat([result.kept["id"], result.dropped["id"]])
                    cut += int((ids.value_counts()["count"] > 1).sum())
                log(f"tokenize: {st.read} records -> {windows} windows ({st.dropped} without a loss token)")
                guard([st])
        except StopRun:
            bad.close()
            raise
        if out.writer is None:
            if earlier_run(cfg) is None:
                raise ValueError("no records left to tokenize: every input was dropped or quarantined (see the report)")
            empty = pl.DataFrame(schema=pl.read_parquet_schema(src))
            out.write(stage.process(empty).kept)  # a data drop that adds nothing: empty shards with the right columns
        out.close()
        bad.close()
        dropped.close(empty_like=stage.process(pl.DataFrame(schema=pl.read_parquet_schema(src))).dropped)
    if not st.quarantined:
        (paths.quarantine / "tokenize.jsonl").unlink(missing_ok=True)
    st.seconds = time.perf_counter() - t0
    st.extra = {"windows": windows, "records_cut": cut, "windows_without_loss": st.dropped}
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
    """One step of ``STEPS``; then the quarantine share is checked (a stage checks it batch by batch as well), and
    the memory the step freed goes back to the OS before the next one starts."""
    try:
        result = STEPS[name](cfg, paths, log)
        QuarantineGuard(cfg, paths)()
        return result
    finally:
        release_memory()


def start_run(cfg: PipelineConfig, out: str | Path) -> RunPaths:
    """Check inputs, config and output folder (``flows.preflight``), make the layout, and clear what an earlier run
    into the same folder quarantined (this run's quarantine files are counted against its limit)."""
    from flows.preflight import preflight

    preflight(cfg, out)
    paths = RunPaths(out).make()
    for f in paths.quarantine.glob("*.jsonl"):
        f.unlink()
    return paths


def prepare(cfg: PipelineConfig, out: str | Path, log: Log = print) -> dict:
    """The whole data part without Prefect (for notebooks, benchmarks and tests); returns the manifest."""
    with RunLock(out):
        paths = start_run(cfg, out)
        results = {name: run_step(name, cfg, paths, log) for name in STEPS}
        return finish(cfg, paths, results)

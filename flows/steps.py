"""The pipeline's steps as plain functions over paths, with no Prefect in sight.

Each step reads the previous step's Parquet file under ``OUT/work/``, writes its own, and
returns a small JSON-able summary. ``flows.prepare`` wraps each in a Prefect task; a notebook,
a benchmark or a test calls them (or ``prepare``) directly. The work itself lives in the stage
packages; a step only says which file goes in, which comes out, and what to log.

Order: load -> clean -> dedup -> split -> decontaminate -> augment -> tokenizer -> tokenize -> shards.
The split comes before augmentation and tokenizer training so that variants stay in their
source's split and the tokenizer never sees validation or test text.

The CPU-heavy steps (cleaning with the MinHash signatures near-dedup will need, augmentation,
tokenization) are partitioned (``flows.partitioned``): one task per row range, in this process or on
Dask; dedup's index merge, the split and the rest stay single. ``run_step`` skips a step an earlier
run finished with the same inputs, config slice and code (``flows.markers``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import polars as pl

from finetune.config import FinetuneConfig
from flows.config import PipelineConfig
from flows.layout import RunPaths
from flows.manifest import finish, write_timings
from flows.markers import Markers, RunLog, Timer, begin_run, code_version, config_slice
from flows.partitioned import (
    MapParts,
    PartitionedStep,
    concat_part_outputs,
    merge_stage_stats,
    part_dir,
    run_partitioned,
)
from tuneprep.files import atomic_replace_dir
from tuneprep.hashing import sampled
from tuneprep.lock import RunLock
from tuneprep.partitions import Partition
from tuneprep.records import SPLITS, document_text, empty_records
from tuneprep.runner import (
    JsonlSink,
    ParquetSink,
    StopRun,
    frozen_between_steps,
    iter_batches,
    release_memory,
    run_stages,
    sort_parquet,
)
from tuneprep.stage import StageStats

Log = Callable[[str], None]

# The augment stage reads its input in chunks of this many records whatever ``batch_size`` is: apertium-tagger
# carries state from one text to the next, so the apertium backend cuts each call into fixed units with a fresh
# tagger each (augment.apertium), and a back-translation depends on the texts before it in its unit; chunks cut at
# fixed positions of the (canonically ordered) input keep the calls, hence the units, variants and shards, the
# same for any batch_size.
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


def clean_part(cfg: PipelineConfig, paths: RunPaths, part: Partition, log: Log = print) -> list[dict]:
    """Extract, normalise, redact and filter one partition, then MinHash what it kept for near-dedup."""
    from cleaners import clean_stages
    from cleaners.dedup import SignatureWriter
    from cleaners.html import StripHtml, page_batches

    folder = part_dir(paths, "clean", part)
    stages = clean_stages(cfg.clean)
    src = paths.stage_file("loaded")
    pages = isinstance(stages[0], StripHtml) and _has_html(src, part)
    if pages:  # pages extracted while the text ahead is cleaned, and cleaned a chunk at a time
        stages[0].prefetch(_html_pages(src, part, cfg.batch_size))
    signer = SignatureWriter(cfg.dedup) if cfg.dedup.near else None  # each kept batch MinHashed as it is written
    try:
        stats = run_stages(
            stages,
            src,
            folder / "out.parquet",
            folder / "dropped",
            cfg.batch_size,
            quarantine_dir=folder / "quarantine",
            check=QuarantineGuard(cfg, paths),
            rows=(part.start, part.stop),
            on_kept=signer.add if signer is not None else None,
            rebatch=page_batches if pages else None,
        )
    finally:
        for stage in stages:
            if hasattr(stage, "close"):
                stage.close()
    if signer is not None:
        signer.write(folder / "minhash.npz")
    log(f"clean: {part.name} ({part.rows} records): {stats[-1].kept} kept")
    return [s.to_dict() for s in stats]


def _html_pages(src: Path, part: Partition, batch_size: int) -> Iterator[str | None]:
    """The partition's HTML pages in row order, read a batch at a time."""
    for start in range(part.start, part.stop, batch_size):
        rows = pl.scan_parquet(src).slice(start, min(batch_size, part.stop - start))
        yield from rows.filter(pl.col("format") == "html").select("text").collect()["text"].to_list()


def _has_html(src: Path, part: Partition) -> bool:
    rows = pl.scan_parquet(src).slice(part.start, part.rows).select((pl.col("format") == "html").any())
    return bool(rows.collect().item())


def clean_merge(
    cfg: PipelineConfig, paths: RunPaths, parts: list[Partition], results: list[list[dict]], log: Log = print
) -> list[dict]:
    stats = merge_stage_stats(results)
    concat_part_outputs(paths, "clean", parts, paths.stage_file("cleaned"), [s["name"] for s in stats], cfg.batch_size)
    for s in stats:
        log(_stage_log_dict(s))
    return stats


def _stage_log_dict(s: dict) -> str:
    q = f", {s['quarantined']} quarantined {s['quarantine_reasons']}" if s["quarantined"] else ""
    return f"{s['name']}: {s['read']} in, {s['kept']} kept, {s['dropped']} dropped {s['reasons']}{q}"


def signature_files(cfg: PipelineConfig, paths: RunPaths) -> list[Path]:
    """The clean step's per-partition MinHash files, in corpus order (empty when it made none)."""
    from tuneprep.partitions import plan_partitions

    if not cfg.dedup.near or not paths.stage_file("loaded").exists():
        return []
    parts = plan_partitions(paths.stage_file("loaded"), cfg.runner.partition_rows, cfg.batch_size)
    files = [part_dir(paths, "clean", p) / "minhash.npz" for p in parts]
    return files if all(f.exists() for f in files) else []


def dedup_step(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> list[dict]:
    """Exact, then near-duplicates, in corpus order against one growing index (single: the order decides)."""
    from cleaners import dedup_stages, save_indexes
    from cleaners.dedup import MinHashDeduper, SignatureFeed

    stages = dedup_stages(cfg.dedup, paths.work, reuse_index=cfg.dedup.reuse_index, log=log)
    sigs = signature_files(cfg, paths)
    for stage in stages:
        if isinstance(stage, MinHashDeduper) and sigs:
            stage.use_feed(SignatureFeed(sigs))  # computed per partition by the clean step
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
    from shards.split import assign_splits, previous_assignment, previous_groups

    src = paths.stage_file("deduped")
    stratify = [cfg.split.stratify_by] if cfg.split.stratify_by in pl.read_parquet_schema(src) else []
    keys = pl.read_parquet(src, columns=list(dict.fromkeys(["id", "source", "group_id", *stratify])))
    previous = previous_assignment(cfg.split.previous)
    plan = assign_splits(keys, cfg.split, cfg.seed, previous)
    n_records, splits = keys.height, plan.assignment["split"]  # in file order: sliced per batch, no join
    del keys
    groups = plan.groups
    if previous is not None:  # the whole corpus so far: a later drop keeps every earlier group's split
        earlier = previous_groups(cfg.split.previous)
        groups = pl.concat([earlier.join(groups, on="group", how="anti"), groups]).sort("group")
    groups.write_parquet(paths.splits)
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
    from cleaners.dedup import SignatureFeed
    from cleaners.heldout import HeldoutIndex
    from ingest.sources import LoadStats, iter_record_batches

    src = paths.stage_file("split")
    dcfg = cfg.decontaminate
    heldout = HeldoutIndex.from_config(cfg.heldout, cfg.dedup, sig_path=paths.work / "heldout.sigs")
    stage = Decontaminator(dcfg, heldout, cfg.heldout.splits, workdir=paths.work / "decontaminate")
    if sigs := signature_files(cfg, paths):  # the clean step's MinHash of every record: not hashed again
        stage.use_feed(lambda: SignatureFeed(sigs))
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


def _augmentable_before(cfg: PipelineConfig, src: Path, row: int) -> int:
    """Records before ``row`` that augmentation takes as sources (``augment.stage.Augment._eligible``), so a
    partition knows how much of ``augment.max_records`` the partitions before it used."""
    text = (pl.col("format") != "chat") & pl.col("text").is_not_null() & (pl.col("text").str.len_chars() > 0)
    chat = (pl.col("format") == "chat") & pl.col("messages").is_not_null()
    eligible = pl.col("split").is_in(cfg.augment.splits) & pl.col("aug_of").is_null() & (text | chat)
    return pl.scan_parquet(src).head(row).filter(eligible).select(pl.len()).collect().item()


def _corpus_terms_cache(cfg: PipelineConfig, paths: RunPaths, src: Path) -> Path:
    """Where the augment partitions of one input share its corpus terms: named by the input file and settings."""
    st = src.stat()
    key = hashlib.sha256(
        json.dumps([str(src), st.st_size, st.st_mtime_ns, cfg.batch_size, cfg.augment.model_dump(mode="json")],
                   sort_keys=True, default=str).encode()
    ).hexdigest()[:16]  # fmt: skip
    return paths.work / "augment-terms" / f"{key}.npz"


def augment_part(cfg: PipelineConfig, paths: RunPaths, part: Partition, log: Log = print) -> list[dict]:
    """Augment one partition of the train split, in ``AUGMENT_CHUNK_ROWS`` chunks (partitions start on one)."""
    from augment import Augment
    from cleaners.heldout import HeldoutIndex

    src = paths.stage_file("decontaminated")
    folder = part_dir(paths, "augment", part)
    augment_cfg = cfg.augment
    if augment_cfg.max_records is not None and part.start:
        used = _augmentable_before(cfg, src, part.start)
        augment_cfg = augment_cfg.model_copy(update={"max_records": max(0, augment_cfg.max_records - used)})
    gate = cfg.augment.enabled and cfg.augment.leakage.enabled and paths.heldout_index.exists()
    holdout = HeldoutIndex.load(paths.heldout_index, folder / "heldout.sigs") if gate else None
    stage = Augment(augment_cfg, seed=cfg.seed, log=log, holdout=holdout)
    try:
        stage.fit(partial(iter_batches, src, cfg.batch_size), cache=_corpus_terms_cache(cfg, paths, src))
        (st,) = run_stages(
            [stage],
            src,
            folder / "out.parquet",
            folder / "dropped",
            AUGMENT_CHUNK_ROWS,
            quarantine_dir=folder / "quarantine",
            check=QuarantineGuard(cfg, paths),
            rows=(part.start, part.stop),
        )
    finally:
        stage.close()
        if holdout is not None:
            holdout.close()
    log(f"augment: {part.name}: {st.read} in, {st.added} variants made")
    return [st.to_dict()]


def augment_merge(
    cfg: PipelineConfig, paths: RunPaths, parts: list[Partition], results: list[list[dict]], log: Log = print
) -> dict:
    """The partitions' records, then in their canonical order (by id, variants included).

    The augmenter appends each chunk's variants after that chunk, so its output order depends on how the
    input was cut; the tokenizer trainer and the shard writer read the sorted file, so the shards' bytes
    depend neither on ``batch_size`` nor on the partitions.
    """
    if not parts:  # augmentation off: the records alone, in the same canonical order
        from augment import Augment

        stage = Augment(cfg.augment, seed=cfg.seed, log=log)
        n = sort_parquet(paths.stage_file("decontaminated"), paths.stage_file("augmented"), "id", cfg.batch_size)
        (paths.dropped / f"{stage.name}.parquet").unlink(missing_ok=True)  # an earlier run's, with augmentation on
        (paths.quarantine / f"{stage.name}.jsonl").unlink(missing_ok=True)
        off = StageStats(stage.name, read=n, kept=n)
        off.extra = stage.summary()
        log(f"augment: off; {n} records passed on")
        return off.to_dict()
    (st,) = merge_stage_stats(results)
    unordered = paths.stage_file("augment-output")
    concat_part_outputs(paths, "augment", parts, unordered, [st["name"]], cfg.batch_size)
    sort_parquet(unordered, paths.stage_file("augmented"), "id", cfg.batch_size)
    unordered.unlink()
    log(f"augment: {st['read']} in, {st['added']} variants made, {st['dropped']} rejected by the gates")
    return st


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


def tokenize_part(cfg: PipelineConfig, paths: RunPaths, part: Partition, log: Log = print) -> list[dict]:
    """Records -> windows of token ids, for one partition. The unit from here on is the window: a record cut
    into k windows adds k - 1, a window with no loss token is dropped (``dropped/tokenize.parquet``), and a
    record the tokenizer cannot encode goes to ``quarantine/tokenize.jsonl``."""
    from shards.encode import Tokenize
    from shards.tokenization import read_tokenizer
    from tuneprep.runner import iter_rows, quarantine_entries

    stage = Tokenize(read_tokenizer(paths.tokenizer), cfg.tokenizer.max_length)
    st = StageStats(stage.name)
    guard = QuarantineGuard(cfg, paths)
    src = paths.stage_file("augmented")
    folder = part_dir(paths, "tokenize", part)
    t0 = time.perf_counter()
    windows = cut = 0
    with (
        ParquetSink(folder / "out.parquet") as out,
        JsonlSink(folder / "quarantine" / "tokenize.jsonl") as bad,
        ParquetSink(folder / "dropped" / "tokenize.parquet") as dropped,
    ):
        try:
            for batch in iter_rows(src, part.start, part.stop, cfg.batch_size):
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
                guard([st])
        except StopRun:
            bad.close()
            raise
        empty = stage.process(pl.DataFrame(schema=pl.read_parquet_schema(src)))
        out.close(empty_like=empty.kept)
        bad.close()
        dropped.close(empty_like=empty.dropped)
    if not st.quarantined:
        (folder / "quarantine" / "tokenize.jsonl").unlink(missing_ok=True)
    st.seconds = time.perf_counter() - t0
    log(f"tokenize: {part.name}: {st.read} records -> {windows} windows ({st.dropped} without a loss token)")
    st.extra = {"windows": windows, "records_cut": cut, "windows_without_loss": st.dropped}
    return [st.to_dict()]


def tokenize_merge(
    cfg: PipelineConfig, paths: RunPaths, parts: list[Partition], results: list[list[dict]], log: Log = print
) -> dict:
    (st,) = merge_stage_stats(results)
    if st["kept"] == 0 and earlier_run(cfg) is None:
        raise ValueError("no records left to tokenize: every input was dropped or quarantined (see the report)")
    # A data drop that adds nothing gets empty shards with the right columns.
    concat_part_outputs(
        paths, "tokenize", parts, paths.stage_file("tokenized"), ["tokenize"], cfg.batch_size, ["tokenize"]
    )
    log(f"tokenize: {st['read']} records -> {st['extra']['windows']} windows ({st['dropped']} without a loss token)")
    return st


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


# The partitioned steps: one task per row range of their source, then a merge in partition order.
PARTITIONED: dict[str, PartitionedStep] = {
    "clean": PartitionedStep("clean", lambda p: p.stage_file("loaded"), clean_part, clean_merge),
    "augment": PartitionedStep(
        "augment",
        lambda p: p.stage_file("decontaminated"),
        augment_part,
        augment_merge,
        lambda cfg: AUGMENT_CHUNK_ROWS,
        idle=lambda cfg: not cfg.augment.enabled,
    ),
    "tokenize": PartitionedStep("tokenize", lambda p: p.stage_file("augmented"), tokenize_part, tokenize_merge),
}


def _run_partitioned(name: str) -> Callable[[PipelineConfig, RunPaths, Log], dict | list[dict]]:
    def run(cfg: PipelineConfig, paths: RunPaths, log: Log = print) -> dict | list[dict]:
        return run_partitioned(PARTITIONED[name], cfg, paths, None, log)[0]

    run.__name__ = f"{name}_step"
    run.__doc__ = f"The {name} step, its partitions one after another in this process."
    return run


clean_step, augment_step, tokenize_step = (_run_partitioned(n) for n in ("clean", "augment", "tokenize"))

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

# What each step's result depends on besides its input files: the config it reads (a change elsewhere
# does not redo it). Partitioned steps also depend on the partition size (the stage summaries do).
STEP_CONFIG: dict[str, tuple[str, ...]] = {
    "load": ("inputs", "load", "scrape", "batch_size"),
    "clean": ("clean", "batch_size", "runner.partition_rows", "dedup.near", "dedup.num_perm", "dedup.ngram",
              "dedup.shingle", "dedup.sketch"),
    "dedup": ("dedup", "batch_size"),
    "split": ("split", "seed", "batch_size"),
    "decontaminate": ("heldout", "dedup", "decontaminate", "batch_size"),
    "augment": ("augment", "heldout", "seed", "batch_size", "runner.partition_rows"),
    "tokenizer": ("tokenizer", "seed", "batch_size"),
    "tokenize": ("tokenizer.max_length", "batch_size", "runner.partition_rows"),
    "shards": ("shards", "batch_size"),
}  # fmt: skip


def step_inputs(name: str, cfg: PipelineConfig, paths: RunPaths) -> list[Path | str]:
    """The files (or, for URLs and hub datasets, the names) a step reads: a change in any of them redoes it."""
    w = paths.stage_file
    if name == "load":
        from ingest.sources import list_files

        remote = [i for i in cfg.inputs if "://" in i] + cfg.scrape.urls + cfg.scrape.sitemaps
        return [p for p, _ in list_files(cfg.inputs, cfg.load)] + remote
    local = lambda ref: [Path(ref)] if ref and "://" not in ref and Path(ref).exists() else ([ref] if ref else [])  # noqa: E731
    return {
        "clean": [w("loaded")],
        "dedup": [w("cleaned"), *signature_files(cfg, paths), *local(cfg.dedup.reuse_index)],
        "split": [w("deduped"), *local(cfg.split.previous)],
        "decontaminate": [w("split"), *signature_files(cfg, paths)],
        "augment": [w("decontaminated"), paths.heldout_index],
        "tokenizer": [w("augmented"), *local(cfg.tokenizer.pretrained)],
        "tokenize": [w("augmented"), paths.tokenizer],
        "shards": [w("tokenized")],
    }[name]


def run_step(
    name: str, cfg: PipelineConfig, paths: RunPaths, log: Log = print, map_parts: MapParts | None = None
) -> dict | list[dict]:
    """One step of ``STEPS``, unless an earlier run finished it with the same inputs, config and code; then the
    quarantine share is checked (a stage checks it batch by batch as well), and the memory the step freed goes
    back to the OS before the next one starts.

    Partitioned steps run their partitions through ``map_parts`` (default: one after another here), and skip
    the partitions an interrupted run finished.
    """
    markers = Markers(paths.out)
    inputs = step_inputs(name, cfg, paths)
    key, read = markers.key(name, config_slice(cfg, STEP_CONFIG[name]), inputs, code_version(name))
    done = markers.done(name, key)
    if done is not None:
        log(f"{name}: finished in an earlier run with the same inputs, config and code; reused")
        RunLog(paths.out).add(name, status="reused", seconds=0.0)
        return done["result"]
    markers.forget(name)
    before = markers.snapshot()
    parts = None
    try:
        with Timer() as t:
            if name in PARTITIONED:
                result, parts = run_partitioned(PARTITIONED[name], cfg, paths, key, log, map_parts)
            else:
                result = STEPS[name](cfg, paths, log)
        QuarantineGuard(cfg, paths)()
    finally:
        release_memory()
    outputs = markers.written_since(before)
    if name in PARTITIONED:
        outputs = sorted({*outputs, *(p for p in (paths.work / "parts" / name).rglob("*") if p.is_file())})
    markers.record(name, key, outputs, result, read)
    RunLog(paths.out).add(name, status="ran", seconds=t.seconds, **({"partitions": parts} if parts else {}))
    return result


def start_run(cfg: PipelineConfig, out: str | Path) -> RunPaths:
    """Check inputs, config and output folder (``flows.preflight``), make the layout, remove what a killed run
    left half-written, and clear the quarantine files no finished step vouches for (an earlier run's: this
    run's quarantine files are counted against its limit; a step this run reuses keeps its own)."""
    from flows.preflight import preflight

    preflight(cfg, out)
    paths = RunPaths(out).make()
    begin_run(out)
    kept = Markers(out).recorded_outputs()
    for f in paths.quarantine.glob("*.jsonl"):
        if f.resolve() not in kept:
            f.unlink()
    return paths


def _train(data_dir: str, model_dir: str, cfg: FinetuneConfig) -> str:
    from finetune import train

    train(Path(data_dir), Path(model_dir), cfg)
    return str(Path(model_dir) / "metrics.json")


def finetune_step(
    data_dir: str | Path,
    model_dir: str | Path,
    cfg: FinetuneConfig,
    log: Log = print,
    train: Callable[[str, str, FinetuneConfig], str] = _train,
) -> str:
    """Fine-tune on a prepared folder (``train``: the Prefect task in the flows), unless ``model_dir`` holds a
    finished run on the same shards, tokenizer, config and code; returns the path of metrics.json.

    The marker is written only after ``metrics.json``, so a run killed while training trains again (resuming
    from its last checkpoint where the trainer keeps them) instead of being skipped.
    """
    data, model = Path(data_dir), Path(model_dir)
    markers = Markers(data)
    config = {"finetune": cfg.model_dump(mode="json"), "model_dir": str(model.resolve())}
    base = [Path(cfg.model)] if cfg.model and Path(cfg.model).exists() else []
    key, read = markers.key("finetune", config, [data / "shards", data / "tokenizer", *base], code_version("finetune"))
    if markers.done("finetune", key) is not None and (model / "metrics.json").exists():
        log(f"finetune: {model} holds a finished run on the same shards, config and code; reused")
        RunLog(data).add("finetune", status="reused", seconds=0.0)
        write_timings(RunPaths(data))
        return str(model / "metrics.json")
    markers.forget("finetune")
    before = markers.snapshot(model)
    with Timer() as t:
        metrics = train(str(data), str(model), cfg)
    markers.record("finetune", key, markers.written_since(before, model), {"metrics": metrics}, read)
    RunLog(data).add("finetune", status="ran", seconds=t.seconds)
    write_timings(RunPaths(data))
    return metrics


def prepare(cfg: PipelineConfig, out: str | Path, log: Log = print) -> dict:
    """The whole data part without Prefect (for notebooks, benchmarks and tests); returns the manifest.

    A rerun into the same folder reuses every step (and partition) an earlier run finished."""
    with RunLock(out), frozen_between_steps():
        paths = start_run(cfg, out)
        results = {name: run_step(name, cfg, paths, log) for name in STEPS}
        return finish(cfg, paths, results)

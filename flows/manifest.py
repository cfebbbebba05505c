"""The run's record: inputs and their hashes, config, versions, per-stage accounting, shards, tokenizer.

``manifest.json`` is a function of the inputs, the config and the code: the same run gives the same bytes,
whether it ran in one go or was killed and resumed. What varies from run to run — how long each stage
took, which steps a rerun reused — goes to ``timings.json`` beside it.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections import Counter
from importlib import metadata

import polars as pl

from flows.config import PROJECT_ROOT, PipelineConfig
from flows.layout import RunPaths
from tuneprep.files import atomic_write_text
from tuneprep.records import SPLITS
from tuneprep.stage import balanced


def input_inventory(cfg: PipelineConfig, per_input: dict[str, dict] | None = None) -> list[dict]:
    """Every input file with its sha256, every entry that could not be read with why, and every dataset or URL
    input by name; with the load step's ``per_input`` figures, what became of each one's units."""
    from ingest.sources import file_digest, list_inputs

    per_input = dict(per_input or {})
    entries = []
    for unit in list_inputs(cfg.inputs, cfg.load):
        if isinstance(unit, tuple):
            p, source = unit
            entry: dict = {"source": source}
            if p.is_dir():
                entry["kind"] = "saved dataset"
            else:
                try:
                    entry["bytes"], entry["sha256"] = file_digest(p)
                except OSError as e:
                    entry["unreadable"] = f"{type(e).__name__}: {e.strerror or e}"
        else:
            entry = {"source": unit.source, "unreadable": unit.reason}
        entries.append({**entry, **per_input.pop(entry["source"], {})})
    for item in cfg.inputs:
        if "://" in item:
            entries.append({"source": item, "kind": "hub" if item.startswith("hf://") else "url"})
    return entries


def finish(cfg: PipelineConfig, paths: RunPaths, results: dict) -> dict:
    """Gather the steps' summaries into the manifest."""
    stages: list[dict] = []
    for name, r in results.items():
        if name in ("tokenizer", "shards"):
            continue
        stages.extend(r if isinstance(r, list) else [r])
    load = next((s for s in stages if s["name"] == "load"), {})
    per_input = load.get("extra", {}).pop("per_input", None)
    rows = sum(split.get("rows", 0) for split in results["shards"].values())
    summary = {
        "inputs": input_inventory(cfg, per_input),
        "stages": stages,
        "shards": results["shards"],
        "profile": dataset_profile(paths),
        "tokenizer": results["tokenizer"],
        "nothing_new": bool(results["tokenizer"].get("reused_from")) and rows == 0,
        "quarantine": quarantine_summary(paths),
    }
    return write_manifest(cfg, paths, summary)


def quarantine_summary(paths: RunPaths, top: int = 5) -> dict:
    """Per quarantine file (one per stage that quarantined anything): entries, reasons, and the worst sources."""
    out = {}
    for f in sorted(paths.quarantine.glob("*.jsonl")):
        reasons: Counter = Counter()
        sources: Counter = Counter()
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                try:
                    q = json.loads(line)
                except ValueError:
                    continue
                reasons[q.get("reason")] += 1
                sources[q.get("source")] += 1
        if reasons:
            out[f.stem] = {
                "file": f"quarantine/{f.name}",
                "entries": sum(reasons.values()),
                "reasons": dict(reasons.most_common()),
                "worst_sources": dict(sources.most_common(top)),
            }
    return out


def dataset_profile(paths: RunPaths, lengths: bool = False) -> dict:
    """Per-split counts by label and origin (original or augmented), and optionally every example's length.

    Documents are counted once (one row per record id, whichever of its windows were kept); the queries
    run lazily over the Parquet file.
    """
    rows = pl.scan_parquet(paths.stage_file("tokenized"))
    has_id = "id" in rows.collect_schema().names()  # a run folder written without ids counts first windows
    docs = rows.unique(subset="id") if has_id else rows.filter(pl.col("window") == 0)
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


def split_timings(stages: list[dict]) -> tuple[list[dict], dict]:
    """The stage summaries without their durations (``seconds``, ``seconds_*`` at any depth), and the durations."""

    def strip(d: dict) -> tuple[dict, dict]:
        kept, timed = {}, {}
        for k, v in d.items():
            if k == "seconds" or k.startswith("seconds_"):
                timed[k] = v
            elif isinstance(v, dict):
                kept[k], inner = strip(v)
                if inner:
                    timed[k] = inner
            else:
                kept[k] = v
        return kept, timed

    pairs = [strip(s) for s in stages]
    return [p[0] for p in pairs], {s["name"]: p[1] for s, p in zip(stages, pairs, strict=True)}


def read_manifest(paths: RunPaths) -> dict:
    """The manifest with each stage's durations from timings.json put back, for the reports."""

    def merge(into: dict, timed: dict) -> None:
        for k, v in timed.items():
            if isinstance(v, dict) and isinstance(into.get(k), dict):
                merge(into[k], v)
            else:
                into.setdefault(k, v)

    manifest = json.loads(paths.manifest.read_text())
    timings = json.loads(paths.timings.read_text()).get("stages", {}) if paths.timings.exists() else {}
    for s in manifest.get("stages", []):
        merge(s, timings.get(s["name"], {}))
        s.setdefault("seconds", 0.0)
    return manifest


def write_timings(paths: RunPaths, stage_timings: dict | None = None) -> dict:
    """``timings.json``: seconds per stage (of the run that computed it) and what this run did per step.

    Without ``stage_timings`` the file's stage part is kept and only the steps are brought up to date."""
    from flows.markers import RunLog

    if stage_timings is None:
        stage_timings = json.loads(paths.timings.read_text()).get("stages", {}) if paths.timings.exists() else {}
    timings = {"steps": RunLog(paths.out).read(), "stages": stage_timings}
    atomic_write_text(paths.timings, json.dumps(timings, indent=2) + "\n")
    return timings


def write_manifest(cfg: PipelineConfig, paths: RunPaths, summary: dict) -> dict:
    """The run's record: inputs, config, versions, per-stage accounting, shards and tokenizer identity."""
    stages, stage_timings = split_timings(summary["stages"])
    manifest = {
        "tuneprep_manifest": 1,
        "name": cfg.name,
        "inputs": summary["inputs"],
        "config": cfg.model_dump(mode="json"),
        "versions": versions(),
        "git_commit": git_commit(),
        "python_executable": sys.executable,
        "stages": stages,
        "dropped_by_reason": _reasons(stages, "reasons"),
        "quarantined_by_reason": _reasons(stages, "quarantine_reasons"),
        "quarantine": summary.get("quarantine", {}),
        "nothing_new": summary.get("nothing_new", False),
        "accounting": accounting(stages),
        "splits": summary["shards"],
        "profile": summary["profile"],
        "tokenizer": summary["tokenizer"],
    }
    atomic_write_text(paths.manifest, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    write_timings(paths, stage_timings)
    return manifest


def _reasons(stages: list[dict], key: str) -> dict:
    """``stage:reason`` -> records, for drops (``reasons``) or quarantine entries (``quarantine_reasons``)."""
    out: dict[str, int] = {}
    for s in stages:
        for reason, n in s.get(key, {}).items():
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

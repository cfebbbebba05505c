"""The run's record: inputs and their hashes, config, versions, per-stage accounting, shards, tokenizer."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib import metadata

import polars as pl

from flows.config import PROJECT_ROOT, PipelineConfig
from flows.layout import RunPaths
from tuneprep.files import atomic_write_text, sha256_file
from tuneprep.records import SPLITS
from tuneprep.stage import balanced


def input_inventory(cfg: PipelineConfig) -> list[dict]:
    """Every input file with its sha256, and every dataset or URL input by name, for the manifest."""
    from ingest.sources import list_files

    files = [
        {"source": source, "bytes": p.stat().st_size, "sha256": sha256_file(p)}
        for p, source in list_files(cfg.inputs, cfg.load)
        if p.is_file()
    ]
    remote = [
        {"source": item, "kind": "hub" if item.startswith("hf://") else "url"} for item in cfg.inputs if "://" in item
    ]
    return files + remote


def finish(cfg: PipelineConfig, paths: RunPaths, results: dict) -> dict:
    """Gather the steps' summaries into the manifest."""
    stages: list[dict] = []
    for name, r in results.items():
        if name in ("tokenizer", "shards"):
            continue
        stages.extend(r if isinstance(r, list) else [r])
    summary = {
        "inputs": input_inventory(cfg),
        "stages": stages,
        "shards": results["shards"],
        "profile": dataset_profile(paths),
        "tokenizer": results["tokenizer"],
    }
    return write_manifest(cfg, paths, summary)


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

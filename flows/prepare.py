"""The data flow: inputs -> cleaned, deduplicated, split, augmented, tokenized Arrow shards + manifest.

Run it with ``tuneprep prepare INPUT... --out DIR`` or ``python -m flows.prepare``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tuneprep import pipeline as steps
from tuneprep.config import PipelineConfig


def _log():
    return get_run_logger().info


@task(name="load", retries=1, cache_policy=NO_CACHE)
def load(cfg: PipelineConfig, out: str) -> dict:
    return steps.load_step(cfg, steps.RunPaths(Path(out)).make(), _log())


@task(name="clean", cache_policy=NO_CACHE)
def clean(cfg: PipelineConfig, out: str) -> list[dict]:
    return steps.clean_step(cfg, steps.RunPaths(Path(out)), _log())


@task(name="dedup", cache_policy=NO_CACHE)
def dedup(cfg: PipelineConfig, out: str) -> list[dict]:
    return steps.dedup_step(cfg, steps.RunPaths(Path(out)), _log())


@task(name="split", cache_policy=NO_CACHE)
def split(cfg: PipelineConfig, out: str) -> dict:
    return steps.split_step(cfg, steps.RunPaths(Path(out)), _log())


@task(name="augment", cache_policy=NO_CACHE)
def augment(cfg: PipelineConfig, out: str) -> dict:
    return steps.augment_step(cfg, steps.RunPaths(Path(out)), _log())


@task(name="tokenizer", cache_policy=NO_CACHE)
def tokenizer(cfg: PipelineConfig, out: str) -> dict:
    return steps.tokenizer_step(cfg, steps.RunPaths(Path(out)), _log())


@task(name="tokenize", cache_policy=NO_CACHE)
def tokenize(cfg: PipelineConfig, out: str) -> dict:
    return steps.tokenize_step(cfg, steps.RunPaths(Path(out)), _log())


@task(name="shards", retries=1, cache_policy=NO_CACHE)
def shards(cfg: PipelineConfig, out: str) -> dict:
    return steps.shard_step(cfg, steps.RunPaths(Path(out)), _log())


@task(name="report", cache_policy=NO_CACHE)
def report(out: str, metrics_path: str | None = None) -> str:
    """Write report.md and publish the same text as a Prefect markdown artifact."""
    paths = steps.RunPaths(Path(out))
    text = steps.report_step(paths, Path(metrics_path) if metrics_path else None)
    create_markdown_artifact(markdown=text, key="tuneprep-report", description=f"tuneprep run report for {out}")
    return str(paths.report)


def prepare_data(cfg: PipelineConfig, out: str) -> dict:
    """The data tasks in order; returns the manifest."""
    paths = steps.RunPaths(Path(out)).make()
    stages = [load(cfg, out)]
    stages += clean(cfg, out)
    stages += dedup(cfg, out)
    stages.append(split(cfg, out))
    stages.append(augment(cfg, out))
    tok = tokenizer(cfg, out)
    stages.append(tokenize(cfg, out))
    shard_info = shards(cfg, out)
    summary = {
        "inputs": steps.input_inventory(cfg),
        "stages": stages,
        "shards": shard_info,
        "profile": steps.dataset_profile(paths),
        "tokenizer": tok,
    }
    manifest = steps.write_manifest(cfg, paths, summary)
    if not manifest["accounting"]["ok"]:
        get_run_logger().error(f"accounting does not balance: {manifest['accounting']}")
    return manifest


@flow(name="tuneprep-prepare", log_prints=True)
def prepare_flow(config: PipelineConfig = PipelineConfig(), out: str = "runs/prepare") -> str:
    """Raw inputs to Arrow shards, manifest and report under ``out``; returns ``out``."""
    prepare_data(config, out)
    report(out)
    return out


if __name__ == "__main__":
    prepare_flow(out=sys.argv[1] if len(sys.argv) > 1 else "runs/prepare")

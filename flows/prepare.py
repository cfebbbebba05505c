"""The data flow: inputs -> cleaned, deduplicated, split, augmented, tokenized Arrow shards + manifest.

Run it with ``tuneprep prepare INPUT... --out DIR`` or ``python -m flows.prepare [OUT]``.
Each step of ``tuneprep.pipeline.STEPS`` runs as its own Prefect task, so the UI
shows progress and timing per step; tasks pass paths and small summaries only.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tuneprep import pipeline as steps
from tuneprep.config import PipelineConfig

RETRIES = {"load": 2, "shards": 1}  # steps that touch the outside world or the disk at scale


@task(cache_policy=NO_CACHE)
def run_step(name: str, cfg: PipelineConfig, out: str) -> dict | list[dict]:
    return steps.run_step(name, cfg, steps.RunPaths(Path(out)), get_run_logger().info)


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
    results = {}
    for name in steps.STEPS:
        results[name] = run_step.with_options(name=name, retries=RETRIES.get(name, 0))(name, cfg, out)
    manifest = steps.finish(cfg, paths, results)
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

"""The data flow: inputs -> cleaned, deduplicated, split, augmented, tokenized Arrow shards + manifest.

Run it with ``tuneprep prepare INPUT... --out DIR`` or ``python -m flows.prepare [OUT]``. Each step is
its own Prefect task, so the UI shows progress and timing per step; tasks pass paths and small
summaries only. The work is in ``flows.steps`` (plain functions, callable from a notebook).
With ``runner.kind: dask`` the partitioned steps run one task per partition on a Dask cluster
(``flows.runner``). A rerun into the same folder reuses what an earlier run finished (``flows.markers``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import steps
from flows.artifacts import publish_run_artifacts
from flows.config import PipelineConfig
from flows.layout import RunPaths
from flows.manifest import finish
from flows.report import write_report
from flows.report_html import write_html_report
from tuneprep.lock import RunLock
from tuneprep.runner import StopRun

RETRIES = {"load": 2, "shards": 1}  # steps that touch the outside world or the disk at scale


def _worth_retrying(task, task_run, state) -> bool:
    """A run stopped on purpose (too much quarantined) or bad inputs would fail the same way again."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - no readable result: let the retry policy decide
        return True
    return not isinstance(error, StopRun | ValueError)


@task(cache_policy=NO_CACHE)
def run_step(name: str, cfg: PipelineConfig, out: str) -> dict | list[dict]:
    from flows.runner import prefect_map

    map_parts = prefect_map if cfg.runner.kind == "dask" else None  # partitions as tasks on the flow's Dask runner
    return steps.run_step(name, cfg, RunPaths(out), get_run_logger().info, map_parts)


def step(name: str):
    """The task for one step of ``flows.steps.STEPS``, named after it in the UI."""
    return run_step.with_options(name=name, retries=RETRIES.get(name, 0), retry_condition_fn=_worth_retrying)


@task(name="report", cache_policy=NO_CACHE)
def report(out: str, metrics_path: str | None = None) -> str:
    """Write report.md and report.html; publish the report, the stage counts, the output folder and the model's
    metrics as Prefect artifacts (``flows.artifacts``)."""
    paths = RunPaths(out)
    metrics = Path(metrics_path) if metrics_path else None
    text = write_report(paths, metrics)
    page = write_html_report(paths, metrics)
    publish_run_artifacts(paths, text, metrics, page)
    return str(paths.report)


def prepare_data(cfg: PipelineConfig, out: str) -> dict:
    """The data tasks in pipeline order; returns the manifest. The caller holds the output folder's lock."""
    paths = steps.start_run(cfg, out)
    results = {
        "load": step("load")("load", cfg, out),
        "clean": step("clean")("clean", cfg, out),  # extract main text, normalise, redact PII, filter
        "dedup": step("dedup")("dedup", cfg, out),  # exact, then MinHash near-duplicates
        "split": step("split")("split", cfg, out),  # stratified by label, grouped by near-dup cluster
        "decontaminate": step("decontaminate")("decontaminate", cfg, out),
        "augment": step("augment")("augment", cfg, out),  # train split only, gated
        "tokenizer": step("tokenizer")("tokenizer", cfg, out),  # trained on the train split only
        "tokenize": step("tokenize")("tokenize", cfg, out),
        "shards": step("shards")("shards", cfg, out),
    }
    assert list(results) == list(steps.STEPS), "the flow must run every step of flows.steps.STEPS, in order"
    manifest = finish(cfg, paths, results)
    if not manifest["accounting"]["ok"]:
        get_run_logger().error(f"accounting does not balance: {manifest['accounting']}")
    return manifest


@flow(name="tuneprep-data", log_prints=True)
def data_flow(config: PipelineConfig, out: str) -> dict:
    """The data tasks as a subflow, so they can have a task runner of their own (Dask); returns the manifest."""
    return prepare_data(config, out)


def run_data(cfg: PipelineConfig, out: str) -> dict:
    """The data tasks on the configured runner: in this flow run, or in a subflow on a Dask cluster."""
    if cfg.runner.kind == "local":
        return prepare_data(cfg, out)
    from flows.runner import api_for_workers, dask_task_runner

    with api_for_workers():
        return data_flow.with_options(task_runner=dask_task_runner(cfg.runner))(config=cfg, out=out)


@flow(name="tuneprep-prepare", log_prints=True)
def prepare_flow(config: PipelineConfig = PipelineConfig(), out: str = "runs/prepare") -> str:
    """Raw inputs to Arrow shards, manifest and report under ``out``; returns ``out``."""
    with RunLock(out):
        run_data(config, out)
        report(out)
    return out


if __name__ == "__main__":
    prepare_flow(out=sys.argv[1] if len(sys.argv) > 1 else "runs/prepare")

"""The whole job: prepare the data, fine-tune, evaluate and report, in one flow run.

Run it with ``tuneprep run`` or ``python -m flows.pipeline`` (bundled sample data, embedded defaults).
A rerun into the same output folder reuses the data steps and the fine-tune an earlier run finished.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from prefect import flow, get_run_logger

from finetune import FinetuneConfig
from flows.config import PipelineConfig
from flows.finetune import finetune_model
from flows.layout import default_out
from flows.prepare import report, run_data
from flows.steps import finetune_step
from tuneprep.lock import RunLock


def finetune_once(data_dir: str, model_dir: str, cfg: FinetuneConfig, log: Callable[[str], None] = print) -> str:
    """The fine-tune (a training task, or the grid flow), unless ``model_dir`` holds a finished run on the same
    shards, config and code; a killed one resumes from its last checkpoint."""
    return finetune_step(data_dir, model_dir, cfg, log, train=finetune_model)


@flow(name="tuneprep-run", log_prints=True)
def run_flow(config: PipelineConfig = PipelineConfig(), out: str | None = None) -> str:
    """Inputs to shards, model, metrics and report under ``out`` (default ``runs/<name-or-timestamp>``)."""
    out = out or default_out(config)
    with RunLock(out):
        manifest = run_data(config, out)
        if manifest.get("nothing_new"):  # a data drop that added nothing: the earlier model stands
            return report(out)
        metrics = finetune_once(out, str(Path(out) / "model"), config.finetune, get_run_logger().info)
        return report(out, metrics)


if __name__ == "__main__":
    run_flow(out=sys.argv[1] if len(sys.argv) > 1 else None)

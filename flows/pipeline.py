"""The whole job: prepare the data, fine-tune, evaluate and report, in one flow run.

Run it with ``tuneprep run`` or ``python -m flows.pipeline`` (bundled sample data, embedded defaults).
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow

from flows.config import PipelineConfig
from flows.finetune import finetune_model
from flows.layout import default_out
from flows.prepare import prepare_data, report
from tuneprep.lock import RunLock


@flow(name="tuneprep-run", log_prints=True)
def run_flow(config: PipelineConfig = PipelineConfig(), out: str | None = None) -> str:
    """Inputs to shards, model, metrics and report under ``out`` (default ``runs/<name-or-timestamp>``)."""
    out = out or default_out(config)
    with RunLock(out):
        manifest = prepare_data(config, out)
        if manifest.get("nothing_new"):  # a data drop that added nothing: the earlier model stands
            return report(out)
        metrics = finetune_model(out, str(Path(out) / "model"), config.finetune)
        return report(out, metrics)


if __name__ == "__main__":
    run_flow(out=sys.argv[1] if len(sys.argv) > 1 else None)

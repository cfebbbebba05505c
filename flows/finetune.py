"""The training flows: Arrow shards -> a fine-tuned causal LM with base and final metrics; or a grid of such
trials, one subflow each, the best exported.

Run it with ``tuneprep finetune DATA_DIR --out DIR`` or ``python -m flows.finetune DATA_DIR DIR``. Rerunning
the same command after a kill resumes: a single run from its checkpoint, a grid from its first unfinished trial.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from finetune import FinetuneConfig, grid, train

GPU_LIMIT = "tuneprep-gpu"  # Prefect global concurrency limit: one training on the GPU at a time


def resolve_data_dir(path: str | Path) -> Path:
    """Accept the prepare output folder or its ``shards/`` folder."""
    p = Path(path)
    if p.name == "shards" and (p.parent / "manifest.json").exists():
        p = p.parent
    if not (p / "shards").is_dir() or not (p / "tokenizer").is_dir():
        raise FileNotFoundError(
            f"{path}: expected a prepared run folder with shards/ and tokenizer/ (from `tuneprep prepare`)"
        )
    return p


@task(name="finetune", cache_policy=NO_CACHE)
def finetune_task(data_dir: str, model_dir: str, config: FinetuneConfig) -> str:
    data = resolve_data_dir(data_dir)
    train(data, Path(model_dir), config, log=get_run_logger().info, progress=sys.stderr.isatty())
    return str(Path(model_dir) / "metrics.json")


def uses_gpu(config: FinetuneConfig) -> bool:
    from finetune.model import pick_device

    return pick_device(config.device).type == "cuda"


def ensure_limit(name: str, slots: int = 1) -> None:
    """Create the concurrency limit if it does not exist (an existing one, maybe set by an operator, is kept)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):  # another run created it meanwhile
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots))


@flow(name="tuneprep-finetune-trial", log_prints=True)
def trial_flow(data_dir: str, out: str, config: FinetuneConfig, settings: dict[str, Any]) -> dict[str, Any]:
    """One grid trial; on a GPU it first takes the GPU's single concurrency slot, so trials (and other runs)
    train one at a time."""
    get_run_logger().info(f"trial {Path(out).name}: {settings}")
    if uses_gpu(config):
        from prefect.concurrency.sync import concurrency

        ensure_limit(GPU_LIMIT)
        with concurrency(GPU_LIMIT, occupy=1, strict=True):
            path = finetune_task(data_dir, out, config)
    else:
        path = finetune_task(data_dir, out, config)
    return json.loads(Path(path).read_text())


@flow(name="tuneprep-grid", log_prints=True)
def grid_flow(data_dir: str, out: str, config: FinetuneConfig) -> str:
    """Every combination of ``config.grid``, one subflow each; the best by validation loss is exported to ``out``,
    every trial's settings and metrics go to ``out/trials.json`` and a table artifact."""
    logger = get_run_logger()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").unlink(missing_ok=True)
    entries = grid.plan(config, out_dir)
    logger.info(f"grid search: {len(entries)} trials over {', '.join(config.grid)}")
    results = []
    for entry in entries:
        metrics = grid.finished_metrics(Path(entry["dir"]), entry["config"])
        if metrics is not None:
            logger.info(f"trial {entry['trial']:03d} already finished: kept")
        else:
            run = trial_flow.with_options(flow_run_name=f"trial-{entry['trial']:03d}")
            metrics = run(data_dir, entry["dir"], entry["config"], entry["settings"])
        results.append({**entry, "metrics": metrics})
    best = grid.best_trial(results)
    others = [Path(r["dir"]) for r in results if r is not best]
    grid.export_best(best, out_dir, config.grid_keep_weights, others)
    rows = grid.write_trials(out_dir, results, best)
    create_table_artifact(
        table=grid.table_rows(rows),
        key="tuneprep-grid",
        description=f"grid search in {out}: trial {best['trial']} exported (lowest validation loss)",
    )
    logger.info(
        f"best trial {best['trial']:03d} {best['settings']}: validation loss {grid.validation_loss(best['metrics']):.4f}"
    )
    return str(out_dir / "metrics.json")


def finetune_model(data_dir: str, out: str, config: FinetuneConfig) -> str:
    """A single training task, or the grid flow when ``config.grid`` names settings to search."""
    if config.grid:
        return grid_flow(data_dir, out, config)
    return finetune_task(data_dir, out, config)


@flow(name="tuneprep-finetune", log_prints=True)
def finetune_flow(data_dir: str, out: str, config: FinetuneConfig = FinetuneConfig()) -> str:
    """Train on ``data_dir``'s shards; the model, metrics.json and TensorBoard logs go to ``out``."""
    return finetune_model(data_dir, out, config)


if __name__ == "__main__":
    finetune_flow(sys.argv[1], sys.argv[2])

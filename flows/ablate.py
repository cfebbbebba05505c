"""The augmentation ablation as a Prefect flow: every arm x seed trained as a subflow (one at a time on a GPU), then
RUN_DIR/ablation.json, a table artifact and the run's reports rebuilt with the table.

Run it with ``tuneprep ablate RUN_DIR`` or ``python -m flows.ablate RUN_DIR``. Rerunning it keeps finished runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from finetune import FinetuneConfig, ablation, grid
from finetune.export import write_json
from flows.finetune import resolve_data_dir, trial_flow
from flows.layout import RunPaths
from flows.report_data import read_json


@flow(name="tuneprep-ablate", log_prints=True)
def ablation_flow(
    run_dir: str,
    config: FinetuneConfig = FinetuneConfig(),
    tokens: int | None = None,
    seeds: int = 3,
    per_augmenter: bool = True,
    keep_weights: bool = False,
) -> str:
    """Train ``config`` without and with the augmented rows (and per augmenter), ``seeds`` seeds each, at ``tokens``
    loss tokens per run (default: ``epochs`` passes over the originals); write RUN_DIR/ablation.json."""
    logger = get_run_logger()
    data = resolve_data_dir(run_dir)
    entries = ablation.plan(config, data, data, tokens=tokens, seeds=seeds, per_augmenter=per_augmenter)
    budget = entries[0]["settings"]["max_tokens"]
    arms = list(dict.fromkeys(e["arm"] for e in entries))
    logger.info(f"ablation: {', '.join(arms)}; {seeds} seeds each, {budget:,} loss tokens per run")
    results = []
    for entry in entries:
        folder = Path(entry["dir"])
        metrics = grid.finished_metrics(folder, entry["config"])
        if metrics is not None:
            logger.info(f"{entry['arm']}, seed {entry['settings']['seed']}: already finished, kept")
        else:
            run = trial_flow.with_options(flow_run_name=f"{entry['arm']}-seed-{entry['settings']['seed']}")
            metrics = run(str(data), str(folder), entry["config"], entry["settings"])
        if not keep_weights:
            ablation.drop_weights(folder)
        results.append({**entry, "metrics": metrics})
    summary = ablation.summarize(results, budget)
    path = data / "ablation.json"
    write_json(path, summary)
    create_table_artifact(table=ablation.table_rows(summary), key="tuneprep-ablation", description=summary["verdict"])
    logger.info(summary["verdict"])
    paths = RunPaths(data)
    if "stages" in (read_json(paths.manifest) or {}):  # a pipeline run folder: its reports show the table
        from flows.report import write_report
        from flows.report_html import write_html_report

        write_report(paths, paths.model / "metrics.json")
        write_html_report(paths, paths.model / "metrics.json")
    return str(path)


if __name__ == "__main__":
    ablation_flow(sys.argv[1])

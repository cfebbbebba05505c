"""Grid search bookkeeping: trial folders, choosing the best trial, exporting it, trials.json.

The trials themselves are run by the caller (the Prefect flow runs each as a subflow); everything here is
plain file work, so a grid can also be driven from a notebook.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from finetune.config import FinetuneConfig, trials
from finetune.export import MODEL_FILES, write_json

TRIALS = "trials"
# What a trial folder holds that the exported best model takes along (not tb/ or checkpoints/).
EXPORTED = ("README.md", "training.json", "samples.json", "metrics.json")


def trial_dir(out_dir: Path, index: int) -> Path:
    return Path(out_dir) / TRIALS / f"{index:03d}"


def plan(cfg: FinetuneConfig, out_dir: Path) -> list[dict[str, Any]]:
    """One entry per trial: its number, the settings it tries, its folder and full config."""
    return [
        {"trial": i, "settings": settings, "dir": str(trial_dir(out_dir, i)), "config": trial_cfg}
        for i, (settings, trial_cfg) in enumerate(trials(cfg))
    ]


def finished_metrics(folder: Path, cfg: FinetuneConfig) -> dict[str, Any] | None:
    """A trial folder's metrics if it finished with this config (a rerun of the grid skips it), else None."""
    metrics, training = Path(folder) / "metrics.json", Path(folder) / "training.json"
    if not metrics.exists() or not training.exists():
        return None
    ran = json.loads(training.read_text()).get("config")
    return json.loads(metrics.read_text()) if ran == cfg.model_dump(mode="json") else None


def validation_loss(metrics: dict[str, Any] | None) -> float | None:
    final = (metrics or {}).get("final") or {}
    return (final.get("validation") or {}).get("loss")


def best_trial(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The trial with the lowest final validation loss (ties: the earlier trial)."""
    scored = [r for r in results if validation_loss(r["metrics"]) is not None]
    if not scored:
        raise ValueError("no trial has a validation loss to compare: the data needs a validation split")
    return min(scored, key=lambda r: (validation_loss(r["metrics"]), r["trial"]))


def export_best(best: dict[str, Any], out_dir: Path, keep_trial_weights: bool, others: list[Path]) -> None:
    """Copy the best trial's model folder into out_dir (file by file, each renamed into place)."""
    src, out_dir = Path(best["dir"]), Path(out_dir)
    for f in sorted(src.iterdir()):
        if f.is_file() and not f.name.startswith("."):
            tmp = out_dir / f".{f.name}.copy"
            shutil.copy2(f, tmp)
            os.replace(tmp, out_dir / f.name)
    if not keep_trial_weights:  # the best is in out_dir now; the others' weights are rarely wanted again
        for folder in [src, *others]:
            for name in MODEL_FILES:
                (folder / name).unlink(missing_ok=True)
            for shard in folder.glob("model-*-of-*.safetensors"):
                shard.unlink()


def write_trials(out_dir: Path, results: list[dict[str, Any]], best: dict[str, Any]) -> list[dict[str, Any]]:
    """DIR/trials.json: every trial's settings and metrics, and which one was exported."""
    rows = [
        {
            "trial": r["trial"],
            "settings": r["settings"],
            "dir": r["dir"],
            "best": r["trial"] == best["trial"],
            "metrics": r["metrics"],
        }
        for r in results
    ]
    write_json(Path(out_dir) / "trials.json", {"best_trial": best["trial"], "trials": rows})
    return rows


def table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per trial for a table (Prefect artifact, report)."""
    out = []
    for r in rows:
        final = (r["metrics"] or {}).get("final") or {}
        val = final.get("validation") or {}
        gen = val.get("generation") or {}
        out.append(
            {
                "trial": r["trial"],
                **{k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in r["settings"].items()},
                "validation loss": val.get("loss"),
                "perplexity": val.get("perplexity"),
                "BLEU": gen.get("bleu"),
                "ROUGE-L": gen.get("rouge_l"),
                "best step": (r["metrics"] or {}).get("best_step"),
                "exported": "yes" if r["best"] else "",
            }
        )
    return out

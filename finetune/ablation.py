"""Does augmentation help on this data? The same configuration trained without the augmented rows, with them, and
(where the shards' `aug_kind` tells the augmenters apart) with each augmenter's variants alone, every arm at one
token budget (`max_tokens`, no early stopping) and over several seeds, compared on the test split: mean ± std per
arm, and one sentence saying whether augmentation helped, by how much, with the spread.

A fixed budget makes it a fair question: the arms train on as many loss tokens, the augmented arms spending part of
them on variants instead of more passes over the originals. The runs themselves are the caller's (the Prefect flow
runs each as a subflow); planning, summarising and the table are here, plain file work.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from finetune.config import FinetuneConfig
from finetune.export import MODEL_FILES

ABLATION = "ablation"  # RUN_DIR/ablation/<arm>/seed-<n>/: the runs; RUN_DIR/ablation.json: the summary
# (key in metrics.json, column title, higher is better)
METRICS = (
    ("loss", "test loss", False),
    ("perplexity", "perplexity", False),
    ("token_accuracy", "token accuracy", True),
    ("bleu", "BLEU", True),
    ("rouge_l", "ROUGE-L", True),
    ("f1", "F1", True),
)


@dataclass
class Arm:
    name: str
    use_augmented: bool | list[str]


def augmenters(data_dir: Path) -> list[str]:
    """The augmenters whose variants are in the train shards (their `aug_kind`), sorted."""
    from finetune.data import load_split

    split = load_split(data_dir, "train")
    if split is None:
        raise ValueError(f"no training examples under {Path(data_dir) / 'shards' / 'train'}")
    table = split.dataset.data.table
    if "aug_of" not in table.column_names:
        return []
    variants = table.filter(pc.invert(table.column("aug_of").is_null()))
    if not variants.num_rows:
        return []
    if "aug_kind" not in variants.column_names:
        return ["(unnamed)"]
    return sorted({k or "(unnamed)" for k in variants.column("aug_kind").to_pylist()})


def arms(data_dir: Path, per_augmenter: bool = True) -> list[Arm]:
    """without, with, and `only <kind>` per augmenter when there are several kinds to tell apart."""
    kinds = augmenters(data_dir)
    if not kinds:
        raise ValueError(f"{data_dir}: the train shards hold no augmented rows (aug_of): nothing to ablate")
    out = [Arm("without", False), Arm("with", True)]
    if per_augmenter and len(kinds) > 1 and "(unnamed)" not in kinds:
        out += [Arm(f"only {kind}", [kind]) for kind in kinds]
    return out


def token_budget(cfg: FinetuneConfig, data_dir: Path) -> int:
    """The default budget: `epochs` passes over the original rows' loss tokens (what the arm without augmentation
    would train on by itself)."""
    from finetune.data import load_split, loss_token_counts

    originals = load_split(data_dir, "train", use_augmented=False)
    if originals is None:
        raise ValueError(f"{data_dir}: no original (non-augmented) training rows")
    return max(1, int(cfg.epochs * int(loss_token_counts(originals).sum())))


def plan(
    cfg: FinetuneConfig,
    data_dir: Path,
    out_dir: Path,
    *,
    tokens: int | None = None,
    seeds: int = 3,
    per_augmenter: bool = True,
) -> list[dict[str, Any]]:
    """One entry per run: arm, seed, folder, the settings it changes and its full config."""
    if seeds < 1:
        raise ValueError("ablation: seeds must be >= 1")
    budget = tokens or token_budget(cfg, data_dir)
    base_seed = cfg.resolved_seed()
    out = []
    for arm in arms(data_dir, per_augmenter):
        for i in range(seeds):
            settings = {"use_augmented": arm.use_augmented, "seed": base_seed + i, "max_tokens": budget}
            run_cfg = FinetuneConfig.model_validate(
                {**cfg.model_dump(), **settings, "max_steps": None, "patience": None, "grid": {}}
            )
            folder = Path(out_dir) / ABLATION / _slug(arm.name) / f"seed-{base_seed + i}"
            out.append({"arm": arm.name, "settings": settings, "dir": str(folder), "config": run_cfg})
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "arm"


def drop_weights(folder: Path) -> None:
    """A finished run's metrics are what the ablation needs; its weights are rarely wanted again."""
    for name in MODEL_FILES:
        (Path(folder) / name).unlink(missing_ok=True)
    for shard in Path(folder).glob("model-*-of-*.safetensors"):
        shard.unlink()


# ---- summary ----------------------------------------------------------------------------------------------------


def run_scores(metrics: dict[str, Any], split: str) -> dict[str, float | None]:
    m = (metrics.get("final") or {}).get(split) or {}
    gen = m.get("generation") or {}
    return {key: (gen if key in ("bleu", "rouge_l", "f1") else m).get(key) for key, _, _ in METRICS}


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    xs = [v for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return None, None
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else None)


def summarize(results: list[dict[str, Any]], budget: int) -> dict[str, Any]:
    """Per arm: each run's scores, their mean and (sample) std; then each arm against `without`, and the verdict."""
    split = "test" if all(((r["metrics"].get("final") or {}).get("test")) for r in results) else "validation"
    by_arm: dict[str, dict[str, Any]] = {}
    for r in results:
        arm = by_arm.setdefault(
            r["arm"], {"arm": r["arm"], "use_augmented": r["settings"]["use_augmented"], "runs": []}
        )
        arm["runs"].append(
            {
                "seed": r["settings"]["seed"],
                "dir": r["dir"],
                "train_tokens": r["metrics"].get("train_tokens"),
                "scores": run_scores(r["metrics"], split),
            }
        )
    for arm in by_arm.values():
        stats = {key: _mean_std([run["scores"][key] for run in arm["runs"]]) for key, _, _ in METRICS}
        arm["mean"] = {k: v[0] for k, v in stats.items()}
        arm["std"] = {k: v[1] for k, v in stats.items()}
    without = by_arm.get("without")
    for arm in by_arm.values():
        arm["vs_without"] = None if without is None or arm is without else difference(arm, without)
    summary = {"split": split, "token_budget": budget, "arms": list(by_arm.values())}
    summary["verdict"] = verdict(summary)
    return summary


def difference(arm: dict[str, Any], without: dict[str, Any]) -> dict[str, Any]:
    """arm - without in mean loss, its standard error (from the seeds' spread), and the perplexity change."""
    a, b = arm["mean"]["loss"], without["mean"]["loss"]
    if a is None or b is None:
        return {"loss": None, "se": None, "perplexity_change": None, "clear": False}
    sa, sb = arm["std"]["loss"], without["std"]["loss"]
    na, nb = len(arm["runs"]), len(without["runs"])
    se = math.sqrt(sa**2 / na + sb**2 / nb) if sa is not None and sb is not None else None
    pa, pb = arm["mean"]["perplexity"], without["mean"]["perplexity"]
    return {
        "loss": a - b,
        "se": se,
        "perplexity_change": (pa / pb - 1.0) if pa and pb else None,
        "clear": se is not None and abs(a - b) > 2 * se,  # beyond twice the standard error of the difference
    }


def verdict(summary: dict[str, Any]) -> str:
    """One sentence: did augmentation help on this data, by how much, with the spread."""
    arms = {a["arm"]: a for a in summary["arms"]}
    with_, without = arms.get("with"), arms.get("without")
    if not with_ or not without or with_["vs_without"] is None or with_["vs_without"]["loss"] is None:
        return "No comparison: the runs with and without augmentation did not both finish with a score."
    d = with_["vs_without"]
    n = min(len(with_["runs"]), len(without["runs"]))
    split = summary["split"]

    def pm(arm: dict[str, Any]) -> str:
        std = arm["std"]["loss"]
        return f"{arm['mean']['loss']:.3f}" + (f" ± {std:.3f}" if std is not None else "")

    figures = (
        f"{split} loss {pm(with_)} with augmented rows vs {pm(without)} without (mean ± std over {n} seeds, "
        f"{summary['token_budget']:,} loss tokens per run): a difference of {d['loss']:+.3f}"
        + (f" ± {d['se']:.3f} (standard error)" if d["se"] is not None else "")
        + (f", perplexity {d['perplexity_change']:+.1%}" if d["perplexity_change"] is not None else "")
    )
    if d["se"] is None:
        return f"Augmentation cannot be judged with one seed per arm: {figures}."
    if not d["clear"]:
        return f"Augmentation made no clear difference on this data: {figures}, within twice its standard error."
    return f"Augmentation {'helped' if d['loss'] < 0 else 'hurt'} on this data: {figures}."


def _cell(arm: dict[str, Any], key: str) -> str:
    mean, std = arm["mean"][key], arm["std"][key]
    if mean is None:
        return "–"
    digits = 2 if key in ("perplexity", "bleu") else 3
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def table_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per arm (mean ± std as text), for a markdown table or a Prefect table artifact."""
    rows = []
    for arm in summary["arms"]:
        d = arm["vs_without"]
        tokens = [r["train_tokens"] for r in arm["runs"] if r["train_tokens"] is not None]
        trained = f"{round(statistics.fmean(tokens)):,}" if tokens else "–"
        row = {"arm": arm["arm"], "seeds": len(arm["runs"]), "loss tokens (mean)": trained}
        for key, title, _ in METRICS:
            row[title.replace("test ", f"{summary['split']} ")] = _cell(arm, key)
        row["Δ loss vs without"] = (
            "–" if not d or d["loss"] is None else f"{d['loss']:+.3f}" + (f" ± {d['se']:.3f}" if d["se"] else "")
        )
        rows.append(row)
    return rows


def markdown(summary: dict[str, Any]) -> str:
    rows = table_rows(summary)
    if not rows:
        return summary.get("verdict", "")
    headers = list(rows[0])
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(r[h]) for h in headers) + " |" for r in rows]
    return "\n".join(lines)

"""What the HTML report reads from a run folder, each part tolerant of being absent.

A run folder may come from ``tuneprep prepare`` (no model), from a training run, or from an older or
newer version of the fine-tuning code, so every reader returns an empty value when its file or key
is missing and accepts the shapes the project has written: metrics.json as ``{"initial", "validation",
"test", "train"}`` or as ``{"base": {split: ...}, "final": {split: ...}, ...}``; training curves from
TensorBoard event files (``model/tb/``) or a JSON log (``trainer_state.json``'s ``log_history`` or a
JSONL of ``{"step", ...}`` rows); samples from a samples file or inside metrics.json.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from flows.layout import RunPaths
from tuneprep.records import SPLITS

Series = dict[str, list[tuple[float, float]]]

SPLIT_ALIASES = {"eval": "validation", "val": "validation", "valid": "validation", "dev": "validation"}
METRIC_ALIASES = {"learning_rate": "lr"}
PHASES = ("base", "final", "eval")  # fine-tuning logs "<phase>/<split>/<metric>"
JSON_LOGS = ("log.jsonl", "train_log.jsonl", "history.jsonl", "metrics.jsonl", "log.json", "trainer_state.json")
SAMPLE_FILES = ("samples.jsonl", "samples.json", "generations.jsonl", "generations.json")
PROMPT_KEYS = ("prompt", "input", "context", "messages", "question", "source")
REFERENCE_KEYS = ("reference", "target", "expected", "answer", "label", "gold")
GENERATED_KEYS = ("generated", "generation", "prediction", "output", "completion", "response", "final")
BASE_KEYS = ("base", "base_generated", "base_generation", "before")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# --- metrics -----------------------------------------------------------------------------------------


def model_metrics(metrics: Mapping | None) -> dict:
    """``{"base": {split: {metric: value}}, "final": {...}, "facts": {name: value}}`` from either metrics shape.

    Nested metric groups (``generation: {bleu, ...}``) are flattened to their own names; counts such as
    ``tokens`` and ``n`` are facts about the evaluation, not metrics, and stay out of the comparison.
    """
    if not metrics:
        return {"base": {}, "final": {}, "facts": {}}
    if "base" in metrics or "final" in metrics:
        base, final = metrics.get("base") or {}, metrics.get("final") or {}
    else:
        base = metrics.get("initial") or {}
        final = {s: metrics[s] for s in SPLITS if isinstance(metrics.get(s), Mapping) and not _is_run(metrics[s])}
    facts: dict[str, Any] = {}
    for key in ("best_step", "stopped_early", "train_tokens", "tokens_per_s", "device"):
        if metrics.get(key) is not None:
            facts[key] = metrics[key]
    train = metrics.get("train")
    if isinstance(train, Mapping) and _is_run(train):
        for key in ("steps", "tokens", "seconds", "tokens_per_s", "final_loss"):
            if train.get(key) is not None:
                facts.setdefault(key if key == "tokens_per_s" else f"train_{key}", train[key])
    model = metrics.get("model")
    if isinstance(model, Mapping):
        facts.update({f"model_{k}": v for k, v in model.items() if isinstance(v, str | int | float)})
    return {"base": _split_metrics(base), "final": _split_metrics(final), "facts": facts}


def _is_run(d: Mapping) -> bool:
    """metrics.json's ``train`` block describes the training run (steps, seconds), not an evaluation."""
    return "steps" in d and "loss" not in d


def _split_metrics(per_split: Mapping) -> dict[str, dict[str, float]]:
    out = {}
    for split, values in per_split.items():
        if isinstance(values, Mapping):
            flat = {
                k: v for k, v in _flatten(values).items() if _is_number(v) and k.split(".")[-1] not in ("tokens", "n")
            }
            out[split] = {_metric_name(k): v for k, v in flat.items()}
    return out


def _metric_name(key: str) -> str:
    """``generation.bleu`` -> ``bleu``; ``by_task.support.generation.bleu`` -> ``task support: bleu``;
    ``by_format.chat.loss`` -> ``chat: loss``."""
    parts = key.split(".")
    if parts[0] in ("by_task", "by_format") and len(parts) >= 3:
        group = f"task {parts[1]}" if parts[0] == "by_task" else parts[1]
        return f"{group}: {parts[-1]}"
    return parts[-1] if parts[0] == "generation" else key


def _flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


# --- training curves ---------------------------------------------------------------------------------


def _tag(name: str) -> str:
    """A logged name as ``split/metric``, with ``@base``/``@final`` for evaluations of the base or exported model.

    ``eval/loss`` and ``eval_loss`` -> ``validation/loss``; ``train/learning_rate`` -> ``train/lr``;
    ``eval/validation/loss`` -> ``validation/loss``; ``base/test/perplexity`` -> ``test/perplexity@base``.
    """
    parts = name.split("/")
    phase = parts.pop(0) if len(parts) >= 3 and parts[0] in PHASES else None
    if len(parts) >= 2:
        split, metric = parts[0], "/".join(parts[1:])
    elif name.startswith(("eval_", "val_", "validation_", "test_", "train_")):
        split, metric = name.split("_", 1)
    else:
        split, metric = "train", name
    tag = f"{SPLIT_ALIASES.get(split, split)}/{METRIC_ALIASES.get(metric, metric)}"
    return f"{tag}@{phase}" if phase in ("base", "final") else tag


def training_curves(model_dir: Path | None) -> Series:
    """Every scalar logged over steps, by normalised tag (``train/loss``, ``validation/loss``, ``train/lr``...)."""
    if model_dir is None or not model_dir.is_dir():
        return {}
    return _tensorboard_scalars(model_dir / "tb") or _json_log_scalars(model_dir)


def _tensorboard_scalars(tb_dir: Path) -> Series:
    if not tb_dir.is_dir() or not any(tb_dir.rglob("events.out.tfevents.*")):
        return {}
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    mux = EventMultiplexer(size_guidance={"scalars": 0})  # 0: keep every point
    mux.AddRunsFromDirectory(str(tb_dir))
    mux.Reload()
    out: Series = {}
    for run, tags in sorted(mux.Runs().items()):
        for tag in tags.get("scalars", []):
            points = out.setdefault(_tag(tag), [])
            points += [(e.step, e.value) for e in mux.Scalars(run, tag)]
    return {k: sorted(dict(v).items()) for k, v in out.items()}  # a resumed run repeats steps: the last one wins


def _json_log_rows(model_dir: Path) -> Iterator[Mapping]:
    for name in JSON_LOGS:
        hits = sorted(model_dir.glob(name)) or sorted(model_dir.glob(f"checkpoint-*/{name}"), key=_checkpoint_step)
        if not hits:
            continue
        path = hits[-1]
        if path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, Mapping):
                    yield row
        else:
            data = read_json(path)
            rows = data.get("log_history") if isinstance(data, Mapping) else data
            yield from (r for r in rows or [] if isinstance(r, Mapping))
        return


def _checkpoint_step(path: Path) -> int:
    tail = path.parent.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def _json_log_scalars(model_dir: Path) -> Series:
    out: Series = {}
    for row in _json_log_rows(model_dir):
        step = row.get("step", row.get("global_step"))
        if not _is_number(step):
            continue
        prefix = f"{row['split']}/" if isinstance(row.get("split"), str) else ""
        for key, value in row.items():
            if key in ("step", "global_step", "epoch", "split") or not _is_number(value):
                continue
            out.setdefault(_tag(prefix + key), []).append((step, value))
    return {k: sorted(dict(v).items()) for k, v in out.items()}


# --- samples and trials ------------------------------------------------------------------------------


def generated_samples(model_dir: Path | None, metrics: Mapping | None) -> list[dict]:
    """Generated texts with their references: ``{"split", "prompt", "reference", "generated", "base"}``."""
    raw: list = []
    if model_dir is not None:
        for name in SAMPLE_FILES:
            path = model_dir / name
            if path.exists():
                raw = _json_rows(path)
                break
    if not raw and isinstance(metrics, Mapping):
        raw = _samples_in_metrics(metrics)
    out = []
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        row = {
            "split": item.get("split"),
            "prompt": _first(item, PROMPT_KEYS),
            "reference": _first(item, REFERENCE_KEYS),
            "generated": _first(item, GENERATED_KEYS),
            "base": _first(item, BASE_KEYS),
        }
        if row["generated"] is not None:
            out.append(row)
    return out


def _samples_in_metrics(metrics: Mapping) -> list:
    found: list = []
    if isinstance(metrics.get("samples"), list):
        found += metrics["samples"]
    for stage in ("final", "generation"):
        node = metrics.get(stage)
        if not isinstance(node, Mapping):
            continue
        for split, values in node.items():
            if not isinstance(values, Mapping):
                continue
            gen = values.get("generation") if isinstance(values.get("generation"), Mapping) else values
            samples = gen.get("samples") if isinstance(gen, Mapping) else None
            if isinstance(samples, list):
                found += [{"split": split, **s} if isinstance(s, Mapping) else s for s in samples]
    return found


def _first(item: Mapping, keys: tuple[str, ...]) -> Any:
    for k in keys:
        if item.get(k) is not None:
            return item[k]
    return None


def _json_rows(path: Path) -> list:
    if path.suffix == ".jsonl":
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
        return rows
    data = read_json(path)
    if isinstance(data, Mapping):
        data = data.get("samples") or data.get("examples") or []
    return data if isinstance(data, list) else []


def grid_trials(model_dir: Path | None, metrics: Mapping | None) -> list[dict]:
    """Grid-search trials as flat rows: ``{"trial", "best", "settings": {name: value}, "metrics": {name: value}}``.

    Reads ``trials.json`` as a list of ``{settings, metrics}`` or as ``{"best_trial", "trials": [...]}``. A
    trial's metrics in the ``{"base", "final"}`` shape are shown as the final model's validation figures
    (what trials are compared on) and the run's scalar facts; other shapes are flattened as they are.
    """
    data = read_json(model_dir / "trials.json") if model_dir is not None else None
    if data is None and isinstance(metrics, Mapping):
        data = metrics.get("trials")
    best_trial = data.get("best_trial") if isinstance(data, Mapping) else None
    if isinstance(data, Mapping):
        data = data.get("trials")
    rows = []
    for i, t in enumerate(data if isinstance(data, list) else []):
        if not isinstance(t, Mapping):
            continue
        settings = _flatten(t["settings"]) if isinstance(t.get("settings"), Mapping) else {}
        found = t.get("metrics") if isinstance(t.get("metrics"), Mapping) else {}
        if isinstance(found.get("final"), Mapping):
            validation = found["final"].get("validation") or {}
            facts = {k: v for k, v in found.items() if k not in ("base", "final")}
            found = {**{f"validation {k}": v for k, v in _flatten(validation).items()}, **facts}
        number = t.get("trial", i + 1)
        rows.append(
            {
                "trial": number,
                "best": bool(t.get("best")) or (best_trial is not None and number == best_trial),
                "settings": settings,
                "metrics": {k.replace("generation.", ""): v for k, v in _flatten(found).items() if _is_number(v)},
            }
        )
    return rows


# --- data --------------------------------------------------------------------------------------------


def token_lengths(paths: RunPaths) -> dict[str, list[int]]:
    """Every example's token count per split: from ``work/tokenized.parquet``, else from the shards."""
    tokenized = paths.stage_file("tokenized")
    if tokenized.exists():
        df = pl.read_parquet(tokenized, columns=["split", "n_tokens"])
        return {s: df.filter(pl.col("split") == s)["n_tokens"].to_list() for s in SPLITS}
    import pyarrow as pa

    out: dict[str, list[int]] = {}
    for split in SPLITS:
        values: list[int] = []
        for shard in sorted((paths.shards / split).glob("*.arrow")):
            with pa.memory_map(str(shard)) as source:
                for batch in pa.ipc.open_stream(source):
                    values += batch.column("n_tokens").to_pylist()
        out[split] = values
    return out


def shared_ngrams(extra: Mapping) -> list[tuple[str, int]]:
    """The decontaminate stage's top shared n-grams, from whichever key holds them, most drops first.

    Accepts a list of ``{"ngram": ..., "count": ...}`` (any key with "gram" in it names the n-gram, the
    first number is its count) or a mapping of n-gram -> count.
    """
    candidates = [extra[k] for k in extra if "gram" in k.lower() and isinstance(extra[k], list | Mapping)]
    for value in candidates:
        pairs: list[tuple[str, int]] = []
        if isinstance(value, Mapping):
            pairs = [(str(k), v) for k, v in value.items() if _is_number(v)]
        else:
            for item in value:
                if isinstance(item, Mapping):
                    text = next((item[k] for k in item if "gram" in k.lower() or k == "text"), None)
                    count = next((item[k] for k in item if _is_number(item[k])), None)
                    if isinstance(text, list):
                        text = " ".join(map(str, text))
                    if text is not None and count is not None:
                        pairs.append((str(text), count))
                elif isinstance(item, list | tuple) and len(item) == 2 and _is_number(item[1]):
                    pairs.append((str(item[0]), item[1]))
        if pairs:
            return sorted(pairs, key=lambda p: (-p[1], p[0]))
    return []

"""Steps that run one task per partition of their input (cleaning, augmentation, tokenization), then merge.

A partitioned step is three plain functions: ``run_part`` processes one row range of the step's source
file into ``work/parts/<step>/<part>/`` (kept rows in ``out.parquet``, drops in ``dropped/``), ``merge``
concatenates those in partition order into the step's usual outputs and sums the stage statistics. The
parts run one after another in this process, or as Prefect tasks on a Dask cluster (``flows.runner``):
the bytes are the same either way. Each finished part leaves a completion marker, so a rerun after a
crash redoes only the parts that had not finished.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from flows.config import PipelineConfig
from flows.layout import RunPaths
from flows.markers import Markers, Timer
from tuneprep.files import tmp_name
from tuneprep.partitions import Partition, concat_parquet, plan_partitions

Log = Callable[[str], None]


@dataclass(frozen=True)
class PartitionedStep:
    name: str
    source: Callable[[RunPaths], Path]  # the file whose rows are partitioned
    run_part: Callable[[PipelineConfig, RunPaths, Partition, Log], list[dict]]  # stage stats of one part
    merge: Callable[[PipelineConfig, RunPaths, list[Partition], list[list[dict]], Log], Any]
    batch_rows: Callable[[PipelineConfig], int] | None = None  # rows per batch the parts read; default batch_size
    # True when the settings leave nothing to do record by record: ``merge`` then runs alone, with no parts
    idle: Callable[[PipelineConfig], bool] | None = None


class MapParts(Protocol):
    """Runs ``run_part`` for every partition and returns the outcomes in partition order."""

    def __call__(
        self, step: str, cfg: PipelineConfig, paths: RunPaths, parts: list[Partition], key: str | None
    ) -> list[dict]: ...


def part_dir(paths: RunPaths, step: str, part: Partition) -> Path:
    return paths.work / "parts" / step / part.name


def run_part(
    step: PartitionedStep, cfg: PipelineConfig, paths: RunPaths, part: Partition, key: str | None, log: Log
) -> dict:
    """One partition, skipped when an earlier run finished it under the same step ``key`` (None: no markers).

    Returns ``{"result": stage stats, "reused": bool, "seconds": float, "process": host:pid that ran it}``.
    """
    markers = Markers(paths.out, learn=False)
    name = f"{step.name}/{part.name}"
    part_key = hashlib.sha256(f"{key}\0{part.index}\0{part.start}\0{part.stop}".encode()).hexdigest()
    done = markers.done(name, part_key) if key else None
    process = f"{socket.gethostname()}:{os.getpid()}"
    if done is not None:
        return {"result": done["result"], "reused": True, "seconds": 0.0, "process": process}
    markers.forget(name)
    folder = part_dir(paths, step.name, part)
    shutil.rmtree(folder, ignore_errors=True)  # what a killed attempt left
    folder.mkdir(parents=True)
    with Timer() as t:
        result = step.run_part(cfg, paths, part, log)
    if key:
        markers.record(name, part_key, sorted(p for p in folder.rglob("*") if p.is_file()), result)
    return {"result": result, "reused": False, "seconds": t.seconds, "process": process}


def run_partitioned(
    step: PartitionedStep,
    cfg: PipelineConfig,
    paths: RunPaths,
    key: str | None,
    log: Log,
    map_parts: MapParts | None = None,
) -> tuple[Any, dict]:
    """Plan the partitions, run them (through ``map_parts``, else one after another here), merge; returns the
    merged result and what was redone."""
    idle = step.idle is not None and step.idle(cfg)
    batch = step.batch_rows(cfg) if step.batch_rows else cfg.batch_size
    parts = [] if idle else plan_partitions(step.source(paths), cfg.runner.partition_rows, batch)
    root = paths.work / "parts" / step.name
    if root.is_dir():  # parts of an earlier plan (another partition size) must not be merged with these
        planned = {p.name for p in parts}
        for d in root.iterdir():
            if d.is_dir() and d.name not in planned:
                shutil.rmtree(d)
    if idle:
        return step.merge(cfg, paths, [], [], log), {"total": 0, "reused": 0, "seconds": 0.0, "processes": 0}
    if map_parts is None:
        outcomes = [run_part(step, cfg, paths, p, key, log) for p in parts]
    else:
        outcomes = map_parts(step.name, cfg, paths, parts, key)
    reused = sum(o["reused"] for o in outcomes)
    if reused:
        log(f"{step.name}: {reused} of {len(parts)} partitions finished in an earlier run, reused")
    result = step.merge(cfg, paths, parts, [o["result"] for o in outcomes], log)
    info = {
        "total": len(parts),
        "reused": reused,
        "seconds": round(sum(o["seconds"] for o in outcomes), 3),  # partition time, summed over processes
        "processes": len({o["process"] for o in outcomes}),
    }
    return result, info


def concat_part_outputs(
    paths: RunPaths,
    step: str,
    parts: Sequence[Partition],
    dst: Path,
    stage_names: Sequence[str],
    batch_size: int,
    quarantine_names: Sequence[str] | None = None,
) -> None:
    """Concatenate, in partition order, the parts' kept rows into ``dst``, each stage's drops into
    ``dropped/<stage>.parquet`` and its quarantine entries into ``quarantine/<stage>.jsonl`` (only where there
    are any: a stale file goes), then delete those part files (others, e.g. signatures, stay)."""
    folders = [part_dir(paths, step, p) for p in parts]
    concat_parquet([f / "out.parquet" for f in folders], dst, batch_size)
    for stage in stage_names:
        concat_parquet(
            [f / "dropped" / f"{stage}.parquet" for f in folders], paths.dropped / f"{stage}.parquet", batch_size
        )
    for stage in stage_names if quarantine_names is None else quarantine_names:
        files = [f / "quarantine" / f"{stage}.jsonl" for f in folders if (f / "quarantine" / f"{stage}.jsonl").exists()]
        target = paths.quarantine / f"{stage}.jsonl"
        if not files:
            target.unlink(missing_ok=True)
            continue
        tmp = tmp_name(target)
        with open(tmp, "wb") as out:
            for f in files:
                with open(f, "rb") as src:
                    shutil.copyfileobj(src, out)
        os.replace(tmp, target)
    for f in folders:
        (f / "out.parquet").unlink(missing_ok=True)
        shutil.rmtree(f / "dropped", ignore_errors=True)
        shutil.rmtree(f / "quarantine", ignore_errors=True)


# Summary fields that are settings or the same in every partition (not counts to add up).
SAME_IN_EVERY_PART = {"augmenters", "skipped", "params", "holdout_indexed", "action"}
# Ratios, averaged weighted by the sibling count named here.
WEIGHTED = {"distinct_1": "variants", "distinct_2": "variants", "edit_rate": "variants"}


def merge_summaries(parts: Sequence[Any], key: str | None = None) -> Any:
    """One stage summary from its partitions' summaries: counts add up, settings are taken once, ratios are
    averaged by their counts, example lists keep as many as one partition would (the earliest partitions')."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    first = parts[0]
    if key in SAME_IN_EVERY_PART or isinstance(first, str | bool):
        return first
    if isinstance(first, int | float):
        return sum(parts)
    if isinstance(first, list):
        longest = max(len(p) for p in parts)
        return [x for p in parts for x in p][:longest]
    if isinstance(first, dict):
        keys = list(dict.fromkeys(k for p in parts for k in p))
        out = {}
        for k in keys:
            values = [p.get(k) for p in parts]
            if k in WEIGHTED:
                weights = [p.get(WEIGHTED[k]) or 0 for p in parts]
                pairs = [(v, w) for v, w in zip(values, weights, strict=True) if v is not None and w]
                total = sum(w for _, w in pairs)
                out[k] = round(sum(v * w for v, w in pairs) / total, 4) if total else None
            else:
                out[k] = merge_summaries(values, k)
        return out
    return first


def merge_stage_stats(per_part: Sequence[Sequence[dict]]) -> list[dict]:
    """Each stage's statistics over all partitions (every part ran the same stages, in the same order), in the
    shape of ``StageStats.to_dict``."""
    merged = []
    for stage_parts in zip(*per_part, strict=True):
        reasons: Counter = Counter()
        quarantine_reasons: Counter = Counter()
        errors: list[str] = []
        for s in stage_parts:
            reasons.update(s.get("reasons", {}))
            quarantine_reasons.update(s.get("quarantine_reasons", {}))
            errors += [e for e in s.get("errors", []) if e not in errors]
        first = stage_parts[0]
        out = {k: sum(s[k] for s in stage_parts) for k in ("read", "kept", "dropped", "quarantined", "added")}
        out = {
            "name": first["name"],
            **out,
            "reasons": dict(sorted(reasons.items())),
            "quarantine_reasons": dict(sorted(quarantine_reasons.items())),
            "seconds": round(sum(s.get("seconds", 0.0) for s in stage_parts), 3),
        }
        if errors:
            out["errors"] = errors[:3]
        extras = [s.get("extra") for s in stage_parts]
        if any(extras):
            out["extra"] = merge_summaries([e or {} for e in extras])
        merged.append(out)
    return merged

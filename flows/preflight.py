"""Checks made before any flow or Prefect server starts, so a wrong command fails in a second with one line.

The inputs must name something (folders are not walked here: what is inside them is judged when read),
the earlier runs a data drop points at must exist, and the output folder must be writable and neither
inside an input folder (its files would be read as input next time) nor holding one.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from flows.config import PipelineConfig


class PreflightError(ValueError):
    """What is wrong with a run's inputs, config or output folder, in one line."""


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_output(out: str | Path, cfg: PipelineConfig) -> Path:
    """The output folder, resolved and created; refused when it is a file, not writable, or overlaps an input."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise PreflightError(f"--out {out} is a file, not a folder")
    resolved = path.resolve()
    for item in cfg.inputs:
        if "://" in item or not os.path.lexists(item):
            continue
        src = Path(item).resolve()
        if src.is_dir() and _inside(resolved, src):
            raise PreflightError(
                f"output folder {out} is inside the input folder {item}: its files would be read as input"
            )
        if _inside(src, resolved) and resolved != Path(resolved.anchor):
            raise PreflightError(f"input {item} is inside the output folder {out}, which the run writes into")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PreflightError(f"cannot create the output folder {out}: {e.strerror or e}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise PreflightError(f"the output folder {out} is not writable")
    return path


def check_earlier_runs(cfg: PipelineConfig) -> None:
    """``dedup.reuse_index`` and ``split.previous`` must name what an earlier run left."""
    if cfg.dedup.reuse_index:
        p = Path(cfg.dedup.reuse_index)
        index = p / "index" if (p / "index").is_dir() else p
        if not index.is_dir():
            raise PreflightError(f"dedup.reuse_index: no earlier run's index/ folder at {cfg.dedup.reuse_index}")
    if cfg.split.previous:
        p = Path(cfg.split.previous)
        if not (p / "splits.parquet" if p.is_dir() else p).is_file():
            raise PreflightError(f"split.previous: no splits.parquet at {cfg.split.previous}")


def preflight(cfg: PipelineConfig, out: str | Path) -> Path:
    """Every check that needs no data read: inputs, earlier runs, output folder. Returns the output folder."""
    from ingest.sources import LoadError, check_inputs

    try:
        check_inputs(cfg.inputs)
    except LoadError as e:
        raise PreflightError(str(e)) from None
    check_earlier_runs(cfg)
    return check_output(out, cfg)


def one_line(e: BaseException) -> str:
    """An error as one line a person can act on; a config error names each field that is wrong."""
    if isinstance(e, ValidationError):
        parts = []
        for err in e.errors()[:5]:
            where = ".".join(str(x) for x in err["loc"]) or "config"
            got = f" (got {repr(err['input'])[:80]})" if "input" in err and not isinstance(err["input"], dict) else ""
            parts.append(f"{where}: {err['msg']}{got}")
        more = f"; and {e.error_count() - 5} more" if e.error_count() > 5 else ""
        return "config error: " + "; ".join(parts)[:600] + more
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__

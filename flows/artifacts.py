"""What a run shows in the Prefect UI: its report, stage counts with drop reasons, its output folder, its metrics.

All of a run's artifacts are made here, in one place, from files the run wrote. Keys are stable
(lowercase, digits and dashes, as Prefect requires), so each key's versions across runs form one
collection in the UI.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from flows.layout import RunPaths

REPORT_KEY = "tuneprep-report"
STAGES_KEY = "tuneprep-stage-counts"
OUTPUT_KEY = "tuneprep-output"
METRICS_KEY = "tuneprep-metrics"


def stage_rows(manifest: dict, timings: dict | None = None) -> list[dict]:
    """One row per stage: its counts, why records left it (``reason: n``, most frequent first, quarantine
    reasons marked), and its seconds (from timings.json: the manifest holds no durations)."""
    rows = []
    for s in manifest["stages"]:
        reasons = sorted(s.get("reasons", {}).items(), key=lambda kv: -kv[1])
        reasons += [
            (f"quarantined {k}", v) for k, v in sorted(s.get("quarantine_reasons", {}).items(), key=lambda kv: -kv[1])
        ]
        rows.append(
            {
                "name": s["name"],
                "read": s["read"],
                "kept": s["kept"],
                "added": s["added"],
                "dropped": s["dropped"],
                "quarantined": s["quarantined"],
                "reasons": ", ".join(f"{k}: {v}" for k, v in reasons),
                "seconds": (timings or {}).get(s["name"], {}).get("seconds"),
            }
        )
    return rows


def metric_rows(metrics: dict, prefix: str = "") -> list[dict]:
    """Every number in metrics.json as a (metric, value) row, by its dotted path; the config is left out."""
    rows: list[dict] = []
    for k, v in metrics.items():
        name = f"{prefix}{k}"
        if k == "config":
            continue
        if isinstance(v, dict):
            rows += metric_rows(v, f"{name}.")
        elif isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            rows.append({"metric": name, "value": round(v, 6) if isinstance(v, float) else v})
    return rows


def publish_run_artifacts(
    paths: RunPaths, report_text: str, metrics_path: Path | None = None, html_page: Path | None = None
) -> dict[str, Any]:
    """Create the run's artifacts in the current flow run; returns their ids by key."""
    out = paths.out.resolve()
    ids: dict[str, Any] = {}
    if html_page is not None:
        report_text += f"\n**With plots:** [report.html]({html_page.resolve().as_uri()}) (or `tuneprep report {paths.out} --open`)\n"
    ids[REPORT_KEY] = create_markdown_artifact(
        markdown=report_text, key=REPORT_KEY, description=f"tuneprep run report for {out}"
    )
    if paths.manifest.exists():
        manifest = json.loads(paths.manifest.read_text())
        timings = json.loads(paths.timings.read_text()).get("stages", {}) if paths.timings.exists() else {}
        ids[STAGES_KEY] = create_table_artifact(
            table=stage_rows(manifest, timings),
            key=STAGES_KEY,
            description="records each stage read, kept, added, dropped and quarantined, and why they left",
        )
    ids[OUTPUT_KEY] = create_link_artifact(
        link=out.as_uri(), link_text=str(out), key=OUTPUT_KEY, description="the run's output folder"
    )
    if metrics_path is not None and metrics_path.exists():
        rows = metric_rows(json.loads(metrics_path.read_text()))
        ids[METRICS_KEY] = create_table_artifact(
            table=rows, key=METRICS_KEY, description=f"the fine-tuned model's metrics ({metrics_path})"
        )
    return ids

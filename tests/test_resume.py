"""Kill a run with SIGKILL at several points, rerun it, and get what an uninterrupted run gets.

One run folder goes through a chain: killed while loading, rerun and killed in dedup, rerun and killed
in augmentation, rerun and killed while writing shards, rerun and killed while training, rerun to the
end. Each rerun must reuse what the killed run finished (completion markers, no Prefect involved) and
the end result must be byte-identical to a run that was never interrupted: every shard file, the
tokenizer, and manifest.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

CONFIG = {
    "name": "resume",
    "inputs": [str(ROOT / "sample_data" / "tickets.csv"), str(ROOT / "sample_data" / "docs")],
    "batch_size": 64,
    "runner": {"partition_rows": 128},  # two batches a partition: several partitions per step
    "augment": {"augmenters": ["char_noise", "punct_noise"]},
    "finetune": {"max_steps": 6, "eval_every": 0, "checkpoint_every": 2, "batch_size": 8, "generate_n": 0},
}
KILL_POINTS = ["load", "dedup", "augment", "shards", "training"]


def run(out: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "tests" / "crash_run.py"), str(out), json.dumps(CONFIG)]
    return subprocess.run(
        cmd + (["--kill-at", kill_at] if kill_at else []), capture_output=True, text=True, timeout=600
    )


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def this_run(out: Path) -> dict:
    return json.loads((out / ".done" / "run.json").read_text())


def test_killed_runs_resume_to_the_same_bytes(tmp_path):
    clean = tmp_path / "uninterrupted"
    done = run(clean)
    assert done.returncode == 0, done.stderr[-3000:]

    out = tmp_path / "killed"
    redone: dict[str, dict] = {}
    for point in KILL_POINTS:
        killed = run(out, kill_at=point)
        assert killed.returncode == -9, f"{point}: the run was not killed ({killed.returncode}) {killed.stderr[-2000:]}"
        redone[point] = this_run(out)  # what the run that was killed here did before it died
    final = run(out)
    assert final.returncode == 0, final.stderr[-3000:]
    last = this_run(out)

    assert files(out / "shards") == files(clean / "shards")
    assert files(out / "tokenizer") == files(clean / "tokenizer")
    assert (out / "manifest.json").read_bytes() == (clean / "manifest.json").read_bytes()

    # Each rerun took up where the kill left it: what finished before a kill was reused after it.
    assert redone["dedup"]["load"]["status"] == "ran"  # the load was killed: redone
    assert redone["dedup"]["clean"]["status"] == "ran"
    assert {redone["augment"][s]["status"] for s in ("load", "clean")} == {"reused"}
    assert redone["augment"]["dedup"]["status"] == "ran"
    assert redone["shards"]["augment"]["partitions"]["reused"] >= 1, "the finished augment partition was redone"
    assert {redone["training"][s]["status"] for s in ("load", "augment", "tokenize")} == {"reused"}
    assert redone["training"]["shards"]["status"] == "ran"
    assert all(last[s]["status"] == "reused" for s in ("load", "clean", "dedup", "augment", "shards"))
    assert last["finetune"]["status"] == "ran", "a fine-tune killed mid-training must not be skipped"
    assert "resumed from" in final.stdout, "the fine-tune did not resume from its checkpoint"

    metrics = json.loads((out / "model" / "metrics.json").read_text())
    reference = json.loads((clean / "model" / "metrics.json").read_text())
    for split in ("validation", "test"):
        assert metrics["final"][split]["loss"] == pytest.approx(reference["final"][split]["loss"], rel=1e-5)
    print("\nwhat each run did before its kill, then the last rerun:")
    for point, steps in [*redone.items(), ("(finish)", last)]:
        print(
            f"  killed at {point:9s}",
            {k: v["status"] + (f" {v['partitions']}" if "partitions" in v else "") for k, v in steps.items()},
        )

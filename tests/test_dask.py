"""The partitioned steps on a Dask local cluster of 2 workers give the bytes an in-process run gives."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

CONFIG = {
    "name": "dask",
    "inputs": [str(ROOT / "sample_data" / p) for p in ("tickets.csv", "docs", "web")],
    "batch_size": 64,
    "runner": {"partition_rows": 128},
    "augment": {"augmenters": ["char_noise", "punct_noise"]},
}


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_dask_workers_make_the_same_shards_as_one_process(prefect_harness, tmp_path):
    from flows.config import PipelineConfig
    from flows.prepare import prepare_flow
    from flows.steps import prepare

    local = PipelineConfig.model_validate(CONFIG)
    prepare(local, tmp_path / "local", log=lambda m: None)
    dask = PipelineConfig.model_validate({**CONFIG, "runner": {**CONFIG["runner"], "kind": "dask", "workers": 2}})
    prepare_flow(config=dask, out=str(tmp_path / "dask"))

    assert files(tmp_path / "dask" / "shards") == files(tmp_path / "local" / "shards")
    assert files(tmp_path / "dask" / "tokenizer") == files(tmp_path / "local" / "tokenizer")
    manifests = [json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("local", "dask")]
    for m in manifests:
        m["config"].pop("runner")
    assert manifests[0] == manifests[1]  # the stage statistics merged from the partitions too

    steps = json.loads((tmp_path / "dask" / "timings.json").read_text())["steps"]
    for step in ("clean", "augment", "tokenize"):
        parts = steps[step]["partitions"]
        assert parts["total"] >= 2 and parts["reused"] == 0
    for step in ("clean", "tokenize"):  # several partitions each: both workers take some
        processes = steps[step]["partitions"]["processes"]
        assert processes == 2, f"{step}: partitions ran in {processes} process(es), not on 2 workers"
    assert "PREFECT_API_URL" not in os.environ or os.environ["PREFECT_API_URL"]  # restored after the cluster

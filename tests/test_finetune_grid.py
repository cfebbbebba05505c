"""Grid search as a Prefect flow: one subflow per trial, the best by validation loss exported, trials.json."""

from __future__ import annotations

import json

import pytest
from ft_builders import make_data_dir
from transformers import AutoModelForCausalLM

from finetune import FinetuneConfig

pytestmark = pytest.mark.slow

TRIAL = {"n_embd": 32, "block_size": 64, "batch_size": 4, "max_steps": 12, "eval_every": 6, "generate_n": 2}


def test_grid_flow_exports_the_best_trial(prefect_harness, tmp_path, monkeypatch):
    import flows.finetune as ft_flows

    monkeypatch.setattr(ft_flows, "uses_gpu", lambda cfg: True)  # take the GPU concurrency-limit path on CPU
    data = make_data_dir(tmp_path / "data")
    out = tmp_path / "model"
    cfg = FinetuneConfig(**TRIAL, device="cpu", num_threads=1, grid={"lr": [1e-5, 1e-2], "use_augmented": [False]})
    path = ft_flows.finetune_flow(str(data), str(out), cfg)

    trials = json.loads((out / "trials.json").read_text())
    losses = [t["metrics"]["final"]["validation"]["loss"] for t in trials["trials"]]
    assert len(losses) == 2 and trials["best_trial"] == losses.index(min(losses)) == 1  # lr 1e-5 barely moves
    assert [t["settings"] for t in trials["trials"]] == [
        {"lr": 1e-5, "use_augmented": False},
        {"lr": 1e-2, "use_augmented": False},
    ]
    assert json.loads((out / "metrics.json").read_text()) == trials["trials"][1]["metrics"]
    assert path == str(out / "metrics.json")
    AutoModelForCausalLM.from_pretrained(out)  # the best trial, exported
    assert not (out / "trials" / "000" / "model.safetensors").exists()  # the others' weights are not kept
    assert json.loads((out / "training.json").read_text())["config"]["lr"] == 1e-2

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(ft_flows.GPU_LIMIT).limit == 1
        artifacts = client.read_artifacts()
    grid_tables = [a for a in artifacts if a.key == "tuneprep-grid"]
    assert grid_tables and grid_tables[0].type == "table"

    # rerunning the same command keeps the finished trials
    class NoTrials:
        def with_options(self, **_):
            pytest.fail("a finished trial was run again")

    monkeypatch.setattr(ft_flows, "trial_flow", NoTrials())
    assert ft_flows.finetune_flow(str(data), str(out), cfg) == path
    assert json.loads((out / "trials.json").read_text())["best_trial"] == 1

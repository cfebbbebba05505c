"""The augmentation ablation: arms, budget, the verdict's arithmetic, and the flow writing ablation.json and the
report's table."""

from __future__ import annotations

import json

import pytest
from ft_builders import add_run_manifest, make_data_dir

from finetune import FinetuneConfig, ablation
from finetune.data import load_split, loss_token_counts

TINY = {
    "n_embd": 32,
    "block_size": 64,
    "batch_size": 4,
    "epochs": 1,
    "eval_every": 5,
    "generate_n": 2,
    "generate_max_new_tokens": 6,
    "num_threads": 1,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data_dir(tmp_path_factory.mktemp("abl"))


def test_arms_budget_and_plan(data, tmp_path):
    assert ablation.augmenters(data) == ["synonym", "word_noise"]
    assert [(a.name, a.use_augmented) for a in ablation.arms(data)] == [
        ("without", False),
        ("with", True),
        ("only synonym", ["synonym"]),
        ("only word_noise", ["word_noise"]),
    ]
    assert [a.name for a in ablation.arms(data, per_augmenter=False)] == ["without", "with"]
    cfg = FinetuneConfig(**{**TINY, "epochs": 2, "seed": 7, "patience": 3, "max_steps": 9})
    originals = load_split(data, "train", use_augmented=False)
    assert ablation.token_budget(cfg, data) == 2 * int(loss_token_counts(originals).sum())
    entries = ablation.plan(cfg, data, tmp_path, seeds=3)
    assert len(entries) == 4 * 3 and [e["settings"]["seed"] for e in entries[:3]] == [7, 8, 9]
    run_cfg = entries[-1]["config"]
    assert run_cfg.use_augmented == ["word_noise"] and run_cfg.patience is None and run_cfg.max_steps is None
    assert run_cfg.max_tokens == ablation.token_budget(cfg, data)
    only_synonym = load_split(data, "train", use_augmented=["synonym"])
    assert len(originals) < len(only_synonym) < len(load_split(data, "train"))
    assert set(only_synonym.dataset.select(only_synonym.rows)["aug_kind"]) == {None, "synonym"}


def test_no_augmented_rows_nothing_to_ablate(tmp_path):
    plain = make_data_dir(tmp_path / "plain", augmented=False)
    with pytest.raises(ValueError, match="no augmented rows"):
        ablation.arms(plain)


def fake(arm: str, losses: list[float]) -> list[dict]:
    out = []
    for i, loss in enumerate(losses):
        test = {"loss": loss, "perplexity": 2.718281828**loss, "token_accuracy": 0.5, "generation": {"bleu": 1.0}}
        out.append(
            {
                "arm": arm,
                "settings": {"use_augmented": arm != "without", "seed": i},
                "dir": f"x/{arm}/{i}",
                "metrics": {"final": {"validation": test, "test": test}, "train_tokens": 100},
            }
        )
    return out


@pytest.mark.parametrize(
    ("with_losses", "word"),
    [([2.0, 2.01, 1.99], "helped"), ([2.5, 2.51, 2.49], "hurt"), ([2.21, 2.19, 2.0], "made no clear difference")],
)
def test_the_verdict_weighs_the_difference_against_the_seeds_spread(with_losses, word):
    summary = ablation.summarize(fake("without", [2.2, 2.21, 2.19]) + fake("with", with_losses), 100)
    assert summary["verdict"].startswith(f"Augmentation {word}")
    assert "± " in summary["verdict"] and "3 seeds" in summary["verdict"]
    with_ = summary["arms"][1]
    assert with_["mean"]["loss"] == pytest.approx(sum(with_losses) / 3)
    assert with_["vs_without"]["loss"] == pytest.approx(with_["mean"]["loss"] - 2.2)
    rows = ablation.table_rows(summary)
    assert rows[1]["test loss"].count("±") == 1 and rows[0]["Δ loss vs without"] == "–"
    one_seed = ablation.summarize(fake("without", [2.2]) + fake("with", [2.0]), 100)
    assert "one seed" in one_seed["verdict"]


@pytest.mark.slow
def test_ablation_flow_writes_its_table_and_keeps_finished_runs(prefect_harness, data, tmp_path, monkeypatch):
    import flows.ablate as ablate_flows

    add_run_manifest(data)
    path = ablate_flows.ablation_flow(str(data), FinetuneConfig(**TINY, seed=3), seeds=2)
    summary = json.loads((data / "ablation.json").read_text())
    assert path == str(data / "ablation.json")
    assert [a["arm"] for a in summary["arms"]] == ["without", "with", "only synonym", "only word_noise"]
    budget = summary["token_budget"]
    for arm in summary["arms"]:
        assert [r["seed"] for r in arm["runs"]] == [3, 4]
        assert all(budget <= r["train_tokens"] < budget + 4 * 64 for r in arm["runs"])  # one budget, <1 step over
        assert set(arm["mean"]) == {"loss", "perplexity", "token_accuracy", "bleu", "rouge_l", "f1"}
        assert arm["std"]["loss"] is not None and arm["runs"][0]["scores"]["loss"] != arm["runs"][1]["scores"]["loss"]
    assert summary["verdict"].startswith("Augmentation ")
    run_dir = data / "ablation" / "with" / "seed-3"
    assert (run_dir / "metrics.json").exists() and not (run_dir / "model.safetensors").exists()
    report = (data / "report.md").read_text()
    assert "## Does augmentation help?" in report and summary["verdict"] in report and "| only synonym | 2 |" in report
    assert 'id="ablation"' in (data / "report.html").read_text()

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        assert any(a.key == "tuneprep-ablation" for a in client.read_artifacts())

    class NoRuns:
        def with_options(self, **_):
            pytest.fail("a finished run was trained again")

    monkeypatch.setattr(ablate_flows, "trial_flow", NoRuns())
    ablate_flows.ablation_flow(str(data), FinetuneConfig(**TINY, seed=3), seeds=2)
    assert json.loads((data / "ablation.json").read_text()) == summary


def test_ablate_command_refuses_a_folder_without_shards(tmp_path, capsys):
    from flows.cli import main

    assert main(["ablate", str(tmp_path)]) == 2
    assert "not a prepared run folder" in capsys.readouterr().err

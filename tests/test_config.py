import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from flows.config import SAMPLE_DATA, PipelineConfig, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_readme_config_example_is_valid(tmp_path):
    block = re.search(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    (tmp_path / "cfg.yaml").write_text(block)
    cfg = load_config(tmp_path / "cfg.yaml")
    assert cfg.name == "support-v3" and cfg.clean.filter.min_words == 8
    assert cfg.inputs[0] == str((tmp_path / "data/tickets.csv").resolve())  # relative to the file


def test_toml_and_defaults_and_unknown_keys(tmp_path):
    (tmp_path / "c.toml").write_text("seed = 7\n[split]\nratios = {train = 0.5, validation = 0.25, test = 0.25}\n")
    cfg = load_config(tmp_path / "c.toml")
    assert cfg.seed == 7 and cfg.split.ratios["test"] == 0.25
    assert PipelineConfig().inputs == [str(SAMPLE_DATA)]
    with pytest.raises(ValidationError):
        PipelineConfig.model_validate({"dedupe": {}})
    with pytest.raises(ValidationError, match="sum to 1"):
        PipelineConfig.model_validate({"split": {"ratios": {"train": 0.9, "validation": 0.2, "test": 0.1}}})


def test_one_run_seed_derives_the_stage_seeds():
    from flows.config import PipelineConfig
    from tuneprep.hashing import derive_seed

    a, b = PipelineConfig(seed=1), PipelineConfig(seed=2)
    assert a.finetune.seed == derive_seed(1, "finetune") != b.finetune.seed
    assert PipelineConfig(seed=1, finetune={"seed": 5}).finetune.seed == 5  # an explicit stage seed wins
    assert "seed" not in PipelineConfig().dedup.model_dump() and "seed" not in PipelineConfig().augment.model_dump()


def test_decontamination_and_the_augmentation_gate_share_the_held_out_setting():
    from flows.config import PipelineConfig

    cfg = PipelineConfig(heldout={"splits": ["test"], "near_threshold": 0.6})
    assert cfg.heldout.near_threshold == 0.6
    assert not any("threshold" in k or "splits" in k for k in cfg.decontaminate.model_dump())
    assert set(cfg.augment.leakage.model_dump()) == {"enabled"}

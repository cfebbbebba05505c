"""The whole flow on sample_data/ under Prefect's test harness, checked against the output contract."""

import json
import math

import datasets
import polars as pl
import pytest

from flows.config import SAMPLE_DATA

pytestmark = pytest.mark.slow


def test_output_layout(run_dir):
    for rel in [
        "manifest.json",
        "report.md",
        "tokenizer",
        "model/metrics.json",
        "model/tb",
        "model/README.md",
        "model/training.json",
        "model/samples.json",
        "quarantine/load.jsonl",
        "shards/train",
        "shards/validation",
        "shards/test",
    ]:
        assert (run_dir / rel).exists(), rel
    assert list((run_dir / "model").glob("*.safetensors"))
    assert list((run_dir / "model" / "tb").rglob("events.out.tfevents.*"))


def test_shards_load_and_splits_do_not_leak(run_dir):
    from transformers import AutoTokenizer

    eos = AutoTokenizer.from_pretrained(str(run_dir / "tokenizer")).eos_token_id
    frames = []
    for split in ("train", "validation", "test"):
        ds = datasets.load_from_disk(str(run_dir / "shards" / split))
        assert ds.num_rows > 0 and set(ds["split"]) == {split}
        assert all(ids[-1] == eos for ids in ds["input_ids"])
        frames.append(
            pl.from_arrow(ds.data.table).select("id", "split", "aug_of", "group_id", "input_ids", "loss_mask")
        )
    df = pl.concat(frames)
    variants = df.filter(pl.col("aug_of").is_not_null())
    assert variants.height > 0, "augmentation made no variants"
    assert set(variants["split"]) == {"train"}
    sources = df.select(pl.col("id").alias("aug_of"), pl.col("split").alias("source_split")).unique()
    crossed = variants.join(sources, on="aug_of", how="left")
    assert crossed.filter(pl.col("source_split") != pl.col("split")).height == 0
    assert crossed["source_split"].null_count() == 0
    groups = df.filter(pl.col("group_id").is_not_null()).group_by("group_id").agg(pl.col("split").n_unique())
    assert groups["split"].max() == 1
    assert all(len(a) == len(b) for a, b in zip(df["input_ids"], df["loss_mask"], strict=True))


def test_every_input_record_is_accounted_for(run_dir):
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["accounting"]["ok"], m["accounting"]
    load = m["stages"][0]
    assert load["name"] == "load" and load["quarantined"] >= 4
    quarantined = [json.loads(line) for line in (run_dir / "quarantine/load.jsonl").read_text().splitlines()]
    assert len(quarantined) == load["quarantined"] and all(q["reason"] for q in quarantined)
    dropped = sum(pl.read_parquet(f).height for f in (run_dir / "dropped").glob("*.parquet"))
    assert dropped == sum(s["dropped"] for s in m["stages"])
    assert dropped > 0
    reasons = m["dropped_by_reason"]
    assert reasons.get("exact_dedup:exact_duplicate", 0) > 0 and reasons.get("near_dedup:near_duplicate", 0) > 0
    assert {i["sha256"] for i in m["inputs"]} and m["tokenizer"]["sha256"]
    assert all(len(s["sha256"]) == 64 for split in m["splits"].values() for s in split["shards"])


def test_model_reloads_and_learned(run_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(run_dir / "model"))
    tok = AutoTokenizer.from_pretrained(str(run_dir / "model"))
    assert model.config.vocab_size >= len(tok)
    metrics = json.loads((run_dir / "model" / "metrics.json").read_text())
    assert set(metrics) == {"base", "final", "best_step", "stopped_early", "train_tokens", "tokens_per_s"}
    before, after = metrics["base"]["validation"]["perplexity"], metrics["final"]["validation"]["perplexity"]
    assert math.isfinite(after) and after < before
    assert math.isfinite(metrics["final"]["test"]["perplexity"])
    # the sample data mixes documents and conversations: both are scored, and the conversations' answers too
    assert set(metrics["final"]["validation"]["by_format"]) == {"text", "chat"}
    assert metrics["final"]["validation"]["generation"]["n"] > 0
    assert (run_dir / "model" / "README.md").exists()


def test_report_has_every_section(run_dir):
    text = (run_dir / "report.md").read_text()
    for heading in [
        "## Stages",
        "## Why records left",
        "## Splits",
        "## Example lengths",
        "## Augmentation",
        "## Model",
    ]:
        assert heading in text, heading


def test_prepare_is_byte_identical_for_same_input_and_seed(prefect_harness, run_dir, tmp_path):
    from conftest import fast_config

    from flows.prepare import prepare_flow

    prepare_flow(config=fast_config(), out=str(tmp_path / "again"))
    first = json.loads((run_dir / "manifest.json").read_text())["splits"]
    second = json.loads((tmp_path / "again" / "manifest.json").read_text())["splits"]
    assert first == second


def test_cli_prepare_reports_bad_input_clearly(tmp_path, capsys):
    from flows.cli import main

    assert main(["prepare", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "input not found" in capsys.readouterr().err


def test_sample_data_is_bundled():
    assert (SAMPLE_DATA / "tickets.csv").exists()

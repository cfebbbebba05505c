"""End-to-end tests for finetune/: tiny offline tokenizer + shards, a few dozen CPU steps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from datasets import Dataset, Features, List, Value, load_from_disk
from tiny_gpt2 import save_tiny_gpt2, save_tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer

from finetune import FinetuneConfig, build_model, evaluate, train
from finetune.data import IGNORE_INDEX, iter_batches, make_collate, pad_collate
from finetune.model import pick_device

SUBJECTS = ["the cat", "the dog", "a bird", "my friend", "the teacher", "our neighbour"]
VERBS = ["sat on", "looked at", "walked to", "jumped over", "talked about", "painted"]
OBJECTS = ["the mat", "the red door", "a small house", "the old tree", "the river", "a blue car"]
TEXTS = [f"{s} {v} {o} . {s} {v} {o} again ." for s in SUBJECTS for v in VERBS for o in OBJECTS[:2]]

FEATURES = Features(
    {
        "id": Value("string"),
        "input_ids": List(Value("int32")),
        "loss_mask": List(Value("int8")),
        "split": Value("string"),
        "label": Value("string"),
        "aug_of": Value("string"),
    }
)
FAST = {"max_steps": 40, "batch_size": 8, "warmup_steps": 5, "eval_every": 20, "log_every": 10, "num_threads": 2}


def write_split(root: Path, split: str, rows: list[tuple[list[int], list[int]]]) -> None:
    cols = {
        "id": [f"{split}-{i}" for i in range(len(rows))],
        "input_ids": [ids for ids, _ in rows],
        "loss_mask": [mask for _, mask in rows],
        "split": [split] * len(rows),
        "label": [""] * len(rows),
        "aug_of": [""] * len(rows),
    }
    Dataset.from_dict(cols, features=FEATURES).save_to_disk(str(root / "shards" / split))


def make_data_dir(root: Path, *, empty_eval: bool = False) -> Path:
    """A DATA dir shaped like the pipeline's output: tokenizer/, shards/{train,validation,test}/, manifest.json."""
    tok = save_tokenizer(TEXTS, root / "tokenizer")
    docs = [(tok(t)["input_ids"] + [tok.eos_token_id], None) for t in TEXTS]
    rows = [(ids, [1] * len(ids)) for ids, _ in docs]
    # a few chat-like rows: only the "answer" half is learned
    for ids, mask in rows[::6]:
        half = len(ids) // 2
        rows.append((ids, [0] * half + mask[half:]))
    g = torch.Generator().manual_seed(0)
    rows = [rows[i] for i in torch.randperm(len(rows), generator=g).tolist()]
    n_eval = 0 if empty_eval else 8
    write_split(root, "validation", rows[:n_eval])
    write_split(root, "test", rows[n_eval : 2 * n_eval])
    write_split(root, "train", rows[2 * n_eval :])
    (root / "manifest.json").write_text(json.dumps({"tokenizer": {"sha256": "0" * 64}}))
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data_dir(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("run")
    return out, train(data_dir, out, FinetuneConfig(device="cpu", **FAST), log=lambda _: None)


def test_loss_drops_and_metrics_written(run: tuple[Path, dict]) -> None:
    out, metrics = run
    before, after = metrics["initial"]["validation"], metrics["validation"]
    assert math.isfinite(after["perplexity"]) and after["perplexity"] < before["perplexity"]
    assert after["perplexity"] < 0.5 * before["perplexity"], (before, after)
    assert after["perplexity"] == pytest.approx(math.exp(after["loss"]))
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == metrics
    assert {"initial", "validation", "test", "train", "device", "model"} <= set(on_disk)
    assert {"steps", "tokens", "seconds", "tokens_per_s", "final_loss"} <= set(on_disk["train"])
    assert on_disk["train"]["steps"] == 40 and on_disk["device"] == "cpu"
    assert on_disk["model"]["name_or_scratch"] == "scratch" and on_disk["model"]["parameters"] > 0
    assert on_disk["test"]["tokens"] > 0
    assert list((out / "tb").glob("events.out.tfevents.*"))
    assert not (out / ".saving").exists()


def test_saved_model_reloads(run: tuple[Path, dict], data_dir: Path) -> None:
    out, metrics = run
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.pad_token_id is not None and tok.eos_token_id is not None
    assert len(tok) == model.config.vocab_size
    cfg = FinetuneConfig(device="cpu")
    again = evaluate(model, load_from_disk(str(data_dir / "shards" / "validation")), cfg, torch.device("cpu"))
    assert again is not None
    assert again["loss"] == pytest.approx(metrics["validation"]["loss"], rel=1e-4)


def test_chat_loss_mask_and_padding() -> None:
    ids = [5, 6, 7, 8, 9, 10, 2]
    mask = [0, 0, 0, 1, 1, 1, 0]
    batch = pad_collate([{"input_ids": ids, "loss_mask": mask}, {"input_ids": [5, 6], "loss_mask": [1, 1]}], 0, 6)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 10], [5, 6, 0, 0, 0, 0]]  # truncated to block, padded
    assert batch["labels"].tolist() == [[-100, -100, -100, 8, 9, 10], [5, 6, -100, -100, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1] * 6, [1, 1, 0, 0, 0, 0]]


def test_shuffle_is_deterministic_per_epoch(data_dir: Path) -> None:
    ds = load_from_disk(str(data_dir / "shards" / "train")).select_columns(["input_ids", "loss_mask"])
    collate = make_collate(0, 16)

    def first(epoch: int) -> list:
        return next(iter_batches(ds, 4, collate, shuffle=True, seed=3, epoch=epoch))["input_ids"].tolist()

    assert first(0) == first(0) and first(0) != first(1)
    masked = next(iter_batches(ds, len(ds), make_collate(0, 256), shuffle=False))["labels"]
    assert (masked == IGNORE_INDEX).any()


def test_same_seed_same_final_loss(run: tuple[Path, dict], data_dir: Path, tmp_path: Path) -> None:
    _, metrics = run
    again = train(data_dir, tmp_path / "again", FinetuneConfig(device="cpu", **FAST), log=lambda _: None)
    assert again["train"]["final_loss"] == metrics["train"]["final_loss"]
    assert again["validation"] == metrics["validation"]


def test_local_pretrained_model_branch(data_dir: Path, tmp_path: Path) -> None:
    # the pretrained model's vocab is smaller than the data's tokenizer: embeddings must be resized
    base = save_tiny_gpt2(TEXTS[:6], tmp_path / "tiny-gpt2")
    cfg = FinetuneConfig(model=str(base), device="cpu", **{**FAST, "max_steps": 10, "block_size": 512})
    tok = AutoTokenizer.from_pretrained(data_dir / "tokenizer")
    model = build_model(cfg, tok)
    assert model.config.n_layer == 1 and model.get_input_embeddings().num_embeddings == len(tok)
    assert cfg.resolved_lr() < FinetuneConfig().resolved_lr()
    metrics = train(data_dir, tmp_path / "out", cfg, log=lambda _: None)
    assert metrics["model"]["name_or_scratch"] == str(base)
    assert metrics["block_size"] == 64  # clamped to the model's n_positions
    assert math.isfinite(metrics["validation"]["loss"])
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "out").config.n_layer == 1


def test_empty_eval_splits_report_null(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path / "data", empty_eval=True)
    lines: list[str] = []
    metrics = train(data, tmp_path / "out", FinetuneConfig(device="cpu", max_steps=3), log=lines.append)
    assert metrics["initial"]["validation"] is None and metrics["validation"] is None and metrics["test"] is None
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["test"] is None
    assert any("step 3/3" in line for line in lines)


def test_config_rejects_typos_and_bad_shapes() -> None:
    with pytest.raises(ValueError):
        FinetuneConfig(learning_rate=1e-3)
    with pytest.raises(ValueError):
        FinetuneConfig(n_embd=65, n_head=2)
    assert pick_device("cpu").type == "cpu"

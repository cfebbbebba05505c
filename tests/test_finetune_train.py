"""finetune.train end to end on tiny local data and models: outputs, early stopping, LoRA, frozen layers,
resume after SIGKILL."""

from __future__ import annotations

import json
import math

import pytest
import torch
from ft_builders import FAST, chat_tokenizer, kill_at_step, make_data_dir, quiet, save_pretrained_gpt2
from ft_builders import run_fast as run
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from finetune import FinetuneConfig, build_model, train
from finetune.data import load_split
from finetune.model import merged, trainable_parameters

TOP_KEYS = {"base", "final", "best_step", "stopped_early", "train_tokens", "tokens_per_s"}
SPLIT_KEYS = {"loss", "perplexity", "token_accuracy"}


@pytest.fixture(scope="module")
def text_data(tmp_path_factory):
    return make_data_dir(tmp_path_factory.mktemp("text"), chats=False)


@pytest.fixture(scope="module")
def chat_data(tmp_path_factory):
    return make_data_dir(tmp_path_factory.mktemp("chat"), texts=False, augmented=False)


@pytest.fixture(scope="module")
def mixed_data(tmp_path_factory):
    return make_data_dir(tmp_path_factory.mktemp("mixed"))


def check_shape(metrics: dict, conversations: bool) -> None:
    assert set(metrics) == TOP_KEYS
    for when in ("base", "final"):
        assert set(metrics[when]) == {"validation", "test"}
        for split in ("validation", "test"):
            m = metrics[when][split]
            assert set(m) >= SPLIT_KEYS and math.isfinite(m["loss"]) and 0 <= m["token_accuracy"] <= 1
            assert m["perplexity"] == pytest.approx(math.exp(m["loss"]))
            if conversations:
                assert set(m["generation"]) == {"bleu", "rouge_l", "f1", "n"} and m["generation"]["n"] > 0
            else:
                assert "generation" not in m
    assert isinstance(metrics["best_step"], int) and isinstance(metrics["stopped_early"], bool)
    assert metrics["train_tokens"] > 0 and metrics["tokens_per_s"] > 0


def test_text_document_run(text_data, tmp_path):
    out = tmp_path / "model"
    metrics = run(text_data, out)
    check_shape(metrics, conversations=False)
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert metrics["final"]["validation"]["perplexity"] < 0.5 * metrics["base"]["validation"]["perplexity"]
    assert list((out / "tb").glob("events.out.tfevents.*")) and not (out / "checkpoints").exists()
    # the export: from_pretrained-ready, with tokenizer, chat template and a model card naming the data
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template and len(tok) == model.config.vocab_size
    card = (out / "README.md").read_text()
    manifest_sha = json.loads((out / "training.json").read_text())["data"]["manifest_sha256"]
    assert manifest_sha and manifest_sha in card and '"lr"' in card and "| validation | final |" in card
    # the saved model scores what the run reported for it
    from finetune.data import Batcher, pack_rows
    from finetune.evaluate import loss_metrics
    from finetune.model import LossHead

    split = load_split(text_data, "validation")
    batcher = Batcher(split, pack_rows(split.lengths, 64), tok.pad_token_id, "bool")
    again = loss_metrics(LossHead(model), batcher, 8, torch.device("cpu"), torch.autocast("cpu", enabled=False))
    assert again["loss"] == pytest.approx(metrics["final"]["validation"]["loss"], rel=1e-5)


def test_conversation_run_scores_generated_answers(chat_data, tmp_path):
    out = tmp_path / "model"
    metrics = run(chat_data, out, max_steps=60, lr=1e-2)
    check_shape(metrics, conversations=True)
    gen = metrics["final"]["validation"]["generation"]
    assert gen["n"] == 4 and 0 <= gen["rouge_l"] <= 1 and 0 <= gen["bleu"] <= 100
    assert gen["f1"] > metrics["base"]["validation"]["generation"]["f1"]  # it learned to answer something
    samples = json.loads((out / "samples.json").read_text())
    assert len(samples) == 8 and all(
        s["reference"] and s["final"] is not None and s["base"] is not None for s in samples
    )
    assert samples[0]["context"][-1]["role"] == "user"


def test_mixed_run_reports_each_format_and_same_seed_same_result(mixed_data, tmp_path):
    first = run(mixed_data, tmp_path / "a")
    check_shape(first, conversations=True)
    assert set(first["final"]["validation"]["by_format"]) == {"text", "chat"}
    again = run(mixed_data, tmp_path / "b")
    assert again["final"] == first["final"] and again["base"] == first["base"]


def test_use_augmented_false_trains_on_originals(mixed_data, tmp_path):
    run(mixed_data, tmp_path / "orig", use_augmented=False, max_steps=2, eval_every=0, generate_n=0)
    run(mixed_data, tmp_path / "all", max_steps=2, eval_every=0, generate_n=0)
    orig = json.loads((tmp_path / "orig" / "training.json").read_text())["data"]["train_examples"]
    every = json.loads((tmp_path / "all" / "training.json").read_text())["data"]["train_examples"]
    assert orig == len(load_split(mixed_data, "train", use_augmented=False)) < every


def test_early_stopping_stops_and_exports_the_best(text_data, tmp_path):
    # min_delta larger than any possible gain: only the first eval counts as an improvement
    out = tmp_path / "model"
    metrics = run(text_data, out, max_steps=40, eval_every=2, patience=2, min_delta=100.0, lr=3e-2)
    training = json.loads((out / "training.json").read_text())
    assert metrics["stopped_early"] is True and metrics["best_step"] == 2
    assert training["steps"] == 6 < training["max_steps"]
    assert [h["step"] for h in training["history"]] == [2, 4, 6]
    assert metrics["final"]["validation"]["loss"] == pytest.approx(training["history"][0]["loss"], rel=1e-6)


def test_examples_longer_than_the_block_stop_the_run_before_training(text_data, tmp_path):
    with pytest.raises(ValueError, match="longer than block_size 8"):
        run(text_data, tmp_path / "m", block_size=8)
    assert not (tmp_path / "m" / "metrics.json").exists() and not (tmp_path / "m" / "checkpoints").exists()


def test_gradient_checkpointing_changes_memory_not_results(text_data, tmp_path):
    plain = run(text_data, tmp_path / "a", max_steps=5, eval_every=0, generate_n=0)
    ckpt = run(text_data, tmp_path / "b", max_steps=5, eval_every=0, generate_n=0, gradient_checkpointing=True)
    assert ckpt["final"]["validation"]["loss"] == pytest.approx(plain["final"]["validation"]["loss"], rel=1e-5)


def test_compiled_training_matches_eager(text_data, tmp_path):
    """torch.compile (inductor; on CPU it builds C++) changes speed, not the run: same losses, same exported weights
    under their usual names, so the run resumes and exports as an eager one does."""
    eager = run(text_data, tmp_path / "a", max_steps=4, eval_every=0, generate_n=0)
    compiled = run(text_data, tmp_path / "b", max_steps=4, eval_every=0, generate_n=0, compile=True)
    assert compiled["final"]["validation"]["loss"] == pytest.approx(eager["final"]["validation"]["loss"], rel=1e-4)
    assert compiled["final"]["validation"]["loss"] < compiled["base"]["validation"]["loss"]
    assert (tmp_path / "b" / "model.safetensors").exists()


# ---- pretrained models: tokenizer check, LoRA, frozen layers ----------------------------------------------------


def test_a_model_with_another_tokenizer_is_refused(text_data, tmp_path):
    from tiny_gpt2 import save_tiny_gpt2

    other = save_tiny_gpt2(["completely different words here"], tmp_path / "other")
    with pytest.raises(ValueError, match="another tokenizer"):
        run(text_data, tmp_path / "m", model=str(other))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny 'pretrained' GPT-2 with the base tokenizer, and data whose tokenizer adds one token to it."""
    root = tmp_path_factory.mktemp("pretrained")
    base = save_pretrained_gpt2(chat_tokenizer(), root / "base")
    tok = chat_tokenizer()
    tok.add_tokens(["<|tool|>"], special_tokens=True)
    data = make_data_dir(root / "data", tokenizer=tok)
    return base, data


def test_lora_trains_only_adapters_and_merges_to_the_same_outputs(pretrained, tmp_path):
    base, data = pretrained
    cfg = FinetuneConfig(**{**FAST, "model": str(base), "lora": {"r": 4, "alpha": 8, "target_modules": ["c_attn"]}})
    tok = AutoTokenizer.from_pretrained(data / "tokenizer")
    model = build_model(cfg, tok, 64)
    names = list(trainable_parameters(model))
    assert names and all("lora_" in n or "trainable_tokens" in n for n in names)
    assert any("trainable_tokens" in n for n in names)  # the token the data added is trained, not left random
    # a few steps, then merged logits == adapter logits
    opt = torch.optim.AdamW(trainable_parameters(model).values(), lr=1e-2)
    ids = torch.randint(0, len(tok), (2, 16))
    for _ in range(3):
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    with torch.no_grad():
        with_adapters = model(input_ids=ids).logits
        plain = merged(model)
        assert not hasattr(plain, "peft_config")
        assert torch.allclose(plain(input_ids=ids).logits, with_adapters, atol=1e-5)

    out = tmp_path / "lora"
    metrics = train(data, out, cfg, log=quiet)
    assert metrics["final"]["validation"]["loss"] < metrics["base"]["validation"]["loss"]
    exported, before = load_file(str(out / "model.safetensors")), load_file(str(base / "model.safetensors"))
    assert not any("lora" in k for k in exported)  # merged: a plain GPT-2 checkpoint
    assert torch.equal(exported["transformer.h.0.mlp.c_fc.weight"], before["transformer.h.0.mlp.c_fc.weight"])
    assert not torch.equal(exported["transformer.h.0.attn.c_attn.weight"], before["transformer.h.0.attn.c_attn.weight"])
    assert AutoModelForCausalLM.from_pretrained(out).config.vocab_size == len(tok)


def test_train_top_layers_freezes_the_rest(pretrained, tmp_path):
    base, data = pretrained
    out = tmp_path / "top"
    run(data, out, model=str(base), train_top_layers=1, max_steps=5, eval_every=0, generate_n=0, lr=1e-2)
    exported, before = load_file(str(out / "model.safetensors")), load_file(str(base / "model.safetensors"))
    assert torch.equal(exported["transformer.h.0.attn.c_attn.weight"], before["transformer.h.0.attn.c_attn.weight"])
    assert not torch.equal(exported["transformer.h.1.attn.c_attn.weight"], before["transformer.h.1.attn.c_attn.weight"])
    assert not torch.equal(exported["transformer.ln_f.weight"], before["transformer.ln_f.weight"])


# ---- resume -----------------------------------------------------------------------------------------------------


def test_killed_run_resumes_to_the_same_final_metrics(text_data, tmp_path):
    # dropout on (the RNG must be restored); killed at step 45, past the checkpoint of step 40, in a later epoch
    cfg = FinetuneConfig(**{**FAST, "max_steps": 60, "batch_size": 2, "dropout": 0.1, "log_every": 5, "generate_n": 0})
    killed = tmp_path / "killed"
    kill_at_step(text_data, killed, cfg, 45, tmp_path)
    assert not (killed / "metrics.json").exists()
    assert [p.name for p in (killed / "checkpoints").glob("step-*")] == ["step-00000040"]
    state = json.loads((killed / "checkpoints" / "step-00000040" / "state.json").read_text())["loop"]
    assert state["epoch"] >= 1 and state["cursor"] > 0  # mid-epoch, after the first epoch

    resumed_log: list[str] = []
    resumed = train(text_data, killed, cfg, log=resumed_log.append)  # the same command again
    assert any("resumed from" in line and "step 40" in line for line in resumed_log)
    uninterrupted = train(text_data, tmp_path / "straight", cfg, log=quiet)
    for key in TOP_KEYS - {"tokens_per_s"}:
        assert resumed[key] == uninterrupted[key], key
    history = [json.loads((d / "training.json").read_text())["history"] for d in (killed, tmp_path / "straight")]
    assert history[0] == history[1]

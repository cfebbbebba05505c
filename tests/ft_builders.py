"""Tiny prepared-data folders for the fine-tuning tests, made offline in a second.

A word-level tokenizer with the pipeline's specials, role tokens and chat template, and shards encoded by the
pipeline's own encoders (`shards.tokenization.encode_text` / `encode_chat`): documents, conversations and
augmented copies, in the layout `tuneprep prepare` writes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from datasets import Dataset, Features, List, Value
from tiny_gpt2 import save_pretrained_gpt2  # noqa: F401 - the finetune tests take it from here
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from shards.tokenization import DEFAULT_CHAT_TEMPLATE, ROLE_TOKENS, encode_chat, encode_text, tokenizer_identity

ROOT = Path(__file__).resolve().parents[1]
SPECIALS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
SUBJECTS = ["the cat", "the dog", "a bird", "my friend", "the teacher", "our neighbour"]
VERBS = ["sat on", "looked at", "walked to", "jumped over", "talked about", "painted"]
OBJECTS = ["the mat", "the red door", "a small house", "the old tree", "the river", "a blue car"]
TEXTS = [f"{s} {v} {o} . then {s} {v} {o} again ." for s in SUBJECTS for v in VERBS for o in OBJECTS[:2]]
PLACES = {o: f"{o} is next to {OBJECTS[(i + 1) % len(OBJECTS)]}" for i, o in enumerate(OBJECTS)}


def conversations() -> list[list[dict[str, str]]]:
    """Short question -> answer chats with a learnable answer; every third has a second exchange."""
    out = []
    for i, (s, o) in enumerate((s, o) for s in SUBJECTS for o in OBJECTS):
        turns = [("user", f"where is {o} ?"), ("assistant", f"{PLACES[o]} .")]
        if i % 3 == 0:
            turns += [("user", f"and {s} ?"), ("assistant", f"{s} is near {o} .")]
        out.append([{"role": r, "content": c} for r, c in turns])
    return out


def chat_tokenizer(pad_is_eos: bool = False) -> PreTrainedTokenizerFast:
    """Word-level tokenizer over the corpus, with the pipeline's specials, role tokens and chat template."""
    words = TEXTS + [m["content"] for c in conversations() for m in c]
    tok = Tokenizer(models.WordLevel(unk_token=SPECIALS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(words, trainers.WordLevelTrainer(special_tokens=[*SPECIALS.values(), *ROLE_TOKENS]))
    specials = dict(SPECIALS, pad_token=SPECIALS["eos_token"]) if pad_is_eos else SPECIALS
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **specials, additional_special_tokens=ROLE_TOKENS)
    fast.chat_template = DEFAULT_CHAT_TEMPLATE
    return fast


FEATURES = Features(
    {
        "id": Value("string"),
        "source": Value("string"),
        "format": Value("string"),
        "text": Value("string"),
        "messages": List({"role": Value("string"), "content": Value("string")}),
        "label": Value("string"),
        "split": Value("string"),
        "aug_of": Value("string"),
        "aug_kind": Value("string"),
        "window": Value("int32"),
        "input_ids": List(Value("int32")),
        "loss_mask": List(Value("int8")),
        "n_tokens": Value("int32"),
        "score": Value("float64"),  # a numeric column for curriculum by: column (not the length)
    }
)


def make_data_dir(
    root: Path,
    *,
    texts: bool = True,
    chats: bool = True,
    augmented: bool = True,
    max_length: int = 64,
    empty_eval: bool = False,
    tokenizer: PreTrainedTokenizerFast | None = None,
) -> Path:
    """DATA/{tokenizer/, shards/{train,validation,test}/, manifest.json} as `tuneprep prepare` leaves them.

    Documents come from `docs/stories.txt`, conversations from `chats/support.jsonl` (two tasks by source folder),
    labelled by their first word; variants alternate between two augmenters (`synonym`, `word_noise`)."""
    root = Path(root)
    tok = tokenizer or chat_tokenizer()
    tok.save_pretrained(str(root / "tokenizer"))
    records = []
    if texts:
        records += [
            {"id": f"doc{i:03d}", "source": "docs/stories.txt", "format": "text", "text": t, "messages": None}
            for i, t in enumerate(TEXTS)
        ]
    if chats:
        records += [
            {"id": f"chat{i:03d}", "source": "chats/support.jsonl", "format": "chat", "text": None, "messages": c}
            for i, c in enumerate(conversations())
        ]
    rows: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    for i, rec in enumerate(records):
        split = "train" if empty_eval or i % 6 > 1 else ("validation", "test")[i % 6]
        rec = {**rec, "label": (rec["text"] or rec["messages"][0]["content"]).split()[0], "score": (i * 37 % 101) / 101}
        variants = [(rec, None, None)]
        if augmented and split == "train" and rec["format"] == "text":
            kind = ("synonym", "word_noise")[i % 2]
            variant = {**rec, "id": rec["id"] + "-aug", "text": rec["text"].replace(" again", " once more")}
            variants.append((variant, rec["id"], kind))
        for r, aug_of, aug_kind in variants:
            if r["format"] == "text":
                windows = encode_text(r["text"], tok, max_length)
            else:
                windows = encode_chat(r["messages"], tok, max_length)
            for w, (ids, mask, text, messages) in enumerate(windows):
                rows[split].append(
                    {
                        **r,
                        "text": text if r["format"] == "text" else r.get("text"),
                        "messages": messages if r["format"] == "chat" else r.get("messages"),
                        "split": split,
                        "aug_of": aug_of,
                        "aug_kind": aug_kind,
                        "window": w,
                        "input_ids": ids,
                        "loss_mask": mask,
                        "n_tokens": len(ids),
                    }
                )
    for split, items in rows.items():
        columns = {k: [r[k] for r in items] for k in FEATURES}
        Dataset.from_dict(columns, features=FEATURES).save_to_disk(str(root / "shards" / split))
    manifest = {
        "tokenizer": tokenizer_identity(root / "tokenizer"),
        "config": {"tokenizer": {"max_length": max_length}},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


FAST = {
    "n_embd": 32,
    "block_size": 64,
    "batch_size": 4,
    "max_steps": 30,
    "warmup_steps": 3,
    "eval_every": 10,
    "log_every": 10,
    "generate_n": 4,
    "generate_max_new_tokens": 8,
    "patience": None,
    "num_threads": 1,
    "device": "cpu",
}  # a training run of a few seconds on CPU


def quiet(_: str) -> None:
    pass


def run_fast(data: Path, out: Path, **overrides) -> dict:
    """`finetune.train` with FAST settings and `overrides`, logging nothing."""
    from finetune import FinetuneConfig, train

    return train(data, out, FinetuneConfig(**{**FAST, **overrides}), log=quiet)


IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}  # chat_tokenizer's


def tiny_llama(vocab: int, attn: str = "sdpa", seed: int = 0) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        **IDS,
    )
    config._attn_implementation = attn
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def tiny_gpt2(vocab: int, attn: str = "sdpa", seed: int = 0) -> GPT2LMHeadModel:
    config = GPT2Config(vocab_size=vocab, n_positions=128, n_embd=32, n_layer=2, n_head=2, **IDS)
    config._attn_implementation = attn
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


def add_run_manifest(root: Path) -> None:
    """Give a `make_data_dir` folder the manifest fields a pipeline run has (stages, accounting, splits), so the
    run's reports can be written for it."""
    from datasets import load_from_disk

    from flows.manifest import accounting

    manifest = json.loads((root / "manifest.json").read_text())
    rows = {s: len(load_from_disk(str(root / "shards" / s))) for s in ("train", "validation", "test")}
    total = sum(rows.values())
    stages = [
        {"name": "load", "read": total, "kept": total, "dropped": 0, "quarantined": 0, "added": 0, "seconds": 0.1}
    ]
    manifest |= {
        "name": root.name,
        "inputs": [{"source": "docs"}, {"source": "chats"}],
        "stages": stages,
        "accounting": accounting(stages),
        "splits": {s: {"rows": n, "tokens": 0} for s, n in rows.items()},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))


# ---- killing a training run mid-way ------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys, time
    from finetune import FinetuneConfig, train

    data, out, pause, config = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]

    def log(line):
        print(line, flush=True)
        if line.startswith(f"step {pause}/"):
            print("PAUSED", flush=True)
            time.sleep(600)  # the test kills us here with SIGKILL

    train(data, out, FinetuneConfig.model_validate_json(config), log=log)
    """
)


def kill_at_step(data: Path, out: Path, cfg, step: int, tmp_path: Path) -> None:
    """Train `cfg` in a child process and SIGKILL it once it logs step `step` (cfg.log_every must divide it)."""
    import pytest

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen(
        [sys.executable, str(script), str(data), str(out), str(step), cfg.model_dump_json()],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        for line in child.stdout:
            if line.strip() == "PAUSED":
                break
        else:
            pytest.fail(f"the training child ended before it reached step {step}")
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

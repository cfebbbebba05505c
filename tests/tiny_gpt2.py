"""Build tiny, offline stand-ins for a hub tokenizer and a pretrained GPT-2 (no downloads in tests)."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

SPECIALS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def build_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over `texts`, with pad/bos/eos/unk like the pipeline's tokenizer has."""
    tok = Tokenizer(models.WordLevel(unk_token=SPECIALS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=list(SPECIALS.values())))
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS)


def save_tokenizer(texts: list[str], out_dir: Path) -> PreTrainedTokenizerFast:
    tokenizer = build_tokenizer(texts)
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def save_pretrained_gpt2(
    tokenizer: PreTrainedTokenizerFast,
    out_dir: Path,
    vocab: int | None = None,
    seed: int = 0,
    n_positions: int = 128,
    n_layer: int = 2,
) -> Path:
    """A random GPT-2 (32 wide) saved with `tokenizer`, as `from_pretrained` expects a local model folder."""
    config = GPT2Config(
        vocab_size=vocab or len(tokenizer),
        n_positions=n_positions,
        n_embd=32,
        n_layer=n_layer,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


def save_tiny_gpt2(texts: list[str], out_dir: Path, seed: int = 0) -> Path:
    """A 1-layer GPT-2 over a word-level tokenizer of `texts`."""
    return save_pretrained_gpt2(build_tokenizer(texts), out_dir, seed=seed, n_positions=64, n_layer=1)

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


def save_tiny_gpt2(texts: list[str], out_dir: Path, seed: int = 0) -> Path:
    """Save a randomly initialised 1-layer GPT-2 plus its tokenizer, as `from_pretrained` expects a local dir."""
    tokenizer = save_tokenizer(texts, out_dir)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=64,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(str(out_dir))
    return out_dir

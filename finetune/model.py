"""Model construction and device choice, kept apart from the loop so LoRA etc. can wrap `build_model` later."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, PreTrainedModel, PreTrainedTokenizerBase

from finetune.config import FinetuneConfig


def pick_device(pref: str = "auto") -> torch.device:
    """'auto' uses CUDA when present; asking for 'cuda' without one is an error rather than a silent CPU run."""
    if pref == "cuda" or (pref == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device='cuda' requested but CUDA is not available")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def scratch_model(cfg: FinetuneConfig, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """A tiny GPT-2 over the pipeline's own vocab, seeded so the same config gives the same init."""
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=cfg.block_size,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        resid_pdrop=cfg.dropout,
        embd_pdrop=cfg.dropout,
        attn_pdrop=cfg.dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(cfg.resolved_seed())
    return GPT2LMHeadModel(config)


def pretrained_model(cfg: FinetuneConfig, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """Load `cfg.model` in fp32 (master weights; autocast handles bf16) and fit it to the data's tokenizer."""
    assert cfg.model is not None
    model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=torch.float32)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        torch.manual_seed(cfg.resolved_seed())
        model.resize_token_embeddings(len(tokenizer))
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if getattr(model.config, name, None) is None and getattr(tokenizer, name) is not None:
            setattr(model.config, name, getattr(tokenizer, name))
    return model


def build_model(cfg: FinetuneConfig, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """The model_init hook: pretrained if `cfg.model` is set, else a tiny GPT-2 from scratch."""
    return scratch_model(cfg, tokenizer) if cfg.model is None else pretrained_model(cfg, tokenizer)


def max_positions(model: PreTrainedModel) -> int | None:
    """Longest sequence the model's position embeddings allow (None = unbounded, e.g. rotary)."""
    return getattr(model.config, "max_position_embeddings", None)


def count_parameters(model: PreTrainedModel) -> int:
    """Unique parameters (tied embedding/lm_head counted once)."""
    return sum(p.numel() for p in model.parameters())

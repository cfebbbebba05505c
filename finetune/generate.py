"""Generation from a model folder (or a model in training): prompts built exactly as the shards were.

The shards hold plain documents tokenized without special tokens and conversations rendered by the chat
template (which writes the one BOS itself), so prompts are tokenized with ``add_special_tokens=False``:
the tokenizer never adds a second BOS in front of the template's.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, PreTrainedTokenizerBase

from finetune.model import pick_device


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (EOS or a stop string) or "length" (max_new_tokens reached)


@dataclass
class Sampling:
    """The usual `generate()` sampling options; greedy unless `do_sample`."""

    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()


def load(model_dir: str | Path, device: str = "auto") -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """An exported model folder (`tuneprep finetune` output) on the chosen device, in eval mode."""
    target = pick_device(device)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).to(target).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    return model, tokenizer


def text_prompt(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def chat_prompt(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> list[int]:
    """The conversation so far under the chat template, ending with the assistant's turn marker."""
    if not tokenizer.chat_template:
        raise ValueError("the tokenizer has no chat template; use a plain text prompt")
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tokenizer(rendered, add_special_tokens=False)["input_ids"]


@torch.no_grad()
def complete(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[list[int]],
    sampling: Sampling,
    batch_size: int = 8,
    autocast=None,
) -> list[Completion]:
    """Continue each prompt (token ids); left-padded batches, stopping at EOS or a stop string."""
    was_training = model.training
    model.eval()
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    device = next(model.parameters()).device
    options = {
        "max_new_tokens": sampling.max_new_tokens,
        "do_sample": sampling.do_sample,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "use_cache": True,
        "repetition_penalty": sampling.repetition_penalty,
    }
    if sampling.do_sample:
        options.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k)
    else:
        options.update(temperature=None, top_p=None, top_k=None)
    if sampling.stop:
        options["stop_strings"] = list(sampling.stop)
    config = GenerationConfig(**options)
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    out: list[Completion] = []
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            width = max(len(p) for p in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, p in enumerate(chunk):
                ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
                mask[i, width - len(p) :] = 1
            kwargs = {"tokenizer": tokenizer} if sampling.stop else {}
            with autocast if autocast is not None else contextlib.nullcontext():
                generated = model.generate(
                    input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config, **kwargs
                )
            for i, p in enumerate(chunk):
                out.append(_completion(tokenizer, generated[i, width:].tolist(), len(p), eos, sampling.stop))
    finally:
        model.train(was_training)
    return out


def _completion(tokenizer, new: list[int], n_prompt: int, eos: int | None, stop: tuple[str, ...]) -> Completion:
    finish = "length"
    if eos is not None and eos in new:
        new, finish = new[: new.index(eos)], "stop"
    text = tokenizer.decode(new, skip_special_tokens=True)
    cuts = [text.find(s) for s in stop if s and s in text]
    if cuts:
        text, finish = text[: min(cuts)], "stop"
    return Completion(text, n_prompt, len(new), finish)

"""Fine-tune a causal LM on the pipeline's shards. nanoGPT-style: the whole loop is in `train`, top to bottom."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedModel

from finetune.config import FinetuneConfig
from finetune.data import (
    IGNORE_INDEX,
    Batch,
    Collate,
    count_loss_tokens,
    iter_batches,
    lm_columns,
    load_split,
    make_collate,
)
from finetune.model import build_model, count_parameters, max_positions, pick_device


def autocast_ctx(cfg: FinetuneConfig, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast where it is fast and safe (CUDA with bf16 support), plain fp32 otherwise."""
    bf16 = cfg.precision == "bf16" or (
        cfg.precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()
    )
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def lm_loss_sum(model: PreTrainedModel, batch: Batch) -> torch.Tensor:
    """Summed next-token loss over labelled tokens; summing (not averaging) lets callers weight by tokens."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    # shift labels left instead of slicing logits: avoids copying the (B, T, V) logits tensor
    targets = F.pad(batch["labels"][:, 1:], (0, 1), value=IGNORE_INDEX)
    return F.cross_entropy(
        logits.view(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
    )


def effective_block_size(cfg: FinetuneConfig, model: PreTrainedModel) -> int:
    """cfg.block_size, clamped to what the model's position embeddings can take."""
    limit = max_positions(model)
    return cfg.block_size if limit is None else min(cfg.block_size, limit)


def default_collate(cfg: FinetuneConfig, model: PreTrainedModel) -> Collate:
    """Padding collator; the pad id is irrelevant to the loss (masked), so fall back to eos or 0."""
    pad_id = model.config.pad_token_id
    if pad_id is None:
        pad_id = model.config.eos_token_id if isinstance(model.config.eos_token_id, int) else 0
    return make_collate(pad_id, effective_block_size(cfg, model))


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def evaluate(
    model: PreTrainedModel,
    dataset: Dataset | None,
    cfg: FinetuneConfig,
    device: torch.device,
    max_batches: int | None = None,
) -> dict[str, float] | None:
    """Token-weighted mean loss over loss-masked tokens, and its perplexity; None when there is nothing to score."""
    if dataset is None or len(dataset) == 0:
        return None
    was_training = model.training
    model.eval()
    collate = default_collate(cfg, model)
    loss_sum, tokens = 0.0, 0
    batches = iter_batches(lm_columns(dataset), cfg.eval_batch_size or cfg.batch_size, collate, shuffle=False)
    for i, batch in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        n = count_loss_tokens(batch["labels"])
        if n == 0:
            continue
        with autocast_ctx(cfg, device):
            loss_sum += lm_loss_sum(model, to_device(batch, device)).item()
        tokens += n
    model.train(was_training)
    if tokens == 0:
        return None
    loss = loss_sum / tokens
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "tokens": tokens}


def lr_at(step: int, max_steps: int, cfg: FinetuneConfig) -> float:
    """Linear warmup, then cosine decay to lr * min_lr_ratio at the last step."""
    peak = cfg.resolved_lr()
    if step < cfg.warmup_steps:
        return peak * (step + 1) / (cfg.warmup_steps + 1)
    decay_steps = max(1, max_steps - 1 - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / decay_steps)
    min_lr = peak * cfg.min_lr_ratio
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (peak - min_lr)


def make_optimizer(model: PreTrainedModel, cfg: FinetuneConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay only on matrices (not biases/LayerNorm), as in nanoGPT."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.resolved_lr(), betas=(cfg.beta1, cfg.beta2), fused=device.type == "cuda")


def endless_batches(ds: Dataset, cfg: FinetuneConfig, collate: Collate) -> Iterator[Batch]:
    """Epoch after epoch, each reshuffled from (seed, epoch)."""
    epoch = 0
    while True:
        yield from iter_batches(ds, cfg.batch_size, collate, shuffle=True, seed=cfg.resolved_seed(), epoch=epoch)
        epoch += 1


def _json_safe(obj: Any) -> Any:
    """NaN/inf (a diverged run) become null: strict JSON, and the run still gets saved."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def _atomic_write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


def train(
    data_dir: Path,
    out_dir: Path,
    cfg: FinetuneConfig,
    log: Callable[[str], None] = print,
    progress: bool = False,
) -> dict[str, Any]:
    """Train on DATA/shards/train, evaluate validation before/after and test after; save model + metrics.json."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").unlink(missing_ok=True)  # metrics.json marks a finished run; drop any stale one

    # ---- setup -------------------------------------------------------------------------------------------------
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.resolved_seed())
    device = pick_device(cfg.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    tokenizer = AutoTokenizer.from_pretrained(str(data_dir / "tokenizer"))
    splits = {s: load_split(data_dir, s) for s in ("train", "validation", "test")}
    train_ds = splits["train"]
    if train_ds is None:
        raise ValueError(f"no training examples under {data_dir / 'shards' / 'train'}")

    model = build_model(cfg, tokenizer).to(device)
    model.train()
    collate = default_collate(cfg, model)
    n_params = count_parameters(model)
    block_size = effective_block_size(cfg, model)
    micro_per_epoch = math.ceil(len(train_ds) / cfg.batch_size)
    max_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * micro_per_epoch / cfg.grad_accum))
    log(
        f"model {cfg.model or 'scratch'}: {n_params / 1e6:.2f}M params on {device}; "
        f"{len(train_ds)} train examples, block {block_size}, {max_steps} steps of "
        f"{cfg.batch_size}x{cfg.grad_accum} sequences, peak lr {cfg.resolved_lr():.1e}"
    )

    initial = evaluate(model, splits["validation"], cfg, device)
    if initial:
        log(f"initial validation loss {initial['loss']:.4f} (ppl {initial['perplexity']:.1f})")

    optimizer = make_optimizer(model, cfg, device)
    writer = _summary_writer(out_dir / "tb")
    batches = endless_batches(train_ds, cfg, collate)
    ctx = autocast_ctx(cfg, device)
    bar = tqdm(total=max_steps, disable=not progress, desc="train")

    # ---- loop --------------------------------------------------------------------------------------------------
    seen_tokens = loss_tokens = 0
    final_loss = float("nan")
    t0 = t_log = time.perf_counter()
    tokens_at_log, eval_seconds = 0, 0.0
    for step in range(max_steps):
        lr = lr_at(step, max_steps, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr

        # gradient accumulation: weight every micro-batch by its token count so the step is a true token mean
        micro = [next(batches) for _ in range(cfg.grad_accum)]
        step_tokens = sum(count_loss_tokens(b["labels"]) for b in micro)
        step_loss = torch.zeros((), device=device)
        for batch in micro:
            seen_tokens += int(batch["attention_mask"].sum())
            with ctx:
                loss = lm_loss_sum(model, to_device(batch, device)) / max(1, step_tokens)
            loss.backward()
            step_loss += loss.detach()
        loss_tokens += step_tokens

        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        bar.update(1)

        last = step == max_steps - 1
        if (step + 1) % cfg.log_every == 0 or last:
            final_loss = step_loss.item()  # .item() syncs the GPU, so only on log steps
            now = time.perf_counter()
            tps = (seen_tokens - tokens_at_log) / max(now - t_log, 1e-9)
            t_log, tokens_at_log = now, seen_tokens
            log(f"step {step + 1}/{max_steps}: loss {final_loss:.4f}, lr {lr:.2e}, {tps:,.0f} tok/s")
            writer.add_scalar("train/loss", final_loss, step + 1)
            writer.add_scalar("train/lr", lr, step + 1)
            writer.add_scalar("train/tokens_per_s", tps, step + 1)
            bar.set_postfix(loss=f"{final_loss:.3f}")
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and not last:
            t_eval = time.perf_counter()
            val = evaluate(model, splits["validation"], cfg, device, max_batches=cfg.eval_max_batches)
            t_log += time.perf_counter() - t_eval  # keep eval time out of the tokens/s figures
            eval_seconds += time.perf_counter() - t_eval
            if val:
                log(f"step {step + 1}: validation loss {val['loss']:.4f} (ppl {val['perplexity']:.1f})")
                writer.add_scalar("validation/loss", val["loss"], step + 1)
                writer.add_scalar("validation/perplexity", val["perplexity"], step + 1)
    seconds = time.perf_counter() - t0
    bar.close()

    # ---- final evaluation and save ----------------------------------------------------------------------------
    validation = evaluate(model, splits["validation"], cfg, device)
    test = evaluate(model, splits["test"], cfg, device)
    for name, result in (("validation", validation), ("test", test)):
        if result:
            log(f"final {name} loss {result['loss']:.4f} (ppl {result['perplexity']:.1f})")
            writer.add_scalar(f"{name}/loss", result["loss"], max_steps)
            writer.add_scalar(f"{name}/perplexity", result["perplexity"], max_steps)
    writer.close()

    metrics: dict[str, Any] = _json_safe(
        {
            "initial": {"validation": initial},
            "validation": validation,
            "test": test,
            "train": {
                "steps": max_steps,
                "tokens": seen_tokens,
                "loss_tokens": loss_tokens,
                "seconds": seconds,
                "tokens_per_s": seen_tokens / max(seconds - eval_seconds, 1e-9),
                "final_loss": final_loss,
            },
            "device": str(device),
            "model": {"name_or_scratch": cfg.model or "scratch", "parameters": n_params},
            "block_size": block_size,
            "tokenizer_sha256": _manifest_tokenizer_sha(data_dir),
            "config": cfg.model_dump(),
        }
    )
    _save_artifacts(model, tokenizer, out_dir)
    _atomic_write_json(out_dir / "metrics.json", metrics)  # written last: its presence means the run finished
    return metrics


def _summary_writer(path: Path) -> Any:
    from torch.utils.tensorboard import SummaryWriter  # imported lazily: pulls in tensorboard

    return SummaryWriter(log_dir=str(path))


def _manifest_tokenizer_sha(data_dir: Path) -> str | None:
    try:
        return json.loads((data_dir / "manifest.json").read_text())["tokenizer"]["sha256"]
    except (OSError, KeyError, TypeError, ValueError):
        return None


def _save_artifacts(model: PreTrainedModel, tokenizer: Any, out_dir: Path) -> None:
    """Save into a sibling tmp dir, then move files in with os.replace, so a crash never leaves half a model."""
    tmp = out_dir / ".saving"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)  # transformers 5 always writes safetensors (no safe_serialization flag any more)
    tokenizer.save_pretrained(tmp)
    for f in sorted(tmp.iterdir()):
        os.replace(f, out_dir / f.name)
    tmp.rmdir()

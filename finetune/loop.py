"""Fine-tune a causal LM on the pipeline's shards. nanoGPT-style: the whole loop is in `train`, top to bottom.

Rerunning `train` with the same arguments after a kill resumes from OUT/checkpoints/ and ends with the same
metrics as an uninterrupted run (see `checkpoint.py`). The outputs, in OUT:

- the exported model (`save_pretrained`, LoRA merged), its tokenizer and a model card (README.md)
- metrics.json: {"base": {split: ...}, "final": {split: ...}, "best_step", "stopped_early", "train_tokens",
  "tokens_per_s"}, written last, so its presence means the run finished
- training.json (how it ran: device, model, steps, eval history, config), samples.json (generated answers
  beside their references, base and final), tb/ (TensorBoard)
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoTokenizer

from finetune.checkpoint import Checkpoints, LoopState
from finetune.config import FinetuneConfig
from finetune.curriculum import curriculum_rank
from finetune.data import (
    SPLITS,
    Batch,
    Batcher,
    SplitData,
    check_examples,
    count_targets,
    load_split,
    loss_token_counts,
    make_rows,
    to_device,
)
from finetune.distill import Distiller
from finetune.evaluate import generation_by_task, generation_metrics, held_out_turns, loss_metrics
from finetune.export import model_card, save_model, write_json
from finetune.model import (
    LossHead,
    autocast,
    build_model,
    count_parameters,
    hf_model,
    mask_mode,
    max_positions,
    merged,
    setup_runtime,
    trainable_parameters,
    uses_bf16,
)
from finetune.sampling import batch_order, plan_rows
from tuneprep.files import sha256_file
from tuneprep.tokenizer import tokenizer_identity

EVAL_SPLITS = ("validation", "test")
Log = Callable[[str], None]
Objective = Callable[[Batch], torch.Tensor]  # a batch -> the training loss of each of its loss tokens


# ---- data checks ------------------------------------------------------------------------------------------------


def check_tokenizer(data_dir: Path) -> None:
    """Refuse shards whose tokenizer is not the one saved beside them."""
    manifest = data_dir / "manifest.json"
    if not manifest.exists():
        return
    expected = json.loads(manifest.read_text()).get("tokenizer", {}).get("sha256")
    actual = tokenizer_identity(data_dir / "tokenizer")["sha256"]
    if expected and expected != actual:
        raise ValueError(
            f"tokenizer in {data_dir / 'tokenizer'} (sha256 {actual[:12]}) is not the one the shards "
            f"were made with ({expected[:12]}): re-run `tuneprep prepare`"
        )


def _manifest(data_dir: Path) -> dict[str, Any]:
    path = data_dir / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def data_block_size(cfg: FinetuneConfig, data_dir: Path, splits: dict[str, SplitData | None]) -> int:
    """cfg.block_size, else the tokenizer.max_length the shards were windowed to, else the longest example."""
    if cfg.block_size:
        return cfg.block_size
    windowed = (_manifest(data_dir).get("config") or {}).get("tokenizer", {}).get("max_length")
    longest = max(int(s.lengths.max()) for s in splits.values() if s is not None)
    return max(int(windowed or 0), longest)


# ---- optimisation -----------------------------------------------------------------------------------------------


def planned_steps(cfg: FinetuneConfig, per_epoch: int, loss_tokens: int) -> int:
    """Optimizer steps the LR schedule is planned over: from `max_tokens` (the split's mean loss tokens per
    micro-batch), else `max_steps`, else `epochs`."""
    if cfg.max_tokens is not None:
        per_step = max(1.0, loss_tokens / per_epoch) * cfg.grad_accum
        return max(1, math.ceil(cfg.max_tokens / per_step))
    return cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch / cfg.grad_accum))


def lr_factor(step: int, max_steps: int, cfg: FinetuneConfig) -> float:
    """Linear warmup, then cosine decay to min_lr_ratio at the last step (a multiple of the peak LR)."""
    if step < cfg.warmup_steps:
        return (step + 1) / (cfg.warmup_steps + 1)
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, max_steps - 1 - cfg.warmup_steps))
    return cfg.min_lr_ratio + 0.5 * (1.0 + math.cos(math.pi * progress)) * (1.0 - cfg.min_lr_ratio)


def make_optimizer(model: nn.Module, cfg: FinetuneConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the trained parameters, with weight decay only on matrices (not biases/norms), as in nanoGPT."""
    params = list(trainable_parameters(model).values())
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.resolved_lr(), betas=(cfg.beta1, cfg.beta2), fused=device.type == "cuda")


def accumulate_gradients(objective: Objective, micro: list, device: torch.device, ctx) -> tuple[int, torch.Tensor]:
    """Backward over one step's micro-batches, each loss summed and divided by the loss tokens of them all: the
    gradient of one big batch's token mean, however the step is split. Returns (loss tokens, mean loss)."""
    step_tokens = sum(count_targets(b) for b in micro)
    total = torch.zeros((), device=device)
    for batch in micro:
        with ctx:
            loss = objective(to_device(batch, device)).sum() / max(1, step_tokens)
        loss.backward()
        total += loss.detach()
    return step_tokens, total


# ---- evaluation -------------------------------------------------------------------------------------------------


class Evaluator:
    """Loss metrics on the held-out splits, and generation on their conversations."""

    def __init__(self, cfg: FinetuneConfig, device: torch.device, tokenizer, batchers: dict[str, Batcher]) -> None:
        self.cfg, self.device, self.tokenizer, self.batchers = cfg, device, tokenizer, batchers
        self.turns = {s: held_out_turns(b.split, cfg.generate_n) for s, b in batchers.items() if s in EVAL_SPLITS}

    @property
    def batch_size(self) -> int:
        return self.cfg.eval_batch_size or self.cfg.batch_size

    def loss(self, head: LossHead, split: str, max_batches: int | None = None) -> dict[str, Any] | None:
        batcher = self.batchers.get(split)
        if batcher is None:
            return None
        ctx = autocast(self.cfg, self.device)
        return loss_metrics(head, batcher, self.batch_size, self.device, ctx, max_batches=max_batches)

    def full(self, model: nn.Module, log: Log) -> tuple[dict[str, Any], dict[str, list[str | None]]]:
        """Every held-out split: loss metrics, plus generation metrics where it has conversations."""
        head = LossHead(model)
        metrics: dict[str, Any] = {}
        outputs: dict[str, list[str | None]] = {}
        for split in EVAL_SPLITS:
            m = self.loss(head, split)
            if m is not None and self.turns.get(split):
                m["generation"], done = generation_metrics(
                    model,
                    self.tokenizer,
                    self.turns[split],
                    self.cfg.generate_max_new_tokens,
                    self.batch_size,
                    autocast(self.cfg, self.device),
                )
                for task, scores in generation_by_task(self.turns[split], done).items():
                    m["by_task"].setdefault(task, {})["generation"] = scores
                outputs[split] = [None if c is None else c.text for c in done]
                if skipped := sum(c is None for c in done):
                    log(f"  {split}: {skipped} conversations too long to answer within the model's context: not scored")
            metrics[split] = m
            log(f"  {split}: {describe(m)}")
        return metrics, outputs


def describe(m: dict[str, Any] | None) -> str:
    if m is None:
        return "no examples"
    text = f"loss {m['loss']:.4f}, perplexity {m['perplexity']:.2f}, token accuracy {m['token_accuracy']:.3f}"
    g = m.get("generation")
    if g and g["n"]:
        text += f"; {g['n']} answers: BLEU {g['bleu']:.2f}, ROUGE-L {g['rouge_l']:.3f}, F1 {g['f1']:.3f}"
    return text


# ---- the run ----------------------------------------------------------------------------------------------------


def train(
    data_dir: Path,
    out_dir: Path,
    cfg: FinetuneConfig,
    log: Log = print,
    progress: bool = False,
) -> dict[str, Any]:
    """Train on DATA/shards/train, evaluate validation and test before and after, export to OUT; resumable."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").unlink(missing_ok=True)  # metrics.json marks a finished run; drop any stale one

    # ---- setup -------------------------------------------------------------------------------------------------
    device = setup_runtime(cfg)
    check_tokenizer(data_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(data_dir / "tokenizer"))
    splits = {
        s: load_split(data_dir, s, use_augmented=cfg.use_augmented if s == "train" else True, tasks=cfg.tasks)
        for s in SPLITS
    }
    train_split = splits["train"]
    if train_split is None:
        raise ValueError(f"no training examples under {data_dir / 'shards' / 'train'}")
    block_size = data_block_size(cfg, data_dir, splits)
    model = build_model(cfg, tokenizer, block_size).to(device)
    block_size = min(block_size, max_positions(model) or block_size)
    vocab = hf_model(model).config.get_text_config().vocab_size
    for split in splits.values():
        if split is not None:
            check_examples(split, block_size, vocab, tokenizer.bos_token_id)

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    batchers = {
        name: Batcher(split, make_rows(split, block_size, cfg.packing), pad_id, mask_mode(model))
        for name, split in splits.items()
        if split is not None and name != "train"
    }
    # training rows and their order (sampling.py): shuffled epochs, a mixture of tasks, a curriculum's warm phase
    rank = None
    if cfg.curriculum is not None:
        rank = curriculum_rank(
            cfg.curriculum, data_dir, train_split, tokenizer, block_size, device, uses_bf16(cfg, device), log
        )
    plan = plan_rows(train_split, block_size, cfg.packing, by_task=cfg.mixture is not None, rank=rank)
    train_batcher = batchers["train"] = Batcher(train_split, plan.rows, pad_id, mask_mode(model))
    max_steps = planned_steps(
        cfg, math.ceil(len(plan.rows) / cfg.batch_size), int(loss_token_counts(train_split).sum())
    )
    order, order_note = batch_order(plan, cfg, train_split.task_names, max_steps)
    evaluator = Evaluator(cfg, device, tokenizer, batchers)
    head = LossHead(model)
    if cfg.compile:
        head.compile()
    objective: Objective = head.token_losses  # cross-entropy per loss token; with a teacher, mixed with the KL
    if cfg.distill is not None:
        distiller = Distiller(cfg.distill, tokenizer, model, block_size, device, uses_bf16(cfg, device))
        objective = functools.partial(distiller.token_losses, head)
        order_note = "; ".join(n for n in (order_note, distiller.describe()) if n)
    n_params, n_trained = count_parameters(model), sum(p.numel() for p in trainable_parameters(model).values())
    what = training_mode(cfg)
    log(
        f"model {cfg.model or 'GPT-2-shaped'} ({what}): {n_params / 1e6:.2f}M parameters, "
        f"{n_trained / 1e6:.2f}M trained, on {device}; {len(splits['train'])} train examples in "
        f"{len(train_batcher.rows)} rows of <= {block_size} tokens ({'packed' if cfg.packing else 'one per row'}); "
        f"{max_steps} steps of {cfg.batch_size}x{cfg.grad_accum} rows, peak lr {cfg.resolved_lr():.1e}"
        + (f" (until {cfg.max_tokens:,} loss tokens)" if cfg.max_tokens else "")
    )
    if order_note:
        log(order_note)

    optimizer = make_optimizer(model, cfg, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, max_steps, cfg))
    manifest_sha = sha256_file(data_dir / "manifest.json") if (data_dir / "manifest.json").exists() else None
    checkpoints = Checkpoints(
        out_dir, {"config": cfg.fingerprint(), "data_manifest_sha256": manifest_sha, "block_size": block_size}
    )
    state = checkpoints.resume(model, optimizer, scheduler)
    if state is None:
        checkpoints.clear()
        state = LoopState()
        log("base model:")
        state.base, state.base_outputs = evaluator.full(model, log)
    else:
        log(f"resumed from {checkpoints.latest()} (step {state.step} of {max_steps}, epoch {state.epoch + 1})")
    validation = "validation" in batchers
    eval_every = cfg.eval_every if validation else 0
    checkpoint_every = cfg.checkpoint_every or eval_every

    writer = _summary_writer(out_dir / "tb", purge_step=state.step + 1 if state.step else None)
    if state.step == 0:
        _log_eval(writer, "base", state.base, 0)
    stream = order.stream(state.epoch, state.cursor)
    ctx = autocast(cfg, device)
    bar = tqdm(total=max_steps, initial=state.step, disable=not progress, desc="train")
    model.train()

    # ---- loop --------------------------------------------------------------------------------------------------
    # Time is taken at pauses (log, eval, checkpoint), not every step, so a GPU is never synchronised needlessly.
    window_loss, window_tokens, window_seconds = torch.zeros((), device=device), 0, state.train_seconds
    segment_start = time.perf_counter()
    while not (finished(state, cfg, max_steps) or state.stopped_early):
        micro = []
        for _ in range(cfg.grad_accum):
            epoch, cursor, rows = next(stream)
            micro.append(train_batcher.batch(rows))
        step_tokens, step_loss = accumulate_gradients(objective, micro, device, ctx)
        window_loss += step_loss
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(trainable_parameters(model).values(), cfg.grad_clip)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.epoch, state.cursor = epoch, cursor
        state.train_tokens += step_tokens
        window_tokens += step_tokens
        bar.update(1)

        last = finished(state, cfg, max_steps)
        log_now = state.step % cfg.log_every == 0 or last
        eval_now = bool(eval_every) and (state.step % eval_every == 0 or last)
        save_now = bool(checkpoint_every) and state.step % checkpoint_every == 0
        if not (log_now or eval_now or save_now or last):
            continue
        if device.type == "cuda":
            torch.cuda.synchronize()
        state.train_seconds += time.perf_counter() - segment_start
        if log_now:
            n_steps = (state.step - 1) % cfg.log_every + 1
            train_loss = window_loss.item() / n_steps
            tps = window_tokens / max(state.train_seconds - window_seconds, 1e-9)
            log(f"step {state.step}/{max_steps}: loss {train_loss:.4f}, lr {lr:.2e}, {tps:,.0f} loss tokens/s")
            writer.add_scalar("train/loss", train_loss, state.step)
            writer.add_scalar("train/lr", lr, state.step)
            writer.add_scalar("train/tokens_per_s", tps, state.step)
            bar.set_postfix(loss=f"{train_loss:.3f}")
            window_loss.zero_()
            window_tokens, window_seconds = 0, state.train_seconds
        if eval_now:
            _validate(state, model, head, evaluator, checkpoints, cfg, writer, log)
        if save_now or last or state.stopped_early:
            checkpoints.save(state, model, optimizer, scheduler)
        segment_start = time.perf_counter()
    bar.close()

    # ---- export the best weights, evaluate them, write the outputs --------------------------------------------
    if state.best_step is not None:
        checkpoints.load_best(model, state.best_step)
        log(f"exporting the best weights: step {state.best_step} (validation loss {state.best_loss:.4f})")
    final_model = merged(model).eval()
    log("final model:")
    final, final_outputs = evaluator.full(final_model, log)
    _log_eval(writer, "final", final, state.step)
    writer.close()

    metrics = _json_safe(
        {
            "base": state.base,
            "final": final,
            "best_step": state.best_step if state.best_step is not None else state.step,
            "stopped_early": state.stopped_early,
            "train_tokens": state.train_tokens,
            "tokens_per_s": state.train_tokens / max(state.train_seconds, 1e-9),
        }
    )
    data = {
        "dir": str(data_dir),
        "manifest_sha256": manifest_sha,
        "tokenizer_sha256": _manifest(data_dir).get("tokenizer", {}).get("sha256"),
        "train_examples": len(train_split),
        "train_rows": len(train_batcher.rows),
        "tasks": list(train_split.task_names),
    }
    training = {
        "device": str(device),
        "precision": "bf16" if uses_bf16(cfg, device) else "fp32",
        "model": {"source": cfg.model or "scratch", "mode": what, "parameters": n_params, "trained": n_trained},
        "block_size": block_size,
        "steps": state.step,
        "max_steps": max_steps,
        "order": order_note or "shuffled epochs",
        "train_tokens": state.train_tokens,
        "seconds": state.train_seconds,
        "history": state.history,
        "data": data,
        "config": cfg.model_dump(mode="json"),
    }
    card = model_card(
        name=out_dir.name,
        source=cfg.model,
        mode=what,
        data=data,
        config=cfg.model_dump(mode="json"),
        metrics=metrics,
        training=training,
    )
    save_model(final_model, tokenizer, out_dir, card)
    write_json(out_dir / "training.json", _json_safe(training))
    write_json(out_dir / "samples.json", _samples(evaluator, state.base_outputs, final_outputs))
    write_json(out_dir / "metrics.json", metrics)  # written last: its presence means the run finished
    checkpoints.clear()
    return metrics


def finished(state: LoopState, cfg: FinetuneConfig, max_steps: int) -> bool:
    """The budget is spent: `max_tokens` loss tokens when set (steps past the plan run at the final LR), else steps."""
    if cfg.max_tokens is not None:
        return state.train_tokens >= cfg.max_tokens
    return state.step >= max_steps


def training_mode(cfg: FinetuneConfig) -> str:
    if cfg.lora is not None:
        return f"LoRA r={cfg.lora.r}, merged"
    if cfg.train_top_layers is not None:
        return f"top {cfg.train_top_layers} layers"
    return "from scratch" if cfg.model is None else "full fine-tuning"


def _validate(
    state: LoopState,
    model: nn.Module,
    head: LossHead,
    evaluator: Evaluator,
    checkpoints: Checkpoints,
    cfg: FinetuneConfig,
    writer: Any,
    log: Log,
) -> None:
    """One validation eval: keep the best weights, count evals without improvement, stop when patience runs out."""
    val = evaluator.loss(head, "validation", max_batches=cfg.eval_max_batches)
    model.train()
    if val is None:
        return
    state.history.append({"step": state.step, "loss": val["loss"]})
    _log_eval(writer, "eval", {"validation": val}, state.step)
    improved = state.best_loss is None or val["loss"] < state.best_loss - cfg.min_delta
    if improved:
        state.best_loss, state.best_step, state.bad_evals = val["loss"], state.step, 0
        checkpoints.save_best(model, state.step)
    else:
        state.bad_evals += 1
    note = "best so far" if improved else f"{state.bad_evals} without improvement"
    log(f"step {state.step}: validation loss {val['loss']:.4f} (perplexity {val['perplexity']:.2f}; {note})")
    if cfg.patience is not None and state.bad_evals >= cfg.patience:
        state.stopped_early = True
        log(f"stopping early: {state.bad_evals} evaluations without improvement (patience {cfg.patience})")


def _samples(evaluator: Evaluator, base: dict[str, list], final: dict[str, list]) -> list[dict[str, Any]]:
    out = []
    for split, turns in evaluator.turns.items():
        for i, turn in enumerate(turns):
            out.append(
                {
                    "split": split,
                    "id": turn.id,
                    "context": turn.context,
                    "reference": turn.reference,
                    "base": (base.get(split) or [None] * len(turns))[i],
                    "final": (final.get(split) or [None] * len(turns))[i],
                }
            )
    return out


def _log_eval(writer: Any, prefix: str, metrics: dict[str, Any] | None, step: int) -> None:
    for split, m in (metrics or {}).items():
        if not m:
            continue
        for key in ("loss", "perplexity", "token_accuracy"):
            writer.add_scalar(f"{prefix}/{split}/{key}", m[key], step)
        for key, value in (m.get("generation") or {}).items():
            if value is not None and key != "n":
                writer.add_scalar(f"{prefix}/{split}/{key}", value, step)


def _summary_writer(path: Path, purge_step: int | None) -> Any:
    from torch.utils.tensorboard import SummaryWriter  # imported lazily: pulls in tensorboard

    return SummaryWriter(log_dir=str(path), purge_step=purge_step)


def _json_safe(obj: Any) -> Any:
    """NaN/inf (a diverged run) become null: strict JSON, and the run still gets saved."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj

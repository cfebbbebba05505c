"""Held-out metrics: loss, perplexity and next-token accuracy on loss tokens (overall and per format), and for
conversations the last assistant turn generated from the turns before it, scored against the reference.

Losses are summed batch by batch from the loss tokens' logits only (see `model.LossHead`): no split's logits
are ever held in memory.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.compute as pc
import torch
from torch import nn

from finetune.data import FORMATS, Batcher, SplitData, to_device
from finetune.generate import Completion, Sampling, chat_prompt, complete
from finetune.model import LossHead, max_positions

_WORD = re.compile(r"\w+", re.UNICODE)


def _summary(loss_sum: float, correct: int, tokens: int) -> dict[str, Any]:
    loss = loss_sum / tokens
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 700.0)),
        "token_accuracy": correct / tokens,
        "tokens": tokens,
    }


@torch.no_grad()
def loss_metrics(
    head: LossHead,
    batcher: Batcher,
    batch_size: int,
    device: torch.device,
    autocast,
    max_batches: int | None = None,
) -> dict[str, Any] | None:
    """Token-weighted loss, perplexity and token accuracy, with the same per format (text, chat) and, when the split's
    tasks are named, per task."""
    model = head.model
    was_training = model.training
    model.eval()
    task_names = batcher.split.task_names
    by_format, by_task = _Sums(len(FORMATS)), _Sums(max(1, len(task_names)))
    try:
        for i, batch in enumerate(batcher.sequential(batch_size)):
            if max_batches is not None and i >= max_batches:
                break
            with autocast:
                scores = head.scores(to_device(batch, device), accuracy=True)
            assert scores.correct is not None
            losses, correct = scores.losses.double().cpu(), scores.correct.long().cpu()
            by_format.add(scores.formats.cpu(), losses, correct)
            if scores.tasks is not None:
                by_task.add(scores.tasks.cpu(), losses, correct)
    finally:
        model.train(was_training)
    total = int(by_format.tokens.sum())
    if total == 0:
        return None
    out = _summary(float(by_format.loss.sum()), int(by_format.correct.sum()), total)
    out["by_format"] = by_format.summaries(FORMATS)
    if task_names:
        out["by_task"] = by_task.summaries(task_names)
    return out


class _Sums:
    """Summed loss, right guesses and tokens per group (format or task)."""

    def __init__(self, n: int) -> None:
        self.loss = torch.zeros(n, dtype=torch.float64)
        self.correct = torch.zeros(n, dtype=torch.long)
        self.tokens = torch.zeros(n, dtype=torch.long)

    def add(self, group: torch.Tensor, losses: torch.Tensor, correct: torch.Tensor) -> None:
        self.loss.index_add_(0, group, losses)
        self.correct.index_add_(0, group, correct)
        self.tokens.index_add_(0, group, torch.ones_like(group))

    def summaries(self, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        return {
            name: _summary(float(self.loss[k]), int(self.correct[k]), int(self.tokens[k]))
            for k, name in enumerate(names)
            if self.tokens[k] > 0
        }


# ---- generation -------------------------------------------------------------------------------------------------


@dataclass
class HeldOutTurn:
    """A held-out conversation cut before its last assistant turn."""

    id: str
    context: list[dict[str, str]]
    reference: str
    task: str | None = None


def held_out_turns(split: SplitData, n: int) -> list[HeldOutTurn]:
    """Up to n conversations of the split (first window of each, ordered by id, so the pick is stable) that end
    with an assistant turn; with named tasks, taken from each task in turn, so every task gets its share."""
    ds = split.dataset
    if n == 0 or "messages" not in ds.column_names or "format" not in ds.column_names:
        return []
    table = ds.data.table
    is_chat = pc.equal(table.column("format"), "chat")
    if "window" in ds.column_names:
        is_chat = pc.and_(is_chat, pc.equal(table.column("window"), 0))
    rows = np.flatnonzero(is_chat.to_numpy(zero_copy_only=False))
    rows = np.intersect1d(rows, split.rows)
    if len(rows) == 0:
        return []
    ids = table.column("id").take(rows).to_pylist() if "id" in ds.column_names else [str(r) for r in rows]
    task_of = dict(zip(split.rows.tolist(), split.task_of().tolist(), strict=True))
    queues: dict[int, list[HeldOutTurn]] = {}
    for record_id, row in sorted(zip(ids, rows.tolist(), strict=True)):
        queue = queues.setdefault(task_of[row], [])
        if len(queue) == n:
            continue
        messages = ds[row]["messages"] or []
        if len(messages) >= 2 and messages[-1]["role"] == "assistant" and messages[-1]["content"].strip():
            context = [{"role": m["role"], "content": m["content"]} for m in messages[:-1]]
            task = split.task_names[task_of[row]] if split.task_names else None
            queue.append(HeldOutTurn(record_id, context, messages[-1]["content"], task))
    out: list[HeldOutTurn] = []
    for turns in itertools.zip_longest(*(queues[t] for t in sorted(queues))):  # round-robin over tasks
        out += [t for t in turns if t is not None]
    return out[:n]


def generation_by_task(turns: list[HeldOutTurn], done: list[Completion | None]) -> dict[str, dict[str, Any]]:
    """Generation scores per task, over the answers that were made."""
    tasks = sorted({t.task for t in turns if t.task is not None})
    out = {}
    for task in tasks:
        pairs = [(c.text, t.reference) for t, c in zip(turns, done, strict=True) if t.task == task and c is not None]
        out[task] = score_generations([h for h, _ in pairs], [r for _, r in pairs])
    return out


def words(text: str) -> list[str]:
    """Lower-cased word tokens for any script (rouge-score's default tokenizer keeps only [a-z0-9])."""
    return _WORD.findall(text.lower())


class _WordTokenizer:
    def tokenize(self, text: str) -> list[str]:
        return words(text)


def token_f1(hypothesis: str, reference: str) -> float:
    """SQuAD-style bag-of-words F1."""
    hyp, ref = words(hypothesis), words(reference)
    common = sum((Counter(hyp) & Counter(ref)).values())
    if not hyp or not ref or common == 0:
        return float(hyp == ref)
    precision, recall = common / len(hyp), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def score_generations(hypotheses: list[str], references: list[str]) -> dict[str, Any]:
    """Corpus BLEU (sacrebleu, 0-100), mean ROUGE-L F (0-1) and mean token F1 (0-1) over n pairs."""
    import sacrebleu
    from rouge_score import rouge_scorer

    if not hypotheses:
        return {"bleu": None, "rouge_l": None, "f1": None, "n": 0}
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_WordTokenizer())
    rouge = [
        scorer.score(target=r, prediction=h)["rougeL"].fmeasure for h, r in zip(hypotheses, references, strict=True)
    ]
    return {
        "bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score,
        "rouge_l": float(np.mean(rouge)),
        "f1": float(np.mean([token_f1(h, r) for h, r in zip(hypotheses, references, strict=True)])),
        "n": len(hypotheses),
    }


def generation_metrics(
    model: nn.Module,
    tokenizer,
    turns: list[HeldOutTurn],
    max_new_tokens: int,
    batch_size: int,
    autocast,
) -> tuple[dict[str, Any], list[Completion | None]]:
    """Greedy answers to each held-out context, scored; contexts too long for the model are skipped (None)."""
    limit = max_positions(model)
    prompts = [chat_prompt(tokenizer, t.context) for t in turns]
    fits = [limit is None or len(p) + max_new_tokens <= limit for p in prompts]
    done = complete(
        model,
        tokenizer,
        [p for p, ok in zip(prompts, fits, strict=True) if ok],
        Sampling(max_new_tokens=max_new_tokens),
        batch_size=batch_size,
        autocast=autocast,
    )
    answers = iter(done)
    outputs = [next(answers) if ok else None for ok in fits]
    pairs = [(o.text, t.reference) for o, t in zip(outputs, turns, strict=True) if o is not None]
    return score_generations([h for h, _ in pairs], [r for _, r in pairs]), outputs

"""Distillation as a loss term: per loss token, (1 - alpha) * cross-entropy on the label + alpha * T^2 * KL(teacher ||
student), both next-token distributions softened by temperature T (Hinton et al., 2015; T^2 keeps the soft term's
gradients on the scale of the hard one's as T changes).

The teacher runs on the fly on the same packed batch (same position ids; its own kind of attention mask), frozen, in
bf16 on a GPU. Like the student's loss (`model.LossHead`), only the loss positions go through the output heads,
in chunks whose logits are recomputed in backward: neither model's whole-vocabulary logits are ever kept for a batch,
let alone a split. Teacher and student must share the tokenizer: the KL compares the same token ids.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from finetune.config import DistillSettings
from finetune.data import Batch, attention_mask_4d
from finetune.model import (
    LOGIT_CHUNK,
    LossHead,
    check_same_tokenizer,
    hf_model,
    mask_mode,
    max_positions,
    output_size,
)


class Distiller:
    """The student's training objective with a teacher: `token_losses(student_head, batch)` per loss token."""

    def __init__(
        self,
        settings: DistillSettings,
        tokenizer,
        student: nn.Module,
        block_size: int,
        device: torch.device,
        bf16: bool,
    ) -> None:
        from transformers import AutoModelForCausalLM

        self.settings, self.temperature, self.alpha = settings, settings.temperature, settings.alpha
        student_vocab = hf_model(student).get_output_embeddings().weight.shape[0]
        try:
            check_same_tokenizer(settings.teacher, tokenizer)
        except ValueError as e:
            raise ValueError(f"distill: teacher and student must share the tokenizer: {e}") from None
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # leave the run's RNG alone
            teacher = AutoModelForCausalLM.from_pretrained(
                settings.teacher, dtype=torch.bfloat16 if bf16 else torch.float32
            )
        teacher = teacher.to(device).eval().requires_grad_(False)
        teacher.config.use_cache = False
        vocab = teacher.get_output_embeddings().weight.shape[0]
        if min(vocab, student_vocab) < len(tokenizer):
            raise ValueError(
                f"distill: teacher and student must share the tokenizer: the teacher {settings.teacher} has "
                f"{vocab} token ids, the student {student_vocab}, the shards' tokenizer {len(tokenizer)}"
            )
        if (max_positions(teacher) or block_size) < block_size:
            raise ValueError(
                f"distill: the teacher {settings.teacher} takes {max_positions(teacher)} positions, fewer than "
                f"block_size {block_size}: lower finetune.block_size"
            )
        self.vocab = min(vocab, student_vocab)  # ids past the tokenizer (a padded vocabulary) are compared too
        self.teacher = LossHead(teacher)
        self.mode = mask_mode(teacher)
        self.parameters = sum(p.numel() for p in teacher.parameters())

    def describe(self) -> str:
        s = self.settings
        return (
            f"distilling from {s.teacher} ({self.parameters / 1e6:.2f}M parameters), temperature {s.temperature:g}, "
            f"alpha {s.alpha:g}"
        )

    def _teacher_batch(self, batch: Batch, student_mode: str) -> Batch:
        """The batch with the attention mask the teacher's attention takes (built from the per-token example ids)."""
        if self.mode == student_mode:
            return batch
        example = batch["example"]
        assert example is not None
        mask = None if self.mode == "positions" else attention_mask_4d(example, self.mode)
        return {**batch, "attention_mask": mask}

    def token_losses(self, student: LossHead, batch: Batch) -> torch.Tensor:
        rows = student.rows(batch)
        with torch.no_grad():
            teacher = self.teacher.rows(self._teacher_batch(batch, mask_mode(student.model)))
        return distill_losses(
            rows.hidden,
            teacher.hidden,
            rows.targets,
            rows.project,
            teacher.project,
            self.vocab,
            self.temperature,
            self.alpha,
        )


def distill_losses(
    hidden: torch.Tensor,
    teacher_hidden: torch.Tensor,
    targets: torch.Tensor,
    project: Callable[[torch.Tensor], torch.Tensor],
    teacher_project: Callable[[torch.Tensor], torch.Tensor],
    vocab: int,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """Per loss token (1 - alpha) * CE + alpha * T^2 * KL(teacher_T || student_T), over chunks of rows (fp32); in
    training each chunk's logits, the teacher's too, are recomputed in backward rather than kept."""
    width = max(output_size(project, hidden), output_size(teacher_project, teacher_hidden))
    rows = max(1, LOGIT_CHUNK // max(1, 2 * width))

    def mixed(h: torch.Tensor, th: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        logits = project(h).float()
        ce = F.cross_entropy(logits, t, reduction="none")
        with torch.no_grad():
            teacher_log_p = F.log_softmax(teacher_project(th).float()[:, :vocab] / temperature, dim=-1)
        student_log_p = F.log_softmax(logits[:, :vocab] / temperature, dim=-1)
        kl = (teacher_log_p.exp() * (teacher_log_p - student_log_p)).sum(-1)
        return (1.0 - alpha) * ce + (alpha * temperature**2) * kl

    checkpointed = torch.is_grad_enabled() and len(targets) > rows
    out = []
    for start in range(0, max(1, len(targets)), rows):
        part = slice(start, start + rows)
        args = (hidden[part], teacher_hidden[part], targets[part])
        out.append(
            torch.utils.checkpoint.checkpoint(mixed, *args, use_reentrant=False) if checkpointed else mixed(*args)
        )
    return torch.cat(out)

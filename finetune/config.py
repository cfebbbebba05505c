"""Fine-tuning configuration: one flat pydantic model, so a run is fully described by one JSON/YAML dict."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tuneprep.settings import Settings

SCRATCH_LR = 3e-3  # a 2-layer model trained from scratch tolerates (and needs) a high LR
PRETRAINED_LR = 1e-4  # a pretrained model is wrecked by the scratch LR; fine-tune gently


class FinetuneConfig(Settings):
    """Everything `train` needs besides the data and output dirs. Defaults train a tiny GPT-2 on CPU in ~1 min."""

    # model: None = tiny GPT-2 from scratch with the data's tokenizer; else an AutoModelForCausalLM name or local path
    model: str | None = None
    n_layer: int = Field(2, ge=1)
    n_head: int = Field(2, ge=1)
    n_embd: int = Field(64, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # scratch model only; pretrained models keep their own

    # data
    block_size: int = Field(256, ge=2)  # longer examples are truncated (packing comes later)
    batch_size: int = Field(8, ge=1)
    eval_batch_size: int | None = Field(None, ge=1)  # None = batch_size

    # optimisation
    grad_accum: int = Field(1, ge=1)
    lr: float | None = Field(None, gt=0)  # None = SCRATCH_LR from scratch, PRETRAINED_LR for a pretrained model
    min_lr_ratio: float = Field(0.1, ge=0.0, le=1.0)  # cosine decays to lr * min_lr_ratio
    weight_decay: float = Field(0.1, ge=0.0)
    beta1: float = 0.9
    beta2: float = 0.99
    warmup_steps: int = Field(10, ge=0)
    max_steps: int | None = Field(None, ge=1)  # set = train exactly this many optimizer steps, ignoring epochs
    epochs: float = Field(3.0, gt=0)
    grad_clip: float = Field(1.0, ge=0.0)  # 0 disables clipping

    # evaluation / logging
    eval_every: int = Field(100, ge=0)  # optimizer steps between validation evals; 0 = only before and after
    eval_max_batches: int | None = Field(None, ge=1)  # cap periodic evals (final evals always see everything)
    log_every: int = Field(10, ge=1)

    # runtime
    seed: int | None = None  # None = derived from the pipeline's run seed (0 when finetune runs on its own)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto = bf16 autocast on CUDA when supported, else fp32
    num_threads: int | None = Field(None, ge=1)  # torch intra-op threads; None = torch's default

    @model_validator(mode="after")
    def _check_shape(self) -> FinetuneConfig:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        return self

    def resolved_seed(self) -> int:
        return 0 if self.seed is None else self.seed

    def resolved_lr(self) -> float:
        """Peak learning rate: explicit `lr`, else a default that suits scratch vs pretrained."""
        if self.lr is not None:
            return self.lr
        return SCRATCH_LR if self.model is None else PRETRAINED_LR

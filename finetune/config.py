"""Fine-tuning configuration: one pydantic model, so a run (or a grid of runs) is described by one YAML/JSON dict."""

from __future__ import annotations

import itertools
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from tuneprep.settings import Settings

SCRATCH_LR = 3e-3  # a 2-layer model trained from scratch tolerates (and needs) a high LR
PRETRAINED_LR = 1e-4  # a pretrained model is wrecked by the scratch LR; fine-tune gently
LORA_LR = 1e-3  # adapters start at zero and are small: they take a higher LR than full fine-tuning

# Settings that change how fast a run goes or how much it logs, never what it computes: a checkpoint made
# under other values of these can still be resumed.
RUNTIME_ONLY = ("num_threads", "log_every", "grid", "grid_keep_weights", "compile")


class LoraSettings(Settings):
    """LoRA through peft: the base model is frozen, low-rank adapters are trained, and merged into it on export."""

    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # Module names (suffix match) or a regex; None = peft's default for the architecture (e.g. c_attn for
    # GPT-2, q_proj/v_proj for Llama); "all-linear" = every linear layer but the output head.
    target_modules: list[str] | str | None = None


class CurriculumSettings(Settings):
    """Baby steps (Bengio et al., 2009): batches are drawn from the easiest examples first, the pool widening to all of
    them over the first `warm_fraction` of training; ordinary shuffled epochs follow."""

    by: Literal["length", "loss", "column"] = "length"  # tokens; a reference model's loss; a numeric shard column
    column: str | None = None  # by: column
    reference: str | None = None  # by: loss: a causal LM name or local path using the shards' tokenizer
    order: Literal["easy_first", "hard_first"] = "easy_first"
    pacing: Literal["linear", "step"] = "linear"  # the pool grows every batch, or in `steps` equal jumps
    warm_fraction: float = Field(0.5, gt=0.0, le=1.0)  # share of training until the pool holds every example
    start_fraction: float = Field(0.2, gt=0.0, le=1.0)  # share of the examples in the first pool
    steps: int = Field(4, ge=1)  # step pacing: pools before the whole set

    @model_validator(mode="after")
    def _needs(self) -> CurriculumSettings:
        if self.by == "column" and not self.column:
            raise ValueError("curriculum by: column needs `column` (a numeric shard column, e.g. n_tokens)")
        if self.by == "loss" and not self.reference:
            raise ValueError("curriculum by: loss needs `reference` (a causal LM name or path)")
        return self


class TaskSettings(Settings):
    """How an example's task is named, from columns the shards already have (no extra shard column is needed): the
    folder of its `source` file, its `label`, or any other column; `map` renames values (fnmatch patterns, the first
    match wins), e.g. {"tickets/*": support, "*refund*": billing}."""

    by: Literal["source", "label", "column"] = "source"
    column: str | None = None  # by: column (a `task` column, if the shards carry one)
    map: dict[str, str] = {}

    @model_validator(mode="after")
    def _needs(self) -> TaskSettings:
        if self.by == "column" and not self.column:
            raise ValueError("tasks by: column needs `column`")
        return self


class MixtureSettings(Settings):
    """How training batches sample tasks: fixed `weights` ({task: weight}, normalised; 0 leaves a task out), or
    `temperature` T: probability proportional to size^(1/T), size = the task's training tokens (T5/mT5; T=1 is the
    natural mix, larger T flattens it). Written as {task: weight} directly, or {temperature: T}."""

    weights: dict[str, float] = {}
    temperature: float | None = Field(None, gt=0.0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and data and not set(data) & {"weights", "temperature"}:
            return {"weights": data}  # mixture: {support: 2, chat: 1}
        return data

    @model_validator(mode="after")
    def _one(self) -> MixtureSettings:
        if bool(self.weights) == (self.temperature is not None):
            raise ValueError("mixture: give either task weights ({task: weight}) or temperature, not both or neither")
        if any(w < 0 for w in self.weights.values()) or (self.weights and not sum(self.weights.values()) > 0):
            raise ValueError("mixture weights must be >= 0 and not all 0")
        return self


class DistillSettings(Settings):
    """Knowledge distillation (Hinton et al., 2015): the loss per loss token is (1 - alpha) * cross-entropy on the
    label + alpha * T^2 * KL(teacher || student), both distributions softened by temperature T."""

    teacher: str  # AutoModelForCausalLM name or local path; must use the shards' tokenizer
    temperature: float = Field(2.0, gt=0.0)
    alpha: float = Field(0.5, ge=0.0, le=1.0)


class FinetuneConfig(Settings):
    """Everything `train` needs besides the data and output dirs. Defaults train a tiny GPT-2 on CPU in ~1 min."""

    # model: None = a GPT-2-shaped model from scratch over the data's tokenizer; else an AutoModelForCausalLM
    # name or local path, whose tokenizer must be the one the shards were made with.
    model: str | None = None
    n_layer: int = Field(2, ge=1)
    n_head: int = Field(2, ge=1)
    n_embd: int = Field(64, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # scratch model only; pretrained models keep their own

    # what is trained: everything (default), LoRA adapters, or only the top N transformer layers
    lora: LoraSettings | None = None
    train_top_layers: int | None = Field(None, ge=1)
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% more compute
    compile: bool = False  # torch.compile the transformer body for training steps: GPU speed, a minute of compiling

    # data
    block_size: int | None = Field(None, ge=2)  # None = the data's tokenizer.max_length (from the manifest)
    packing: bool = True  # several examples share a row, each attending only to itself
    batch_size: int = Field(4, ge=1)  # rows per micro-batch (a packed row holds several examples)
    eval_batch_size: int | None = Field(None, ge=1)  # None = batch_size
    # false = train on original rows only (aug_of is null); a list = originals plus these augmenters' variants (aug_kind)
    use_augmented: bool | list[str] = True
    tasks: TaskSettings | None = None  # name each example's task: per-task metrics, and what `mixture` weighs
    mixture: MixtureSettings | None = None  # sample tasks by weight (tasks default to the source folder)
    curriculum: CurriculumSettings | None = None  # easy examples first, the pool widening over training
    distill: DistillSettings | None = None  # add a KL term towards a teacher's softened next-token distribution

    # optimisation
    grad_accum: int = Field(1, ge=1)
    lr: float | None = Field(None, gt=0)  # None = a default that suits scratch, full fine-tuning or LoRA
    min_lr_ratio: float = Field(0.1, ge=0.0, le=1.0)  # cosine decays to lr * min_lr_ratio
    weight_decay: float = Field(0.1, ge=0.0)
    beta1: float = 0.9
    beta2: float = 0.99
    warmup_steps: int = Field(10, ge=0)
    max_steps: int | None = Field(None, ge=1)  # set = train exactly this many optimizer steps, ignoring epochs
    max_tokens: int | None = Field(None, ge=1)  # set = train until this many loss tokens (wins over max_steps)
    epochs: float = Field(5.0, gt=0)
    grad_clip: float = Field(1.0, ge=0.0)  # 0 disables clipping

    # evaluation, early stopping, checkpoints, logging
    eval_every: int = Field(50, ge=0)  # optimizer steps between validation evals; 0 = only at the end
    eval_max_batches: int | None = Field(None, ge=1)  # cap periodic evals (base and final evals see everything)
    patience: int | None = Field(3, ge=1)  # evals without improvement before stopping; None = never stop early
    min_delta: float = Field(0.0, ge=0.0)  # an eval improves on the best only by more than this
    checkpoint_every: int | None = Field(None, ge=1)  # steps between resumable checkpoints; None = at every eval
    generate_n: int = Field(16, ge=0)  # held-out conversations per split to answer and score (0 = none)
    generate_max_new_tokens: int = Field(64, ge=1)
    log_every: int = Field(10, ge=1)

    # grid search: setting -> values to try, e.g. {"lr": [1e-3, 3e-3], "lora.r": [4, 8]}
    grid: dict[str, list[Any]] = {}
    grid_keep_weights: bool = False  # keep every trial's exported weights, not only the best's (copied to OUT)

    # runtime
    seed: int | None = None  # None = derived from the pipeline's run seed (0 when finetune runs on its own)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto = bf16 autocast on CUDA when supported, else fp32
    num_threads: int | None = Field(None, ge=1)  # torch CPU threads; None = 1 on a machine of 2 cores or less

    @model_validator(mode="after")
    def _check(self) -> FinetuneConfig:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.lora is not None and self.train_top_layers is not None:
            raise ValueError("choose one of lora and train_top_layers")
        if self.mixture is not None and self.tasks is None:
            self.tasks = TaskSettings()
        if self.grid:
            trials(self)  # every combination must be a valid config: fail at load time, not in trial 7
        return self

    @field_validator("grid")
    @classmethod
    def _grid_keys(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            top = key.split(".")[0]
            if top not in cls.model_fields or top == "grid":
                raise ValueError(f"grid: unknown setting {key!r}")
            if not values:
                raise ValueError(f"grid: {key!r} has no values to try")
        return grid

    @field_validator("use_augmented")
    @classmethod
    def _kinds(cls, value: bool | list[str]) -> bool | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("use_augmented: an empty list of augmenters; use false for originals only")
        return value

    def resolved_seed(self) -> int:
        return 0 if self.seed is None else self.seed

    def resolved_lr(self) -> float:
        """Peak learning rate: explicit `lr`, else a default that suits scratch, LoRA or full fine-tuning."""
        if self.lr is not None:
            return self.lr
        if self.model is None:
            return SCRATCH_LR
        return LORA_LR if self.lora is not None else PRETRAINED_LR

    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must agree on to be resumed: everything that changes the computation."""
        return self.model_dump(mode="json", exclude=set(RUNTIME_ONLY))


def with_setting(cfg: FinetuneConfig, key: str, value: Any) -> dict[str, Any]:
    """cfg as a dict with one (possibly dotted, e.g. ``lora.r``) setting replaced."""
    data = cfg.model_dump()
    *parents, leaf = key.split(".")
    node = data
    for name in parents:
        if node.get(name) is None:
            node[name] = {}  # e.g. lora.r on a config without lora: LoRA with default settings and this r
        node = node[name]
    node[leaf] = value
    return data


def trials(cfg: FinetuneConfig) -> list[tuple[dict[str, Any], FinetuneConfig]]:
    """Every combination of the grid's values, in a fixed order, as (settings tried, config for the trial)."""
    keys = list(cfg.grid)
    out = []
    for values in itertools.product(*(cfg.grid[k] for k in keys)):
        base = cfg.model_copy(update={"grid": {}})
        for key, value in zip(keys, values, strict=True):
            base = FinetuneConfig.model_validate(with_setting(base, key, value))
        out.append((dict(zip(keys, values, strict=True)), base))
    return out

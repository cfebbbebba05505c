"""The model side: device and threads, building the model, what is trained (all, LoRA, top layers), the loss.

The loss runs the model's body and applies the output head only where a token is in the loss, in chunks:
the (tokens x vocabulary) logits of a whole batch are never made. For conversations, where only assistant
turns count, that skips most of the head's work, and with a large vocabulary it is most of the memory.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedModel

from finetune.config import FinetuneConfig
from finetune.data import IGNORE_INDEX, Batch, MaskMode

LOGIT_CHUNK = 1 << 25  # logits elements per chunk of the loss (128 MB in fp32)


def gpu_logit_chunk(device: torch.device) -> int | None:
    """Logit elements per loss chunk on a GPU: a 128th of the memory free when the head is built (in fp32
    elements), at least LOGIT_CHUNK. A big GPU then takes a batch's loss in one pass, with no recompute in
    backward; a small one still in bounded chunks. None on CPU (LOGIT_CHUNK)."""
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return max(LOGIT_CHUNK, free // 128 // 4)


# ---- runtime ----------------------------------------------------------------------------------------------------


def pick_device(pref: str = "auto") -> torch.device:
    """'auto' uses CUDA when present; asking for 'cuda' without one is an error rather than a silent CPU run."""
    if pref == "cuda" or (pref == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device='cuda' requested but CUDA is not available")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def default_threads() -> int | None:
    """On a machine of 2 cores or less one thread is faster: two spin and wait on each other (measured 1.6-3x)."""
    return 1 if (os.cpu_count() or 1) <= 2 else None


def setup_runtime(cfg: FinetuneConfig) -> torch.device:
    device = pick_device(cfg.device)
    threads = cfg.num_threads or default_threads()
    if threads:
        torch.set_num_threads(threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def uses_bf16(cfg: FinetuneConfig, device: torch.device) -> bool:
    if cfg.precision == "bf16":
        return True
    return cfg.precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()


def autocast(cfg: FinetuneConfig, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast where the device supports it (fp32 master weights), plain fp32 otherwise: one code path."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if uses_bf16(cfg, device) else contextlib.nullcontext()


# ---- building -----------------------------------------------------------------------------------------------------


def check_same_tokenizer(model_name: str, data_tokenizer) -> None:
    """Refuse shards made with another tokenizer than the model's (the data's may only add tokens at the end)."""
    try:
        model_tokenizer = AutoTokenizer.from_pretrained(model_name)
    except (OSError, ValueError, TypeError):
        return  # the model ships no tokenizer; token ids beyond its vocabulary are still refused later
    theirs, ours = model_tokenizer.get_vocab(), data_tokenizer.get_vocab()
    differ = sorted((t for t, i in theirs.items() if ours.get(t) != i), key=lambda t: theirs[t])
    if differ:
        raise ValueError(
            f"the shards were tokenized with another tokenizer than {model_name}'s ({len(differ)} of its "
            f"{len(theirs)} tokens differ, e.g. {differ[:3]}): set tokenizer.pretrained: {model_name} and re-run "
            "prepare"
        )


def scratch_model(cfg: FinetuneConfig, tokenizer, block_size: int) -> PreTrainedModel:
    """A GPT-2-shaped model over the data's vocabulary, seeded so the same config gives the same init."""
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=block_size,
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
    config._attn_implementation = "sdpa"
    torch.manual_seed(cfg.resolved_seed())
    return GPT2LMHeadModel(config)


def pretrained_model(cfg: FinetuneConfig, tokenizer) -> tuple[PreTrainedModel, list[int]]:
    """Load `cfg.model` in fp32 (master weights; autocast does bf16) and give it rows for tokens the data added.

    Returns the model and the ids of the added tokens (their embeddings must be trained even under LoRA).
    """
    assert cfg.model is not None
    check_same_tokenizer(cfg.model, tokenizer)
    model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=torch.float32)
    have = model.get_input_embeddings().num_embeddings
    added = list(range(have, len(tokenizer)))
    if added:
        torch.manual_seed(cfg.resolved_seed())
        model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if getattr(model.config, name, None) is None and getattr(tokenizer, name) is not None:
            setattr(model.config, name, getattr(tokenizer, name))
    return model, added


def max_positions(model: nn.Module) -> int | None:
    """Longest sequence the model's position embeddings allow (None = not stated)."""
    config = hf_model(model).config
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)


def hf_model(model: nn.Module) -> PreTrainedModel:
    """The transformers model inside a peft wrapper (LoRA layers are injected into it in place)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def transformer_blocks(model: PreTrainedModel) -> tuple[nn.Module, str]:
    """The body and the name of its list of transformer layers (GPT-2 `h`, Llama `layers`, ...)."""
    body = model.base_model
    n = model.config.num_hidden_layers
    for name, child in body.named_children():
        if isinstance(child, nn.ModuleList) and len(child) == n:
            return body, name
    raise ValueError(f"cannot find the {n} transformer layers of {type(model).__name__} to freeze")


def freeze_all_but_top(model: PreTrainedModel, top: int) -> None:
    """Train only the top `top` layers, what follows them in the body (the final norm) and an untied head."""
    body, blocks_name = transformer_blocks(model)
    blocks = getattr(body, blocks_name)
    if top > len(blocks):
        raise ValueError(f"train_top_layers {top} > the model's {len(blocks)} layers")
    model.requires_grad_(False)
    for block in list(blocks)[-top:]:
        block.requires_grad_(True)
    after = False
    for name, child in body.named_children():
        if after:
            child.requires_grad_(True)
        after = after or name == blocks_name
    head, embeddings = model.get_output_embeddings(), model.get_input_embeddings()
    if head is not None and head.weight is not embeddings.weight:
        head.requires_grad_(True)


def add_lora(model: PreTrainedModel, cfg: FinetuneConfig, added_tokens: list[int]) -> nn.Module:
    """Wrap in peft LoRA; the base is frozen. Rows for tokens the data added to a pretrained vocabulary are
    trained too (`trainable_token_indices`), else they would stay random."""
    from peft import LoraConfig, get_peft_model
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULT_TARGETS
    from transformers.pytorch_utils import Conv1D

    assert cfg.lora is not None
    targets = cfg.lora.target_modules
    if targets is None and model.config.model_type not in DEFAULT_TARGETS:
        raise ValueError(f"no default LoRA targets for {model.config.model_type!r}: set finetune.lora.target_modules")
    extra = {}
    if added_tokens:
        embedding_name = next(n for n, m in model.named_modules() if m is model.get_input_embeddings())
        extra["trainable_token_indices"] = {embedding_name.split(".")[-1]: added_tokens}
    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=targets,
        fan_in_fan_out=any(isinstance(m, Conv1D) for m in model.modules()),  # GPT-2's Conv1D stores (in, out)
        bias="none",
        task_type="CAUSAL_LM",
        **extra,
    )
    return get_peft_model(model, lora)


def build_model(cfg: FinetuneConfig, tokenizer, block_size: int) -> nn.Module:
    """Pretrained if `cfg.model` is set, else GPT-2-shaped from scratch; then LoRA, frozen layers, checkpointing."""
    if cfg.model is None:
        model, added = scratch_model(cfg, tokenizer, block_size), []
    else:
        model, added = pretrained_model(cfg, tokenizer)
    model.config.use_cache = False  # training forwards never use a cache (and a cache disables packed masking)
    if cfg.gradient_checkpointing:
        enable = getattr(model, "activation_checkpointing_enable", None)  # transformers >= 5.x; older: gradient_
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.train_top_layers is not None:
        freeze_all_but_top(model, cfg.train_top_layers)
    if cfg.lora is not None:
        return add_lora(model, cfg, added)
    return model


def merged(model: nn.Module) -> PreTrainedModel:
    """The plain transformers model to export: LoRA adapters merged into the base weights."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.config.use_cache = True  # the exported model generates, where a cache is what you want
    return model


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def count_parameters(model: nn.Module) -> int:
    """Unique parameters (tied embedding/lm_head counted once)."""
    return sum(p.numel() for p in model.parameters())


def mask_mode(model: nn.Module) -> MaskMode:
    """How a packed batch keeps examples apart for this model's attention.

    sdpa (and most others) take a bool 4D mask; eager adds the mask to the scores, so it needs an additive
    one; flash attention ignores dense masks and models with sliding-window layers would lose their window
    under one 4D mask, so those get restarting position ids alone, from which transformers builds the
    right mask per layer (packed-sequence detection, active because training forwards run without a cache).
    """
    config = hf_model(model).config
    impl = getattr(config, "_attn_implementation", None) or "sdpa"
    sliding = getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True)
    if impl.startswith("flash") or sliding or "sliding_attention" in (getattr(config, "layer_types", None) or []):
        return "positions"
    return "float" if impl == "eager" else "bool"


# ---- loss -------------------------------------------------------------------------------------------------------


@dataclass
class TokenScores:
    """Per loss token (in the order of `keep`, the batch's (B, T) mask of loss positions): its loss, whether the
    argmax was right (when asked), and its example's format and task."""

    losses: torch.Tensor
    correct: torch.Tensor | None
    formats: torch.Tensor
    keep: torch.Tensor
    tasks: torch.Tensor | None = None


@dataclass
class LossRows:
    """What the output head is applied to, one row per loss token: hidden states (or, in the fallback, the model's
    own logits), their targets, and the projection to logits."""

    hidden: torch.Tensor
    targets: torch.Tensor
    project: Callable[[torch.Tensor], torch.Tensor]
    keep: torch.Tensor


class LossHead:
    """Loss on loss tokens only: the body's hidden states, gathered where targets exist, through the head.

    Models whose head is not a plain projection of the body's last hidden state (logit soft-capping or
    scaling, exotic wrappers) are detected once, by comparing with the full forward, and use the full logits.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        inner = hf_model(model)
        body, head = inner.base_model, inner.get_output_embeddings()
        self.body: nn.Module | None = body if body is not inner and head is not None else None
        self.head = head
        self.chunk_loss: Callable[..., torch.Tensor] = projected_cross_entropy
        self.chunk_elements = gpu_logit_chunk(head.weight.device) if head is not None else None
        if self.body is not None and not self._split_matches():
            self.body = None

    @torch.no_grad()
    def _split_matches(self) -> bool:
        was_training = self.model.training
        self.model.eval()
        try:
            vocab = self.head.weight.shape[0]
            ids = torch.arange(7, device=self.head.weight.device)[None] * 31 % vocab
            ones = torch.ones_like(ids)
            full = self.model(input_ids=ids, attention_mask=ones, use_cache=False).logits
            split = self.head(self._hidden(ids, ones, None))
            return full.shape == split.shape and torch.allclose(full, split, atol=1e-4, rtol=1e-3)
        except (AttributeError, TypeError, ValueError, RuntimeError):
            return False
        finally:
            self.model.train(was_training)

    def compile(self) -> None:
        """torch.compile what the training step runs: the body (else the whole model) and the chunked loss, whose
        cast, log-softmax and gather fuse; the module itself stays as it is, so checkpoints, evaluation and export
        see the same weights under their usual names."""
        if self.body is not None:
            self.body = torch.compile(self.body)
        else:
            self.model = torch.compile(self.model)
        self.chunk_loss = torch.compile(projected_cross_entropy, dynamic=True)

    def _hidden(self, input_ids, attention_mask, position_ids) -> torch.Tensor:
        assert self.body is not None
        out = self.body(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False)
        return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]

    def rows(self, batch: Batch) -> LossRows:
        targets = batch["targets"]
        assert targets is not None
        keep = targets != IGNORE_INDEX
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids")}
        if self.body is not None:
            return LossRows(self._hidden(**inputs)[keep], targets[keep], self.head, keep)
        # fallback: the model's own logits, then only the loss rows
        return LossRows(self.model(**inputs, use_cache=False).logits[keep], targets[keep], nn.Identity(), keep)

    def scores(self, batch: Batch, accuracy: bool = False) -> TokenScores:
        rows = self.rows(batch)
        losses, correct = chunked_cross_entropy(
            rows.hidden, rows.targets, rows.project, accuracy, self.chunk_loss, self.chunk_elements
        )
        keep = rows.keep
        formats = batch["format"][keep] if batch.get("format") is not None else torch.zeros_like(rows.targets)
        tasks = batch["task"][keep] if batch.get("task") is not None else None
        return TokenScores(losses, correct, formats, keep, tasks)

    def token_losses(self, batch: Batch) -> torch.Tensor:
        """The training objective per loss token: cross-entropy on the label."""
        return self.scores(batch).losses


def output_size(project: Callable[[torch.Tensor], torch.Tensor], hidden: torch.Tensor) -> int:
    return hidden.shape[-1] if isinstance(project, nn.Identity) else project.weight.shape[0]


def projected_cross_entropy(project: Callable[[torch.Tensor], torch.Tensor], h: torch.Tensor, t: torch.Tensor):
    """Per-row cross-entropy (fp32) of one chunk of hidden states through the output head."""
    return F.cross_entropy(project(h).float(), t, reduction="none")


def chunked_cross_entropy(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    project: Callable[[torch.Tensor], torch.Tensor],
    accuracy: bool,
    chunk_loss: Callable[..., torch.Tensor] = projected_cross_entropy,
    chunk_elements: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token cross-entropy (fp32) over chunks of rows of ``chunk_elements`` logits (default LOGIT_CHUNK); in
    training each chunk's logits are recomputed in backward rather than kept, so memory holds one chunk of
    logits at a time. A batch that fits one chunk is neither split nor recomputed."""
    rows = max(1, (chunk_elements or LOGIT_CHUNK) // max(1, output_size(project, hidden)))
    losses, correct = [], []
    checkpointed = torch.is_grad_enabled() and len(targets) > rows and not accuracy
    for start in range(0, max(1, len(targets)), rows):
        h, t = hidden[start : start + rows], targets[start : start + rows]
        if checkpointed:
            losses.append(torch.utils.checkpoint.checkpoint(chunk_loss, project, h, t, use_reentrant=False))
            continue
        if not accuracy:
            losses.append(chunk_loss(project, h, t))
            continue
        logits = project(h).float()
        losses.append(F.cross_entropy(logits, t, reduction="none"))
        correct.append(logits.detach().argmax(-1) == t)
    return torch.cat(losses), (torch.cat(correct) if accuracy else None)

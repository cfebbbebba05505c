"""Fine-tune a GPT-style causal LM on tuneprep's tokenized shards, evaluate it, export, generate and serve.

Names load lazily so that reading the config (``finetune.config``) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune.config import FinetuneConfig, LoraSettings
from tuneprep.lazy import lazy_exports

_EXPORTS = {"build_model": "model", "train": "loop", "check_tokenizer": "loop"}
__all__ = ["FinetuneConfig", "LoraSettings", "build_model", "check_tokenizer", "train"]

if TYPE_CHECKING:
    from finetune.loop import check_tokenizer, train
    from finetune.model import build_model


__getattr__ = lazy_exports(__name__, _EXPORTS)

"""Fine-tune a GPT-style causal LM on tuneprep's tokenized shards.

Names load lazily so that reading the config (``finetune.config``) does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from finetune.config import FinetuneConfig

_EXPORTS = {"build_model": "model", "evaluate": "trainer", "train": "trainer"}
__all__ = ["FinetuneConfig", "build_model", "evaluate", "train"]

if TYPE_CHECKING:
    from finetune.model import build_model
    from finetune.trainer import evaluate, train


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"finetune.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'finetune' has no attribute {name!r}")

"""Fine-tune a GPT-style causal LM on tuneprep's tokenized shards.

Names load lazily so that reading the config (``finetune.config``) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune.config import FinetuneConfig
from tuneprep.lazy import lazy_exports

_EXPORTS = {"build_model": "model", "evaluate": "trainer", "train": "trainer"}
__all__ = ["FinetuneConfig", "build_model", "evaluate", "train"]

if TYPE_CHECKING:
    from finetune.model import build_model
    from finetune.trainer import evaluate, train


__getattr__ = lazy_exports(__name__, _EXPORTS)

"""Fine-tune a GPT-style causal LM on tuneprep's tokenized shards."""

from finetune.config import FinetuneConfig
from finetune.model import build_model
from finetune.train import evaluate, train

__all__ = ["FinetuneConfig", "build_model", "evaluate", "train"]

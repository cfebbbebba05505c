"""Settings for splitting, tokenizing and writing shards."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tuneprep.settings import Settings


class SplitConfig(Settings):
    ratios: dict[str, float] = {"train": 0.8, "validation": 0.1, "test": 0.1}
    stratify_by: str = "label"  # falls back to the source folder where the column is null
    # An earlier run folder (or its splits.parquet): its groups keep their split, new data fills the ratios.
    previous: str | None = None

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) - {"train", "validation", "test"}:
            raise ValueError("split names must be train, validation and test")
        if any(r < 0 for r in v.values()) or abs(sum(v.values()) - 1.0) > 1e-6:
            raise ValueError(f"split ratios must be >= 0 and sum to 1, got {v}")
        return v


class TokenizerConfig(Settings):
    pretrained: str | None = None  # name or path for AutoTokenizer; None trains SentencePiece on the train split
    vocab_size: int = 2000
    # Kept whole and never split (e.g. "<|tool|>", "{{ORDER_ID}}"); added to a pretrained tokenizer as well.
    extra_special_tokens: list[str] = []
    model_type: Literal["unigram"] = "unigram"  # carried into a tokenizers Unigram model piece for piece
    max_length: int = 256  # longer documents are cut into windows at paragraph/sentence boundaries
    character_coverage: float = 1.0
    input_sentence_size: int = 500_000  # lines (paragraphs) at most that the trainer sees
    # The trainer takes ~20 bytes of RAM per character it trains on, so a large train split is sampled
    # (whole records, chosen by a hash of their id: deterministic and spread over the split) to this budget.
    max_train_chars: int = Field(20_000_000, ge=1000)


class ShardConfig(Settings):
    max_rows_per_shard: int = Field(50_000, ge=1)
    export_parquet: bool = False  # also write OUT/parquet/<split>/ for polars.scan_parquet

"""One typed configuration for the whole pipeline.

Each stage's package owns its own config model; this module composes them so a
single YAML/TOML file (or the Prefect UI form) sets everything. Defaults run the
bundled ``sample_data/`` end to end.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from augment.config import AugmentConfig
from cleaners.config import CleanConfig, DedupConfig
from finetune.config import FinetuneConfig

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATA = PROJECT_ROOT / "sample_data"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoadConfig(_Model):
    """Which fields hold what, for tabular and JSON sources (first present name wins)."""

    text_fields: list[str] = ["text", "content", "body", "document"]
    label_fields: list[str] = ["label", "category", "intent"]
    messages_fields: list[str] = ["messages", "conversation", "dialogue"]
    role_field: str = "role"
    content_field: str = "content"
    extensions: list[str] = [".txt", ".md", ".html", ".htm", ".jsonl", ".csv", ".parquet"]
    on_decode_error: Literal["quarantine", "replace"] = "quarantine"
    max_file_bytes: int = 50_000_000


class SplitConfig(_Model):
    ratios: dict[str, float] = {"train": 0.8, "validation": 0.1, "test": 0.1}
    stratify_by: str = "label"  # falls back to the source folder where the column is null

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) - {"train", "validation", "test"}:
            raise ValueError("split names must be train, validation and test")
        if any(r < 0 for r in v.values()) or abs(sum(v.values()) - 1.0) > 1e-6:
            raise ValueError(f"split ratios must be >= 0 and sum to 1, got {v}")
        return v


class TokenizerConfig(_Model):
    pretrained: str | None = None  # name or path for AutoTokenizer; None trains SentencePiece on the train split
    vocab_size: int = 2000
    model_type: Literal["unigram"] = "unigram"  # carried into a tokenizers Unigram model piece for piece
    max_length: int = 256  # longer documents are cut into windows at paragraph/sentence boundaries
    character_coverage: float = 1.0
    input_sentence_size: int = 2_000_000


class ShardConfig(_Model):
    max_rows_per_shard: int = 50_000


class PipelineConfig(_Model):
    name: str | None = None
    inputs: list[str] = Field(default_factory=lambda: [str(SAMPLE_DATA)])
    seed: int = 1234
    batch_size: int = 2048
    load: LoadConfig = LoadConfig()
    clean: CleanConfig = CleanConfig()
    dedup: DedupConfig = DedupConfig()
    split: SplitConfig = SplitConfig()
    augment: AugmentConfig = AugmentConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    shards: ShardConfig = ShardConfig()
    finetune: FinetuneConfig = FinetuneConfig()

    @model_validator(mode="after")
    def _inputs_given(self) -> PipelineConfig:
        if not self.inputs:
            raise ValueError("config names no inputs")
        return self


def load_config(path: str | Path | None = None, **overrides) -> PipelineConfig:
    """Read a YAML or TOML file (relative input paths resolve against the file's folder)."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else (yaml.safe_load(raw) or {})
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        if "inputs" in data:
            data["inputs"] = [str((path.parent / p).resolve()) if "://" not in p else p for p in data["inputs"]]
    data.update({k: v for k, v in overrides.items() if v is not None})
    return PipelineConfig.model_validate(data)

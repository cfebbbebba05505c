"""Settings for the augment stage; unknown keys are errors so typos in YAML fail loudly."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

AugmenterKind = Literal["synonym", "char_noise", "word_noise", "backtranslation"]
CharOp = Literal["keyboard", "insert", "delete", "substitute", "swap"]
WordOp = Literal["swap", "delete", "insert"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SynonymConfig(_Strict):
    enabled: bool = True
    rate: float = Field(0.15, ge=0.0, le=1.0, description="share of a text's words to replace")
    min_words: int = Field(1, ge=0)
    max_words: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> SynonymConfig:
        if self.min_words > self.max_words:
            raise ValueError("min_words must not exceed max_words")
        return self


class NoiseConfig(_Strict):
    enabled: bool = True
    char_rate: float = Field(0.03, ge=0.0, le=1.0, description="share of eligible letters edited by char_noise")
    word_rate: float = Field(0.1, ge=0.0, le=1.0, description="share of eligible words touched by word_noise")
    char_ops: list[CharOp] = Field(default_factory=lambda: ["keyboard", "insert", "delete", "substitute", "swap"])
    word_ops: list[WordOp] = Field(default_factory=lambda: ["swap", "delete", "insert"])


class BackTranslationConfig(_Strict):
    enabled: bool = True
    backend: Literal["auto", "apertium", "transformers", "none"] = "auto"
    source: str = Field("eng", description="apertium code of the data's language")
    pivot: str = Field("spa", description="apertium pivot language")
    forward_model: str | None = Field(None, description="seq2seq model name or path, source -> pivot")
    backward_model: str | None = Field(None, description="seq2seq model name or path, pivot -> source")
    temperature: float = Field(0.8, gt=0.0)
    max_length: int = Field(256, ge=8, description="token cap per sentence, input and output")
    batch_size: int = Field(16, ge=1)
    device: str = Field("auto", description='"auto" picks cuda when available, else cpu')


class AugmentConfig(_Strict):
    enabled: bool = True
    splits: list[str] = Field(default_factory=lambda: ["train"])
    variants_per_record: int = Field(1, ge=0, description="variants per augmenter per source record")
    augmenters: list[AugmenterKind] = Field(
        default_factory=lambda: ["synonym", "word_noise", "char_noise", "backtranslation"],
        description="augmenters to run, in this order",
    )
    augment_roles: list[str] = Field(default_factory=lambda: ["user"], description="chat roles that get rewritten")
    keep_words: list[str] = Field(default_factory=list, description="words never changed (domain terms)")
    protect_names: list[str] = Field(default_factory=list, description="names never changed (products, people)")
    max_records: int | None = Field(None, ge=0, description="cap on source records augmented over the whole run")
    seed: int = 0
    synonym: SynonymConfig = Field(default_factory=SynonymConfig)
    noise: NoiseConfig = Field(default_factory=NoiseConfig)
    backtranslation: BackTranslationConfig = Field(default_factory=BackTranslationConfig)

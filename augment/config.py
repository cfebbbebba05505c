"""Settings for the augment stage; unknown keys are errors so typos in YAML fail loudly."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tuneprep.settings import Settings

AugmenterKind = Literal["synonym", "char_noise", "word_noise", "case_noise", "punct_noise", "backtranslation"]
CharOp = Literal["keyboard", "insert", "delete", "substitute", "swap"]
WordOp = Literal["swap", "delete", "insert"]
CaseOp = Literal["lower", "title", "upper"]
PunctOp = Literal["insert", "delete", "replace"]


class SynonymConfig(Settings):
    enabled: bool = True
    rate: float = Field(0.15, ge=0.0, le=1.0, description="share of a text's words to replace")
    min_words: int = Field(1, ge=0)
    max_words: int = Field(10, ge=1)
    multiword: bool = Field(False, description="allow replacements of several words (sack -> paper bag)")
    min_share: float = Field(
        0.1, ge=0.0, le=1.0, description="a synonym's corpus count relative to the word's, at least"
    )

    @model_validator(mode="after")
    def _bounds(self) -> SynonymConfig:
        if self.min_words > self.max_words:
            raise ValueError("min_words must not exceed max_words")
        return self


class NoiseConfig(Settings):
    """Rates are shares of eligible letters (char) or words (word, case, punct); each ``*_ops`` is a list
    (ops share the rate) or a mapping op -> own rate (the rate is then their sum). ``*_min``/``*_max``
    clamp the number of edits per text."""

    enabled: bool = True
    char_rate: float = Field(0.03, ge=0.0, le=1.0, description="share of eligible letters edited by char_noise")
    char_min: int = Field(1, ge=0)
    char_max: int | None = Field(None, ge=1)
    char_ops: list[CharOp] | dict[CharOp, float] = Field(
        default_factory=lambda: ["keyboard", "insert", "delete", "substitute", "swap"]
    )
    word_rate: float = Field(0.1, ge=0.0, le=1.0, description="share of eligible words touched by word_noise")
    word_min: int = Field(1, ge=0)
    word_max: int | None = Field(None, ge=1)
    word_ops: list[WordOp] | dict[WordOp, float] = Field(default_factory=lambda: ["swap", "delete", "insert"])
    case_rate: float = Field(0.1, ge=0.0, le=1.0, description="share of words whose case case_noise changes")
    case_ops: list[CaseOp] | dict[CaseOp, float] = Field(default_factory=lambda: ["lower", "title", "upper"])
    punct_rate: float = Field(0.1, ge=0.0, le=1.0, description="share of word gaps punct_noise edits")
    punct_ops: list[PunctOp] | dict[PunctOp, float] = Field(default_factory=lambda: ["insert", "delete", "replace"])


DEFAULT_ENTITY_LABELS = [
    "PERSON",
    "NORP",
    "FAC",
    "ORG",
    "GPE",
    "LOC",
    "PRODUCT",
    "EVENT",
    "WORK_OF_ART",
    "LAW",
    "LANGUAGE",
    "DATE",
    "TIME",
    "PERCENT",
    "MONEY",
    "QUANTITY",
    "ORDINAL",
    "CARDINAL",
]


class ProtectConfig(Settings):
    """Facts no augmenter may change, found by rules (never a list per dataset): see ``augment.facts``.

    Formats are always protected (numbers with digits, prices, dates, codes, URLs, e-mails, placeholders,
    ``keep_words``/``protect_names``); the rules below add what a sentence is about.
    """

    numbers: bool = Field(True, description='number words, ordinals, and counts with what they count ("two mochas")')
    times: bool = Field(True, description='times and days: "noon", "6:30 pm", "quarter to 12", "tomorrow morning"')
    names: bool = Field(True, description="runs of capitalised words that are not only a sentence's first word")
    echoes: bool = Field(True, description="words that recur across turns of one conversation, in every turn")
    negations: bool = Field(True, description='"not", "no", "never", "don\'t": a variant without one says the opposite')
    corpus_terms: bool = Field(
        True,
        description="words the augmented split uses as a name (capitalised mid-sentence) or counts (after a number),"
        " and two-word terms it repeats, are protected wherever they occur, in any case",
    )
    rare_share: float = Field(
        0.025,
        ge=0.0,
        le=1.0,
        description="corpus terms include rare words: a content word found in at most this share of the augmented"
        " records (at least one) carries what a record is about (a product, a misspelt drink); 0 turns it off",
    )
    term_min_records: int = Field(
        2, ge=1, description="records a two-content-word phrase must occur in to be a term (black tea, oil change)"
    )
    spacy_model: str | None = Field(
        None, description="a trained spaCy pipeline (name or path, e.g. en_core_web_sm) whose entities are protected"
    )
    entity_labels: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ENTITY_LABELS), description="entity labels of spacy_model to protect"
    )
    batch_size: int = Field(256, ge=1, description="texts per spaCy nlp.pipe call")


class FidelityConfig(Settings):
    """Checks every variant must pass; a rejected one goes to dropped/augment.parquet with its reason."""

    enabled: bool = True
    min_length_ratio: float = Field(0.5, gt=0.0, description="variant/source length in characters, at least")
    max_length_ratio: float = Field(2.0, gt=0.0, description="variant/source length in characters, at most")
    require_protected: bool = Field(
        True, description="every protected span of the source must be in the variant, verbatim, as often"
    )
    embedding_model: str | None = Field(
        None, description="sentence-transformers model name or local path; enables the similarity check"
    )
    min_similarity: float = Field(0.75, ge=-1.0, le=1.0, description="cosine similarity to the source, at least")
    embedding_batch_size: int = Field(64, ge=1)


class LeakageConfig(Settings):
    """Variants that near-duplicate a held-out text are dropped; what "near" means is ``heldout.near_threshold``."""

    enabled: bool = True


class BackTranslationConfig(Settings):
    """``temperature`` > 0 samples (distinct variants per record); long documents are split into
    sentences, each capped at ``max_length`` tokens, and batched by length across documents."""

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


class AugmentConfig(Settings):
    enabled: bool = True
    splits: list[str] = Field(default_factory=lambda: ["train"])
    variants_per_record: int = Field(1, ge=0, description="variants per augmenter per source record")
    augmenters: list[AugmenterKind] = Field(
        default_factory=lambda: ["synonym", "word_noise", "char_noise", "backtranslation"],
        description="augmenters to run, in this order (case_noise and punct_noise are off unless listed)",
    )
    augment_roles: list[str] = Field(default_factory=lambda: ["user"], description="chat roles that get rewritten")
    keep_words: list[str] = Field(default_factory=list, description="words never changed (domain terms)")
    protect_names: list[str] = Field(default_factory=list, description="names never changed (products, people)")
    protect: ProtectConfig = Field(default_factory=ProtectConfig)
    max_records: int | None = Field(None, ge=0, description="cap on source records augmented over the whole run")
    synonym: SynonymConfig = Field(default_factory=SynonymConfig)
    noise: NoiseConfig = Field(default_factory=NoiseConfig)
    backtranslation: BackTranslationConfig = Field(default_factory=BackTranslationConfig)
    fidelity: FidelityConfig = Field(default_factory=FidelityConfig)
    leakage: LeakageConfig = Field(default_factory=LeakageConfig)
    examples_per_kind: int = Field(3, ge=0, description="before/after examples per augmenter in the report")

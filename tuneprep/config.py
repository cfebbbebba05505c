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
from cleaners.decontaminate import DecontamConfig
from finetune.config import FinetuneConfig

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATA = PROJECT_ROOT / "sample_data"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoadConfig(_Model):
    """Which fields hold what, for tabular and JSON sources (first present name wins)."""

    text_fields: list[str] = ["text", "content", "body", "document"]
    label_fields: list[str] = ["label", "category", "intent"]
    messages_fields: list[str] = ["messages", "conversation", "dialogue", "conversations"]
    # Instruction/response pairs become a two-turn chat (user: instruction [+ input], assistant: response).
    instruction_fields: list[str] = ["instruction", "prompt", "question", "query"]
    input_fields: list[str] = ["input", "context"]
    response_fields: list[str] = ["response", "output", "answer", "completion"]
    role_fields: list[str] = ["role", "speaker", "from", "author"]  # inside each message
    content_fields: list[str] = ["content", "text", "value", "message", "utterance"]
    # Lower-cased role names mapped onto system/user/assistant; anything else left over is a bad record.
    role_aliases: dict[str, str] = {
        "human": "user",
        "customer": "user",
        "client": "user",
        "prompter": "user",
        "gpt": "assistant",
        "bot": "assistant",
        "agent": "assistant",
        "ai": "assistant",
        "model": "assistant",
        "support": "assistant",
        "system_prompt": "system",
    }
    # A .json file is an array of objects, or an object holding that array under the first of these keys.
    json_list_keys: list[str] = ["data", "records", "rows", "items", "examples"]
    extensions: list[str] = [".txt", ".md", ".html", ".htm", ".jsonl", ".json", ".csv", ".parquet"]
    on_decode_error: Literal["quarantine", "replace"] = "quarantine"
    max_file_bytes: int = 50_000_000  # also caps a .gz file's decompressed size
    hub_cache_dir: str | None = None  # for hf:// inputs; None is datasets' normal cache (HF_DATASETS_CACHE)

    @field_validator("role_aliases")
    @classmethod
    def _aliases_name_known_roles(cls, v: dict[str, str]) -> dict[str, str]:
        bad = {k: r for k, r in v.items() if r not in ("system", "user", "assistant")}
        if bad:
            raise ValueError(f"role_aliases must map onto system, user or assistant: {bad}")
        return {k.lower(): r for k, r in v.items()}

    @model_validator(mode="before")
    @classmethod
    def _single_field_names(cls, data):
        """Older configs name one ``role_field``/``content_field``; they become the only candidate."""
        if isinstance(data, dict):
            data = dict(data)
            for old, new in (("role_field", "role_fields"), ("content_field", "content_fields")):
                if old in data:
                    data[new] = [data.pop(old)]
        return data


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("tuneprep")
    except PackageNotFoundError:
        v = "0"
    return f"tuneprep/{v} (+https://github.com/tuneprep/tuneprep)"


class ScrapeConfig(_Model):
    """Polite fetching of web pages: robots.txt, per-host rate limit, bounded retries, size and time caps.

    Pages come from ``urls``, from ``http(s)://`` entries in ``inputs`` and from ``sitemaps``
    (sitemap.xml, sitemap indexes, .xml.gz).
    """

    urls: list[str] = []
    sitemaps: list[str] = []
    rate_limit_s: float = Field(1.0, ge=0)  # least gap between requests to one host; Crawl-delay raises it
    connect_timeout_s: float = Field(10.0, gt=0)
    timeout_s: float = Field(30.0, gt=0)  # longest wait for any read
    deadline_s: float = Field(120.0, gt=0)  # one request, headers to last byte
    max_bytes: int = Field(5_000_000, gt=0)
    max_redirects: int = Field(5, ge=0)
    retries: int = Field(3, ge=0, le=10)  # on 5xx, 408, 429, timeouts and connection errors
    backoff_s: float = Field(1.0, ge=0)  # doubles with each retry
    max_backoff_s: float = Field(60.0, ge=0)  # also caps a Retry-After
    max_pages: int = Field(10_000, gt=0)
    user_agent: str = Field(default_factory=_user_agent)
    allowed_content_types: list[str] = ["text/html", "application/xhtml+xml", "text/plain"]


class SplitConfig(_Model):
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


class TokenizerConfig(_Model):
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


class ShardConfig(_Model):
    max_rows_per_shard: int = Field(50_000, ge=1)
    export_parquet: bool = False  # also write OUT/parquet/<split>/ for polars.scan_parquet


class PipelineConfig(_Model):
    name: str | None = None
    inputs: list[str] = Field(default_factory=lambda: [str(SAMPLE_DATA)])
    seed: int = 1234
    batch_size: int = 2048
    load: LoadConfig = LoadConfig()
    scrape: ScrapeConfig = ScrapeConfig()
    clean: CleanConfig = CleanConfig()
    dedup: DedupConfig = DedupConfig()
    split: SplitConfig = SplitConfig()
    decontaminate: DecontamConfig = DecontamConfig()
    augment: AugmentConfig = AugmentConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    shards: ShardConfig = ShardConfig()
    finetune: FinetuneConfig = FinetuneConfig()

    @model_validator(mode="after")
    def _inputs_given(self) -> PipelineConfig:
        if not self.inputs and not self.scrape.urls and not self.scrape.sitemaps:
            raise ValueError("config names no inputs (files, folders, hf:// datasets, URLs or scrape.urls/sitemaps)")
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

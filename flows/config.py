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
from pydantic import Field, model_validator

from augment.config import AugmentConfig
from cleaners.config import CleanConfig, DecontamConfig, DedupConfig, HeldoutConfig
from finetune.config import FinetuneConfig
from ingest.config import LoadConfig, ScrapeConfig
from shards.config import ShardConfig, SplitConfig, TokenizerConfig
from tuneprep.hashing import derive_seed
from tuneprep.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATA = PROJECT_ROOT / "sample_data"


class RunnerConfig(Settings):
    """Where the partitioned steps (cleaning + MinHash, augmentation, tokenization) run: in this process, or one
    Prefect task per partition on a Dask cluster. The shards are the same bytes either way."""

    kind: Literal["local", "dask"] = "local"
    workers: int = Field(2, ge=1, description="Dask: worker processes of the local cluster (ignored with address).")
    threads_per_worker: int = Field(1, ge=1, description="Dask: threads per worker; also caps polars/BLAS threads.")
    address: str | None = Field(None, description="Dask: an existing scheduler, e.g. tcp://10.0.0.5:8786.")
    partition_rows: int = Field(
        20_000, ge=1, description="Records per partition (rounded up to whole batches); one task per partition."
    )


class DropsConfig(Settings):
    """Data drops: new files landing in ``inbox`` folders are prepared as a new version of the corpus in ``store``."""

    inbox: list[str] = Field(default_factory=list)
    store: str | None = None
    min_age_s: float = Field(10.0, ge=0, description="Leave files younger than this for the next pass (uploads).")
    max_attempts: int = Field(3, ge=1, description="Passes a failing drop is retried on before its files are rejected.")
    finetune: bool = True
    finetune_from: Literal["last", "base"] = Field(
        "last",
        description="last: continue from the last fine-tuned model on the new shards; base: the configured "
        "model (or scratch) on every version's shards.",
    )


class PipelineConfig(Settings):
    name: str | None = None
    inputs: list[str] = Field(default_factory=lambda: [str(SAMPLE_DATA)])
    seed: int = 1234
    batch_size: int = Field(2048, ge=1)
    # The run stops when more than this share of the input's units (files, lines, rows, pages) has been
    # quarantined, by loading and every stage together: past it the config is wrong (a text field misnamed, a
    # stage failing on every record), not the odd file. A folder of mostly broken files still runs below it.
    max_quarantine_fraction: float = Field(0.9, ge=0.0, le=1.0)
    load: LoadConfig = LoadConfig()
    scrape: ScrapeConfig = ScrapeConfig()
    clean: CleanConfig = CleanConfig()
    dedup: DedupConfig = DedupConfig()
    split: SplitConfig = SplitConfig()
    heldout: HeldoutConfig = HeldoutConfig()
    decontaminate: DecontamConfig = DecontamConfig()
    augment: AugmentConfig = AugmentConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    shards: ShardConfig = ShardConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    runner: RunnerConfig = RunnerConfig()
    drops: DropsConfig = DropsConfig()

    @model_validator(mode="after")
    def _inputs_given(self) -> PipelineConfig:
        if not self.inputs and not self.scrape.urls and not self.scrape.sitemaps:
            raise ValueError("config names no inputs (files, folders, hf:// datasets, URLs or scrape.urls/sitemaps)")
        return self

    @model_validator(mode="after")
    def _stage_seeds(self) -> PipelineConfig:
        """One run seed: a stage seed left unset is derived from it (the split, the augmenters and the tokenizer
        sample take the run seed itself and mix in their own salts)."""
        if self.finetune.seed is None:
            self.finetune = self.finetune.model_copy(update={"seed": derive_seed(self.seed, "finetune")})
        return self


def load_config(path: str | Path | None = None, **overrides) -> PipelineConfig:
    """Read a YAML or TOML file (relative input paths resolve against the file's folder)."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        raw = path.read_bytes()
        try:
            data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else (yaml.safe_load(raw) or {})
        except (yaml.YAMLError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            kind = "TOML" if path.suffix == ".toml" else "YAML"
            raise ValueError(f"{path}: not valid {kind}: {' '.join(str(e).split())}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        if "inputs" in data:
            data["inputs"] = [str((path.parent / p).resolve()) if "://" not in p else p for p in data["inputs"]]
        drops = data.get("drops")
        if isinstance(drops, dict):  # inbox and store, like inputs, are relative to the file
            if drops.get("inbox"):
                drops["inbox"] = [str((path.parent / p).resolve()) for p in drops["inbox"]]
            if drops.get("store"):
                drops["store"] = str((path.parent / drops["store"]).resolve())
    data.update({k: v for k, v in overrides.items() if v is not None})
    return PipelineConfig.model_validate(data)

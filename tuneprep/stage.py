"""The shape shared by every pipeline step: a batch of records in, kept and dropped records out.

Stages know nothing of Prefect or of files; a notebook can call ``stage(df)``.
Stateful steps (dedup) keep their index on the instance, so feeding batches in
order over the whole corpus dedups across it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

import polars as pl

from tuneprep.records import with_drop_reason


@dataclass
class StageOutput:
    kept: pl.DataFrame
    dropped: pl.DataFrame  # the input's columns plus stage, reason, detail

    @classmethod
    def keep_all(cls, df: pl.DataFrame, stage: str) -> StageOutput:
        return cls(df, with_drop_reason(df.clear(), stage, "none"))


def balanced(stats: dict) -> bool:
    """Every record a stage read is accounted for: kept (less the ones it added), dropped or quarantined."""
    return stats["read"] == stats["kept"] - stats["added"] + stats["dropped"] + stats["quarantined"]


@dataclass
class StageStats:
    """Per-stage accounting: read == kept + dropped + quarantined must hold; ``added`` counts new records (augmentation)."""

    name: str
    read: int = 0
    kept: int = 0
    dropped: int = 0
    quarantined: int = 0
    added: int = 0
    reasons: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def add(self, read: int, out: StageOutput) -> None:
        self.read += read
        self.kept += out.kept.height
        self.dropped += out.dropped.height
        if out.dropped.height:
            for reason, n in out.dropped.group_by("reason").len().iter_rows():
                self.reasons[reason] += n

    @property
    def balanced(self) -> bool:
        return balanced(vars(self))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "read": self.read,
            "kept": self.kept,
            "dropped": self.dropped,
            "quarantined": self.quarantined,
            "added": self.added,
            "reasons": dict(sorted(self.reasons.items())),
            "seconds": round(self.seconds, 3),
            **({"extra": self.extra} if self.extra else {}),
        }


class Stage(ABC):
    """One step of the pipeline. Subclasses set ``name`` and implement ``process``."""

    name: ClassVar[str]

    @abstractmethod
    def process(self, batch: pl.DataFrame) -> StageOutput: ...

    def __call__(self, batch: pl.DataFrame) -> StageOutput:
        out = self.process(batch)
        if out.kept.height + out.dropped.height != batch.height and not getattr(self, "adds_records", False):
            raise AssertionError(
                f"{self.name}: {batch.height} in, {out.kept.height} kept + {out.dropped.height} dropped"
            )
        return out

    def drop(self, df: pl.DataFrame, reason: str | pl.Expr, detail: str | pl.Expr | None = None) -> pl.DataFrame:
        return with_drop_reason(df, self.name, reason, detail)

    def summary(self) -> dict:
        """Extra figures for the report (e.g. index size); empty by default."""
        return {}


__all__ = ["Stage", "StageOutput", "StageStats"]

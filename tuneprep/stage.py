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

from tuneprep.records import MESSAGE, document_text, with_drop_reason


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


class Filter(Stage):
    """A stage that keeps or drops each record whole; subclasses say why a record goes, the base does the rest.

    ``reasons`` returns, per record, a reason (null = keep) and a detail; the base splits the batch
    and marks the dropped rows, so every filter counts and writes its exclusions the same way.
    """

    @abstractmethod
    def reasons(self, batch: pl.DataFrame) -> tuple[pl.Series, pl.Series]: ...

    def process(self, batch: pl.DataFrame) -> StageOutput:
        reason, detail = self.reasons(batch)
        bad = reason.is_not_null()
        if not bad.any():
            return StageOutput.keep_all(batch, self.name)
        dropped = self.drop(batch.filter(bad), pl.lit(reason.filter(bad)), pl.lit(detail.filter(bad)))
        return StageOutput(batch.filter(~bad), dropped)


Verdict = tuple[str, str | None]  # (reason, detail) of a record that goes


class RecordFilter(Filter):
    """A filter that judges one text at a time (the document text, or a chat's turns joined)."""

    @abstractmethod
    def judge(self, text: str) -> Verdict | None: ...

    def texts(self, batch: pl.DataFrame) -> list[str]:
        return document_text(batch).to_list()

    def reasons(self, batch: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
        verdicts = [self.judge(t) for t in self.texts(batch)]
        return (
            pl.Series([v and v[0] for v in verdicts], dtype=pl.Utf8),
            pl.Series([v and v[1] for v in verdicts], dtype=pl.Utf8),
        )


class TextMap(Stage):
    """A stage that rewrites ``text`` and every chat turn's ``content`` and never drops (normalisation, redaction).

    ``map_text`` gets each string with the role of its turn (None for plain text); ``begin_record`` and
    ``end_record`` bracket each record, for per-record counts.
    """

    @abstractmethod
    def map_text(self, text: str, role: str | None) -> str: ...

    def begin_record(self) -> None:
        """Called before a record's strings are mapped."""

    def end_record(self) -> None:
        """Called after a record's strings are mapped."""

    def _map(self, text: str | None, role: str | None) -> str | None:
        return None if text is None else self.map_text(text, role)

    def process(self, batch: pl.DataFrame) -> StageOutput:
        texts: list[str | None] = []
        messages: list[list[dict] | None] = []
        for text, conv in zip(batch["text"].to_list(), batch["messages"].to_list(), strict=True):
            self.begin_record()
            texts.append(self._map(text, None))
            messages.append(
                None if conv is None else [{**m, "content": self._map(m.get("content"), m.get("role"))} for m in conv]
            )
            self.end_record()
        out = batch.with_columns(
            pl.Series("text", texts, dtype=pl.Utf8),
            pl.Series("messages", messages, dtype=batch.schema.get("messages", pl.List(MESSAGE))),
        )
        return StageOutput.keep_all(out, self.name)


__all__ = ["Filter", "RecordFilter", "Stage", "StageOutput", "StageStats", "TextMap", "Verdict"]

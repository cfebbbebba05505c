"""The shape shared by every pipeline step: a batch of records in, kept, dropped and quarantined records out.

Stages know nothing of Prefect or of files; a notebook can call ``stage(df)``.
Stateful steps (dedup) keep their index on the instance, so feeding batches in
order over the whole corpus dedups across it.

One record a stage cannot handle never stops the run: when ``process`` raises, ``Stage.__call__``
retries the batch in halves, in order, down to single records, and a record that still fails is
quarantined with the stage, reason ``stage_error`` and a one-line summary of the error. A stage that
changes its state before it can fail rolls it back through ``checkpoint``/``rollback``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

import polars as pl

from tuneprep.errors import error_summary
from tuneprep.records import MESSAGE, document_text, with_drop_reason

STAGE_ERROR = "stage_error"


@dataclass
class StageOutput:
    kept: pl.DataFrame
    dropped: pl.DataFrame  # the input's columns plus stage, reason, detail
    quarantined: pl.DataFrame | None = None  # the same shape: records the stage could not handle (None: none)

    def __post_init__(self) -> None:
        if self.quarantined is None:
            self.quarantined = self.dropped.clear()

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
    reasons: Counter = field(default_factory=Counter)  # why records were dropped
    quarantine_reasons: Counter = field(default_factory=Counter)  # why records were quarantined
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # a few distinct error summaries of quarantined records

    def add(self, read: int, out: StageOutput) -> None:
        self.read += read
        self.kept += out.kept.height
        self.dropped += out.dropped.height
        self.quarantined += out.quarantined.height
        for frame, counter in ((out.dropped, self.reasons), (out.quarantined, self.quarantine_reasons)):
            if frame.height:
                for reason, n in frame.group_by("reason").len().iter_rows():
                    counter[reason] += n
        if out.quarantined.height and len(self.errors) < 3:
            for detail in out.quarantined["detail"].drop_nulls().unique(maintain_order=True).to_list():
                if detail and detail not in self.errors and len(self.errors) < 3:
                    self.errors.append(detail)

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
            "quarantine_reasons": dict(sorted(self.quarantine_reasons.items())),
            "seconds": round(self.seconds, 3),
            **({"errors": self.errors} if self.errors else {}),
            **({"extra": self.extra} if self.extra else {}),
        }


class Stage(ABC):
    """One step of the pipeline. Subclasses set ``name`` and implement ``process``.

    ``process`` may raise on a record it cannot handle; ``__call__`` then isolates the failing records
    (see the module docstring). A stage whose ``process`` changes state before the point where it can
    fail overrides ``checkpoint`` and ``rollback``, or sets ``retry_safe = False`` when it cannot (a
    failure then stops the run, naming the stage).
    """

    name: ClassVar[str]
    retry_safe: ClassVar[bool] = True

    @abstractmethod
    def process(self, batch: pl.DataFrame) -> StageOutput: ...

    def __call__(self, batch: pl.DataFrame) -> StageOutput:
        out = self._attempt(batch)
        n_out = out.kept.height + out.dropped.height + out.quarantined.height
        if n_out != batch.height and not getattr(self, "adds_records", False):
            raise AssertionError(
                f"{self.name}: {batch.height} in, {out.kept.height} kept + {out.dropped.height} dropped"
                f" + {out.quarantined.height} quarantined"
            )
        return out

    def checkpoint(self) -> object:
        """What ``rollback`` needs to undo a ``process`` call that raised; stages without state return None."""
        return None

    def rollback(self, state: object) -> None:  # noqa: B027 - a hook: stateless stages have nothing to undo
        """Return to the state ``checkpoint`` returned, before a failed batch is retried in parts."""

    def passed_over(self, records: pl.DataFrame) -> None:  # noqa: B027 - a hook, like rollback
        """Records about to be quarantined after failing on their own: a stage that numbers the records it sees
        (against a count made in an earlier pass) moves past them here."""

    def _attempt(self, batch: pl.DataFrame) -> StageOutput:
        state = self.checkpoint()
        try:
            return self.process(batch)
        except Exception as e:  # noqa: BLE001 - one bad record must not stop the run; isolated below
            if not self.retry_safe:
                raise RuntimeError(f"stage {self.name} failed on a batch of {batch.height}: {error_summary(e)}") from e
            self.rollback(state)
            if batch.height <= 1:
                self.passed_over(batch)
                return StageOutput(batch.clear(), self.drop(batch.clear(), "none"), self.quarantine(batch, e))
        half = batch.height // 2
        parts = [self._attempt(batch.slice(0, half)), self._attempt(batch.slice(half))]
        return StageOutput(*(_concat([getattr(p, f) for p in parts]) for f in ("kept", "dropped", "quarantined")))

    def quarantine(
        self, records: pl.DataFrame, error: BaseException | str, reason: str | pl.Expr = STAGE_ERROR
    ) -> pl.DataFrame:
        """Mark records as quarantined by this stage, with a short summary of what went wrong."""
        detail = error if isinstance(error, str) else error_summary(error)
        return with_drop_reason(records, self.name, reason, detail)

    def drop(self, df: pl.DataFrame, reason: str | pl.Expr, detail: str | pl.Expr | None = None) -> pl.DataFrame:
        return with_drop_reason(df, self.name, reason, detail)

    def summary(self) -> dict:
        """Extra figures for the report (e.g. index size); empty by default."""
        return {}


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Stack the parts of a batch retried in halves; an empty part may lack the columns the stage adds."""
    full = [f for f in frames if f.height]
    if not full:
        return max(frames, key=lambda f: f.width)
    return pl.concat(full, how="diagonal_relaxed") if len(full) > 1 else full[0]


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

    def process(self, batch: pl.DataFrame) -> StageOutput:
        """Judge each record on its own, so one that makes ``judge`` raise is quarantined and the rest judged once."""
        reasons: list[str | None] = []
        details: list[str | None] = []
        failed: dict[int, str] = {}
        for i, text in enumerate(self.texts(batch)):
            try:
                verdict = self.judge(text)
            except Exception as e:  # noqa: BLE001 - quarantined with its error, the run goes on
                failed[i] = error_summary(e)
                verdict = None
            reasons.append(verdict and verdict[0])
            details.append(verdict and verdict[1])
        return _split(self, batch, reasons, details, failed)


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
        failed: dict[int, str] = {}
        for i, (text, conv) in enumerate(zip(batch["text"].to_list(), batch["messages"].to_list(), strict=True)):
            self.begin_record()
            try:
                mapped = self._map(text, None)
                turns = (
                    None
                    if conv is None
                    else [{**m, "content": self._map(m.get("content"), m.get("role"))} for m in conv]
                )
            except Exception as e:  # noqa: BLE001 - the record is quarantined with its error, the rest mapped
                failed[i] = error_summary(e)
                mapped, turns = text, conv
            else:
                self.end_record()
            texts.append(mapped)
            messages.append(turns)
        out = batch.with_columns(
            pl.Series("text", texts, dtype=pl.Utf8),
            pl.Series("messages", messages, dtype=batch.schema.get("messages", pl.List(MESSAGE))),
        )
        if not failed:
            return StageOutput.keep_all(out, self.name)
        return _split(self, out, [None] * out.height, [None] * out.height, failed)


def _split(
    stage: Stage, batch: pl.DataFrame, reasons: list[str | None], details: list[str | None], failed: dict[int, str]
) -> StageOutput:
    """Kept, dropped (a reason) and quarantined (an error, by row) records of a batch judged record by record."""
    bad = pl.Series([i in failed for i in range(batch.height)], dtype=pl.Boolean)
    reason = pl.Series(reasons, dtype=pl.Utf8)
    detail = pl.Series(details, dtype=pl.Utf8)
    drop = reason.is_not_null() & ~bad
    keep = ~drop & ~bad
    quarantined = batch.filter(bad)
    return StageOutput(
        batch.filter(keep),
        stage.drop(batch.filter(drop), pl.lit(reason.filter(drop)), pl.lit(detail.filter(drop))),
        with_drop_reason(
            quarantined, stage.name, STAGE_ERROR, pl.lit(pl.Series([failed[i] for i in sorted(failed)], dtype=pl.Utf8))
        ),
    )


__all__ = [
    "STAGE_ERROR",
    "Filter",
    "RecordFilter",
    "Stage",
    "StageOutput",
    "StageStats",
    "TextMap",
    "Verdict",
    "error_summary",
]

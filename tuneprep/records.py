"""The record schema every stage reads and writes.

One row is one document (``format`` "text" or "html") or one conversation
(``format`` "chat", with ``messages``). Stages add columns (``split``,
``input_ids``…) but never rename these.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import polars as pl

MESSAGE = pl.Struct({"role": pl.Utf8, "content": pl.Utf8})

SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Utf8,
    "source": pl.Utf8,
    "format": pl.Utf8,  # "text" | "html" | "chat"
    "text": pl.Utf8,
    "messages": pl.List(MESSAGE),
    "label": pl.Utf8,
    "group_id": pl.Utf8,
    "split": pl.Utf8,
    "aug_of": pl.Utf8,
    "aug_kind": pl.Utf8,
    "aug_params": pl.Utf8,  # JSON: the augmenter's settings, variant number and seed
}

DROP_COLUMNS: dict[str, pl.DataType] = {"stage": pl.Utf8, "reason": pl.Utf8, "detail": pl.Utf8}

FORMATS = ("text", "html", "chat")
SPLITS = ("train", "validation", "test")


def content_key(text: str | None, messages: Sequence[dict] | None) -> str:
    """The canonical string a record's content hashes to."""
    if messages is not None:
        return json.dumps([[m["role"], m["content"]] for m in messages], ensure_ascii=False)
    return text or ""


def record_id(source: str, content: str, salt: str = "") -> str:
    """Stable, content-derived id: the same file and content give the same id on every run."""
    data = f"{source}\x00{content}\x00{salt}\x00".encode("utf-8", "surrogatepass")  # one update, same digest
    return hashlib.blake2b(data, digest_size=10).hexdigest()


def empty_records(extra: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
    return pl.DataFrame(schema={**SCHEMA, **(extra or {})})


def make_records(rows: Iterable[dict]) -> pl.DataFrame:
    """Build a frame with the full schema from dicts that may omit optional columns."""
    rows = list(rows)
    cols = {name: [r.get(name) for r in rows] for name in SCHEMA}
    return pl.DataFrame(cols, schema=SCHEMA)


def conform(df: pl.DataFrame, extra: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
    """Add missing schema columns as nulls and order them; extra columns are kept after."""
    schema = {**SCHEMA, **(extra or {})}
    missing = [pl.lit(None, dtype=dt).alias(n) for n, dt in schema.items() if n not in df.columns]
    if missing:
        df = df.with_columns(missing)
    ordered = list(schema) + [c for c in df.columns if c not in schema]
    return df.select(ordered)


def with_drop_reason(
    df: pl.DataFrame, stage: str, reason: str | pl.Expr, detail: str | pl.Expr | None = None
) -> pl.DataFrame:
    """Mark records as dropped by ``stage`` for ``reason`` (a literal or a per-row expression)."""
    r = pl.lit(reason) if isinstance(reason, str) else reason
    d = pl.lit(detail, dtype=pl.Utf8) if detail is None or isinstance(detail, str) else detail
    return df.with_columns(pl.lit(stage).alias("stage"), r.alias("reason"), d.cast(pl.Utf8).alias("detail"))


def document_text(df: pl.DataFrame) -> pl.Series:
    """One string per record: the text, or the conversation's turns joined, for filters and dedup."""
    joined = (
        pl.col("messages")
        .list.eval(pl.element().struct.field("role") + pl.lit(": ") + pl.element().struct.field("content"))
        .list.join("\n")
    )
    return df.select(
        pl.when(pl.col("format") == "chat").then(joined).otherwise(pl.col("text")).fill_null("")
    ).to_series()


@dataclass
class Quarantined:
    """An input unit or record that could not be processed: kept aside with its reason, never silently lost."""

    source: str
    locator: str  # line, row or item number, or "" for a whole file or page
    reason: str
    detail: str
    raw: str = ""  # a short excerpt of what was read, for a person to look at
    stage: str = "load"

    def to_dict(self) -> dict:
        return asdict(self)

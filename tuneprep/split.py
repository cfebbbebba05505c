"""Group-aware, stratified, seeded train/validation/test assignment.

Whole groups (a record with its near-duplicates, later its augmented variants)
go to one split. Within each stratum, groups are ordered by a seeded hash of the
group key and cut by largest-remainder counts, so the result does not depend on
input order and each stratum follows the ratios as closely as whole groups allow.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from tuneprep.records import SPLITS

if TYPE_CHECKING:
    from tuneprep.config import SplitConfig


def largest_remainder(n: int, ratios: dict[str, float]) -> dict[str, int]:
    """Integer counts summing to ``n`` that follow ``ratios`` as closely as rounding allows."""
    raw = {k: n * r for k, r in ratios.items()}
    counts = {k: int(v) for k, v in raw.items()}
    left = n - sum(counts.values())
    order = sorted(raw, key=lambda k: (-(raw[k] - counts[k]), SPLITS.index(k)))
    for k in order[:left]:
        counts[k] += 1
    return counts


def _rank(seed: int, key: str) -> str:
    return hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).hexdigest()


def stratum_of(df: pl.DataFrame, column: str) -> pl.Expr:
    """The column's value, or the record's source folder where it is null."""
    folder = pl.col("source").str.replace(r"/[^/]*$", "").str.replace(r"\[.*\]$", "")
    if column in df.columns:
        return pl.coalesce(pl.col(column).cast(pl.Utf8), pl.lit("source:") + folder)
    return pl.lit("source:") + folder


@dataclass
class SplitPlan:
    assignment: pl.DataFrame  # id, split
    small_strata: list[str] = field(default_factory=list)
    strata: dict[str, dict[str, int]] = field(default_factory=dict)


def assign_splits(records: pl.DataFrame, cfg: SplitConfig, seed: int) -> SplitPlan:
    """Map each record id to a split. Needs only id, source, group_id and the stratify column."""
    df = records.with_columns(
        pl.coalesce("group_id", "id").alias("_group"), stratum_of(records, cfg.stratify_by).alias("_stratum")
    )
    groups = (
        df.group_by("_group", maintain_order=True)
        .agg(pl.col("_stratum").first(), pl.len().alias("_n"))
        .with_columns(pl.col("_group").map_elements(lambda g: _rank(seed, g), return_dtype=pl.Utf8).alias("_rank"))
        .sort("_stratum", "_rank")
    )
    active = {k: r for k, r in cfg.ratios.items() if r > 0}
    names, plan = [], SplitPlan(pl.DataFrame())
    for (stratum,), part in groups.group_by("_stratum", maintain_order=True):
        counts = largest_remainder(part.height, active)
        if part.height < len(active):
            plan.small_strata.append(stratum)
        seq = [s for s in SPLITS if s in counts for _ in range(counts[s])]
        names.extend(seq)
        plan.strata[stratum] = {s: counts.get(s, 0) for s in SPLITS}
    groups = groups.with_columns(pl.Series("split", names, dtype=pl.Utf8))
    plan.assignment = df.join(groups.select("_group", "split"), on="_group", how="left").select("id", "split")
    return plan

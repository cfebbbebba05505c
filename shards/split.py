"""Group-aware, stratified, seeded train/validation/test assignment.

Whole groups (a record with its near-duplicates, later its augmented variants)
go to one split. Within each stratum, groups are ordered by a seeded hash of the
group key and cut by largest-remainder counts, so the result does not depend on
input order and each stratum follows the ratios as closely as whole groups allow.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from tuneprep.records import SPLITS

if TYPE_CHECKING:
    from shards.config import SplitConfig


def largest_remainder(n: int, ratios: dict[str, float]) -> dict[str, int]:
    """Integer counts summing to ``n`` that follow ``ratios`` as closely as rounding allows."""
    raw = {k: n * r for k, r in ratios.items()}
    counts = {k: int(v) for k, v in raw.items()}
    left = n - sum(counts.values())
    order = sorted(raw, key=lambda k: (-(raw[k] - counts[k]), SPLITS.index(k)))
    for k in order[:left]:
        counts[k] += 1
    return counts


def _ranks(seed: int, keys: list[str]) -> pl.Series:
    """Seeded blake2b of each group key as a big-endian uint64 (the same order as its hex digest had)."""
    prefix = f"{seed}\x00".encode()
    return pl.Series(
        [int.from_bytes(hashlib.blake2b(prefix + k.encode(), digest_size=8).digest(), "big") for k in keys],
        dtype=pl.UInt64,
    )


def stratum_of(df: pl.DataFrame, column: str) -> pl.Expr:
    """The column's value, or the record's source folder where it is null."""
    folder = pl.col("source").str.replace(r"/[^/]*$", "").str.replace(r"\[.*\]$", "")
    if column in df.columns:
        return pl.coalesce(pl.col(column).cast(pl.Utf8), pl.lit("source:") + folder)
    return pl.lit("source:") + folder


@dataclass
class SplitPlan:
    assignment: pl.DataFrame  # id, split
    groups: pl.DataFrame = field(default_factory=pl.DataFrame)  # group, stratum, split: what a later drop reuses
    small_strata: list[str] = field(default_factory=list)
    strata: dict[str, dict[str, int]] = field(default_factory=dict)
    kept_from_previous: int = 0


def _fill(n_new: int, have: dict[str, int], ratios: dict[str, float]) -> dict[str, int]:
    """Counts for new groups that bring a stratum closest to the ratios without moving any old group."""
    target = largest_remainder(n_new + sum(have.values()), ratios)
    need = {k: max(0, target[k] - have.get(k, 0)) for k in ratios}
    if sum(need.values()) == 0:
        return largest_remainder(n_new, ratios)
    if sum(need.values()) == n_new:
        return need
    total = sum(need.values())
    return largest_remainder(n_new, {k: v / total for k, v in need.items()})


def assign_splits(
    records: pl.DataFrame, cfg: SplitConfig, seed: int, previous: pl.DataFrame | None = None
) -> SplitPlan:
    """Map each record id to a split, in the records' order. Needs only id, source, group_id and the stratify column.

    ``previous`` (columns group, split) is an earlier run's assignment: groups found
    there keep their split, and only new groups are placed, to bring each stratum
    back to the ratios. This is what keeps a record's split stable across data drops.
    """
    df = records.select(
        "id", pl.coalesce("group_id", "id").alias("_group"), stratum_of(records, cfg.stratify_by).alias("_stratum")
    )
    groups = df.group_by("_group", maintain_order=True).agg(pl.col("_stratum").first(), pl.len().alias("_n"))
    groups = groups.with_columns(_ranks(seed, groups["_group"].to_list()).alias("_rank"))
    if previous is not None and previous.height:
        prev = previous.select(pl.col("group").alias("_group"), pl.col("split").alias("_prev"))
        groups = groups.join(prev, on="_group", how="left")
    else:
        groups = groups.with_columns(pl.lit(None, dtype=pl.Utf8).alias("_prev"))
    groups = groups.sort("_stratum", "_rank")
    active = {k: r for k, r in cfg.ratios.items() if r > 0}
    plan = SplitPlan(pl.DataFrame())
    parts = []
    for (stratum,), part in groups.group_by("_stratum", maintain_order=True):
        old = part.filter(pl.col("_prev").is_not_null())
        new = part.filter(pl.col("_prev").is_null())
        have = dict(old.group_by("_prev").len().iter_rows())
        counts = _fill(new.height, have, active)
        seq = [s for s in SPLITS if s in counts for _ in range(counts[s])]
        parts.append(old.with_columns(pl.col("_prev").alias("split")))
        parts.append(new.with_columns(pl.Series("split", seq, dtype=pl.Utf8)))
        if part.height < len(active):
            plan.small_strata.append(stratum)
        total = {s: have.get(s, 0) + counts.get(s, 0) for s in SPLITS}
        plan.strata[stratum] = total
        plan.kept_from_previous += old.height
    assigned = pl.concat(parts) if parts else groups.with_columns(pl.lit(None, dtype=pl.Utf8).alias("split"))
    plan.groups = assigned.select(pl.col("_group").alias("group"), pl.col("_stratum").alias("stratum"), "split").sort(
        "group"
    )
    plan.assignment = df.join(assigned.select("_group", "split"), on="_group", how="left", maintain_order="left")
    plan.assignment = plan.assignment.select("id", "split")
    return plan


def previous_assignment(path: str | None) -> pl.DataFrame | None:
    """An earlier run's group -> split table (its folder or its splits.parquet), or None."""
    if not path:
        return None
    p = Path(path)
    p = p / "splits.parquet" if p.is_dir() else p
    if not p.exists():
        raise FileNotFoundError(f"split.previous: no splits.parquet at {path}")
    return pl.read_parquet(p, columns=["group", "split"])


def previous_groups(path: str) -> pl.DataFrame:
    """An earlier run's whole group table (group, stratum, split), to carry into this run's ``splits.parquet``."""
    p = Path(path)
    return pl.read_parquet(p / "splits.parquet" if p.is_dir() else p)

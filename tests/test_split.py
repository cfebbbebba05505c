import polars as pl

from shards.config import SplitConfig
from shards.split import assign_splits, largest_remainder


def frame(n_per_label: dict[str, int], groups_of: int = 1) -> pl.DataFrame:
    rows = []
    for label, n in n_per_label.items():
        for i in range(n):
            rows.append(
                {
                    "id": f"{label}-{i}",
                    "source": f"data/{label}.csv",
                    "group_id": f"{label}-g{i // groups_of}",
                    "label": label,
                }
            )
    return pl.DataFrame(rows)


def test_largest_remainder_sums_and_follows_ratios():
    assert largest_remainder(10, {"train": 0.8, "validation": 0.1, "test": 0.1}) == {
        "train": 8,
        "validation": 1,
        "test": 1,
    }
    c = largest_remainder(7, {"train": 0.8, "validation": 0.1, "test": 0.1})
    assert c == {"train": 5, "validation": 1, "test": 1}  # remainders .6 < .7 = .7


def test_stratified_counts_per_label():
    df = frame({"billing": 50, "shipping": 30, "rare": 10})
    plan = assign_splits(df, SplitConfig(), seed=1)
    joined = df.join(plan.assignment, on="id")
    counts = {(lab, s): n for lab, s, n in joined.group_by("label", "split").len().iter_rows()}
    assert (
        counts[("billing", "train")] == 40
        and counts[("billing", "validation")] == 5
        and counts[("billing", "test")] == 5
    )
    assert counts[("shipping", "train")] == 24 and counts[("shipping", "validation")] == 3
    assert counts[("rare", "train")] == 8 and counts[("rare", "test")] == 1


def test_groups_never_span_splits_and_seed_matters():
    df = frame({"a": 60}, groups_of=3)
    plan = assign_splits(df, SplitConfig(), seed=7)
    per_group = df.join(plan.assignment, on="id").group_by("group_id").agg(pl.col("split").n_unique())
    assert per_group["split"].max() == 1
    again = assign_splits(df.reverse(), SplitConfig(), seed=7).assignment.sort("id")
    assert again.equals(plan.assignment.sort("id"))
    other = assign_splits(df, SplitConfig(), seed=8).assignment.sort("id")
    assert not other.equals(plan.assignment.sort("id"))


def test_source_folder_stratifies_unlabelled_records_and_small_strata_are_reported():
    df = frame({"x": 2}).with_columns(pl.lit(None, dtype=pl.Utf8).alias("label"))
    plan = assign_splits(df, SplitConfig(), seed=1)
    assert plan.small_strata == ["source:data"]
    assert set(plan.assignment["split"]) == {"train"}


def test_a_later_data_drop_keeps_every_earlier_split_and_refills_the_ratios():
    first = frame({"billing": 40, "shipping": 20})
    plan1 = assign_splits(first, SplitConfig(), seed=3)
    grown = frame({"billing": 80, "shipping": 40})  # the same 60 records plus 60 new ones
    plan2 = assign_splits(grown, SplitConfig(), seed=3, previous=plan1.groups)
    before = dict(plan1.assignment.iter_rows())
    after = dict(plan2.assignment.iter_rows())
    assert all(after[i] == s for i, s in before.items())
    assert plan2.kept_from_previous == 60
    joined = grown.join(plan2.assignment, on="id")
    counts = {(lab, s): n for lab, s, n in joined.group_by("label", "split").len().iter_rows()}
    assert counts[("billing", "train")] == 64 and counts[("billing", "validation")] == 8
    assert counts[("shipping", "test")] == 4
    without_previous = dict(assign_splits(grown, SplitConfig(), seed=3).assignment.iter_rows())
    assert any(without_previous[i] != s for i, s in before.items()), "the test should exercise a real difference"


def test_assignment_rows_follow_the_input_order():
    """The split step slices the assignment per batch instead of joining, so row order must be the input's."""
    df = pl.DataFrame(
        {
            "id": [f"r{i}" for i in range(500)],
            "source": ["s"] * 500,
            "group_id": [f"g{i % 97}" for i in range(500)],
            "label": [f"l{i % 3}" for i in range(500)],
        }
    )
    plan = assign_splits(df, SplitConfig(), seed=3)
    assert plan.assignment["id"].to_list() == df["id"].to_list()

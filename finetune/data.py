"""Shards -> padded (input_ids, attention_mask, labels) batches.

The collator is a plain function of a list of examples so packing can later replace it without touching the loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from datasets import Dataset, load_from_disk

IGNORE_INDEX = -100  # what torch's cross_entropy (and HF) skip in the loss
SPLITS = ("train", "validation", "test")

Batch = dict[str, torch.Tensor]
Example = dict[str, Sequence[int]]
Collate = Callable[[list[Example]], Batch]


def load_split(data_dir: Path, split: str) -> Dataset | None:
    """Load one split from `DATA/shards/<split>`; None when it is missing or empty, so callers report null."""
    path = Path(data_dir) / "shards" / split
    if not path.exists() or _saved_without_data(path):
        return None
    ds = load_from_disk(str(path))
    return lm_columns(ds) if len(ds) else None


def lm_columns(ds: Dataset) -> Dataset:
    """Only the columns training reads, so per-batch Arrow reads skip ids, labels and other metadata."""
    return ds.select_columns([c for c in ("input_ids", "loss_mask") if c in ds.column_names])


def _saved_without_data(path: Path) -> bool:
    """datasets 5 saves an empty Dataset with zero shard files, and load_from_disk then raises IndexError."""
    state = path / "state.json"
    return state.exists() and not json.loads(state.read_text()).get("_data_files", [None])


def to_lm_example(
    input_ids: Sequence[int], loss_mask: Sequence[int] | None, block_size: int
) -> tuple[list[int], list[int]]:
    """Truncate to block_size and turn the loss mask into labels (-100 where the token must not be learned)."""
    ids = list(input_ids[:block_size])
    mask = [1] * len(ids) if loss_mask is None else loss_mask[:block_size]
    labels = [t if m else IGNORE_INDEX for t, m in zip(ids, mask, strict=True)]
    return ids, labels


def pad_collate(examples: list[Example], pad_id: int, block_size: int) -> Batch:
    """Right-pad to the longest example in the batch (dynamic padding); padding never counts in the loss."""
    pairs = [to_lm_example(e["input_ids"], e.get("loss_mask"), block_size) for e in examples]
    width = max(len(ids) for ids, _ in pairs)
    input_ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(pairs), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for i, (ids, lab) in enumerate(pairs):
        n = len(ids)
        input_ids[i, :n] = torch.tensor(ids, dtype=torch.long)
        labels[i, :n] = torch.tensor(lab, dtype=torch.long)
        attention_mask[i, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def make_collate(pad_id: int, block_size: int) -> Collate:
    """The default collator; swap for a packing one later."""
    return lambda examples: pad_collate(examples, pad_id, block_size)


def iter_batches(
    ds: Dataset, batch_size: int, collate: Collate, *, shuffle: bool, seed: int = 0, epoch: int = 0
) -> Iterator[Batch]:
    """One pass over `ds`. The order depends only on (seed, epoch), so reruns see identical batches."""
    n = len(ds)
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    else:
        order = list(range(n))
    for start in range(0, n, batch_size):
        cols = ds[order[start : start + batch_size]]  # dict of column lists: one Arrow read per batch
        names = list(cols)
        yield collate([dict(zip(names, row, strict=True)) for row in zip(*cols.values(), strict=True)])


def count_loss_tokens(labels: torch.Tensor) -> int:
    """Tokens that are actually predicted: position t's label is predicted from tokens < t, so column 0 never is."""
    return int((labels[:, 1:] != IGNORE_INDEX).sum())

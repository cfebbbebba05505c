"""Shards -> rows of whole examples -> batches the model reads, straight from the token ids (no re-tokenizing).

Packing puts several examples in one row of at most ``block_size`` tokens (best-fit decreasing, as TRL's
``bfd`` strategy), and every batch carries what keeps them apart: position ids restarting at 0 for each
example, a block-diagonal causal attention mask, and targets that never cross from one example into the
next. So an example's loss is the same packed or alone. Nothing is truncated: an example longer than the
block is an error before training starts.

Targets are shifted here, once: ``targets[t]`` is the token the model must predict after position t
(``input_ids[t + 1]`` where ``loss_mask[t + 1]`` is 1), else -100. EOS is a target like any other token,
so it is learned even when the tokenizer's pad token is EOS; padding is marked by position, never by id.
"""

from __future__ import annotations

import bisect
import fnmatch
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from datasets import Dataset, load_from_disk

from finetune.config import TaskSettings

_FILE_PART, _IN_BRACKETS = re.compile(r"/[^/]*$"), re.compile(r"\[.*\]$")
IGNORE_INDEX = -100  # what torch's cross_entropy skips
SPLITS = ("train", "validation", "test")
FORMATS = ("text", "chat")  # the shards' `format` column; metrics are broken down by it

MaskMode = Literal["bool", "float", "positions"]
Batch = dict[str, torch.Tensor | None]


@dataclass
class SplitData:
    """One split's examples: the Arrow table the shards hold, and which of its rows are used."""

    name: str
    dataset: Dataset  # every column: ids, messages... (read for generation and reports)
    table: pa.Table  # input_ids and loss_mask only, memory-mapped
    rows: np.ndarray  # table rows in use (originals only when use_augmented is false)
    lengths: np.ndarray  # tokens per used example
    formats: np.ndarray  # FORMATS index per used example
    tasks: np.ndarray | None = None  # index into task_names per used example (None = tasks not named)
    task_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.rows)

    def task_of(self) -> np.ndarray:
        return self.tasks if self.tasks is not None else np.zeros(len(self.rows), dtype=np.int64)


def load_split(
    data_dir: Path, split: str, *, use_augmented: bool | list[str] = True, tasks: TaskSettings | None = None
) -> SplitData | None:
    """DATA/shards/<split>, or None when it is missing or empty (callers then report null).

    ``use_augmented``: every row (true), originals only (false), or originals plus the variants of the augmenters
    named (their ``aug_kind``). ``tasks``: name each used example's task (see `example_tasks`)."""
    path = Path(data_dir) / "shards" / split
    if not path.exists() or _saved_without_data(path):
        return None
    ds = load_from_disk(str(path))
    if len(ds) == 0:
        return None
    full = ds.data.table
    rows = np.arange(len(ds))
    if use_augmented is not True and "aug_of" in ds.column_names:
        keep = full.column("aug_of").is_null()
        if isinstance(use_augmented, list):
            if "aug_kind" not in ds.column_names:
                raise ValueError(f"{path}: no aug_kind column to pick augmenters {use_augmented} by")
            kind = pc.fill_null(pc.is_in(full.column("aug_kind"), pa.array(use_augmented, pa.string())), False)
            keep = pc.or_(keep, kind)
        rows = np.flatnonzero(keep.to_numpy(zero_copy_only=False))
    if len(rows) == 0:
        return None
    table = full.select([c for c in ("input_ids", "loss_mask") if c in full.column_names])
    lengths = pc.list_value_length(table.column("input_ids")).to_numpy()[rows].astype(np.int64)
    if "format" in ds.column_names:
        is_chat = pc.fill_null(pc.equal(full.column("format"), "chat"), False)
        formats = is_chat.to_numpy(zero_copy_only=False)[rows].astype(np.int8)
    else:
        formats = np.zeros(len(rows), dtype=np.int8)
    data = SplitData(split, ds, table, rows, lengths, formats)
    if tasks is not None:
        data.task_names, data.tasks = example_tasks(data, tasks)
    return data


def example_tasks(split: SplitData, settings: TaskSettings) -> tuple[tuple[str, ...], np.ndarray]:
    """(task names, sorted; per used example the index of its task) from the shards' own columns: the folder of
    the `source` file (``a/b/file.csv`` -> ``a/b``; a file at the top keeps its name), the `label`, or any column;
    then `settings.map` (fnmatch pattern -> task, first match wins). A missing value is the task "(none)"."""
    column = {"source": "source", "label": "label", "column": settings.column}[settings.by]
    assert column is not None
    where = f"shards/{split.name}"
    if column not in split.dataset.column_names:
        raise ValueError(
            f"{where}: no column {column!r} to name tasks by (columns: {', '.join(split.dataset.column_names)})"
        )
    values = split.dataset.data.table.column(column).take(pa.array(split.rows)).cast(pa.string()).to_pylist()
    if settings.by == "source":  # the folder, as the split's strata name it
        values = [None if v is None else _IN_BRACKETS.sub("", _FILE_PART.sub("", v)) for v in values]
    names = [_task_name(v, settings.map) for v in values]
    unique = tuple(sorted(set(names)))
    index = {name: i for i, name in enumerate(unique)}
    return unique, np.asarray([index[n] for n in names], dtype=np.int64)


def _task_name(value: str | None, mapping: dict[str, str]) -> str:
    if value is None:
        return "(none)"
    for pattern, task in mapping.items():
        if fnmatch.fnmatchcase(value, pattern):
            return task
    return value


def _saved_without_data(path: Path) -> bool:
    """datasets 5 saves an empty Dataset with zero shard files, and load_from_disk then raises IndexError."""
    state = path / "state.json"
    return state.exists() and not json.loads(state.read_text()).get("_data_files", [None])


def check_examples(split: SplitData, block_size: int, vocab_size: int, bos_id: int | None) -> None:
    """Refuse, before training, what would otherwise be truncated, crash mid-run or teach the wrong thing."""
    where = f"shards/{split.name}"
    too_long = split.lengths > block_size
    if too_long.any():
        raise ValueError(
            f"{where}: {int(too_long.sum())} examples are longer than block_size {block_size} (longest "
            f"{int(split.lengths.max())} tokens); nothing is truncated: re-run prepare with tokenizer.max_length "
            f"<= {block_size}, or raise finetune.block_size (the model allows its max_position_embeddings)"
        )
    ids = split.table.column("input_ids")  # memory-mapped: read chunk by chunk, never copied whole
    top = max(
        (pc.max(pc.list_flatten(chunk)).as_py() for chunk in ids.chunks if len(chunk)), key=_or_minus_one, default=None
    )
    if top is not None and top >= vocab_size:
        raise ValueError(f"{where}: token id {top} is outside the model's vocabulary of {vocab_size}")
    if bos_id is not None:
        heads = pc.list_slice(ids, 0, 2).combine_chunks()  # at most 2 ids a row: small
        starts = heads.offsets.to_numpy()[:-1]
        values = np.append(heads.values.to_numpy(zero_copy_only=False), -1)
        two = pc.list_value_length(heads).to_numpy(zero_copy_only=False) == 2
        doubled = two & (values[starts] == bos_id) & (values[np.minimum(starts + 1, len(values) - 1)] == bos_id)
        if n := int(doubled[split.rows].sum()):
            raise ValueError(
                f"{where}: {n} examples start with two BOS tokens (the chat template and the "
                "tokenizer both add one); fix the template or the tokenizer and re-run prepare"
            )


def _or_minus_one(x: int | None) -> int:
    return -1 if x is None else x


# ---- rows -------------------------------------------------------------------------------------------------------


def pack_rows(lengths: np.ndarray, block_size: int) -> list[np.ndarray]:
    """Best-fit decreasing: longest first, each into the row whose free space fits it most tightly.

    Free space is an integer <= block_size, so rows are bucketed by free space and the tightest bucket
    is found by bisecting the sorted list of non-empty sizes: O(n log block) instead of a scan of rows.
    """
    order = np.lexsort((np.arange(len(lengths)), -lengths))  # longest first, ties by position: deterministic
    rows: list[list[int]] = []
    by_space: dict[int, list[int]] = {}
    spaces: list[int] = []  # sorted free-space values with at least one row
    for i in order.tolist():
        need = int(lengths[i])
        k = bisect.bisect_left(spaces, need)
        if k == len(spaces):
            r, free = len(rows), block_size
            rows.append([])
        else:
            free = spaces[k]
            r = by_space[free].pop()
            if not by_space[free]:
                del by_space[free], spaces[k]
        rows[r].append(i)
        left = free - need
        if left > 0:
            if left not in by_space:
                by_space[left] = []
                bisect.insort(spaces, left)
            by_space[left].append(r)
    return [np.asarray(r, dtype=np.int64) for r in rows]


def single_rows(n: int) -> list[np.ndarray]:
    """One example per row (packing off): batches are padded to their longest example instead."""
    return [np.asarray([i], dtype=np.int64) for i in range(n)]


def make_rows(split: SplitData, block_size: int, packing: bool) -> list[np.ndarray]:
    return pack_rows(split.lengths, block_size) if packing else single_rows(len(split))


def loss_token_counts(split: SplitData) -> np.ndarray:
    """Per used example, its targets: tokens after the first whose loss_mask is 1 (read chunk by chunk)."""
    if "loss_mask" not in split.table.column_names:
        return np.maximum(split.lengths - 1, 0)
    counts = []
    for chunk in split.table.column("loss_mask").chunks:
        offsets = chunk.offsets.to_numpy()
        flags = (chunk.values.to_numpy(zero_copy_only=False) != 0).astype(np.int64)
        flags[offsets[:-1][offsets[:-1] < offsets[1:]]] = 0  # the first token of an example is never a target
        sums = np.add.reduceat(np.append(flags, 0), offsets[:-1]) if len(flags) else np.zeros(len(chunk), np.int64)
        counts.append(np.where(offsets[1:] > offsets[:-1], sums, 0))
    return np.concatenate(counts)[split.rows] if counts else np.zeros(len(split), dtype=np.int64)


# ---- batches ----------------------------------------------------------------------------------------------------


def example_targets(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """targets[t] = ids[t+1] where that token is in the loss, else -100; the last position predicts nothing."""
    targets = np.full(len(ids), IGNORE_INDEX, dtype=np.int64)
    targets[:-1] = np.where(mask[1:] != 0, ids[1:], IGNORE_INDEX)
    return targets


def attention_mask_4d(doc: torch.Tensor, mode: MaskMode) -> torch.Tensor:
    """(B, 1, T, T) block-diagonal causal mask from per-token example ids (-1 = padding).

    Transformers passes a 4D mask through untouched, so it must hold causality, example boundaries and
    padding itself. sdpa takes bool (True = may attend); eager adds the mask to the scores, so it gets
    0 / finfo.min (a bool mask there is silently wrong, and -inf gives NaN on rows that attend to nothing).
    Padding queries attend to themselves, so no row is empty.
    """
    t = doc.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool, device=doc.device).tril()
    allowed = (doc[:, :, None] == doc[:, None, :]) & causal & (doc[:, :, None] >= 0)
    allowed |= torch.eye(t, dtype=torch.bool, device=doc.device)
    allowed = allowed[:, None]
    if mode == "bool":
        return allowed
    return torch.zeros(allowed.shape, dtype=torch.float32, device=doc.device).masked_fill_(
        ~allowed, torch.finfo(torch.float32).min
    )


class Batcher:
    """Builds batches of rows of one split: reads the rows' examples from Arrow and lays them out."""

    def __init__(self, split: SplitData, rows: list[np.ndarray], pad_id: int, mask_mode: MaskMode) -> None:
        self.split, self.rows, self.pad_id, self.mask_mode = split, rows, pad_id, mask_mode
        self._ids = split.table.column("input_ids")
        self._mask = split.table.column("loss_mask") if "loss_mask" in split.table.column_names else None

    def _examples(self, positions: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(input_ids, targets) of used examples, one Arrow take for the whole batch."""
        take = pa.array(self.split.rows[positions])
        ids_col = self._ids.take(take).combine_chunks()
        ids_flat = ids_col.flatten().to_numpy().astype(np.int64)
        lens = pc.list_value_length(ids_col).to_numpy()
        if self._mask is not None:
            mask_flat = self._mask.take(take).combine_chunks().flatten().to_numpy()
        else:
            mask_flat = np.ones(len(ids_flat), dtype=np.int8)
        out, start = [], 0
        for n in lens.tolist():
            ids, mask = ids_flat[start : start + n], mask_flat[start : start + n]
            out.append((ids, example_targets(ids, mask)))
            start += n
        return out

    def batch(self, row_ids: np.ndarray) -> Batch:
        """input_ids, position_ids, targets, the attention mask, and per token its example (index in the split,
        -1 = padding), format and task."""
        row_list = [self.rows[r] for r in row_ids.tolist()]
        positions = np.concatenate(row_list)
        examples = iter(self._examples(positions))
        formats = self.split.formats[positions]
        tasks = self.split.task_of()[positions]
        width = max(int(self.split.lengths[r].sum()) for r in row_list)
        b = len(row_list)
        input_ids = np.full((b, width), self.pad_id, dtype=np.int64)
        position_ids = np.zeros((b, width), dtype=np.int64)
        targets = np.full((b, width), IGNORE_INDEX, dtype=np.int64)
        example = np.full((b, width), -1, dtype=np.int64)  # index within its row
        position = np.full((b, width), -1, dtype=np.int64)  # index of the example in the split
        fmt = np.zeros((b, width), dtype=np.int64)
        task = np.zeros((b, width), dtype=np.int64)
        k = 0
        for i, row in enumerate(row_list):
            at = 0
            for j in range(len(row)):
                ids, tgt = next(examples)
                n = len(ids)
                input_ids[i, at : at + n] = ids
                position_ids[i, at : at + n] = np.arange(n)
                targets[i, at : at + n] = tgt
                example[i, at : at + n] = j
                position[i, at : at + n] = positions[k]
                fmt[i, at : at + n] = formats[k]
                task[i, at : at + n] = tasks[k]
                at, k = at + n, k + 1
            position_ids[i, at:] = np.arange(width - at)  # padding: a run of its own, isolated like an example
        batch: Batch = {
            "input_ids": torch.from_numpy(input_ids),
            "position_ids": torch.from_numpy(position_ids),
            "targets": torch.from_numpy(targets),
            "format": torch.from_numpy(fmt),
            "task": torch.from_numpy(task),
            "example": torch.from_numpy(position),
            "attention_mask": None,
        }
        packed_or_padded = any(len(r) > 1 for r in row_list) or (example < 0).any()
        if packed_or_padded and self.mask_mode != "positions":
            batch["attention_mask"] = attention_mask_4d(torch.from_numpy(example), self.mask_mode)
        return batch

    def sequential(self, batch_size: int) -> Iterator[Batch]:
        """Every row once, in order (evaluation)."""
        for start in range(0, len(self.rows), batch_size):
            yield self.batch(np.arange(start, min(start + batch_size, len(self.rows))))


def count_targets(batch: Batch) -> int:
    targets = batch["targets"]
    assert targets is not None
    return int((targets != IGNORE_INDEX).sum())


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: None if v is None else v.to(device, non_blocking=True) for k, v in batch.items()}

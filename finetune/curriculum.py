"""How hard each training example is, for the curriculum (`sampling.py` turns it into an order).

- `length`: its tokens.
- `column`: any numeric shard column (e.g. `n_tokens`, or a score a data step wrote).
- `loss`: the mean loss a reference model gives its loss tokens. It is computed once, over every row of the train
  split, and cached beside the shards in DATA/curriculum/loss-<key>.npy, the key naming the reference (its files'
  sizes and times for a local folder) and the shards' fingerprint: a rerun, a resume or another config over the
  same data reads it back, and the order is the same bit for bit.

Unknown values (a null in the column, an example without loss tokens) are NaN: such examples are drawn last.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from finetune.config import CurriculumSettings
from finetune.data import Batcher, SplitData, check_examples, load_split, pack_rows, to_device
from finetune.model import LossHead, check_same_tokenizer, mask_mode, max_positions
from finetune.sampling import difficulty_rank
from tuneprep.files import atomic_write_json, tmp_name

CACHE = "curriculum"


def example_difficulty(
    settings: CurriculumSettings,
    data_dir: Path,
    split: SplitData,
    *,
    tokenizer,
    block_size: int,
    device: torch.device,
    bf16: bool,
    log: Callable[[str], None] = print,
) -> np.ndarray:
    """Per used example of `split`, how hard it is (higher = harder; NaN = unknown)."""
    if settings.by == "length":
        return split.lengths.astype(np.float64)
    if settings.by == "column":
        assert settings.column is not None
        return column_values(split, settings.column, log)
    assert settings.reference is not None
    losses = reference_losses(Path(data_dir), settings.reference, tokenizer, block_size, device, bf16, log)
    return losses[split.rows]


def curriculum_rank(
    settings: CurriculumSettings,
    data_dir: Path,
    split: SplitData,
    tokenizer,
    block_size: int,
    device: torch.device,
    bf16: bool,
    log: Callable[[str], None] = print,
) -> np.ndarray:
    """Per used example of `split`, its place in the curriculum (0 = drawn first)."""
    difficulty = example_difficulty(
        settings, data_dir, split, tokenizer=tokenizer, block_size=block_size, device=device, bf16=bf16, log=log
    )
    return difficulty_rank(difficulty, settings.order)


def column_values(split: SplitData, column: str, log: Callable[[str], None] = print) -> np.ndarray:
    """A numeric column's values per used example, as floats; nulls become NaN (logged)."""
    names = split.dataset.column_names
    if column not in names:
        raise ValueError(f"curriculum column {column!r} is not in shards/{split.name} (columns: {', '.join(names)})")
    values = split.dataset.data.table.column(column).take(pa.array(split.rows))
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_boolean(values.type)):
        raise ValueError(f"curriculum column {column!r} holds {values.type}, not numbers")
    out = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    if n := int(np.isnan(out).sum()):
        log(f"curriculum: {n} examples have no {column}: they come last")
    return out


def reference_losses(
    data_dir: Path,
    reference: str,
    tokenizer,
    block_size: int,
    device: torch.device,
    bf16: bool,
    log: Callable[[str], None] = print,
) -> np.ndarray:
    """Mean loss per row of the train split's table (every row, augmented ones too), cached beside the shards."""
    split = load_split(data_dir, "train")
    assert split is not None
    path = data_dir / CACHE / f"loss-{_cache_key(data_dir, reference)}.npy"
    if path.exists():
        cached = np.load(path)
        if len(cached) == len(split):
            log(f"curriculum: reference losses from {path}")
            return cached
    log(f"curriculum: scoring {len(split)} train examples with {reference} (once; cached in {path.parent})")
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # the run's RNG is left untouched
        losses = _score(split, reference, tokenizer, block_size, device, bf16)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_name(path)
        with open(tmp, "wb") as f:
            np.save(f, losses)
        os.replace(tmp, path)
        atomic_write_json(path.with_suffix(".json"), {"reference": reference, "rows": len(losses)})
    except OSError as e:
        log(f"curriculum: could not cache the reference losses in {path.parent} ({e}); they are recomputed next time")
    return losses


@torch.no_grad()
def _score(
    split: SplitData, reference: str, tokenizer, block_size: int, device: torch.device, bf16: bool
) -> np.ndarray:
    from transformers import AutoModelForCausalLM

    try:
        check_same_tokenizer(reference, tokenizer)
    except ValueError as e:
        raise ValueError(f"curriculum reference: {e}") from None
    model = AutoModelForCausalLM.from_pretrained(reference, dtype=torch.bfloat16 if bf16 else torch.float32)
    model = model.to(device).eval()
    model.config.use_cache = False
    block = min(block_size, max_positions(model) or block_size)
    check_examples(split, block, model.get_output_embeddings().weight.shape[0], tokenizer.bos_token_id)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    batcher = Batcher(split, pack_rows(split.lengths, block), pad, mask_mode(model))
    head = LossHead(model)
    sums = torch.zeros(len(split), dtype=torch.float64)
    counts = torch.zeros(len(split), dtype=torch.long)
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else torch.autocast(device.type, enabled=False)
    for batch in batcher.sequential(8):
        with ctx:
            scores = head.scores(to_device(batch, device))
        example = batch["example"][scores.keep.cpu()]
        sums.index_add_(0, example, scores.losses.double().cpu())
        counts.index_add_(0, example, torch.ones_like(example))
    del model, head
    if device.type == "cuda":
        torch.cuda.empty_cache()
    mean = sums / counts.clamp(min=1)
    return torch.where(counts > 0, mean, torch.full_like(mean, float("nan"))).numpy()


def _cache_key(data_dir: Path, reference: str) -> str:
    """The reference (and, for a local folder, its files' names, sizes and times) and the train shards' fingerprint."""
    ref = Path(reference)
    files = (
        [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(ref.iterdir()) if f.is_file()]
        if ref.is_dir()
        else []
    )
    state = data_dir / "shards" / "train" / "state.json"
    shards = json.loads(state.read_text()).get("_fingerprint") if state.exists() else None
    blob = json.dumps(
        {"reference": str(ref.resolve()) if ref.is_dir() else reference, "files": files, "shards": shards}
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]

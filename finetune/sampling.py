"""Which rows each training micro-batch reads: a pure function of (seed, epoch, position), so a resumed run reads
exactly the batches the uninterrupted run would have.

- Plain: every epoch is a fresh permutation of the rows.
- Mixture: each slot of an epoch draws a task with the mixture's probability, then the next row of that task's own
  shuffled cycle (an up-weighted small task repeats its rows, a down-weighted large one sees part of them).
- Curriculum (baby steps, Bengio et al. 2009; competence-based sampling, Platanios et al. 2019): a warm phase comes
  first, as epoch 0: warm batch k is drawn from the rows open at k, the easiest share given by the pacing function,
  growing from `start_fraction` to all rows, linearly or in steps. Plain or mixed epochs follow. With a mixture the
  pool opens within each task, and tasks are drawn by weight from the first batch.

A row is what a batch holds; with packing a row holds several examples, so rows are packed from alike examples:
task by task for a mixture, and in bins of similar difficulty for a curriculum.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from finetune.config import CurriculumSettings, FinetuneConfig, MixtureSettings
from finetune.data import SplitData, pack_rows

WARM = 0x5747  # salts the warm phase's RNG apart from the epochs' ([seed, epoch])
MAX_BINS = 64  # difficulty bins a curriculum packs within (each >= BIN_ROWS rows' worth of tokens)
BIN_ROWS = 8


@dataclass
class RowPlan:
    """The training split's rows and what the sampler needs to know about each."""

    rows: list[np.ndarray]  # positions of each row's examples in the split
    task: np.ndarray  # per row: its task's index (all 0 unless the rows were packed task by task)
    level: np.ndarray | None  # per row: its rank from easiest (0) to hardest within its task (curriculum only)
    tokens: np.ndarray  # per row: tokens


def difficulty_rank(difficulty: np.ndarray, order: Literal["easy_first", "hard_first"]) -> np.ndarray:
    """Per example its place in the curriculum (0 = drawn first); ties keep shard order, unknowns (NaN) come last."""
    d = np.asarray(difficulty, dtype=np.float64)
    key = np.where(np.isnan(d), np.inf, d if order == "easy_first" else -d)
    by_place = np.lexsort((np.arange(len(d)), key))
    rank = np.empty(len(d), dtype=np.int64)
    rank[by_place] = np.arange(len(d))
    return rank


def plan_rows(
    split: SplitData,
    block_size: int,
    packing: bool,
    *,
    by_task: bool = False,
    rank: np.ndarray | None = None,
) -> RowPlan:
    """Rows of the split's examples: packed (best-fit decreasing) or one per row, within each task when `by_task`,
    and within bins of similar `rank` (a curriculum's order) when given. Without either: `pack_rows` over all."""
    task_of = split.task_of() if by_task else np.zeros(len(split), dtype=np.int64)
    rows: list[np.ndarray] = []
    row_task: list[int] = []
    for t in np.unique(task_of).tolist():
        members = np.flatnonzero(task_of == t)
        if rank is not None:
            members = members[np.argsort(rank[members], kind="stable")]
        for group in _bins(members, split.lengths, block_size, packing and rank is not None):
            local = (
                pack_rows(split.lengths[group], block_size) if packing else [np.asarray([i]) for i in range(len(group))]
            )
            rows += [group[r] for r in local]
            row_task += [t] * len(local)
    task = np.asarray(row_task, dtype=np.int64)
    tokens = np.asarray([int(split.lengths[r].sum()) for r in rows], dtype=np.int64)
    level = None
    if rank is not None:
        mean_rank = np.asarray([rank[r].mean() for r in rows])
        level = np.empty(len(rows), dtype=np.float64)
        for t in np.unique(task).tolist():
            mine = np.flatnonzero(task == t)
            ordered = mine[np.lexsort((mine, mean_rank[mine]))]
            level[ordered] = np.arange(len(mine)) / len(mine)
    return RowPlan(rows, task, level, tokens)


def _bins(members: np.ndarray, lengths: np.ndarray, block_size: int, split_up: bool) -> list[np.ndarray]:
    """Consecutive slices of `members` (in curriculum order) to pack apart, each worth >= BIN_ROWS full rows."""
    if not split_up:
        return [members]
    tokens = int(lengths[members].sum())
    n = max(1, min(MAX_BINS, tokens // (BIN_ROWS * block_size)))
    return [b for b in np.array_split(members, n) if len(b)]


@dataclass
class Pacing:
    """The curriculum's warm phase: the share of the rows open to warm micro-batch k of `batches`."""

    batches: int
    kind: Literal["linear", "step"]
    start: float
    steps: int

    def share(self, k: int) -> float:
        x = min(1.0, k / self.batches)
        if self.kind == "step":
            x = math.floor(x * self.steps) / self.steps
        return min(1.0, self.start + (1.0 - self.start) * x)


class BatchOrder:
    """Micro-batches of row ids, epoch by epoch, as a pure function of (seed, epoch, position).

    `task`: each row's task (None = one task); `probs`: per task, the chance a batch slot goes to it (None = plain
    shuffles); `level`: each row's curriculum level, 0 = easiest (needed with `pacing`); `pacing`: the warm phase.
    """

    def __init__(
        self,
        n_rows: int,
        batch_size: int,
        seed: int,
        *,
        task: np.ndarray | None = None,
        probs: np.ndarray | None = None,
        level: np.ndarray | None = None,
        pacing: Pacing | None = None,
    ) -> None:
        self.n_rows, self.batch_size, self.seed = n_rows, batch_size, seed
        self.per_epoch = math.ceil(n_rows / batch_size)
        self.probs, self.pacing = probs, pacing
        # a mixture draws from each task's rows, else all rows are one pool; each from easiest to hardest (by level,
        # ties in row order; without a curriculum, simply in row order)
        pool_of = np.asarray(task) if probs is not None and task is not None else np.zeros(n_rows, dtype=np.int64)
        by_level = np.lexsort((np.arange(n_rows), level if level is not None else np.zeros(n_rows)))
        self.members = [by_level[pool_of[by_level] == t] for t in range(len(probs) if probs is not None else 1)]
        if probs is not None:
            empty = [t for t in range(len(probs)) if probs[t] > 0 and not len(self.members[t])]
            if empty:
                raise ValueError(f"mixture: tasks {empty} have a weight but no training rows")

    def epoch(self, epoch: int) -> list[np.ndarray]:
        if self.pacing is not None and epoch == 0:
            return [self._warm_batch(k) for k in range(self.pacing.batches)]
        if self.probs is None:
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.n_rows)
        else:
            perm = self._mixed(epoch)
        return [perm[i : i + self.batch_size] for i in range(0, self.n_rows, self.batch_size)]

    def _mixed(self, epoch: int) -> np.ndarray:
        """n_rows slots, each a task drawn by `probs`, filled from the task's rows in cycles of fresh permutations."""
        assert self.probs is not None
        slots = np.random.default_rng([self.seed, epoch]).choice(len(self.probs), size=self.n_rows, p=self.probs)
        out = np.empty(self.n_rows, dtype=np.int64)
        for t, members in enumerate(self.members):
            where = np.flatnonzero(slots == t)
            if not len(where):
                continue
            cycles = math.ceil(len(where) / len(members))
            seq = [np.random.default_rng([self.seed, epoch, t + 1, c]).permutation(members) for c in range(cycles)]
            out[where] = np.concatenate(seq)[: len(where)]
        return out

    def _warm_batch(self, k: int) -> np.ndarray:
        """Warm micro-batch k: rows drawn from the easiest share open at k (per task, tasks drawn by `probs`)."""
        assert self.pacing is not None
        rng = np.random.default_rng([self.seed, WARM, k])
        share = self.pacing.share(k)
        if self.probs is None:
            counts = {0: self.batch_size}
        else:
            slots = rng.choice(len(self.probs), size=self.batch_size, p=self.probs)
            counts = {t: int((slots == t).sum()) for t in range(len(self.probs))}
        picked = []
        for t, m in counts.items():
            pool = self.members[t][: max(1, math.ceil(share * len(self.members[t])))]
            if m == 0 or not len(pool):
                continue
            if self.probs is None:  # one pool: a batch of distinct rows, fewer when the pool is smaller
                picked.append(pool[rng.choice(len(pool), size=min(m, len(pool)), replace=False)])
            else:
                picked.append(pool[rng.choice(len(pool), size=m, replace=m > len(pool))])
        return np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)

    def stream(self, epoch: int = 0, cursor: int = 0) -> Iterator[tuple[int, int, np.ndarray]]:
        """(epoch, micro-batches of that epoch consumed after this one, row ids), endlessly from a cursor."""
        while True:
            batches = self.epoch(epoch)
            for k in range(cursor, len(batches)):
                yield epoch, k + 1, batches[k]
            epoch, cursor = epoch + 1, 0


def mixture_probs(settings: MixtureSettings, names: tuple[str, ...], tokens: np.ndarray) -> np.ndarray:
    """Per task (in `names` order) the chance a batch slot draws it: the weights normalised, or tokens^(1/T)."""
    if settings.temperature is not None:
        raw = np.asarray(tokens, dtype=np.float64) ** (1.0 / settings.temperature)
    else:
        unknown = sorted(set(settings.weights) - set(names))
        missing = [n for n in names if n not in settings.weights]
        if unknown or missing:
            problem = f"names tasks the training data lacks: {unknown}" if unknown else f"gives no weight to {missing}"
            raise ValueError(
                f"mixture weights {problem}; the training data's tasks are {list(names)} (0 leaves a task out)"
            )
        raw = np.asarray([settings.weights[n] for n in names], dtype=np.float64)
    if not raw.sum() > 0:
        raise ValueError("mixture: every task's weight is 0")
    return raw / raw.sum()


def batch_order(
    plan: RowPlan, cfg: FinetuneConfig, task_names: tuple[str, ...], max_steps: int
) -> tuple[BatchOrder, str]:
    """The training order `cfg` asks for over `plan`'s rows, and a line saying what it is."""
    notes = []
    probs = None
    if cfg.mixture is not None:
        tokens = np.bincount(plan.task, weights=plan.tokens, minlength=len(task_names))
        probs = mixture_probs(cfg.mixture, task_names, tokens)
        how = f"temperature {cfg.mixture.temperature:g}" if cfg.mixture.temperature is not None else "weights"
        shares = ", ".join(f"{n} {p:.2f}" for n, p in zip(task_names, probs, strict=True))
        notes.append(f"mixture by {how}: {shares}")
    pacing = None
    if cfg.curriculum is not None:
        pacing = curriculum_pacing(cfg.curriculum, max_steps * cfg.grad_accum)
        c = cfg.curriculum
        notes.append(
            f"curriculum by {c.by}{' ' + c.column if c.by == 'column' else ''} ({c.order.replace('_', ' ')}, {c.pacing} "
            f"pacing): from the first {c.start_fraction:.0%} of rows to all over {pacing.batches} micro-batches"
        )
    order = BatchOrder(
        len(plan.rows),
        cfg.batch_size,
        cfg.resolved_seed(),
        task=plan.task,
        probs=probs,
        level=plan.level,
        pacing=pacing,
    )
    return order, "; ".join(notes)


def curriculum_pacing(settings: CurriculumSettings, total_batches: int) -> Pacing:
    batches = max(1, math.ceil(settings.warm_fraction * total_batches))
    return Pacing(batches, settings.pacing, settings.start_fraction, settings.steps)

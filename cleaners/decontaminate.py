"""Leakage out of the train split: near-duplicates of held-out records, and n-grams of external evaluation sets.

Inside one corpus, leakage is near-duplicate content across splits: a train record that is a MinHash
near-duplicate of a validation/test record (``heldout.near_threshold``, the shared held-out index) is
dropped. Word 13-grams it merely shares with held-out records of the same corpus are a domain's phrasing
("is there anything else I can help you with"), not leakage, and are reported, not dropped
(``decontaminate.heldout_ngrams: drop`` drops them as before). Exact n-gram decontamination belongs
against external evaluation sets, as in the GPT-3 and Llama papers: train records sharing a 13-gram with
a file under ``decontaminate.against`` (a benchmark's test set the model will be evaluated on) are dropped.

N-grams are taken per turn (a chat's turns, or a document's text), lowercased, punctuation stripped:
never across a turn boundary or over the role words the text joiner adds. A held-out n-gram found in
more train records than ``max(stock_min_records, stock_share x train records)`` is stock phrasing and
ignored, as the GPT-3 decontamination ignored frequent n-grams; the cut-off grows with the corpus.
The most shared n-grams are listed, with how many train records hold each.

The n-gram check is a hash-partitioned join on disk: held-out and train n-gram hashes are appended to
partition files chosen by the top bits of the hash, and each partition is joined on its own, so memory
is bounded by one partition, not by the corpus.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl

from cleaners.config import DecontamConfig, HeldoutConfig
from cleaners.dedup import FedSignatures, SignatureFeed
from cleaners.heldout import HeldoutIndex
from tuneprep.records import document_text
from tuneprep.stage import Stage, StageOutput

_MUL = np.uint64(0x9E3779B97F4A7C15)
_REC = np.dtype([("gram", "<u8"), ("doc", "<i4")])  # one n-gram occurrence in a partition file
_EXAMPLES = 20
HELDOUT, EXTERNAL = "h", "x"  # partition-file sides: the corpus's held-out splits, the `against` files
NEAR_DUP = "contaminated_near_dup"


def segments(df: pl.DataFrame) -> tuple[list[str], np.ndarray]:
    """Each record's turns (its text, for a document) and the record each came from: what n-grams are taken over."""
    if df.height == 0:
        return [], np.empty(0, np.int64)
    chat = pl.col("format") == "chat"
    parts = df.select(
        pl.when(chat)
        .then(pl.col("messages").list.eval(pl.element().struct.field("content")))
        .otherwise(pl.concat_list(pl.col("text")))
        .alias("parts")
    ).to_series()
    lengths = parts.list.len().fill_null(0).to_numpy().astype(np.int64)
    texts = parts.explode().fill_null("").to_list() if int(lengths.sum()) else []
    return texts, np.repeat(np.arange(df.height), lengths)


def ngram_hashes_batch(
    texts: list[str], n: int, sample: int = 1, positions: bool = False
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """64-bit hashes of every word n-gram (lowercased) of every text, and the index of the text each came from.

    Words are hashed once by polars and combined into n-grams with a polynomial in
    uint64 arithmetic, all vectorised; ``sample`` > 1 keeps one n-gram in ``sample``
    by hash value (the same n-grams on both sides), to bound memory on huge held-out sets.
    ``positions`` also returns each n-gram's first word (an index into the returned word list).
    """
    empty = (np.empty(0, np.uint64), np.empty(0, np.int64))
    if not texts:
        return (*empty, np.empty(0, np.int64), []) if positions else empty
    words = pl.Series(texts, dtype=pl.Utf8).fill_null("").str.to_lowercase().str.extract_all(r"\w+")
    lengths = words.list.len().to_numpy().astype(np.int64)
    flat = words.explode().drop_nulls()
    if flat.len() < n:
        return (*empty, np.empty(0, np.int64), []) if positions else empty
    wh = flat.hash(seed=0).to_numpy()  # stable within one polars version, which is all one run needs
    m = wh.size - n + 1
    grams = np.zeros(m, np.uint64)
    with np.errstate(over="ignore"):  # one word position at a time: O(words) memory, not O(n * words)
        for k in range(n):
            grams += wh[k : k + m] * np.uint64(pow(int(_MUL), n - 1 - k, 1 << 64))
    doc_start = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    doc_of = np.repeat(np.arange(len(texts)), lengths)[: grams.size]
    first = np.arange(grams.size)
    valid = first - doc_start[doc_of] <= lengths[doc_of] - n
    grams, doc_of, first = grams[valid], doc_of[valid], first[valid]
    if sample > 1:
        keep = grams % np.uint64(sample) == 0
        grams, doc_of, first = grams[keep], doc_of[keep], first[keep]
    if positions:
        return grams, doc_of, first, flat.to_list()
    return grams, doc_of


def ngram_hashes(text: str, n: int) -> np.ndarray:
    """The distinct n-gram hashes of one text (empty when it has fewer than n words)."""
    return np.unique(ngram_hashes_batch([text], n)[0])


def _by_doc(doc: np.ndarray, shared: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum ``shared`` and keep the lowest ``owner`` per ``doc``; rows come back sorted by doc."""
    if not doc.size:
        return doc.astype(np.int64), shared.astype(np.int64), owner.astype(np.int32)
    order = np.lexsort((owner, doc))
    doc, shared, owner = doc[order], shared[order], owner[order]
    start = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
    return doc[start].astype(np.int64), np.add.reduceat(shared.astype(np.int64), start), owner[start].astype(np.int32)


def _heldout_index(rec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct held-out n-grams of one partition, each with its lowest-index holder."""
    order = np.lexsort((rec["doc"], rec["gram"]))
    grams, docs = rec["gram"][order], rec["doc"][order]
    first = np.r_[True, grams[1:] != grams[:-1]] if grams.size else np.zeros(0, bool)
    return grams[first], docs[first]


Hits = tuple[np.ndarray, np.ndarray, np.ndarray]  # train doc (sorted), distinct shared n-grams, lowest holder


def _join(
    grams: np.ndarray, owner: np.ndarray, train_grams: np.ndarray, train_doc: np.ndarray, max_docs: int | None
) -> tuple[Hits, int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per train doc: distinct held-out n-grams shared (stock phrasing left out) and the lowest holder; how many
    held-out n-grams were stock phrasing (in more than ``max_docs`` train docs); and every shared held-out
    n-gram with the number of train docs holding it and its lowest holder."""
    empty = np.empty(0, np.int64)
    if not grams.size or not train_grams.size:
        return _by_doc(empty, empty, empty), 0, (np.empty(0, np.uint64), empty, empty)
    pos = np.searchsorted(grams, train_grams).clip(max=grams.size - 1)
    hit = grams[pos] == train_grams
    pairs = np.unique((pos[hit].astype(np.int64) << 32) | train_doc[hit].astype(np.int64))
    pos, doc = pairs >> 32, pairs & 0xFFFFFFFF
    per_gram = np.bincount(pos, minlength=grams.size)
    shared = np.flatnonzero(per_gram)
    counts = (grams[shared], per_gram[shared], owner[shared].astype(np.int64))
    n_common = 0
    if max_docs is not None:
        common = per_gram > max_docs
        n_common = int(common.sum())
        keep = ~common[pos]
        pos, doc = pos[keep], doc[keep]
    return _by_doc(doc, np.ones(doc.size, np.int64), owner[pos]), n_common, counts


def _merge_hits(found: list[Hits]) -> Hits:
    return _by_doc(*(np.concatenate(c) for c in zip(*found, strict=True)))


def _top(grams: np.ndarray, counts: np.ndarray, owner: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """The ``k`` most shared n-grams (ties by hash, so the list does not depend on partition order)."""
    order = np.lexsort((grams, -counts))[:k]
    return grams[order], counts[order], owner[order]


class _Side:
    """One set of records train records are checked against: its holders' names, hits and top n-grams."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.ids: list[str] = []
        self.ngrams = 0
        self.hit_doc = np.empty(0, np.int64)
        self.hit_shared = np.empty(0, np.int64)
        self.hit_owner = np.empty(0, np.int32)
        self.top: tuple[np.ndarray, ...] = (np.empty(0, np.uint64), np.empty(0, np.int64), np.empty(0, np.int64))
        self.batch_counts: Counter = Counter()  # per-batch mode: n-gram -> train records holding it


class Decontaminator(Stage):
    """Checks the train split against the held-out records (``add_heldout``) and external evaluation records
    (``add_external``).

    Usual order: ``fit`` (the external records, then ``add_heldout`` over the held-out splits and
    ``count_train`` over the train split), then ``process`` over the same train records in the same order
    (they are numbered as they come). The near-duplicate check asks the shared held-out index given as
    ``heldout``. Without ``count_train`` (a notebook, a test), ``process`` joins each batch against the
    held-out partitions on its own, and no n-gram counts as stock phrasing.
    Partition files live in ``workdir`` (a temporary folder when None); ``close`` removes it,
    and a new instance first removes what a killed run left there.
    """

    name: ClassVar[str] = "decontaminate"

    def __init__(
        self,
        cfg: DecontamConfig | None = None,
        heldout: HeldoutIndex | None = None,
        splits: Sequence[str] | None = None,
        workdir: Path | None = None,
        partitions: int = 256,
        spill_bytes: int = 16 << 20,
    ) -> None:
        if partitions < 1 or partitions & (partitions - 1) or partitions > 1 << 16:
            raise ValueError(f"partitions must be a power of two up to 65536, got {partitions}")
        self.cfg = cfg or DecontamConfig()
        self.index = heldout  # None turns the near-duplicate check off
        if splits is None:
            splits = heldout.splits if heldout is not None else HeldoutConfig().splits
        self.splits = list(splits)
        self.sides = {HELDOUT: _Side("/".join(self.splits)), EXTERNAL: _Side("against")}
        self.partitions = partitions
        self._shift = np.uint64(64 - partitions.bit_length() + 1)
        self.workdir = Path(workdir) if workdir is not None else None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self._dir: Path | None = None
        self._remove_dir: Callable[[], object] | None = None
        # n-gram rows wait in memory and go to the partition files only past ``spill_bytes`` (a small corpus
        # never touches the disk; appending each batch to 256 files cost more than the join). A spill sorts
        # the rows by partition, briefly holding ~3x spill_bytes: 16 MiB keeps that small beside the rest.
        self.spill_bytes = spill_bytes
        self._pending: dict[str, list[np.ndarray]] = {}
        self._pending_bytes = 0
        self._spilled: set[str] = set()
        self._in_memory: dict[str, tuple[np.ndarray, dict[int, slice]]] = {}  # side -> rows by partition
        self.train_counted: int | None = None  # train records seen by count_train; None = never called
        self._train_seen = 0  # train records seen by process
        self._finalized = False
        self._closed = False
        self.common_ngrams = 0
        self.stock_cutoff: int | None = None
        self.ngram_texts: dict[int, str] = {}  # the words of the top n-grams, once found
        self.flagged = 0
        self.removed = 0
        self.by_reason: Counter = Counter()
        self.examples: list[dict] = []
        self._feed_refused: str | None = None  # why ``use_feed`` could not use the files
        self._held_signed: FedSignatures | None = None
        self._train_signed: FedSignatures | None = None

    def use_feed(self, make_feed: Callable[[], SignatureFeed]) -> None:
        """Read the held-out and train records' MinHash signatures from files the clean step wrote
        (``make_feed()``: a fresh walk over them, one for ``fit`` and one for ``process``) instead of hashing
        their texts again; a record not found in step is hashed here."""
        if self.index is None:
            return
        try:
            self._held_signed = FedSignatures(self.index.hasher, make_feed())
            self._train_signed = FedSignatures(self.index.hasher, make_feed())
        except ValueError as e:  # made with other MinHash settings: hashed here, as without a feed
            self._feed_refused = str(e)

    @property
    def heldout_ids(self) -> list[str]:
        return self.sides[HELDOUT].ids

    @property
    def heldout(self) -> int:
        return len(self.heldout_ids)

    @property
    def heldout_ngrams(self) -> int:
        return self.sides[HELDOUT].ngrams

    def _folder(self) -> Path:
        """The partition folder, made on first use; a temporary one also goes when the stage is garbage-collected
        (a named ``workdir`` does not, as a newer stage may be using it by then)."""
        if self._dir is None:
            if self.workdir is not None:
                self.workdir.mkdir(parents=True, exist_ok=True)
                self._dir = self.workdir
                self._remove_dir = lambda: shutil.rmtree(self.workdir, ignore_errors=True)
            else:
                self._dir = Path(tempfile.mkdtemp(prefix="tuneprep-decontaminate-"))
                self._remove_dir = weakref.finalize(self, shutil.rmtree, self._dir, True)
        return self._dir

    def _path(self, side: str, part: int) -> Path:
        return self._folder() / f"{side}{part:05d}.bin"

    def close(self) -> None:
        """Remove the partition files; summary figures and found hits stay."""
        self._pending.clear()
        self._pending_bytes = 0
        self._in_memory.clear()
        if self._remove_dir is not None:
            self._remove_dir()
        self._closed = True
        self._dir = None
        self._remove_dir = None

    def _partition(self, grams: np.ndarray) -> np.ndarray:
        return (grams >> self._shift).astype(np.int64) if self.partitions > 1 else np.zeros(grams.size, np.int64)

    def _split(self, grams: np.ndarray) -> tuple[np.ndarray, list[tuple[int, slice]]]:
        """An order that groups ``grams`` by partition (stable), and each non-empty partition's slice of it."""
        part = self._partition(grams)
        order = np.argsort(part, kind="stable")
        ends = np.cumsum(np.bincount(part, minlength=self.partitions))
        starts = ends - np.bincount(part, minlength=self.partitions)
        return order, [(p, slice(starts[p], ends[p])) for p in np.flatnonzero(ends - starts).tolist()]

    def _append(self, side: str, grams: np.ndarray, doc: np.ndarray) -> None:
        """Queue (n-gram, doc) rows of ``side``; past ``spill_bytes`` in all, the queues go to the partition files
        (appended: a partition keeps its rows' order)."""
        if not grams.size:
            return
        rec = np.empty(grams.size, _REC)
        rec["gram"], rec["doc"] = grams, doc
        self._pending.setdefault(side, []).append(rec)
        self._pending_bytes += rec.nbytes
        if self._pending_bytes > self.spill_bytes:
            for name in list(self._pending):
                self._spill(name)

    def _take_pending(self, side: str) -> tuple[np.ndarray, list[tuple[int, slice]]]:
        """The queued rows of ``side``, grouped by partition (stable), and each non-empty partition's slice."""
        rec = np.concatenate(self._pending.pop(side))
        self._pending_bytes -= rec.nbytes
        order, parts = self._split(rec["gram"])
        return rec[order], parts

    def _spill(self, side: str) -> None:
        rec, parts = self._take_pending(side)
        for p, rows in parts:
            with open(self._path(side, p), "ab") as f:
                rec[rows].tofile(f)
        self._spilled.add(side)

    def _settle(self) -> None:
        """Before the join: a side that has spilled spills the rest; the others stay in memory, by partition."""
        for side in list(self._pending):
            if side in self._spilled:
                self._spill(side)
            else:
                rec, parts = self._take_pending(side)
                self._in_memory[side] = (rec, dict(parts))

    def _load(self, side: str, part: int) -> np.ndarray:
        if side in self._in_memory:
            rec, parts = self._in_memory[side]
            return rec[parts[part]] if part in parts else np.empty(0, _REC)
        if side not in self._spilled:
            return np.empty(0, _REC)
        return np.fromfile(self._path(side, part), _REC) if self._path(side, part).exists() else np.empty(0, _REC)

    def _drop(self, side: str, part: int) -> None:
        """Forget a partition of ``side`` once it is joined."""
        if side in self._in_memory:
            self._in_memory[side][1].pop(part, None)
        elif side in self._spilled:
            self._path(side, part).unlink(missing_ok=True)

    def _check_open(self, what: str) -> None:
        if self._finalized or self._closed:
            raise RuntimeError(f"{what} after the check started or the stage was closed")

    def _grams(self, texts: list[str], owner: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """N-grams of ``texts`` (turns), each with the record it belongs to (``owner`` maps text -> record)."""
        grams, doc = ngram_hashes_batch(texts, self.cfg.ngram, self.cfg.gram_sample)
        return grams, (doc if owner is None else owner[doc])

    def fit(
        self,
        read_batches: Callable[[], Iterable[pl.DataFrame]],
        external: Callable[[], Iterable[pl.DataFrame]] | None = None,
    ) -> None:
        """The passes ``process`` needs, over the records it will then see (``read_batches()`` is called three
        times): held-out splits indexed, the train split's n-grams counted in the order ``process`` will see
        them (so stock phrasing is known before the first train record is judged), then the words of the most
        shared n-grams looked up in the held-out records. ``external`` gives the ``against`` records."""
        if external is not None:
            for batch in external():
                self.add_external(batch["id"].to_list(), *segments(batch))
        for batch in read_batches():
            held = batch.filter(pl.col("split").is_in(self.splits))
            ids = held["id"].to_list()
            sigs = self._held_signed(held, ids) if self._held_signed is not None else None
            self.add_heldout(ids, document_text(held).to_list(), segments(held), sigs)
        if not self.cfg.enabled:
            return
        for batch in read_batches():
            train = batch.filter(pl.col("split") == "train")
            self.count_train(*segments(train), n_records=train.height)
        self.finalize()
        for batch in read_batches():
            self.name_ngrams(segments(batch.filter(pl.col("split").is_in(self.splits)))[0])
        if external is not None and self._unnamed():
            for batch in external():
                self.name_ngrams(segments(batch)[0])

    def add_heldout(
        self,
        ids: Iterable[str],
        texts: Iterable[str],
        turns: tuple[list[str], np.ndarray] | None = None,
        sigs: np.ndarray | None = None,
    ) -> None:
        """Index held-out records: their n-grams (when enabled; per turn when ``turns`` gives each record's turns
        and owners, else per text) and, through the held-out index, their signatures (``sigs`` when the caller
        has them, else hashed)."""
        self._check_open("add_heldout")
        ids, texts = list(ids), list(texts)
        side = self.sides[HELDOUT]
        if self.cfg.enabled:
            grams, doc = self._grams(*(turns if turns is not None else (texts, None)))
            self._append(HELDOUT, grams, doc + len(side.ids))
            side.ids.extend(ids)
        if self.index is not None:
            self.index.add(texts, ids, sigs)

    def add_external(self, ids: Iterable[str], texts: list[str], owner: np.ndarray | None = None) -> None:
        """Index records of an external evaluation set (``decontaminate.against``): ``texts`` are their turns,
        ``owner`` the record of each (one text per record when None)."""
        self._check_open("add_external")
        side = self.sides[EXTERNAL]
        ids = list(ids)
        grams, doc = self._grams(texts, owner)
        self._append(EXTERNAL, grams, doc + len(side.ids))
        side.ids.extend(ids)

    def count_train(self, texts: Iterable[str], owner: np.ndarray | None = None, n_records: int | None = None) -> None:
        """First pass over the train split, in the order ``process`` will see it: its n-grams go to disk.
        ``texts`` are the records' turns and ``owner`` the record of each (:func:`segments`) over ``n_records``
        records, or one text per record."""
        self._check_open("count_train")
        texts = list(texts)
        seen = self.train_counted or 0
        grams, doc = self._grams(texts, owner)
        self._append("t", grams, doc + seen)
        self.train_counted = seen + (len(texts) if n_records is None else n_records)

    def cutoff(self) -> int | None:
        """Train records a held-out n-gram may be found in before it counts as stock phrasing."""
        if self.train_counted is None:
            return None
        if self.cfg.max_train_docs is not None:
            return self.cfg.max_train_docs
        return max(self.cfg.stock_min_records, math.ceil(self.cfg.stock_share * self.train_counted))

    def finalize(self) -> None:
        """Join each side's n-grams with the train split's, partition by partition, keeping only the train
        records that share n-grams (beyond stock phrasing) and the most shared n-grams."""
        if self._finalized:
            return
        if self._closed:
            raise RuntimeError("finalize after close: the partition files are gone")
        self._finalized = True
        self._settle()
        if not self._in_memory and not self._spilled:
            return
        counted = self.train_counted is not None
        self.stock_cutoff = self.cutoff()
        k = self.cfg.top_ngrams
        found: dict[str, list[Hits]] = {s: [] for s in self.sides}
        pending = dict.fromkeys(self.sides, 0)
        for p in range(self.partitions):
            train = self._load("t", p) if counted else None
            for name, side in self.sides.items():
                grams, owner = _heldout_index(self._load(name, p))
                side.ngrams += grams.size
                self._drop(name, p)
                if not counted:  # kept, sorted and distinct, for the per-batch join in process
                    if grams.size:
                        rec = np.empty(grams.size, _REC)
                        rec["gram"], rec["doc"] = grams, owner
                        rec.tofile(self._path(f"u{name}", p))
                        self._spilled.add(f"u{name}")
                    continue
                hits, n_common, shared = _join(grams, owner, train["gram"], train["doc"], self.stock_cutoff)
                if name == HELDOUT:
                    self.common_ngrams += n_common
                side.top = _top(*(np.concatenate(c) for c in zip(side.top, shared, strict=True)), k)
                found[name].append(hits)
                pending[name] += hits[0].size
                if pending[name] > 1 << 20:  # bounded by the number of train records with any hit
                    found[name] = [_merge_hits(found[name])]
                    pending[name] = 0
            self._drop("t", p)
        self._in_memory.clear()
        for name, side in self.sides.items():
            if found[name]:
                doc, shared, owner = _merge_hits(found[name])
                keep = shared >= self.cfg.min_shared
                side.hit_doc, side.hit_shared, side.hit_owner = doc[keep], shared[keep], owner[keep]

    def _unnamed(self) -> list[int]:
        return [int(g) for s in self.sides.values() for g in s.top[0].tolist() if int(g) not in self.ngram_texts]

    def name_ngrams(self, texts: list[str]) -> None:
        """Find the words of the most shared n-grams in ``texts`` (turns of records that hold them)."""
        wanted = np.array(self._unnamed(), np.uint64)
        if not wanted.size or not texts:
            return
        grams, _, first, words = ngram_hashes_batch(texts, self.cfg.ngram, 1, positions=True)
        hit = np.flatnonzero(np.isin(grams, wanted))
        for i in hit.tolist():
            g = int(grams[i])
            if g not in self.ngram_texts:
                self.ngram_texts[g] = " ".join(words[int(first[i]) : int(first[i]) + self.cfg.ngram])

    def _batch_hits(self, texts: list[str], owner: np.ndarray) -> dict[str, Hits]:
        """Per side: (record index, shared n-grams, holder) of the ``texts``' records, from this batch alone."""
        grams, doc = self._grams(texts, owner)
        order, parts = self._split(grams)
        grams, doc = grams[order], doc[order]
        out: dict[str, Hits] = {}
        for name, side in self.sides.items():
            found = []
            for p, rows in parts:
                if self._path(f"u{name}", p).exists():
                    held = self._load(f"u{name}", p)
                    hits, _, shared = _join(held["gram"], held["doc"], grams[rows], doc[rows], None)
                    found.append(hits)
                    side.batch_counts.update(dict(zip(shared[0].tolist(), shared[1].tolist(), strict=True)))
            if found:
                d, s, o = _merge_hits(found)
                keep = s >= self.cfg.min_shared
                out[name] = (d[keep], s[keep], o[keep])
        if any(s.batch_counts for s in self.sides.values()):
            self._batch_top()
            self.name_ngrams(texts)
        return out

    def _batch_top(self) -> None:
        k = self.cfg.top_ngrams
        for side in self.sides.values():
            if side.batch_counts:
                grams = np.array(list(side.batch_counts), np.uint64)
                counts = np.array(list(side.batch_counts.values()), np.int64)
                side.top = _top(grams, counts, np.full(grams.size, -1, np.int64), k)

    def _counted_hits(self, n: int) -> dict[str, Hits]:
        """The same, for the next ``n`` train records, looked up in what ``finalize`` found."""
        first = self._train_seen
        self._train_seen += n
        if self._train_seen > self.train_counted:
            raise RuntimeError(
                f"process saw {self._train_seen} train records, count_train {self.train_counted}: "
                "both must see the same train records in the same order"
            )
        out = {}
        for name, side in self.sides.items():
            lo, hi = np.searchsorted(side.hit_doc, [first, first + n])
            out[name] = (side.hit_doc[lo:hi] - first, side.hit_shared[lo:hi], side.hit_owner[lo:hi])
        return out

    def _checks(self, batch: pl.DataFrame, train_rows: np.ndarray) -> dict[int, tuple[str, str, bool]]:
        """Reason, detail and whether it drops, for each flagged train record, by its position among ``train_rows``.

        A near-duplicate of a held-out record comes first, then n-grams of an external set, then n-grams
        shared with the corpus's held-out records."""
        train = batch[train_rows.tolist()] if train_rows.size else batch.clear()
        if self.train_counted is None:
            if self._closed:
                raise RuntimeError("process after close: the held-out partitions are gone")
            hits = self._batch_hits(*segments(train))
        else:
            hits = self._counted_hits(train_rows.size)
        n = self.cfg.ngram
        drop = self.cfg.action == "drop"
        out: dict[int, tuple[str, str, bool]] = {}
        if self.index is not None and len(self.index) and train.height:
            sigs = self._train_signed(train) if self._train_signed is not None else None
            rows, sims = self.index.best_matches(document_text(train).to_list(), sigs)
            for i in np.flatnonzero(rows >= 0).tolist():
                out[i] = (NEAR_DUP, f"jaccard {sims[i]:.2f} with {self.index.keys[int(rows[i])]}", drop)
        for name, reason, drops in (
            (EXTERNAL, f"contaminated_external_{n}gram", drop),
            (HELDOUT, f"contaminated_{n}gram", self.cfg.heldout_ngrams == "drop"),
        ):
            if name not in hits:
                continue
            side = self.sides[name]
            for i, s, o in zip(*(h.tolist() for h in hits[name]), strict=True):
                if i not in out:
                    out[i] = (reason, f"{s} shared {n}-grams with {side.ids[o]}", drops)
        return out

    def process(self, batch: pl.DataFrame) -> StageOutput:
        self.finalize()
        has_grams = any(s.ngrams for s in self.sides.values())
        if not self.cfg.enabled or batch.height == 0 or (not has_grams and self.index is None):
            return StageOutput.keep_all(batch, self.name)
        train_rows = np.flatnonzero((batch["split"] == "train").fill_null(False).to_numpy())
        found = self._checks(batch, train_rows)
        if not found:
            return StageOutput.keep_all(batch, self.name)
        by_row = {int(train_rows[i]): v for i, v in sorted(found.items())}
        ids = batch["id"]
        for row, (reason, detail, drops) in by_row.items():
            self.by_reason[reason] += 1
            if len(self.examples) < _EXAMPLES:
                self.examples.append({"id": ids[row], "reason": reason, "detail": detail, "dropped": drops})
        self.flagged += len(by_row)
        gone = {row: v for row, v in by_row.items() if v[2]}
        if not gone:
            return StageOutput.keep_all(batch, self.name)
        self.removed += len(gone)
        hit = np.zeros(batch.height, bool)
        hit[list(gone)] = True
        hit = pl.Series(hit)
        dropped = self.drop(batch.filter(hit), "contaminated").with_columns(
            pl.Series("reason", [r for r, _, _ in gone.values()], dtype=pl.Utf8),
            pl.Series("detail", [d for _, d, _ in gone.values()], dtype=pl.Utf8),
        )
        return StageOutput(batch.filter(~hit), dropped)

    def checkpoint(self) -> object:
        """Where ``process`` is in the train records, for ``rollback`` when a batch is retried in parts."""
        counts = [Counter(side.batch_counts) for side in self.sides.values()]
        fed = self._train_signed.position() if self._train_signed is not None else None
        return self._train_seen, self.flagged, self.removed, Counter(self.by_reason), len(self.examples), counts, fed

    def rollback(self, state: object) -> None:
        self._train_seen, self.flagged, self.removed, self.by_reason, n_examples, counts, fed = state
        if self._train_signed is not None:
            self._train_signed.seek(fed)
        del self.examples[n_examples:]
        for side, c in zip(self.sides.values(), counts, strict=True):
            side.batch_counts = c

    def passed_over(self, records: pl.DataFrame) -> None:
        """A quarantined train record was counted by ``count_train``: the next one is numbered after it."""
        if self.train_counted is not None:
            self._train_seen += int((records["split"] == "train").fill_null(False).sum())

    def top_ngrams(self) -> list[dict]:
        """The most shared n-grams, most train records first, with whether they were stock phrasing."""
        out = []
        for side in self.sides.values():
            for g, c in zip(side.top[0].tolist(), side.top[1].tolist(), strict=True):
                stock = self.stock_cutoff is not None and c > self.stock_cutoff
                text = self.ngram_texts.get(int(g), f"(hash {int(g):016x})")
                out.append({"ngram": text, "train_records": int(c), "with": side.label, "stock": bool(stock)})
        out.sort(key=lambda r: (-r["train_records"], r["ngram"]))
        return out[: self.cfg.top_ngrams]

    def summary(self) -> dict:
        return {
            "heldout_records": self.heldout,
            "heldout_ngrams": self.heldout_ngrams,
            "external_records": len(self.sides[EXTERNAL].ids),
            "external_ngrams": self.sides[EXTERNAL].ngrams,
            "flagged": self.flagged,
            "removed": self.removed,
            "by_reason": dict(sorted(self.by_reason.items())),
            "common_ngrams_ignored": self.common_ngrams,
            "stock_cutoff": self.stock_cutoff,
            "action": self.cfg.action,
            "heldout_ngrams_action": self.cfg.heldout_ngrams,
            "top_ngrams": self.top_ngrams(),
            "examples": self.examples[:5],
        } | ({"signature_feed_lost": lost} if (lost := self._feed_lost()) else {})

    def _feed_lost(self) -> str | None:
        """Why the clean step's signatures were not (or no longer) used, if they were offered."""
        signed = (s.lost for s in (self._held_signed, self._train_signed) if s is not None)
        return self._feed_refused or next((lost for lost in signed if lost), None)

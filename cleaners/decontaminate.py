"""Remove (or report) train records that overlap validation/test text.

Two checks, as NeMo Curator and the GPT-3 paper do: any shared word 13-gram
(lowercased, punctuation stripped), and a MinHash near-duplicate match against
the held-out records. Held-out n-grams that occur in many train records are stock
phrasing (a signature line, a template sentence), not leakage, and are ignored,
as the GPT-3 decontamination did for frequent n-grams. Grouped splitting already keeps near-duplicate clusters
together; this catches what slips past it (a shared paragraph, a quoted answer).

The n-gram check is a hash-partitioned join on disk: held-out and train n-gram hashes
are appended to partition files chosen by the top bits of the hash, and each partition
is joined on its own, so memory is bounded by one partition, not by the corpus.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl

from cleaners.config import DecontamConfig, HeldoutConfig
from cleaners.heldout import HeldoutIndex
from tuneprep.records import document_text
from tuneprep.stage import Stage, StageOutput

_MUL = np.uint64(0x9E3779B97F4A7C15)
_REC = np.dtype([("gram", "<u8"), ("doc", "<i4")])  # one n-gram occurrence in a partition file
_EXAMPLES = 20


def ngram_hashes_batch(texts: list[str], n: int, sample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every word n-gram (lowercased) of every text, and the index of the text each came from.

    Words are hashed once by polars and combined into n-grams with a polynomial in
    uint64 arithmetic, all vectorised; ``sample`` > 1 keeps one n-gram in ``sample``
    by hash value (the same n-grams on both sides), to bound memory on huge held-out sets.
    """
    if not texts:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    words = pl.Series(texts, dtype=pl.Utf8).fill_null("").str.to_lowercase().str.extract_all(r"\w+")
    lengths = words.list.len().to_numpy().astype(np.int64)
    flat = words.explode().drop_nulls()
    if flat.len() < n:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    wh = flat.hash(seed=0).to_numpy()  # stable within one polars version, which is all one run needs
    m = wh.size - n + 1
    grams = np.zeros(m, np.uint64)
    with np.errstate(over="ignore"):  # one word position at a time: O(words) memory, not O(n * words)
        for k in range(n):
            grams += wh[k : k + m] * np.uint64(pow(int(_MUL), n - 1 - k, 1 << 64))
    doc_start = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    doc_of = np.repeat(np.arange(len(texts)), lengths)[: grams.size]
    valid = np.arange(grams.size) - doc_start[doc_of] <= lengths[doc_of] - n
    grams, doc_of = grams[valid], doc_of[valid]
    if sample > 1:
        keep = grams % np.uint64(sample) == 0
        grams, doc_of = grams[keep], doc_of[keep]
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


def _join(
    grams: np.ndarray, owner: np.ndarray, train_grams: np.ndarray, train_doc: np.ndarray, max_docs: int | None
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], int]:
    """Per train doc: distinct held-out n-grams shared (stock phrasing left out) and the lowest holder; and how many
    held-out n-grams were stock phrasing (in more than ``max_docs`` train docs)."""
    empty = np.empty(0, np.int64)
    if not grams.size or not train_grams.size:
        return _by_doc(empty, empty, empty), 0
    pos = np.searchsorted(grams, train_grams).clip(max=grams.size - 1)
    hit = grams[pos] == train_grams
    pairs = np.unique((pos[hit].astype(np.int64) << 32) | train_doc[hit].astype(np.int64))
    pos, doc = pairs >> 32, pairs & 0xFFFFFFFF
    n_common = 0
    if max_docs is not None:
        common = np.bincount(pos, minlength=grams.size) > max_docs
        n_common = int(common.sum())
        keep = ~common[pos]
        pos, doc = pos[keep], doc[keep]
    return _by_doc(doc, np.ones(doc.size, np.int64), owner[pos]), n_common


class Decontaminator(Stage):
    """Checks the train split against the held-out records given to ``add_heldout``.

    Usual order: ``fit`` (``add_heldout`` over the held-out splits, ``count_train`` over the train
    split), then ``process`` over the same train records in the same order (they are numbered as they
    come). The near-duplicate check asks the shared held-out index given as ``heldout``. Without ``count_train`` (a notebook, a test), ``process`` joins each batch against the
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
    ) -> None:
        if partitions < 1 or partitions & (partitions - 1) or partitions > 1 << 16:
            raise ValueError(f"partitions must be a power of two up to 65536, got {partitions}")
        self.cfg = cfg or DecontamConfig()
        self.index = heldout  # None turns the near-duplicate check off
        if splits is None:
            splits = heldout.splits if heldout is not None else HeldoutConfig().splits
        self.splits = list(splits)
        self.heldout_ids: list[str] = []
        self.partitions = partitions
        self._shift = np.uint64(64 - partitions.bit_length() + 1)
        self.workdir = Path(workdir) if workdir is not None else None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self._dir: Path | None = None
        self._remove_dir: Callable[[], object] | None = None
        self.train_counted: int | None = None  # train records seen by count_train; None = never called
        self._train_seen = 0  # train records seen by process
        self._finalized = False
        self._closed = False
        self.heldout_ngrams = 0
        self.common_ngrams = 0
        # train records with at least min_shared shared n-grams: global index (sorted), count, held-out holder
        self._hit_doc = np.empty(0, np.int64)
        self._hit_shared = np.empty(0, np.int64)
        self._hit_owner = np.empty(0, np.int32)
        self.flagged = 0
        self.examples: list[dict] = []

    @property
    def heldout(self) -> int:
        return len(self.heldout_ids)

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
        """Append (n-gram, doc) rows to the partition files of ``side``, keeping their order within a partition."""
        if not grams.size:
            return
        order, parts = self._split(grams)
        rec = np.empty(grams.size, _REC)
        rec["gram"], rec["doc"] = grams[order], doc[order]
        for p, rows in parts:
            with open(self._path(side, p), "ab") as f:
                rec[rows].tofile(f)

    def _load(self, side: str, part: int) -> np.ndarray:
        path = self._path(side, part)
        return np.fromfile(path, _REC) if path.exists() else np.empty(0, _REC)

    def _check_open(self, what: str) -> None:
        if self._finalized or self._closed:
            raise RuntimeError(f"{what} after the check started or the stage was closed")

    def fit(self, read_batches: Callable[[], Iterable[pl.DataFrame]]) -> None:
        """The two passes ``process`` needs, over the records it will then see (``read_batches()`` is called twice).

        First the held-out splits are indexed, then the train split's n-grams are counted in the order
        ``process`` will see them, so stock phrasing is known before the first train record is judged.
        """
        for batch in read_batches():
            held = batch.filter(pl.col("split").is_in(self.splits))
            self.add_heldout(held["id"].to_list(), document_text(held).to_list())
        if not self.cfg.enabled:
            return
        for batch in read_batches():
            self.count_train(document_text(batch.filter(pl.col("split") == "train")).to_list())

    def add_heldout(self, ids: Iterable[str], texts: Iterable[str]) -> None:
        """Index held-out records: their n-grams (when enabled) and, through the held-out index, their signatures."""
        self._check_open("add_heldout")
        ids, texts = list(ids), list(texts)
        if self.cfg.enabled:
            grams, doc = ngram_hashes_batch(texts, self.cfg.ngram, self.cfg.gram_sample)
            self._append("h", grams, doc + len(self.heldout_ids))
            self.heldout_ids.extend(ids)
        if self.index is not None:
            self.index.add(texts, ids)

    def count_train(self, texts: Iterable[str]) -> None:
        """First pass over the train split, in the order ``process`` will see it: its n-grams go to disk."""
        self._check_open("count_train")
        texts = list(texts)
        seen = self.train_counted or 0
        grams, doc = ngram_hashes_batch(texts, self.cfg.ngram, self.cfg.gram_sample)
        self._append("t", grams, doc + seen)
        self.train_counted = seen + len(texts)

    def finalize(self) -> None:
        """Join held-out and train n-grams partition by partition, keeping only the contaminated train records."""
        if self._finalized:
            return
        if self._closed:
            raise RuntimeError("finalize after close: the partition files are gone")
        self._finalized = True
        if self._dir is None:
            return
        counted = self.train_counted is not None
        found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        new = merged = 0
        for p in range(self.partitions):
            grams, owner = _heldout_index(self._load("h", p))
            self.heldout_ngrams += grams.size
            if not counted:  # kept, sorted and distinct, for the per-batch join in process
                self._path("h", p).unlink(missing_ok=True)
                if grams.size:
                    rec = np.empty(grams.size, _REC)
                    rec["gram"], rec["doc"] = grams, owner
                    rec.tofile(self._path("u", p))
                continue
            train = self._load("t", p)
            hits, n_common = _join(grams, owner, train["gram"], train["doc"], self.cfg.max_train_docs)
            del train
            self._path("h", p).unlink(missing_ok=True)
            self._path("t", p).unlink(missing_ok=True)
            self.common_ngrams += n_common
            found.append(hits)
            new += hits[0].size
            if new > max(merged, 1 << 20):  # keeps this bounded by the number of train records with any hit
                found = [_by_doc(*(np.concatenate(c) for c in zip(*found, strict=True)))]
                merged, new = found[0][0].size, 0
        if found:
            doc, shared, owner = _by_doc(*(np.concatenate(c) for c in zip(*found, strict=True)))
            keep = shared >= self.cfg.min_shared
            self._hit_doc, self._hit_shared, self._hit_owner = doc[keep], shared[keep], owner[keep]

    def _batch_hits(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(text index, shared n-grams, held-out holder) of the contaminated ``texts``, from this batch alone."""
        grams, doc = ngram_hashes_batch(texts, self.cfg.ngram, self.cfg.gram_sample)
        order, parts = self._split(grams)
        grams, doc = grams[order], doc[order]
        found = []
        for p, rows in parts:
            if self._path("u", p).exists():
                held = self._load("u", p)
                found.append(_join(held["gram"], held["doc"], grams[rows], doc[rows], None)[0])
        if not found:
            empty = np.empty(0, np.int64)
            return empty, empty, np.empty(0, np.int32)
        doc, shared, owner = _by_doc(*(np.concatenate(c) for c in zip(*found, strict=True)))
        keep = shared >= self.cfg.min_shared
        return doc[keep], shared[keep], owner[keep]

    def _counted_hits(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The same, for the next ``n`` train records, looked up in what ``finalize`` found."""
        first = self._train_seen
        self._train_seen += n
        if self._train_seen > self.train_counted:
            raise RuntimeError(
                f"process saw {self._train_seen} train records, count_train {self.train_counted}: "
                "both must see the same train records in the same order"
            )
        lo, hi = np.searchsorted(self._hit_doc, [first, first + n])
        return self._hit_doc[lo:hi] - first, self._hit_shared[lo:hi], self._hit_owner[lo:hi]

    def _checks(self, batch: pl.DataFrame, train_rows: np.ndarray) -> dict[int, tuple[str, str]]:
        """Reason and detail for each contaminated train record, by its position among ``train_rows``."""
        need_text = self.train_counted is None or self.index is not None
        texts = document_text(batch).gather(train_rows).to_list() if need_text else []
        if self.train_counted is None:
            if self._closed:
                raise RuntimeError("process after close: the held-out partitions are gone")
            doc, shared, owner = self._batch_hits(texts)
        else:
            doc, shared, owner = self._counted_hits(train_rows.size)
        n = self.cfg.ngram
        out = {
            i: (f"contaminated_{n}gram", f"{s} shared {n}-grams with {self.heldout_ids[o]}")
            for i, s, o in zip(doc.tolist(), shared.tolist(), owner.tolist(), strict=True)
        }
        if self.index is not None and len(self.index) and texts:
            rows, sims = self.index.best_matches(texts)
            for i in np.flatnonzero(rows >= 0).tolist():
                if i not in out:
                    out[i] = ("contaminated_near_dup", f"jaccard {sims[i]:.2f} with {self.index.keys[int(rows[i])]}")
        return out

    def process(self, batch: pl.DataFrame) -> StageOutput:
        self.finalize()
        if not self.cfg.enabled or batch.height == 0 or (not self.heldout_ngrams and self.index is None):
            return StageOutput.keep_all(batch, self.name)
        train_rows = np.flatnonzero((batch["split"] == "train").fill_null(False).to_numpy())
        found = self._checks(batch, train_rows)
        if not found:
            return StageOutput.keep_all(batch, self.name)
        by_row = {int(train_rows[i]): v for i, v in sorted(found.items())}
        ids = batch["id"]
        for row, (reason, detail) in list(by_row.items())[: _EXAMPLES - len(self.examples)]:
            self.examples.append({"id": ids[row], "reason": reason, "detail": detail})
        self.flagged += len(by_row)
        if self.cfg.action == "report":
            return StageOutput.keep_all(batch, self.name)
        hit = np.zeros(batch.height, bool)
        hit[list(by_row)] = True
        hit = pl.Series(hit)
        dropped = self.drop(batch.filter(hit), "contaminated").with_columns(
            pl.Series("reason", [r for r, _ in by_row.values()], dtype=pl.Utf8),
            pl.Series("detail", [d for _, d in by_row.values()], dtype=pl.Utf8),
        )
        return StageOutput(batch.filter(~hit), dropped)

    def checkpoint(self) -> object:
        """Where ``process`` is in the train records, for ``rollback`` when a batch is retried in parts."""
        return self._train_seen, self.flagged, len(self.examples)

    def rollback(self, state: object) -> None:
        self._train_seen, self.flagged, n_examples = state
        del self.examples[n_examples:]

    def passed_over(self, records: pl.DataFrame) -> None:
        """A quarantined train record was counted by ``count_train``: the next one is numbered after it."""
        if self.train_counted is not None:
            self._train_seen += int((records["split"] == "train").fill_null(False).sum())

    def summary(self) -> dict:
        return {
            "heldout_records": self.heldout,
            "heldout_ngrams": self.heldout_ngrams,
            "flagged": self.flagged,
            "common_ngrams_ignored": self.common_ngrams,
            "action": self.cfg.action,
            "examples": self.examples[:5],
        }

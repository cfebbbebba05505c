"""What every augmenter shares: the interface, per-record seeds and the spans no augmenter may touch.

Facts a model must learn verbatim (prices, order ids, dates, e-mails, URLs, template placeholders,
numbers in words, times, counts, names; see ``augment.text`` and ``augment.facts``) are protected:
word-level augmenters leave them alone and back-translation masks them.
"""

from __future__ import annotations

import random
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import xxhash

from augment.text import FactRules, TextBatch, merge

Span = tuple[int, int]
WORD_RE = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def protected_spans(text: str, extra_words: Sequence[str] = (), rules: FactRules | None = None) -> list[Span]:
    """Sorted, merged ``(start, end)`` spans of ``text`` that augmenters must keep verbatim.

    ``extra_words`` are keep-words and names, matched case-insensitively on word boundaries; ``rules``
    the fact rules (all by default). Computed by :class:`augment.text.TextBatch`; its format spans are
    those of the regex ``augment.text.REFERENCE``, its fact rules those of ``augment.facts.spacy_reference``.
    """
    return TextBatch([text], extra_words, rules).spans(0)


def edit_count(n: int, rate: float, minimum: int = 1, maximum: int | None = None) -> int:
    """How many of ``n`` eligible items to edit: ``rate * n`` rounded, then clamped to [minimum, maximum] and n."""
    k = max(minimum, round(rate * n))
    if maximum is not None:
        k = min(k, maximum)
    return min(k, n)


def overlaps(start: int, end: int, spans: Sequence[Span]) -> bool:
    return any(s < end and start < e for s, e in spans)


def seed_for(record_id: str, run_seed: int, kind: str, variant: int = 0) -> int:
    """A 63-bit seed from the record, run and augmenter, stable across processes and machines (unlike ``hash()``).

    xxh3: a blake2b digest cost more than the edits of a sentence.
    """
    key = f"{run_seed}\x00{kind}\x00{variant}\x00{record_id}".encode("utf-8", "surrogatepass")
    return xxhash.xxh3_64_intdigest(key) >> 1


def seeds_for(record_ids: Sequence[str], run_seed: int, kind: str, variant: int = 0) -> list[int]:
    """:func:`seed_for` of each record id, the shared part of the key encoded once."""
    prefix = f"{run_seed}\x00{kind}\x00{variant}\x00"
    digest = xxhash.xxh3_64_intdigest
    # encoded here: xxhash 3 would take the str (a third faster) but xxhash 4 refuses it, and a lone surrogate
    # needs "surrogatepass" either way
    return [digest((prefix + rid).encode("utf-8", "surrogatepass")) >> 1 for rid in record_ids]


def sub_seed(seed: int, part: int | str) -> int:
    """Derive a seed for a part of a record (a chat turn, a sentence) without clashing with others."""
    return seed_for(str(part), seed, "part")


def match_case(original: str, replacement: str) -> str:
    """Give ``replacement`` the capitalisation pattern of ``original``."""
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def sentence_initial(text: str, start: int) -> bool:
    """True when the word at ``start`` begins the text, a sentence, a line or a quoted turn."""
    before = text[:start].rstrip(" \t\"'“‘([")
    return not before or before[-1] in ".!?\n:;"


@dataclass
class Word:
    text: str
    start: int
    end: int
    protected: bool


def words(text: str, spans: Sequence[Span]) -> list[Word]:
    """Alphabetic words (apostrophes kept inside) with whether they touch a protected span."""
    return [Word(m.group(), m.start(), m.end(), overlaps(m.start(), m.end(), spans)) for m in WORD_RE.finditer(text)]


_SENTENCE_END = re.compile(r"[.!?\n]")


class Units:
    """A text as ``gaps[0] units[0] gaps[1] … units[-1] gaps[-1]`` for word-level edits.

    Units are free words or whole protected spans (``locked``); gaps keep the
    original spacing and punctuation so joining an unedited Units gives the text back.
    ``sids`` numbers each unit's sentence (a gap holding . ! ? or a newline starts one).
    """

    __slots__ = ("gaps", "locked", "sids", "units")

    def __init__(self, text: str, spans: Sequence[Span]) -> None:
        pieces: list[tuple[int, int, bool]] = [(s, e, True) for s, e in spans]
        pieces += [(w.start, w.end, False) for w in words(text, spans) if not w.protected]
        pieces.sort()
        self.units = [text[s:e] for s, e, _ in pieces]
        self.locked = [lk for _, _, lk in pieces]
        ends = [0] + [e for _, e, _ in pieces]
        self.gaps = [text[ends[k] : pieces[k][0]] for k in range(len(pieces))] + [text[ends[-1] :]]
        self.sids = self._sentence_ids()

    @classmethod
    def from_parts(cls, units: list[str], locked: list[bool], gaps: list[str], sids: list[int]) -> Units:
        self = cls.__new__(cls)
        self.units, self.locked, self.gaps, self.sids = units, locked, gaps, sids
        return self

    def _sentence_ids(self) -> list[int]:
        ids, current = [], 0
        for k in range(len(self.units)):
            if k and _SENTENCE_END.search(self.gaps[k]):
                current += 1
            ids.append(current)
        return ids

    def free(self) -> list[int]:
        return [i for i, locked in enumerate(self.locked) if not locked]

    def join(self) -> str:
        out = [self.gaps[0]]
        for unit, gap in zip(self.units, self.gaps[1:], strict=True):
            out += [unit, gap]
        return "".join(out)


class UnitSlots(NamedTuple):
    """One text's units as positions: starts/ends relative to the text, locked flags and sentence ids."""

    starts: list[int]
    ends: list[int]
    locked: list[bool]
    sids: list[int]
    free: list[int]  # indices of the unlocked units


def unit_arrays(batch: TextBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Global (starts, ends, locked, owner text, sentence number) of every unit of the batch, in order.

    Every search here puts the smaller array into the larger one (spans into words, marks into units):
    numpy's binary search costs per query, so the other way round costs ~10x more.
    """
    ws, we = batch.words()
    free = ~batch.touches_protected(ws, we)
    ws, we = ws[free], we[free]
    ps, pe = batch.span_starts, batch.span_ends
    # Both lists are sorted and disjoint: merge by position instead of sorting.
    total = ps.size + ws.size
    at_p = np.searchsorted(ws, ps) + np.arange(ps.size)
    locked = np.zeros(total, bool)
    locked[at_p] = True
    at_w = np.flatnonzero(~locked)
    starts = np.empty(total, np.int64)
    ends = np.empty(total, np.int64)
    starts[at_p], ends[at_p] = ps, pe
    starts[at_w], ends[at_w] = ws, we
    owner = batch.text_of(starts, ordered=True)
    marks = batch.sentence_marks()
    k = np.searchsorted(starts, marks, side="right") - 1  # the unit at or before each mark
    in_unit = (k >= 0) & (ends[np.maximum(k, 0)] > marks) if starts.size else np.zeros(marks.size, bool)
    # sentence ends in the gaps before each unit: count the marks by the unit that follows them
    after = k[~in_unit] + 1
    sid = np.cumsum(np.bincount(after, minlength=total + 1)[:total]) if total else np.zeros(0, np.int64)
    return starts, ends, locked, owner, sid


def unit_slots(batch: TextBatch) -> list[UnitSlots | None]:
    """Each text's units (free words and protected spans) from the batch analysis, without slicing strings."""
    starts, ends, locked, owner, sid = unit_arrays(batch)
    rel_s = (starts - batch.starts[owner]).tolist()
    rel_e = (ends - batch.starts[owner]).tolist()
    lk, sd = locked.tolist(), sid.tolist()
    bounds_arr = np.searchsorted(owner, np.arange(len(batch) + 1))
    free_idx = np.flatnonzero(~locked)
    local_free = (free_idx - bounds_arr[owner[free_idx]]).tolist()
    fb = np.searchsorted(free_idx, bounds_arr).tolist()
    bounds = bounds_arr.tolist()
    return [
        UnitSlots(rel_s[a:b], rel_e[a:b], lk[a:b], sd[a:b], local_free[fa:fb_]) if ok else None
        for a, b, fa, fb_, ok in zip(bounds[:-1], bounds[1:], fb[:-1], fb[1:], batch.usable, strict=True)
    ]


def batch_units(batch: TextBatch) -> list[Units | None]:
    """:class:`Units` for every text of a batch from its numpy analysis, without a regex per text."""
    out: list[Units | None] = []
    for text, slots in zip(batch.texts, unit_slots(batch), strict=True):
        if slots is None:
            out.append(None)
            continue
        s_, e_ = slots.starts, slots.ends
        units = [text[x:y] for x, y in zip(s_, e_, strict=True)]
        gaps = [text[x:y] for x, y in zip([0, *e_], [*s_, len(text)], strict=True)]
        out.append(Units.from_parts(units, slots.locked, gaps, slots.sids))
    return out


class Rejected(NamedTuple):
    """A variant an augmenter made but must not keep, with the gate reason and detail it is dropped with."""

    text: str
    reason: str
    detail: str


Spans = Sequence[Sequence[Span]]
Output = str | Rejected | None


class Augmenter(ABC):
    """One way of rewriting texts. Output ``i`` depends only on ``texts[i]``, ``seeds[i]`` and its spans.

    ``rules`` picks the fact rules each text's protected spans come from (all by default); a caller
    that found the spans already (the stage, with echoes and corpus terms) passes them as ``spans``.
    """

    kind: ClassVar[str]

    def __init__(
        self, keep_words: Sequence[str] = (), protect_names: Sequence[str] = (), rules: FactRules | None = None
    ) -> None:
        self.extra_words = [*keep_words, *protect_names]
        self.rules = rules

    def protected(self, text: str) -> list[Span]:
        return TextBatch([text], self.extra_words, self.rules).spans(0)

    def batch(self, texts: Sequence[str], spans: Spans | None = None) -> TextBatch:
        """The batch analysis (words, protected mask) every fast augmenter starts from."""
        return TextBatch(texts, self.extra_words, self.rules, spans=spans)

    def params(self) -> dict[str, Any]:
        """The settings a variant was made with, stored as its ``aug_params`` (JSON) for provenance."""
        return {"kind": self.kind}

    def generate(
        self, texts: Sequence[str], ids: Sequence[str], run_seed: int = 0, n: int = 1, spans: Spans | None = None
    ) -> list[list[str]]:
        """Up to ``n`` distinct variants per text, each seeded by its record id, the run seed and its number.

        One call covers all ``n`` rounds, so a backend batches across them; the variants of a
        text do not depend on the other texts, the batch size or the worker that ran it.
        Rejected variants are left out.
        """
        if len(texts) != len(ids):
            raise ValueError(f"{self.kind}: {len(texts)} texts but {len(ids)} ids")
        flat = [t for _ in range(n) for t in texts]
        seeds = [s for v in range(n) for s in seeds_for(ids, run_seed, self.kind, v)]
        flat_spans = None if spans is None else [sp for _ in range(n) for sp in spans]
        out = self(flat, seeds, flat_spans) if flat else []
        result: list[list[str]] = [[] for _ in texts]
        for k, variant in enumerate(out):
            i = k % len(texts)
            if isinstance(variant, str) and variant != texts[i] and variant not in result[i]:
                result[i].append(variant)
        return result

    @abstractmethod
    def augment(self, texts: Sequence[str], seeds: Sequence[int], spans: Spans | None = None) -> list[Output]:
        """One variant per text, None where this augmenter cannot change it, or a :class:`Rejected` variant."""

    def __call__(self, texts: Sequence[str], seeds: Sequence[int], spans: Spans | None = None) -> list[Output]:
        if len(texts) != len(seeds):
            raise ValueError(f"{self.kind}: {len(texts)} texts but {len(seeds)} seeds")
        if spans is not None and len(spans) != len(texts):
            raise ValueError(f"{self.kind}: {len(texts)} texts but {len(spans)} span lists")
        return self.augment(texts, seeds, spans)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release processes or models; the default holds none."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r})"


def rng_for(seed: int) -> random.Random:
    return random.Random(seed)


__all__ = [
    "Augmenter",
    "Output",
    "Rejected",
    "Spans",
    "edit_count",
    "Span",
    "Units",
    "UnitSlots",
    "batch_units",
    "unit_arrays",
    "unit_slots",
    "Word",
    "match_case",
    "overlaps",
    "protected_spans",
    "rng_for",
    "seed_for",
    "seeds_for",
    "sentence_initial",
    "sub_seed",
    "words",
    "merge",
]

"""What every augmenter shares: the interface, per-record seeds and the spans no augmenter may touch.

Facts a model must learn verbatim (prices, order ids, dates, e-mails, URLs,
template placeholders, product and people names) are protected: word-level
augmenters leave them alone and back-translation masks them.
"""

from __future__ import annotations

import hashlib
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

Span = tuple[int, int]

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_PROTECTED = re.compile(
    "|".join(
        [
            r"(?:https?://|ftp://|www\.)[^\s<>\"'()]+[^\s<>\"'().,;:!?]",  # URL, minus trailing punctuation
            r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # e-mail
            r"\{\{.*?\}\}|\{[A-Za-z_][\w.]*\}|\[\[.*?\]\]|%\(\w+\)s|\$\{\w+\}",  # template placeholders
            r"</?[A-Za-z][^<>\n]*>",  # markup tags
            rf"\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b",  # March 5, 2024
            rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b(?:,?\s+\d{{4}})?",  # 5 March 2024
            r"#[\w-]*\w|\b[A-Z]{1,6}-[A-Z0-9-]*\d[A-Z0-9]*\b",  # order / ticket ids: #NW-48213, INV-2024-001
            r"[$€£¥₹]\s?\d[\d,]*(?:\.\d+)?|\w*\d\w*(?:[.,:/-]\w*\d\w*)*\s?%?",  # prices, numbers, dates, times
        ]
    )
)
WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


def _merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def protected_spans(text: str, extra_words: Sequence[str] = ()) -> list[Span]:
    """Sorted, merged ``(start, end)`` spans of ``text`` that augmenters must keep verbatim.

    ``extra_words`` are keep-words and names, matched case-insensitively on word boundaries.
    """
    spans = [m.span() for m in _PROTECTED.finditer(text) if m.group().strip()]
    spans = [(s, e - (len(text[s:e]) - len(text[s:e].rstrip()))) for s, e in spans]
    for word in extra_words:
        if word.strip():
            pattern = rf"(?<!\w){re.escape(word.strip())}(?!\w)"
            spans.extend(m.span() for m in re.finditer(pattern, text, flags=re.IGNORECASE))
    return _merge(spans)


def overlaps(start: int, end: int, spans: Sequence[Span]) -> bool:
    return any(s < end and start < e for s, e in spans)


def seed_for(record_id: str, run_seed: int, kind: str, variant: int = 0) -> int:
    """A 63-bit seed from the record, run and augmenter, stable across processes (unlike ``hash()``)."""
    h = hashlib.blake2b(f"{run_seed}\x00{kind}\x00{variant}\x00{record_id}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big") >> 1


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


class Units:
    """A text as ``gaps[0] units[0] gaps[1] … units[-1] gaps[-1]`` for word-level edits.

    Units are free words or whole protected spans (``locked``); gaps keep the
    original spacing and punctuation so joining an unedited Units gives the text back.
    """

    def __init__(self, text: str, spans: Sequence[Span]) -> None:
        pieces: list[tuple[int, int, bool]] = [(s, e, True) for s, e in spans]
        pieces += [(w.start, w.end, False) for w in words(text, spans) if not w.protected]
        pieces.sort()
        self.units: list[str] = []
        self.locked: list[bool] = []
        self.gaps: list[str] = []
        pos = 0
        for start, end, locked in pieces:
            self.gaps.append(text[pos:start])
            self.units.append(text[start:end])
            self.locked.append(locked)
            pos = end
        self.gaps.append(text[pos:])

    def free(self) -> list[int]:
        return [i for i, locked in enumerate(self.locked) if not locked]

    def sentence_ids(self) -> list[int]:
        """Which sentence each unit is in: a gap holding . ! ? or a newline starts a new one."""
        ids, current = [], 0
        for k in range(len(self.units)):
            if k and re.search(r"[.!?\n]", self.gaps[k]):
                current += 1
            ids.append(current)
        return ids

    def delete(self, i: int) -> None:
        left, right = self.gaps[i], self.gaps[i + 1]
        if not right.strip():
            joined = left if left else right
        elif not left.strip():
            joined = right if i > 0 else ""
        else:
            joined = left.rstrip() + right
        del self.units[i], self.locked[i]
        self.gaps[i : i + 2] = [joined]

    def insert_after(self, i: int, word: str) -> None:
        self.units.insert(i + 1, word)
        self.locked.insert(i + 1, False)
        self.gaps.insert(i + 1, " ")

    def join(self) -> str:
        out = [self.gaps[0]]
        for unit, gap in zip(self.units, self.gaps[1:], strict=True):
            out += [unit, gap]
        return "".join(out)


class Augmenter(ABC):
    """One way of rewriting texts. Output ``i`` depends only on ``texts[i]`` and ``seeds[i]``."""

    kind: ClassVar[str]

    def __init__(self, keep_words: Sequence[str] = (), protect_names: Sequence[str] = ()) -> None:
        self.extra_words = [*keep_words, *protect_names]

    def protected(self, text: str) -> list[Span]:
        return protected_spans(text, self.extra_words)

    @abstractmethod
    def augment(self, texts: Sequence[str], seeds: Sequence[int]) -> list[str | None]:
        """One variant per text, or None where this augmenter cannot change it."""

    def __call__(self, texts: Sequence[str], seeds: Sequence[int]) -> list[str | None]:
        if len(texts) != len(seeds):
            raise ValueError(f"{self.kind}: {len(texts)} texts but {len(seeds)} seeds")
        return self.augment(texts, seeds)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release processes or models; the default holds none."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r})"


def rng_for(seed: int) -> random.Random:
    return random.Random(seed)


__all__ = [
    "Augmenter",
    "Span",
    "Units",
    "Word",
    "match_case",
    "overlaps",
    "protected_spans",
    "rng_for",
    "seed_for",
    "sentence_initial",
    "sub_seed",
    "words",
]

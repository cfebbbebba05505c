"""One pass over a batch of texts: code points, words and protected spans, in numpy.

Augmenters used to run a dozen regular expressions per text; at ~20 words a
sentence that alone cost more than the edits. Here the whole batch is one
UTF-32 array: character classes are table look-ups, numbers/prices/percentages
are run arithmetic, and only rare anchors (``@``, ``://``, ``{``, ``<``, ``#``,
month names next to a number, capitalised codes, configured names) reach a
regular expression, matched at that one position. The spans are the same as
the reference regex in ``REFERENCE`` (tests compare them).

Beyond those format facts, the fact rules (:class:`FactRules`) protect what a sentence is about:
number words and ordinals, quantities (a number and the word it counts), times of day and days,
runs of capitalised words that are not just a sentence's first word (places, venues, people,
products), words of a corpus lexicon (``keys``) and words that recur across the texts of one
conversation (``groups``). They work on word hashes: every word's lower-cased letters are hashed
in one vectorised pass (a random weight per position in the word, summed per word), and each rule
is a look-up of those hashes in a small sorted table or a comparison between neighbouring words.
``augment.facts`` has the same rules as spaCy ``Matcher`` patterns, the definition tests compare with.

Characters above U+FFFF (emoji) count as punctuation: never a word, never edited.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from augment.vocab import (
    AFTER_NUMBER,
    CLOCK_HEADS,
    CLOCK_LINKS,
    CLOCK_WORDS,
    DAY_MODIFIERS,
    DAY_PARTS,
    DAY_WORDS,
    NAME_CONNECTORS,
    NEGATIONS,
    PRONOUN_I,
    QUANTIFIERS,
    TITLE_ABBREVIATIONS,
    number_words,
    stop_words,
)

SEP = "\x00"
Span = tuple[int, int]

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
# The definition of a protected span, as one regex; the fast path below must agree with it.
REFERENCE = re.compile(
    "|".join(
        [
            r"(?:https?://|ftp://|www\.)[^\s<>\"'()\x00]+[^\s<>\"'().,;:!?\x00]",  # URL, minus trailing punctuation
            r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # e-mail
            r"\{\{[^\n\x00]*?\}\}|\{[A-Za-z_][\w.]*\}|\[\[[^\n\x00]*?\]\]|%\(\w+\)s|\$\{\w+\}",  # placeholders
            r"</?[A-Za-z][^<>\n\x00]*>",  # markup tags
            rf"\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b",  # March 5, 2024
            rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b(?:,?\s+\d{{4}})?",  # 5 March 2024
            r"#[\w-]*\w|\b[A-Z][A-Z0-9]{0,5}(?:-[A-Z0-9]+)+\b",  # ids and codes: #NW-48213, INV-2024-001, NW-BROOKSIDE
            r"[$€£¥₹]\s?\d(?:[\d,]*\d)?(?:\.\d+)?|\w*\d\w*(?:[.,:/-]\w*\d\w*)*\s?%?",  # prices, numbers, dates, times
        ]
    )
)
# Anchored pieces of REFERENCE, tried only where their first character occurs.
_URL = re.compile(r"(?:https?://|ftp://|www\.)[^\s<>\"'()\x00]+[^\s<>\"'().,;:!?\x00]")
_EMAIL_DOMAIN = re.compile(r"@[\w-]+(?:\.[\w-]+)+")
_EMAIL_LOCAL = re.compile(r"[\w.+-]")
_PLACEHOLDER = re.compile(r"\{\{[^\n\x00]*?\}\}|\{[A-Za-z_][\w.]*\}|\[\[[^\n\x00]*?\]\]|%\(\w+\)s|\$\{\w+\}")
_TAG = re.compile(r"</?[A-Za-z][^<>\n\x00]*>")
_HASH_ID = re.compile(r"#[\w-]*\w")
_CODE = re.compile(r"[A-Z][A-Z0-9]{0,5}(?:-[A-Z0-9]+)+\b")
_MONTH_DATE = re.compile(rf"{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b")
_DAY_MONTH = re.compile(rf"\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b(?:,?\s+\d{{4}})?")
_URL_STARTS = ("https://", "http://", "ftp://", "www.")
_MONTH_PREFIXES = np.array(
    [
        (ord(m[0]) << 32) | (ord(m[1]) << 16) | ord(m[2])
        for m in ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    ],
    np.int64,
)
_MONTH_PREFIXES_SORTED = np.sort(_MONTH_PREFIXES)
_CURRENCY = "$€£¥₹"
_JOINERS = ".,:/-"
_WORD_JOINERS = "'’-"


(
    LETTER,
    WORD,
    DIGIT,
    SPACE,
    UPPER,
    CURRENCY,
    JOINER,
    WORD_JOINER,
    ANCHOR,
    EMAIL,
    MONTH_INITIAL,
    SENTENCE_END,
    CLAUSE_END,
) = (1 << k for k in range(13))


@cache
def classes() -> np.ndarray:
    """Bit flags per BMP code point (LETTER, WORD = \\w, DIGIT = \\d, SPACE, UPPER, …), built once in ~60 ms."""
    flags = np.zeros(0x10000, np.uint16)
    for c in range(0x10000):
        ch = chr(c)
        f = 0
        if ch.isalpha():
            f |= LETTER
        if ch.isalnum() or ch == "_":
            f |= WORD | EMAIL
        if ch.isdecimal():
            f |= DIGIT
        if ch.isspace():
            f |= SPACE
        if ch.isupper():
            f |= UPPER
        flags[c] = f
    for chars, bit in (
        (_CURRENCY, CURRENCY),
        (_JOINERS, JOINER),
        (_WORD_JOINERS, WORD_JOINER),
        ("@{[<%#", ANCHOR),
        (".+-", EMAIL),
        ("JFMASOND", MONTH_INITIAL),
        (".!?\n", SENTENCE_END),
        (".!?\n:;", CLAUSE_END),
    ):
        flags[[ord(c) for c in chars]] |= bit
    flags[0xFFFF] = 0
    return flags


def _count(positions: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(positions, minlength=n + 1)[: n + 1] if positions.size else np.zeros(n + 1, np.int64)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends of the True runs of a bool array."""
    if mask.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    padded = np.zeros(mask.size + 2, bool)  # False at both ends: every run has a start and an end edge
    padded[1:-1] = mask
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return edges[0::2], edges[1::2]


def _letter_index() -> np.ndarray:
    """Per BMP code point: 0-25 for a-z and A-Z, 26 for anything else."""
    out = np.full(0x10000, 26, np.uint8)
    for k, c in enumerate("abcdefghijklmnopqrstuvwxyz"):
        out[ord(c)] = out[ord(c.upper())] = k
    return out


_LETTER_INDEX = _letter_index()
_FIRST_SHAPE = _LETTER_INDEX.astype(np.int16) * np.int16(
    27 * 16
)  # first-letter term per code point (int16: cache-sized)
_LAST_SHAPE = _LETTER_INDEX.astype(np.int16) * np.int16(16)


def _shape(bmp: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A word's shape: first letter, last letter (a-z or other) and length (capped at 15), as one index."""
    # take: indexing a table with uint32 code points costs twice as much (a cast to intp first)
    return _FIRST_SHAPE.take(bmp.take(starts)) + _LAST_SHAPE.take(bmp.take(ends - 1)) + np.minimum(ends - starts, 15)


@cache
def _shape_table() -> np.ndarray:
    """Shapes of the closed-class words looked up in every text: numbers, clock and day words (stop words,
    connectors, clock links and titles are looked up only where a rule needs them)."""
    table = np.zeros(27 * 27 * 16, bool)
    keys, bits = vocab_table()
    words = [w for w in _vocab_words() if w]
    lens = np.array([len(w) for w in words], np.int64)
    cps = np.frombuffer("".join(words).encode("utf-32-le"), np.uint32)
    starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
    own = classify(word_keys(words))
    wanted = (own & ~np.uint16(W_STOP | W_CONNECTOR | W_CLOCK_LINK | W_I | W_TITLE | W_DAY_MODIFIER)) > 0
    table[_shape(np.minimum(cps, 0xFFFF), starts[wanted], (starts + lens)[wanted])] = True
    return table


def running_count(mask: np.ndarray) -> np.ndarray:
    """``np.cumsum`` of a bool array, ~15x faster: numpy accumulates bools into int64 through a slow cast."""
    return np.cumsum(mask.view(np.int8), dtype=np.int32)


def ranges(counts: np.ndarray) -> np.ndarray:
    """[0..c0-1, 0..c1-1, …] without a Python loop."""
    total = int(counts.sum()) if counts.size else 0
    if total == 0:
        return np.empty(0, np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


@dataclass(frozen=True)
class FactRules:
    """Which fact rules protect words beyond the format facts (numbers with digits, dates, codes, URLs…).

    ``numbers``: number words, ordinals, multipliers and quantities (a number or an amount word with the
    word after it: "two mochas", "12 oz", "4 people", "extra foam", "whole milk"); ``times``: "noon",
    "6:30 pm", "two pm", "quarter to 12", days ("next Tuesday", "tomorrow morning"); ``names``: runs of
    capitalised words that are not only a sentence's first word; ``echoes``: words that recur across
    texts of one group (the turns of a conversation); ``negations``: "not", "no", "never", "don't"…;
    ``phrases``: one or two small words (of, on, the, to, with, de…) between two protected words join them
    into one fact ("light on the chocolate", "Bank of America"): deleting or moving the small word would
    change what the phrase says.
    """

    numbers: bool = True
    times: bool = True
    names: bool = True
    echoes: bool = True
    negations: bool = True
    phrases: bool = True


ALL_RULES = FactRules()
FORMAT_ONLY = FactRules(numbers=False, times=False, names=False, echoes=False, negations=False, phrases=False)
_MAX_BRIDGE = 2  # small words a phrase may hold between two protected words
# Words inside a phrase ("light on the chocolate", "Bank of America", "Villa de la Paz"); not "and", "or",
# "for": two facts joined by them are two facts ("Santa Clara or San Jose", "42 for $129.99").
_BRIDGE_WORDS = frozenset(
    "of on the a an in at to with de del la le du da des di von van der den y".split()  # noqa: SIM905
)


def _weights(n: int) -> np.ndarray:
    """Per position in a word, an odd 64-bit weight; the same on every run and machine."""
    global _WEIGHTS
    if _WEIGHTS.size < n:
        k = np.arange(max(n, 2 * _WEIGHTS.size, 64), dtype=np.uint64)
        _WEIGHTS = mix64(k + np.uint64(0x5EED)) | np.uint64(1)
    return _WEIGHTS


_WEIGHTS = np.empty(0, np.uint64)


def segment_sums(bmp: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per [start, end) of BMP code points: the sum of ``lowered(c) * weight[offset]`` (uint64, wrapping);
    segments must be non-empty."""
    if starts.size == 0:
        return np.empty(0, np.uint64)
    lens = ends - starts
    first = np.cumsum(lens)
    total = int(first[-1])
    first -= lens  # where each segment starts in the flat run of its characters
    offs = np.arange(total, dtype=np.int64) - np.repeat(first, lens)
    values = lowered(bmp[np.repeat(starts, lens) + offs])
    contrib = values * _weights(int(lens.max()))[offs]
    return np.add.reduceat(contrib, first)


def finish_key(sums: np.ndarray, lens: np.ndarray) -> np.ndarray:
    return mix64(sums ^ (lens.astype(np.uint64) * np.uint64(GOLDEN)))  # arrays wrap without a warning


_FEW_TOKENS = 256  # up to this many words, keys come from Python (cached per word): a numpy pass costs more
_FEW_WEIGHTS = 64  # longest word the Python hash takes
_KNOWN_WORDS = 1 << 16  # words whose (key, classes) are kept between batches; the cache starts over past this
_known: dict[str, tuple[int, int]] = {}


@cache
def _few_tables() -> tuple[list[int], list[int]]:
    return _lowered_table().tolist(), _weights(_FEW_WEIGHTS)[:_FEW_WEIGHTS].tolist()


@cache
def _vocab_dict() -> dict[int, int]:
    keys, bits = vocab_table()
    return dict(zip(keys.tolist(), bits.tolist(), strict=True))


def _few_keys(joined: str, starts: list[int], ends: list[int]) -> tuple[list[int], list[int]] | None:
    """:func:`finish_key` of :func:`segment_sums` and :func:`classify` for a few words, in plain Python ints (the
    same keys); None where a word is longer than the weights kept or holds a code point outside the BMP."""
    keys, bits = [], []
    known = _known
    for s, e in zip(starts, ends, strict=True):
        w = joined[s:e]
        hit = known.get(w)
        if hit is None:
            k = _python_key(w)
            if k is None:
                return None
            if len(known) >= _KNOWN_WORDS:
                known.clear()
            hit = known[w] = (k, _vocab_dict().get(k, 0))
        keys.append(hit[0])
        bits.append(hit[1])
    return keys, bits


def _python_key(w: str) -> int | None:
    low, weights = _few_tables()
    n = len(w)
    if n > _FEW_WEIGHTS:
        return None
    try:
        x = sum(low[ord(c)] * wt for c, wt in zip(w, weights, strict=False)) & _M64
    except IndexError:  # a code point above U+FFFF: the numpy path caps it
        return None
    x ^= (n * GOLDEN) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def lowered(bmp: np.ndarray) -> np.ndarray:
    """Lower-cased code points, plus one (so no character weighs zero), as the word hash reads them."""
    return _lowered_table().take(bmp)


@cache
def _lowered_table() -> np.ndarray:
    return tables_lower().astype(np.uint64) + np.uint64(1)


def word_keys(words: Sequence[str]) -> np.ndarray:
    """The case-insensitive hash of each word (or phrase), as :class:`TextBatch` computes it for a word run."""
    parts = [w for w in words if w]
    if not parts:
        return np.empty(0, np.uint64)
    lens = np.fromiter((len(w) for w in parts), np.int64, len(parts))
    starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
    cps = np.frombuffer("".join(parts).encode("utf-32-le", "surrogatepass"), np.uint32)
    return finish_key(segment_sums(np.minimum(cps, 0xFFFF), starts, starts + lens), lens)


def stem_keys(words: Sequence[str]) -> np.ndarray:
    """Keys of the words' singular stems ("mochas" and "mocha" share one), as :meth:`TextBatch.word_stems`."""
    return word_keys([_stem(w.lower()) for w in words])


def _stem(w: str) -> str:
    if len(w) > 2 and w[-2] in "'’" and w[-1] == "s":
        return w[:-2]
    if len(w) >= 4 and w[-1] == "s" and w[-2] != "s":
        return w[:-1]
    return w


# Word classes of the fact rules, one bit each (augment.vocab).
(
    W_NUMBER,
    W_STOP,
    W_CLOCK,
    W_DAY,
    W_DAY_PART,
    W_AFTER_NUMBER,
    W_CLOCK_HEAD,
    W_CLOCK_LINK,
    W_CONNECTOR,
    W_I,
    W_TITLE,
    W_AM_PM,
    W_M,
    W_QUANTIFIER,
    W_NEGATION,
    W_DAY_MODIFIER,
) = (1 << k for k in range(16))


@cache
def vocab_table() -> tuple[np.ndarray, np.ndarray]:
    """Sorted keys of every closed-class word of :mod:`augment.vocab`, and each one's class bits."""
    classes_of = _vocab_classes()
    words = _vocab_words()
    keys = word_keys(words)
    order = np.argsort(keys)
    return keys[order], np.array([classes_of[w] for w in words], np.uint16)[order]


@cache
def _vocab_classes() -> dict[str, int]:
    classes_of: dict[str, int] = {}
    for bit, words in (
        (W_NUMBER, number_words()),
        (W_STOP, stop_words()),
        (W_CLOCK, CLOCK_WORDS.split()),
        (W_DAY, DAY_WORDS.split()),
        (W_DAY_PART, DAY_PARTS.split()),
        (W_AFTER_NUMBER, AFTER_NUMBER.split()),
        (W_CLOCK_HEAD, CLOCK_HEADS.split()),
        (W_CLOCK_LINK, CLOCK_LINKS.split()),
        (W_CONNECTOR, NAME_CONNECTORS.split()),
        (W_I, PRONOUN_I.split()),
        (W_TITLE, TITLE_ABBREVIATIONS.split()),
        (W_AM_PM, ("a", "p")),
        (W_M, ("m",)),
        (W_QUANTIFIER, QUANTIFIERS.split()),
        (W_NEGATION, NEGATIONS.split()),
        (W_DAY_MODIFIER, DAY_MODIFIERS.split()),
    ):
        for w in words:
            classes_of[w] = classes_of.get(w, 0) | bit
    return classes_of


@cache
def _vocab_words() -> tuple[str, ...]:
    return tuple(sorted(_vocab_classes()))


class KeySet:
    """A set of 64-bit word keys: a direct-mapped bucket table in front of a sorted array, so most look-ups
    are one gather (a binary search per query costs ~10x more in numpy)."""

    def __init__(self, keys: np.ndarray | Sequence[int]) -> None:
        self.keys = np.unique(np.asarray(keys, np.uint64))
        bits = max(10, int(np.ceil(np.log2(max(1, self.keys.size) * 4))))
        self._shift = np.uint64(64 - bits)
        bucket = (self.keys >> self._shift).astype(np.int64)
        counts = np.bincount(bucket, minlength=1 << bits)
        alone = counts[bucket] == 1
        self._slot = np.zeros(1 << bits, np.uint64)
        self._pos = np.full(1 << bits, -1, np.int64)
        self._slot[bucket[alone]] = self.keys[alone]
        self._pos[bucket[alone]] = np.flatnonzero(alone)
        self._crowded = counts > 1

    def __len__(self) -> int:
        return int(self.keys.size)

    def index(self, query: np.ndarray) -> np.ndarray:
        """Position of each query in ``keys``, or -1."""
        if query.size == 0 or self.keys.size == 0:
            return np.full(query.shape, -1, np.int64)
        bucket = (query >> self._shift).astype(np.int64)
        out = np.where(self._slot[bucket] == query, self._pos[bucket], -1)
        crowded = self._crowded[bucket]
        if crowded.any():
            q = query[crowded]
            at = np.searchsorted(self.keys, q).clip(max=self.keys.size - 1)
            out[crowded] = np.where(self.keys[at] == q, at, -1)
        return out

    def contains(self, query: np.ndarray) -> np.ndarray:
        return self.index(query) >= 0


@cache
def _vocab_set() -> tuple[KeySet, np.ndarray]:
    keys, bits = vocab_table()
    return KeySet(keys), bits


def classify(keys: np.ndarray) -> np.ndarray:
    """Class bits (``W_*``) of each word key; 0 for a word of no closed class."""
    table, bits = _vocab_set()
    at = table.index(keys)
    return np.where(at >= 0, bits[np.maximum(at, 0)], 0).astype(np.uint16)


class TextBatch:
    """Texts joined with NUL, with per-character classes, word runs and the protected mask.

    ``starts[i]``/``ends[i]`` bound text ``i`` inside ``joined``; texts holding a NUL are
    left out (empty here, and ``usable[i]`` is False) so the join stays unambiguous.
    ``rules`` picks the fact rules (all by default); ``keys`` holds stem keys (:func:`stem_keys`) of
    words protected wherever they occur, in any case; ``groups`` numbers the conversation each text belongs to
    (-1: none), for the echo rule. ``spans`` gives each text's protected spans outright (a caller that
    found them already, for the same texts), and then nothing is searched.
    """

    def __init__(
        self,
        texts: Sequence[str],
        extra_words: Sequence[str] = (),
        rules: FactRules | None = None,
        keys: KeySet | None = None,
        groups: Sequence[int] | np.ndarray | None = None,
        spans: Sequence[Sequence[Span]] | None = None,
        pairs: KeySet | None = None,
        collect: bool = False,
    ) -> None:
        self.texts = list(texts)
        self.joined = SEP.join(self.texts)
        self.cps = np.frombuffer(self.joined.encode("utf-32-le", "surrogatepass"), np.uint32)
        seps = np.flatnonzero(self.cps == 0)
        self.all_usable = seps.size == max(len(self.texts) - 1, 0)  # no text holds a NUL
        if self.all_usable:  # the texts are bounded by the separators
            self.usable = [True] * len(self.texts)
            self.starts = np.concatenate(([0], seps + 1)) if self.texts else seps
            self.ends = np.append(seps, self.cps.size) if self.texts else seps
        else:
            self.usable = [SEP not in t for t in self.texts]
            parts = [t if ok else "" for t, ok in zip(self.texts, self.usable, strict=True)]
            self.joined = SEP.join(parts)
            lengths = np.fromiter(map(len, parts), np.int64, len(parts))
            self.starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1])).astype(np.int64)
            self.ends = self.starts + lengths
            self.cps = np.frombuffer(self.joined.encode("utf-32-le", "surrogatepass"), np.uint32)
        # U+FFFF and above: no class at all
        self._bmp = self.cps if self.joined.isascii() else np.minimum(self.cps, 0xFFFF)
        self.flags = classes().take(self._bmp)  # take: twice as fast as indexing with uint32
        self.letter = (self.flags & LETTER) > 0
        self._words: tuple[np.ndarray, np.ndarray] | None = None
        self._marks: np.ndarray | None = None
        self._terms: list[np.ndarray] = []  # token (start, end) pairs that name or count something
        self._collect = collect
        self._pair_keys = np.empty(0, np.uint64)
        self._pair_starts = np.empty(0, np.int64)
        self._content = (np.empty(0, np.uint64), np.empty(0, np.int64))
        self.rules = ALL_RULES if rules is None else rules
        if spans is not None:
            if len(spans) != len(self.texts):
                raise ValueError(f"{len(spans)} span lists for {len(self.texts)} texts")
            self.span_starts, self.span_ends = self._given(spans)
        else:
            self.span_starts, self.span_ends = self._protected_spans(extra_words, keys, groups, pairs)

    def _given(self, spans: Sequence[Sequence[Span]]) -> tuple[np.ndarray, np.ndarray]:
        flat = [
            (int(self.starts[i]) + s, int(self.starts[i]) + e)
            for i, sp in enumerate(spans)
            if self.usable[i]
            for s, e in sp
        ]
        arr = np.array(flat, np.int64).reshape(-1, 2)
        return _merge_arrays(arr[:, 0], arr[:, 1])

    @property
    def protected(self) -> np.ndarray:
        """Per character: inside a protected span."""
        delta = _count(self.span_starts, self.cps.size) - _count(self.span_ends, self.cps.size)
        return np.cumsum(delta[: self.cps.size]) > 0

    def touches_protected(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """For each [start, end) range: does it overlap a protected span?"""
        return _touches(self.span_starts, self.span_ends, starts, ends)

    def __len__(self) -> int:
        return len(self.texts)

    def text_of(self, positions: np.ndarray, ordered: bool = False) -> np.ndarray:
        """Index of the text each global position falls in; ``ordered`` positions (ascending) take a faster path."""
        if ordered and positions.ndim == 1:
            first = np.searchsorted(positions, self.starts[1:])  # where each text after the first begins
            return np.cumsum(np.bincount(first, minlength=positions.size + 1)[: positions.size])
        return np.searchsorted(self.starts, positions, side="right") - 1

    # --- protected spans ----------------------------------------------------------------------

    def _protected_spans(
        self,
        extra_words: Sequence[str],
        keys: KeySet | None,
        groups: Sequence[int] | np.ndarray | None,
        pairs: KeySet | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sorted, merged global (starts, ends) of the protected spans."""
        n = self.cps.size
        if n == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        f = self.flags
        word = (f & WORD) > 0
        digit = (f & DIGIT) > 0
        rs, re_ = _runs(word)
        numeric = np.zeros(rs.size, bool)  # the \w runs that hold a digit (every digit is \w)
        numeric[np.searchsorted(rs, np.flatnonzero(digit), side="right") - 1] = True
        num_idx = np.flatnonzero(numeric)
        starts, ends = rs[num_idx], re_[num_idx]
        opens, closes = [starts], [ends]
        # Chains of numeric \w runs joined by one of . , : / - (2024-03-12, 129.99, 10:30).
        link = np.zeros(max(num_idx.size - 1, 0), bool)
        if num_idx.size > 1:
            link = (starts[1:] == ends[:-1] + 1) & ((f[ends[:-1]] & JOINER) > 0)
            opens.append(ends[:-1][link])
            closes.append(ends[:-1][link] + 1)
        # "$ 5", "€5": the currency sign (and one space) before a number that starts with a digit.
        lead = starts[((f[starts] & DIGIT) > 0) & (starts >= 1)]
        before = f[lead - 1]
        cur1 = lead[(before & CURRENCY) > 0]
        sp = lead[((before & SPACE) > 0) & (lead >= 2)]
        cur2 = sp[(f[sp - 2] & CURRENCY) > 0]
        opens += [cur1 - 1, cur2 - 2]
        closes += [cur1, cur2]
        # "5%" / "5 %" after a number.
        inside = ends[ends < n]
        pct0 = inside[self.cps[inside] == ord("%")]
        inside = inside[inside + 1 < n]
        sp = inside[((f[inside] & SPACE) > 0) & (self.cps[inside + 1] == ord("%"))]
        opens += [pct0, sp]
        closes += [pct0 + 1, sp + 2]
        spans = self._month_dates(rs, re_, numeric, digit) + self._anchored(word)
        if spans:
            arr = np.array(spans, np.int64)
            opens.append(arr[:, 0])
            closes.append(arr[:, 1])
        fmt_s, fmt_e = _merge_arrays(np.concatenate(opens), np.concatenate(closes))
        name_starts, name_ends = self._names(extra_words, word, rs, re_)
        fact_s, fact_e = self._facts(starts, ends, self._counts(starts, link), fmt_s, fmt_e, keys, groups, pairs)
        ps, pe = _merge_arrays(np.concatenate((fmt_s, name_starts, fact_s)), np.concatenate((fmt_e, name_ends, fact_e)))
        if self.rules.phrases and ps.size > 1:
            ps, pe = self._bridged(ps, pe)
        return ps, pe

    def _bridged(self, ps: np.ndarray, pe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Join two protected spans of one text separated only by spaces and one or two ``_BRIDGE_WORDS``."""
        gap = ps[1:] - pe[:-1]
        near = np.flatnonzero((gap >= 3) & (gap <= 16) & (self.cps[pe[:-1]] == 32) & (self.cps[ps[1:] - 1] == 32))
        if near.size == 0:
            return ps, pe
        owner = self.text_of(np.concatenate((pe[:-1][near], ps[1:][near] - 1)))
        near = near[owner[: near.size] == owner[near.size :]]
        j = self.joined
        joins = [
            i
            for i, a, b in zip(near.tolist(), pe[near].tolist(), ps[near + 1].tolist(), strict=True)
            if (g := j[a:b])[0] == " " == g[-1]
            and 1 <= len(w := g.split()) <= _MAX_BRIDGE
            and len(g) == sum(map(len, w)) + len(w) + 1
            and all(x.lower() in _BRIDGE_WORDS for x in w)
        ]
        if not joins:
            return ps, pe
        k = np.asarray(joins, np.int64)
        return _merge_arrays(np.concatenate((ps, pe[k])), np.concatenate((pe, ps[k + 1])))

    # --- the fact rules -----------------------------------------------------------------------

    def _counts(self, starts: np.ndarray, link: np.ndarray) -> np.ndarray:
        """Per numeric run: is it (the end of) a plain count, which the word after it may be counting?

        Not a price ("$129.99 shipped") nor a date, time or code joined by : / - ("2024-03-12 order").
        """
        if starts.size == 0:
            return np.zeros(0, bool)
        f, cps = self.flags, self.cps
        chain = np.concatenate(([0], running_count(~link)))
        first = starts[np.flatnonzero(np.concatenate(([True], chain[1:] != chain[:-1])))]
        before = f[np.maximum(first - 1, 0)]
        price = (first >= 1) & ((before & CURRENCY) > 0)
        price |= (first >= 2) & ((before & SPACE) > 0) & ((f[np.maximum(first - 2, 0)] & CURRENCY) > 0)
        joiner = cps[np.minimum(starts[1:] - 1, cps.size - 1)] if starts.size > 1 else np.zeros(0, np.uint32)
        datey = link & ((joiner == ord(":")) | (joiner == ord("/")) | (joiner == ord("-")))
        dated = np.bincount(chain[1:], weights=datey.astype(np.float64), minlength=chain[-1] + 1) > 0
        return ~(price | dated)[chain]

    def _facts(
        self,
        num_s: np.ndarray,
        num_e: np.ndarray,
        num_count: np.ndarray,
        fmt_s: np.ndarray,
        fmt_e: np.ndarray,
        keys: KeySet | None,
        groups: Sequence[int] | np.ndarray | None,
        pairs: KeySet | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Spans of the fact rules over one token stream: words (letter runs) and numbers (\\w runs with a digit)."""
        rules = self.rules
        empty = np.empty(0, np.int64)
        use_keys = keys is not None and len(keys) > 0
        use_pairs = pairs is not None and len(pairs) > 0
        use_echo = rules.echoes and groups is not None
        if not (rules.numbers or rules.times or rules.names or rules.negations or use_keys or use_pairs or use_echo):
            return empty, empty
        ws, we = self.words()
        # "oz" of "12oz" belongs to its number: a word inside a \\w run with a digit (a word that touches one is
        # glued to its other \\w characters: a word alone in its \\w runs holds no digit)
        if num_s.size:
            lo = np.searchsorted(we, num_s, side="right")  # the words that overlap each number run
            n_in = np.searchsorted(ws, num_e) - lo
            if n_in.any():
                keep = np.ones(ws.size, bool)
                keep[np.repeat(lo, n_in) + ranges(n_in)] = False
                ws, we = ws[keep], we[keep]
        # token stream: words and numbers, both sorted and disjoint, merged by position
        total = ws.size + num_s.size
        if total == 0:
            return empty, empty
        at_n = np.searchsorted(ws, num_s) + np.arange(num_s.size)
        is_word = np.ones(total, bool)
        is_word[at_n] = False
        at_w = np.flatnonzero(is_word)
        ts = np.empty(total, np.int64)
        te = np.empty(total, np.int64)
        ts[at_w], te[at_w] = ws, we
        ts[at_n], te[at_n] = num_s, num_e
        cps = self.cps
        gap = np.append(ts[1:] - te[:-1], -1)  # characters between a token and the next; -1 for the last
        gap_char = cps[np.minimum(te, cps.size - 1)]
        one_space = (gap == 1) & ((gap_char == 32) | (gap_char == 0xA0))
        glued = one_space | (gap == 0) | ((gap == 1) & (gap_char == ord("-")))  # "12 oz", "12-oz"
        # Word keys: every word for the corpus and echo rules; otherwise only the words that may be of a
        # closed class other than stop words (by first and last letter and length), then the words after
        # a number (is the counted word a stop word?). Every number word, quantifier, negation, clock or day
        # word is then among ``known``: the rules below scan those, not every token.
        key = np.zeros(total, np.uint64)
        cls = np.zeros(total, np.uint16)
        sums = None
        last = total - 1
        if use_keys or use_echo or use_pairs or self._collect:
            sums = segment_sums(self._bmp, ws, we)
            key[at_w] = finish_key(sums, we - ws)
            cls[at_w] = classify(key[at_w])
            known = at_w
        else:
            known = at_w[self._closed_class_shape(ws, we)]
            self._classify_tokens(known, ts, te, key, cls)
        known_cls = cls[known]

        def having(bits: int) -> np.ndarray:
            return known[(known_cls & bits) > 0]

        number_words = having(W_NUMBER)
        number = ~is_word
        number[number_words] = True
        nums = np.sort(np.concatenate((at_n, number_words)))
        nums_next = nums[nums < last]
        nxt = nums_next + 1
        if not (use_keys or use_echo or use_pairs or self._collect):
            after = nxt[glued[nums_next] & is_word[nxt]]
            self._classify_tokens(after[key[after] == 0], ts, te, key, cls)
        count = np.zeros(total, bool)
        count[number_words] = True
        count[at_n] = num_count
        # Rules over index sets (numbers, capitalised words…): a few percent of the tokens each.
        opens: list[np.ndarray] = []
        closes: list[np.ndarray] = []

        def add(first: np.ndarray, end_token: np.ndarray | None = None) -> None:
            opens.append(ts[first])
            closes.append(te[first if end_token is None else end_token])

        if rules.numbers:
            add(number_words)
            counted = count[nums_next] & glued[nums_next] & is_word[nxt] & ((cls[nxt] & W_STOP) == 0) & ~number[nxt]
            add(nums_next[counted], nxt[counted])  # "two mochas", "12 oz", "4 people"
            self._terms += [ts[nxt[counted]], te[nxt[counted]]]
            amounts = having(W_QUANTIFIER)
            amounts = amounts[amounts < last]
            amounts = amounts[glued[amounts] & is_word[amounts + 1] & ((cls[amounts + 1] & (W_STOP | W_NUMBER)) == 0)]
            if amounts.size:  # the next word's class may not be known yet: is it a stop word?
                self._classify_tokens(amounts[key[amounts + 1] == 0] + 1, ts, te, key, cls)
                amounts = amounts[(cls[amounts + 1] & W_STOP) == 0]
            add(amounts, amounts + 1)  # "extra foam", "whole milk", "no sugar"
        if rules.negations:
            add(having(W_NEGATION))
            add(self._contractions(ts, te, is_word))
        if rules.times:
            add(having(W_CLOCK | W_DAY))
            day = having(W_DAY)
            days = day[day < last]
            days = days[one_space[days] & ((cls[days + 1] & W_DAY_PART) > 0)]
            add(days, days + 1)  # "tomorrow morning"
            days = day[day >= 1] - 1  # the token before a day: "next Tuesday"
            days = days[one_space[days] & is_word[days]]
            self._classify_tokens(days[key[days] == 0], ts, te, key, cls)
            days = days[(cls[days] & W_DAY_MODIFIER) > 0]
            add(days, days + 1)
            after = glued[nums_next] & ((cls[nxt] & W_AFTER_NUMBER) > 0)
            add(nums_next[after], nxt[after])  # "6:30 pm", "two pm"
            # "a.m." / "p.m." after a number: tokens "a" and "m" with a dot between
            k = nums_next[glued[nums_next] & ((cls[nxt] & W_AM_PM) > 0)]
            k = k[k + 2 <= last]
            k = k[(ts[k + 2] == te[k + 1] + 1) & (cps[te[k + 1]] == ord(".")) & ((cls[k + 2] & W_M) > 0)]
            if k.size:
                end = te[k + 2]
                opens.append(ts[k])
                closes.append(end + (cps[np.minimum(end, cps.size - 1)] == ord(".")))
            # "quarter to 12", "half past six", "twenty to five"
            clock_heads = having(W_CLOCK_HEAD)
            heads = np.union1d(nums, clock_heads) if clock_heads.size else nums
            heads = heads[(heads + 2 <= last)]
            heads = heads[one_space[heads] & one_space[heads + 1] & is_word[heads + 1]]
            tail = heads + 2
            heads = heads[number[tail] | ((cls[tail] & W_CLOCK) > 0)]
            self._classify_tokens(heads[key[heads + 1] == 0] + 1, ts, te, key, cls)
            heads = heads[(cls[heads + 1] & W_CLOCK_LINK) > 0]
            add(heads, heads + 2)
        if rules.names:
            o, c = self._capitalised(ts, te, is_word, key, cls, one_space, fmt_s, fmt_e)
            opens.append(o)
            closes.append(c)
        if use_keys:
            stems = self._stems(ws, we, sums)  # type: ignore[arg-type]
            k = np.flatnonzero(keys.contains(stems))  # type: ignore[union-attr]
            opens.append(ws[k])
            closes.append(we[k])
        if self._collect:  # every content word, for the corpus's rare words
            content = ((cls[at_w] & (W_STOP | W_NUMBER)) == 0) & ((we - ws) >= 3)
            self._content = (self._stems(ws[content], we[content], sums[content]), ws[content])  # type: ignore[index]
        if use_pairs or self._collect:
            o, c, pk = self._pairs(ts, te, at_w, is_word, key, cls, one_space, ws, we, sums)  # type: ignore[arg-type]
            if use_pairs:
                hit = pairs.contains(pk)  # type: ignore[union-attr]
                opens.append(o[hit])
                closes.append(c[hit])
            if self._collect:
                self._pair_keys = pk
                self._pair_starts = o
        if use_echo:
            skip = (cls[at_w] & (W_NUMBER | W_STOP)) > 0
            o, c = self._echoes(skip, ws, we, sums, groups)  # type: ignore[arg-type]
            opens.append(o)
            closes.append(c)
        if not opens:
            return empty, empty
        return np.concatenate(opens), np.concatenate(closes)

    def _contractions(self, ts: np.ndarray, te: np.ndarray, is_word: np.ndarray) -> np.ndarray:
        """Word tokens ending in "n't" (don't, isn't, can’t): deleting or rewriting one negates the sentence."""
        cps = self.cps
        k = np.flatnonzero((cps[te - 1] | 32) == ord("t"))
        k = k[is_word[k] & ((te[k] - ts[k]) >= 3)]
        e = te[k]
        apostrophe = (cps[e - 2] == ord("'")) | (cps[e - 2] == 0x2019)
        return k[apostrophe & ((cps[e - 1] | 32) == ord("t")) & ((cps[e - 3] | 32) == ord("n"))]

    def _pairs(
        self,
        ts: np.ndarray,
        te: np.ndarray,
        at_w: np.ndarray,
        is_word: np.ndarray,
        key: np.ndarray,
        cls: np.ndarray,
        one_space: np.ndarray,
        ws: np.ndarray,
        we: np.ndarray,
        sums: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Two content words one space apart ("black tea", "oil change"): starts, ends and a key of the pair
        (the first word, the second word's stem, so "herbal teas" is "herbal tea")."""
        stem = np.zeros(ts.size, np.uint64)
        stem[at_w] = self._stems(ws, we, sums)
        content = is_word & ((cls & (W_STOP | W_NUMBER)) == 0)
        k = np.flatnonzero(content[:-1] & content[1:] & one_space[:-1])
        with np.errstate(over="ignore"):
            pk = mix64(key[k] * np.uint64(0x9E3779B97F4A7C15) + stem[k + 1])
        return ts[k], te[k + 1], pk

    def _closed_class_shape(self, ws: np.ndarray, we: np.ndarray) -> np.ndarray:
        """Per word: could it be a closed-class word other than a stop word (same first and last letter, length)?"""
        table = _shape_table()
        return table[_shape(self._bmp, ws, we)]

    def _classify_tokens(self, idx: np.ndarray, ts: np.ndarray, te: np.ndarray, key: np.ndarray, cls: np.ndarray):
        if idx.size == 0:
            return
        if idx.size <= _FEW_TOKENS:
            found = _few_keys(self.joined, ts[idx].tolist(), te[idx].tolist())
            if found is not None:
                key[idx], cls[idx] = found
                return
        key[idx] = finish_key(segment_sums(self._bmp, ts[idx], te[idx]), te[idx] - ts[idx])
        cls[idx] = classify(key[idx])

    def _stems(self, ws: np.ndarray, we: np.ndarray, sums: np.ndarray) -> np.ndarray:
        """Stem key per word: a final "s" (not "ss") of a 4+ letter word, or a final "'s", is left out."""
        lens = we - ws
        last = self.cps[np.maximum(we - 1, 0)]
        prev = self.cps[np.maximum(we - 2, 0)]
        apostrophe = (lens > 2) & ((last == ord("s")) | (last == ord("S"))) & ((prev == ord("'")) | (prev == 0x2019))
        plural = (lens >= 4) & ((last == ord("s")) | (last == ord("S"))) & (prev != ord("s")) & (prev != ord("S"))
        drop = np.where(apostrophe, 2, np.where(plural, 1, 0))
        weights = _weights(int(lens.max()) if lens.size else 1)
        with np.errstate(over="ignore"):
            s = sums.copy()
            for k in (1, 2):  # take the dropped characters' terms out of the word's sum
                m = drop >= k
                pos = we[m] - k
                s[m] -= lowered(self._bmp[pos]) * weights[lens[m] - k]
        return finish_key(s, lens - drop)

    def _capitalised(
        self,
        ts: np.ndarray,
        te: np.ndarray,
        is_word: np.ndarray,
        key: np.ndarray,
        cls: np.ndarray,
        one_space: np.ndarray,
        fmt_s: np.ndarray,
        fmt_e: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Runs of capitalised words ("Santa Clara", "Bank of America") that hold a word not at a sentence start,
        or two or more capitalised words; the pronoun I is no name."""
        empty = np.empty(0, np.int64)
        caps = np.flatnonzero(is_word & ((self.flags[ts] & UPPER) > 0))
        pronoun = (self.cps[ts[caps]] == ord("I")) & (
            (te[caps] - ts[caps] == 1) | ((self.flags[np.minimum(ts[caps] + 1, self.cps.size - 1)] & WORD_JOINER) > 0)
        )
        caps = caps[~pronoun]
        if caps.size == 0:
            return empty, empty
        # "Bank of America": a connector word between two capitalised words, one space each side
        gap2 = caps[1:][(caps[1:] == caps[:-1] + 2) & one_space[caps[:-1]] & one_space[caps[:-1] + 1]] - 1
        self._classify_tokens(gap2[key[gap2] == 0], ts, te, key, cls)
        conn = gap2[(cls[gap2] & W_CONNECTOR) > 0]
        if conn.size:
            in_run = np.zeros(ts.size, np.int8)
            in_run[caps] = 1
            in_run[conn] = 2
            member = np.flatnonzero(in_run)
            is_cap = in_run[member] == 1
        else:
            member, is_cap = caps, np.ones(caps.size, bool)
        join = (member[1:] == member[:-1] + 1) & one_space[member[:-1]]
        run = np.concatenate(([0], running_count(~join)))
        initial = self._initial_tokens(member, ts, te, key, cls, fmt_s, fmt_e)
        n_cap = np.bincount(run, weights=is_cap.astype(np.float64))
        late = np.bincount(run, weights=(is_cap & ~initial).astype(np.float64))
        first = np.flatnonzero(np.concatenate(([True], run[1:] != run[:-1])))
        last = np.append(first[1:] - 1, run.size - 1)
        keep = ((n_cap >= 2) | (late > 0))[run[first]]
        kept_caps = member[is_cap & keep[run]]
        self._terms += [ts[kept_caps], te[kept_caps]]
        return ts[member[first[keep]]], te[member[last[keep]]]

    def _initial_tokens(
        self,
        idx: np.ndarray,
        ts: np.ndarray,
        te: np.ndarray,
        key: np.ndarray,
        cls: np.ndarray,
        fmt_s: np.ndarray,
        fmt_e: np.ndarray,
    ) -> np.ndarray:
        """Per token of ``idx``: first of its text, or after . ! ? : ; or a newline since the token before
        (outside format spans, and not the dot of "Dr." or "St.")."""
        marks = self.clause_marks()
        if marks.size and fmt_s.size:
            marks = marks[~_touches(fmt_s, fmt_e, marks, marks + 1)]
        short = idx[((te[idx] - ts[idx]) <= 4) & (self.cps[np.minimum(te[idx], self.cps.size - 1)] == ord("."))]
        if short.size and marks.size:
            self._classify_tokens(short[key[short] == 0], ts, te, key, cls)
            titles = te[short[(cls[short] & W_TITLE) > 0]]
            if titles.size:
                at = np.searchsorted(marks, titles).clip(max=marks.size - 1)
                keep = np.ones(marks.size, bool)
                keep[at[marks[at] == titles]] = False  # not the dot of a title
                marks = marks[keep]
        prev_end = np.where(idx > 0, te[np.maximum(idx - 1, 0)], 0)
        initial = np.searchsorted(marks, ts[idx]) > np.searchsorted(marks, prev_end)
        first = np.zeros(ts.size + 1, bool)
        first[np.searchsorted(ts, self.starts)] = True  # the first token of each text
        return initial | first[idx]

    def _echoes(
        self,
        skip: np.ndarray,
        ws: np.ndarray,
        we: np.ndarray,
        sums: np.ndarray,
        groups: Sequence[int] | np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Content words whose stem occurs in two or more texts of one group: what one side says and the other
        echoes is a fact of the conversation, protected in every turn."""
        empty = np.empty(0, np.int64)
        group_of = np.asarray(groups, np.int64)
        if group_of.size != len(self.texts):
            raise ValueError(f"{group_of.size} groups for {len(self.texts)} texts")
        content = ~skip & ((we - ws) >= 2)
        owner = self.text_of(ws, ordered=True)
        g = group_of[owner]
        content &= g >= 0
        if not content.any():
            return empty, empty
        stems = self._stems(ws, we, sums)
        idx = np.flatnonzero(content)
        with np.errstate(over="ignore"):
            pair = mix64(stems[idx] ^ (g[idx].astype(np.uint64) + np.uint64(1)) * np.uint64(0xD1B54A32D192ED03))
        o = owner[idx]
        order = np.lexsort((o, pair))
        p_sorted, o_sorted = pair[order], o[order]
        new_pair = np.concatenate(([True], p_sorted[1:] != p_sorted[:-1]))
        new_owner = new_pair | np.concatenate(([True], o_sorted[1:] != o_sorted[:-1]))
        pair_id = running_count(new_pair) - 1
        texts_per_pair = np.bincount(pair_id, weights=new_owner.astype(np.float64))
        hit = idx[order[texts_per_pair[pair_id] >= 2]]
        return ws[hit], we[hit]

    def _anchored(self, word: np.ndarray) -> list[Span]:
        """Spans that start at a rare character: URLs, e-mails, placeholders, tags, ids and codes."""
        j, n = self.joined, len(self.joined)
        f = self.flags
        spans: list[Span] = []
        # URLs start at a scheme before "://" or at "www.": found from the colons (a one-character find runs at
        # memchr speed, "://" at a tenth of it) and the dots (in numpy).
        url_starts = []
        p = j.find(":")
        while p != -1:
            if j.startswith("//", p + 1):
                start = p
                while start > 0 and j[start - 1].isalpha():
                    start -= 1
                url_starts.append(start)
            p = j.find(":", p + 1)
        cps = self.cps
        dots = np.flatnonzero(cps == ord("."))
        dots = dots[dots >= 3]
        www = ord("w")
        url_starts += (dots[(cps[dots - 1] == www) & (cps[dots - 2] == www) & (cps[dots - 3] == www)] - 3).tolist()
        for start in url_starts:
            if j.startswith(_URL_STARTS, start):
                m = _URL.match(j, start)
                if m:
                    spans.append(m.span())
        anchors = np.flatnonzero((f & ANCHOR) > 0)
        if anchors.size:
            ats = anchors[self.cps[anchors] == ord("@")]
            if ats.size:  # the local part: the run of [\w.+-] that ends at the @
                es, ee = _runs((f & EMAIL) > 0)
                k = np.searchsorted(ee, ats, side="left")
                local = np.where(
                    (k < ee.size) & (ee[np.minimum(k, ee.size - 1)] == ats), es[np.minimum(k, es.size - 1)], ats
                )
                for p, start in zip(ats.tolist(), local.tolist(), strict=True):
                    m = _EMAIL_DOMAIN.match(j, p)
                    if m and start < p:
                        spans.append((start, m.end()))
            for p in anchors[self.cps[anchors] != ord("@")].tolist():
                c = j[p]
                if c == "#":
                    m = _HASH_ID.match(j, p)
                elif c == "<":
                    m = _TAG.match(j, p)
                else:
                    m = _PLACEHOLDER.match(j, p)
                if m:
                    spans.append(m.span())
            # "${name}": the dollar is not an anchor (prices are common), its brace is.
            braces = anchors[(self.cps[anchors] == ord("{")) & (anchors >= 1)]
            for p in (braces[self.cps[braces - 1] == ord("$")] - 1).tolist():
                m = _PLACEHOLDER.match(j, p)
                if m:
                    spans.append(m.span())
        # Capitalised codes: an upper-case run followed by a hyphen (NW-48213, NW-BROOKSIDE-FILTER).
        if n > 1:
            hyphens = np.flatnonzero(self.cps == ord("-"))
            hyphens = hyphens[hyphens > 0]
            cand = hyphens[(f[hyphens - 1] & UPPER) > 0] - 1
            last = -1
            for p in cand.tolist():
                start = p
                while start > 0 and word[start - 1]:
                    start -= 1
                if start <= last:
                    continue
                m = _CODE.match(j, start)
                if m:
                    spans.append(m.span())
                    last = m.end()
        return spans

    def _month_dates(self, rs: np.ndarray, re_: np.ndarray, numeric: np.ndarray, digit: np.ndarray) -> list[Span]:
        """ "March 5, 2024", "5th of March": a short number next to a run that starts like a month, then the regex."""
        if rs.size < 2:
            return []
        cand = np.flatnonzero((self.flags[rs] & MONTH_INITIAL) > 0)  # screened on the few capitalised J F M A S O N D
        lens = re_[cand] - rs[cand]
        cand = cand[(lens >= 3) & (lens <= 9)]
        if cand.size == 0:
            return []
        cps = self.cps
        prefix = (cps[rs[cand]].astype(np.int64) << 32) | (cps[rs[cand] + 1].astype(np.int64) << 16) | cps[rs[cand] + 2]
        at = np.searchsorted(_MONTH_PREFIXES_SORTED, prefix).clip(max=_MONTH_PREFIXES_SORTED.size - 1)
        months = cand[_MONTH_PREFIXES_SORTED[at] == prefix]
        if months.size == 0:
            return []

        def small(k: np.ndarray) -> np.ndarray:  # a number run of up to four characters that starts with a digit
            return k[numeric[k] & digit[rs[k]] & ((re_[k] - rs[k]) <= 4)]

        after_month = small(months[months + 1 < rs.size] + 1)
        before = np.unique(np.concatenate((months - 1, months - 2)))
        before_month = small(before[before >= 0])
        j = self.joined
        spans = []
        for k in after_month.tolist():
            m = _MONTH_DATE.match(j, int(rs[k - 1]))
            if m:
                spans.append(m.span())
        for k in before_month.tolist():
            m = _DAY_MONTH.match(j, int(rs[k]))
            if m:
                spans.append(m.span())
        return spans

    def _names(
        self, extra_words: Sequence[str], word: np.ndarray, rs: np.ndarray, re_: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keep-words and names, case-insensitive, on word boundaries: the key of each name's first \\w run is
        looked up among the batch's runs, then the key of the whole name is compared over the candidate range."""
        empty = np.empty(0, np.int64)
        names = sorted({w.strip() for w in extra_words if w and w.strip()})
        if not names or rs.size == 0:
            return empty, empty
        j = self.joined
        if self._lowering_grows():  # a character changes length when lowered: plain regex
            pattern = re.compile("|".join(rf"(?<!\w){re.escape(w)}(?!\w)" for w in names), re.IGNORECASE)
            found = np.array([m.span() for m in pattern.finditer(j)], np.int64).reshape(-1, 2)
            return found[:, 0], found[:, 1]
        index = _name_index(tuple(names))
        lens = re_ - rs
        cand = np.flatnonzero(index.head_shape_ok[_shape(self._bmp, rs, re_)])
        if cand.size == 0:
            return empty, empty
        head = index.heads.index(finish_key(segment_sums(self._bmp, rs[cand], re_[cand]), lens[cand]))
        hit = head >= 0
        cand, head = cand[hit], head[hit]
        if cand.size == 0:
            return empty, empty
        per = index.head_end[head] - index.head_start[head]  # names sharing this first run
        which = np.repeat(index.head_start[head], per) + ranges(per)
        s = np.repeat(rs[cand], per) - index.offset[which]
        e = s + index.length[which]
        n = self.cps.size
        ok = (s >= 0) & (e <= n)
        s, e, which = s[ok], e[ok], which[ok]
        ok = ((s == 0) | ~word[np.maximum(s - 1, 0)]) & ((e >= n) | ~word[np.minimum(e, n - 1)])
        s, e, which = s[ok], e[ok], which[ok]
        if s.size:
            ok = finish_key(segment_sums(self._bmp, s, e), e - s) == index.key[which]
            s, e = s[ok], e[ok]
        return s, e

    def term_keys(self) -> np.ndarray:
        """Stem keys of the words this batch uses as names (capitalised words of a protected run) or counts
        (the word after a count), stop words left out: the corpus lexicon of ``augment.facts`` is made of these."""
        if not self._terms:
            return np.empty(0, np.uint64)
        starts = np.concatenate(self._terms[0::2])
        ends = np.concatenate(self._terms[1::2])
        letters = (self.flags[ends - 1] & LETTER) > 0
        starts, ends = starts[letters], ends[letters]
        sums = segment_sums(self._bmp, starts, ends)
        stop = (classify(finish_key(sums, ends - starts)) & W_STOP) > 0
        starts, ends, sums = starts[~stop], ends[~stop], sums[~stop]
        return np.unique(self._stems(starts, ends, sums))

    def content_words(self) -> tuple[np.ndarray, np.ndarray]:
        """Stem keys of the content words (no stop word or number, three letters or more) of a batch built with
        ``collect=True``, and the text each is in."""
        keys, starts = self._content
        return keys, self.text_of(starts, ordered=True)

    def term_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Keys of the two-content-word phrases of a batch built with ``collect=True``, and the text each is in."""
        return self._pair_keys, self.text_of(self._pair_starts, ordered=True)

    def _lowering_grows(self) -> bool:
        wide = self._bmp[self._bmp > 127]
        return bool(wide.size and tables_grow()[wide].any())

    # --- per-text views -----------------------------------------------------------------------

    def spans(self, i: int) -> list[Span]:
        """Merged protected spans of text ``i``, relative to the text."""
        s, e = int(self.starts[i]), int(self.ends[i])
        if not self.usable[i] or s == e:
            return []
        a, b = np.searchsorted(self.span_starts, [s, e])
        return list(zip((self.span_starts[a:b] - s).tolist(), (self.span_ends[a:b] - s).tolist(), strict=True))

    def words(self) -> tuple[np.ndarray, np.ndarray]:
        """Global starts/ends of words: letters, with ' ’ - inside (don't, e-mail, three-season)."""
        if self._words is None:
            ls, le = _runs(self.letter)
            if ls.size > 1:  # letter runs one joiner apart are one word: decided per run, not per character
                one = ls[1:] == le[:-1] + 1
                joins = np.zeros(ls.size - 1, bool)
                joins[one] = (self.flags[le[:-1][one]] & WORD_JOINER) > 0
                ls, le = ls[np.concatenate(([True], ~joins))], le[np.concatenate((~joins, [True]))]
            self._words = ls, le
        return self._words

    def clause_marks(self) -> np.ndarray:
        """Positions of . ! ? : ; and newlines (sentence and clause ends), found once per batch."""
        if self._marks is None:
            self._marks = np.flatnonzero((self.flags & CLAUSE_END) > 0)
        return self._marks

    def sentence_marks(self) -> np.ndarray:
        """Positions of . ! ? and newlines."""
        marks = self.clause_marks()
        return marks[(self.flags[marks] & SENTENCE_END) > 0]

    def initial_words(self, ws: np.ndarray, we: np.ndarray) -> np.ndarray:
        """Per word (in order): first of its text, or after . ! ? : ; or a newline outside protected spans."""
        marks = self.clause_marks()
        if marks.size and self.span_starts.size:
            marks = marks[~self.touches_protected(marks, marks + 1)]
        before = np.searchsorted(marks, ws)
        after_prev = np.searchsorted(marks, np.concatenate(([0], we[:-1])))
        owner = self.text_of(ws, ordered=True)
        new_text = np.concatenate(([True], owner[1:] != owner[:-1])) if ws.size else np.zeros(0, bool)
        return new_text | (before > after_prev)

    def free_words(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Starts, ends and text index of the words that touch no protected character."""
        ws, we = self.words()
        free = ~self.touches_protected(ws, we)
        ws, we = ws[free], we[free]
        return ws, we, self.text_of(ws, ordered=True)

    def split(self, joined: str) -> list[str]:
        """Undo the join on an edited copy of ``joined``; unusable texts come back unchanged."""
        parts = joined.split(SEP)
        if self.all_usable:
            return parts
        return [p if ok else t for p, t, ok in zip(parts, self.texts, self.usable, strict=True)]


def _merge_arrays(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge overlapping or touching [start, end) intervals, vectorised."""
    keep = ends > starts
    starts, ends = starts[keep].astype(np.int64), ends[keep].astype(np.int64)
    if starts.size == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    new = np.empty(starts.size, bool)
    new[0] = True
    new[1:] = starts[1:] > reach[:-1]
    group_end = np.append(np.flatnonzero(new)[1:] - 1, starts.size - 1)
    return starts[new], reach[group_end]


@cache
def tables_lower() -> np.ndarray:
    """Per BMP code point: its lower-case code point where lowering keeps it one character."""
    out = np.arange(0x10000, dtype=np.uint32)
    for c in range(0x10000):
        low = chr(c).lower()
        if len(low) == 1 and ord(low) != c:
            out[c] = ord(low)
    return out


@cache
def tables_grow() -> np.ndarray:
    """Per BMP code point: lowering it gives more than one character (İ -> i̇)."""
    return np.fromiter((len(chr(c).lower()) != 1 for c in range(0x10000)), bool, 0x10000)


@dataclass(frozen=True)
class _NameIndex:
    """Configured names by the key of their first \\w run (``heads``; names ``head_start:head_end`` share it),
    with each name's key, length and the offset of that run in it, and the shapes (:func:`_shape`) of the
    first runs, which screen a batch's runs before any is hashed."""

    heads: KeySet
    head_start: np.ndarray
    head_end: np.ndarray
    key: np.ndarray
    length: np.ndarray
    offset: np.ndarray
    head_shape_ok: np.ndarray


@lru_cache(maxsize=64)
def _name_index(names: tuple[str, ...]) -> _NameIndex:
    first = TextBatch(names, rules=FORMAT_ONLY)  # the names' own runs, found the same way
    nrs, nre = _runs((first.flags & WORD) > 0)
    owner = first.text_of(nrs)
    head = np.flatnonzero(np.diff(owner, prepend=-1) > 0)  # first run of each name that has one
    h_starts, h_lens, h_owner = nrs[head], (nre - nrs)[head], owner[head]
    head_keys = finish_key(segment_sums(first._bmp, h_starts, h_starts + h_lens), h_lens)
    heads = KeySet(head_keys)
    slot = heads.index(head_keys)
    order = np.argsort(slot, kind="stable")
    slot, h_owner, h_starts, h_lens = slot[order], h_owner[order], h_starts[order], h_lens[order]
    bounds = np.searchsorted(slot, np.arange(len(heads) + 1))
    lengths = np.array([len(n) for n in names], np.int64)
    shape_ok = np.zeros(27 * 27 * 16, bool)
    shape_ok[_shape(first._bmp, h_starts, h_starts + h_lens)] = True
    return _NameIndex(
        heads=heads,
        head_start=bounds[:-1],
        head_end=bounds[1:],
        key=word_keys([names[o] for o in h_owner.tolist()]),
        length=lengths[h_owner],
        offset=h_starts - first.starts[h_owner],
        head_shape_ok=shape_ok,
    )


@cache
def tables_upper() -> np.ndarray:
    """Per BMP code point: its upper-case code point where upper-casing keeps it one character."""
    out = np.arange(0x10000, dtype=np.uint32)
    for c in range(0x10000):
        up = chr(c).upper()
        if len(up) == 1 and ord(up) != c:
            out[c] = ord(up)
    return out


def merge(spans: Sequence[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def reference_spans(text: str, extra_words: Sequence[str] = ()) -> list[Span]:
    """Protected spans by the plain regex (slow; the definition the batch path is tested against)."""
    spans = [m.span() for m in REFERENCE.finditer(text) if m.group().strip()]
    spans = [(s, e - (len(text[s:e]) - len(text[s:e].rstrip()))) for s, e in spans]
    for w in extra_words:
        if w.strip():
            pattern = rf"(?<!\w){re.escape(w.strip())}(?!\w)"
            spans.extend(m.span() for m in re.finditer(pattern, text, flags=re.IGNORECASE))
    return merge(spans)


# --- counter-based random numbers: a text's draws depend on its seed only, in any batch ------------

_M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def decode(cps: np.ndarray) -> str:
    """Code points back to a str: through one byte each when all are Latin-1 (~3x faster than UTF-32)."""
    if cps.size and int(cps.max()) < 0x100:
        return cps.astype(np.uint8).tobytes().decode("latin-1")
    return cps.tobytes().decode("utf-32-le", "surrogatepass")


def seed_array(seeds: Sequence[int]) -> np.ndarray:
    """Seeds as uint64, each taken modulo 2**64 (a negative or huge seed wraps, as SplitMix takes it)."""
    try:
        return np.array(seeds, np.uint64).reshape(len(seeds))
    except (OverflowError, TypeError, ValueError):
        return np.fromiter((s & _M64 for s in seeds), np.uint64, len(seeds))


def draws(seeds: np.ndarray, counters: np.ndarray, salt: int) -> np.ndarray:
    """One 64-bit draw per (seed, counter) pair: the ``counter``-th number of that seed's ``salt`` stream."""
    with np.errstate(over="ignore"):
        base = mix64(seeds.astype(np.uint64) ^ np.uint64((salt * GOLDEN) & _M64))
        return mix64(base + (counters.astype(np.uint64) + np.uint64(1)) * np.uint64(GOLDEN))


class SplitMix:
    """A tiny seeded generator for per-text Python loops: seeding is free, unlike ``random.Random``."""

    __slots__ = ("spare", "state")

    def __init__(self, seed: int) -> None:
        self.state = seed & _M64
        self.spare = -1

    def next(self) -> int:
        self.state = (self.state + GOLDEN) & _M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """Uniform in [0, n) for small n: each 64-bit draw serves two 32-bit halves."""
        if self.spare >= 0:
            x, self.spare = self.spare, -1
        else:
            z = self.next()
            x, self.spare = z & 0xFFFFFFFF, z >> 32
        return x % n

    def random(self) -> float:
        return (self.next() >> 11) / 9007199254740992.0

    def choice(self, seq: Sequence):
        return seq[self.below(len(seq))]


def _touches(span_s: np.ndarray, span_e: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each [start, end) of ascending, disjoint ranges: does it overlap one of the sorted, disjoint spans?

    Searches the spans into the ranges (usually far fewer spans than ranges), then marks the ranges
    each span covers with a running sum.
    """
    if span_s.size == 0 or starts.size == 0:
        return np.zeros(np.shape(starts), bool)
    lo = np.searchsorted(ends, span_s, side="right")  # first range ending after the span starts
    hi = np.searchsorted(starts, span_e, side="left")  # ranges starting before the span ends
    delta = np.bincount(lo, minlength=starts.size + 1) - np.bincount(hi, minlength=starts.size + 1)
    return np.cumsum(delta[: starts.size]) > 0

"""One pass over a batch of texts: code points, words and protected spans, in numpy.

Augmenters used to run a dozen regular expressions per text; at ~20 words a
sentence that alone cost more than the edits. Here the whole batch is one
UTF-32 array: character classes are table look-ups, numbers/prices/percentages
are run arithmetic, and only rare anchors (``@``, ``://``, ``{``, ``<``, ``#``,
month names next to a number, capitalised codes, configured names) reach a
regular expression, matched at that one position. The spans are the same as
the reference regex in ``REFERENCE`` (tests compare them).

Characters above U+FFFF (emoji) count as punctuation: never a word, never edited.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache, lru_cache

import numpy as np

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
    edge = np.diff(mask.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    return np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)


class TextBatch:
    """Texts joined with NUL, with per-character classes, word runs and the protected mask.

    ``starts[i]``/``ends[i]`` bound text ``i`` inside ``joined``; texts holding a NUL are
    left out (empty here, and ``usable[i]`` is False) so the join stays unambiguous.
    """

    def __init__(self, texts: Sequence[str], extra_words: Sequence[str] = ()) -> None:
        self.texts = list(texts)
        self.usable = [SEP not in t for t in self.texts]
        parts = [t if ok else "" for t, ok in zip(self.texts, self.usable, strict=True)]
        self.joined = SEP.join(parts)
        lengths = np.fromiter((len(p) for p in parts), np.int64, len(parts))
        self.starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1])).astype(np.int64) if parts else lengths
        self.ends = self.starts + lengths
        self.cps = np.frombuffer(self.joined.encode("utf-32-le", "surrogatepass"), np.uint32)
        self._bmp = np.minimum(self.cps, 0xFFFF)  # U+FFFF and above: no class at all
        self.flags = classes()[self._bmp]
        self.letter = (self.flags & LETTER) > 0
        self.space = (self.flags & SPACE) > 0
        self.span_starts, self.span_ends = self._protected_spans(extra_words)
        self._words: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def protected(self) -> np.ndarray:
        """Per character: inside a protected span."""
        delta = _count(self.span_starts, self.cps.size) - _count(self.span_ends, self.cps.size)
        return np.cumsum(delta[: self.cps.size]) > 0

    def touches_protected(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """For each [start, end) range: does it overlap a protected span?"""
        if self.span_starts.size == 0:
            return np.zeros(np.shape(starts), bool)
        k = np.searchsorted(self.span_starts, ends, side="left") - 1
        ok = k >= 0
        return ok & (self.span_ends[np.maximum(k, 0)] > starts)

    def __len__(self) -> int:
        return len(self.texts)

    def text_of(self, positions: np.ndarray) -> np.ndarray:
        """Index of the text each global position falls in."""
        return np.searchsorted(self.starts, positions, side="right") - 1

    # --- protected spans ----------------------------------------------------------------------

    def _protected_spans(self, extra_words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Sorted, merged global (starts, ends) of the protected spans."""
        n = self.cps.size
        if n == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        f = self.flags
        word = (f & WORD) > 0
        digit = (f & DIGIT) > 0
        rs, re_ = _runs(word)
        owner_run = np.searchsorted(rs, np.flatnonzero(digit), side="right") - 1
        numeric = np.bincount(owner_run, minlength=rs.size)[: rs.size] > 0
        num_idx = np.flatnonzero(numeric)
        starts, ends = rs[num_idx], re_[num_idx]
        opens, closes = [starts], [ends]
        # Chains of numeric \w runs joined by one of . , : / - (2024-03-12, 129.99, 10:30).
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
        name_starts, name_ends = self._names(extra_words, word, rs, re_)
        opens.append(name_starts)
        closes.append(name_ends)
        return _merge_arrays(np.concatenate(opens), np.concatenate(closes))

    def _anchored(self, word: np.ndarray) -> list[Span]:
        """Spans that start at a rare character: URLs, e-mails, placeholders, tags, ids and codes."""
        j, n = self.joined, len(self.joined)
        f = self.flags
        spans: list[Span] = []
        for key in ("://", "www."):
            p = j.find(key)
            while p != -1:
                start = p
                if key == "://":
                    while start > 0 and j[start - 1].isalpha():
                        start -= 1
                if j.startswith(_URL_STARTS, start):
                    m = _URL.match(j, start)
                    if m:
                        spans.append(m.span())
                p = j.find(key, p + 1)
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
            # "${name}": the dollar is not an anchor (prices are common), look for "${" directly.
            p = j.find("${")
            while p != -1:
                m = _PLACEHOLDER.match(j, p)
                if m:
                    spans.append(m.span())
                p = j.find("${", p + 1)
        # Capitalised codes: an upper-case run followed by a hyphen (NW-48213, NW-BROOKSIDE-FILTER).
        if n > 1:
            cand = np.flatnonzero(((f[:-1] & UPPER) > 0) & (self.cps[1:] == ord("-")))
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
        """ "March 5, 2024", "5th of March": a short number with a capitalised run next to it, then the regex."""
        if rs.size < 2:
            return []
        small = numeric & digit[rs] & ((re_ - rs) <= 4)
        initial = ((self.flags[rs] & MONTH_INITIAL) > 0) & ((re_ - rs) >= 3) & ((re_ - rs) <= 9)
        after_month = np.flatnonzero(small[1:] & initial[:-1]) + 1
        before_month = np.flatnonzero(small[:-1] & (initial[1:] | np.append(initial[2:], False)))
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
        """Keep-words and names, case-insensitive, on word boundaries: run hashes, then a check where needed."""
        empty = np.empty(0, np.int64)
        names = sorted({w.strip() for w in extra_words if w and w.strip()})
        if not names or rs.size == 0:
            return empty, empty
        j = self.joined
        if bool(tables_grow()[self._bmp].any()):  # a character changes length when lowered: plain regex
            pattern = re.compile("|".join(rf"(?<!\w){re.escape(w)}(?!\w)" for w in names), re.IGNORECASE)
            found = np.array([m.span() for m in pattern.finditer(j)], np.int64).reshape(-1, 2)
            return found[:, 0], found[:, 1]
        low_tab = tables_lower()
        single, multi, h_lens, h_initials = _name_index(tuple(names))
        lens = re_ - rs
        cand = np.flatnonzero(np.isin(lens, h_lens) & np.isin(low_tab[self._bmp[rs]], h_initials))
        hashes = np.zeros(rs.size, np.uint64)
        hashes[cand] = _run_hashes(self._bmp, rs[cand], lens[cand], low_tab)
        starts, ends = [empty], [empty]
        if single:
            keys = np.fromiter(single, np.uint64, len(single))
            hit = np.flatnonzero(np.isin(hashes, keys))
            if hit.size:
                lens = np.array([single.get(int(h), -1) for h in hashes[hit].tolist()], np.int64)
                ok = lens == (re_[hit] - rs[hit])
                starts.append(rs[hit][ok])
                ends.append(re_[hit][ok])
        if multi:
            keys = np.fromiter(multi, np.uint64, len(multi))
            extra = []
            for k in np.flatnonzero(np.isin(hashes, keys)).tolist():
                for nl, offset in multi[int(hashes[k])]:
                    s = int(rs[k]) - offset
                    e = s + len(nl)
                    if s >= 0 and j[s:e].lower() == nl and (s == 0 or not word[s - 1]) and (e >= len(j) or not word[e]):
                        extra.append((s, e))
            if extra:
                arr = np.array(extra, np.int64)
                starts.append(arr[:, 0])
                ends.append(arr[:, 1])
        return np.concatenate(starts), np.concatenate(ends)

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
            n = self.cps.size
            if n < 3:
                self._words = _runs(self.letter)
            else:
                inner = np.zeros(n, bool)
                inner[1:-1] = ((self.flags[1:-1] & WORD_JOINER) > 0) & self.letter[:-2] & self.letter[2:]
                self._words = _runs(self.letter | inner)
        return self._words

    def initial_words(self, ws: np.ndarray, we: np.ndarray) -> np.ndarray:
        """Per word (in order): first of its text, or after . ! ? : ; or a newline outside protected spans."""
        marks = np.flatnonzero((self.flags & CLAUSE_END) > 0)
        if marks.size and self.span_starts.size:
            marks = marks[~self.touches_protected(marks, marks + 1)]
        before = np.searchsorted(marks, ws)
        after_prev = np.searchsorted(marks, np.concatenate(([0], we[:-1])))
        owner = self.text_of(ws)
        new_text = np.concatenate(([True], owner[1:] != owner[:-1])) if ws.size else np.zeros(0, bool)
        return new_text | (before > after_prev)

    def free_words(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Starts, ends and text index of the words that touch no protected character."""
        ws, we = self.words()
        free = ~self.touches_protected(ws, we)
        ws, we = ws[free], we[free]
        return ws, we, self.text_of(ws)

    def split(self, joined: str) -> list[str]:
        """Undo the join on an edited copy of ``joined``; unusable texts come back unchanged."""
        parts = joined.split(SEP)
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


@lru_cache(maxsize=64)
def _name_index(
    names: tuple[str, ...],
) -> tuple[dict[int, int], dict[int, list[tuple[str, int]]], np.ndarray, np.ndarray]:
    """For configured names: hash of the first word run -> length (one-run names) or (name, offset) to verify."""
    low_tab = tables_lower()
    first = TextBatch(names)  # the names' own runs, found the same way
    nrs, nre = _runs((first.flags & WORD) > 0)
    owner = first.text_of(nrs)
    head = np.flatnonzero(np.diff(owner, prepend=-1) > 0)  # first run of each name that has one
    h_starts, h_lens, h_owner = nrs[head], (nre - nrs)[head], owner[head]
    name_hashes = _run_hashes(first._bmp, h_starts, h_lens, low_tab)
    single: dict[int, int] = {}
    multi: dict[int, list[tuple[str, int]]] = {}
    for h, o, start, length in zip(
        name_hashes.tolist(), h_owner.tolist(), h_starts.tolist(), h_lens.tolist(), strict=True
    ):
        nl = names[o].lower()
        offset = start - int(first.starts[o])
        if offset == 0 and length == len(nl):
            single[h] = length
        else:
            multi.setdefault(h, []).append((nl, offset))
    return single, multi, h_lens, low_tab[first._bmp[h_starts]]


@cache
def tables_upper() -> np.ndarray:
    """Per BMP code point: its upper-case code point where upper-casing keeps it one character."""
    out = np.arange(0x10000, dtype=np.uint32)
    for c in range(0x10000):
        up = chr(c).upper()
        if len(up) == 1 and ord(up) != c:
            out[c] = ord(up)
    return out


def _run_hashes(cps: np.ndarray, starts: np.ndarray, lens: np.ndarray, table: np.ndarray | None) -> np.ndarray:
    """A 64-bit hash per run of ``table[cps]`` (or ``cps``), one vectorised step per character position."""
    h = np.zeros(starts.size, np.uint64)
    if starts.size == 0:
        return h
    with np.errstate(over="ignore"):
        for k in range(int(lens.max())):
            live = np.flatnonzero(lens > k)
            vals = cps[starts[live] + k]
            if table is not None:
                vals = table[vals]
            h[live] = h[live] * np.uint64(GOLDEN) + vals.astype(np.uint64) + np.uint64(1)
        return mix64(h)


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

"""Typos, EDA word edits, case and punctuation noise: cheap noise so a model does not depend on clean input.

Every augmenter here starts from one :class:`~augment.text.TextBatch` per call,
so protected spans and words are found once for the whole batch. Character
noise is fully vectorised: each eligible letter gets a random key from its
text's seed (``augment.text.draws``), a text edits its lowest-keyed letters, and
the edits are applied to the batch's code points at once. Word, case and
punctuation noise walk each text's units in Python with a per-text
:class:`~augment.text.SplitMix`. Either way a text's variant depends only on
the text and its seed, never on the batch.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from augment.base import Augmenter, Output, Spans, Units, UnitSlots, batch_units, edit_count, unit_arrays, unit_slots
from augment.synonym import SynonymSwap
from augment.text import (
    GOLDEN,
    SEP,
    SPACE,
    UPPER,
    FactRules,
    SplitMix,
    TextBatch,
    decode,
    draws,
    mix64,
    ranges,
    running_count,
    seed_array,
    tables_lower,
    tables_upper,
)

CHAR_OPS = ("keyboard", "insert", "delete", "substitute", "swap")
WORD_OPS = ("swap", "delete", "insert")
PUNCT_OPS = ("insert", "delete", "replace")
CASE_OPS = ("lower", "title", "upper")
PUNCT_MARKS = ".,;:!?"
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")

Ops = Sequence[str] | Mapping[str, float]


def _keyboard_neighbours() -> dict[str, str]:
    """Keys next to each letter on a staggered QWERTY layout."""
    out: dict[str, str] = {}
    for r, row in enumerate(_ROWS):
        for i, ch in enumerate(row):
            near = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            if r > 0:
                near += [_ROWS[r - 1][j] for j in (i, i + 1) if j < len(_ROWS[r - 1])]
            if r + 1 < len(_ROWS):
                near += [_ROWS[r + 1][j] for j in (i - 1, i) if 0 <= j < len(_ROWS[r + 1])]
            out[ch] = "".join(near)
    return out


KEYBOARD = _keyboard_neighbours()
_NEAR_FLAT = np.array([ord(c) for ch in string.ascii_lowercase for c in KEYBOARD[ch]], np.uint32)
_NEAR_LEN = np.array([len(KEYBOARD[ch]) for ch in string.ascii_lowercase], np.int64)
_NEAR_OFF = np.concatenate(([0], np.cumsum(_NEAR_LEN)[:-1]))
_UPPER_GROWS = np.fromiter((len(chr(c).upper()) != 1 for c in range(0x10000)), bool, 0x10000)


def op_weights(ops: Ops, known: Sequence[str], what: str) -> dict[str, float]:
    """``["a", "b"]`` (equal shares) or ``{"a": 0.1, "b": 0.05}`` (own rates) as op -> weight."""
    weights = dict(ops) if isinstance(ops, Mapping) else dict.fromkeys(ops, 1.0)
    unknown = set(weights) - set(known)
    if unknown or not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"{what} ops must be a non-empty subset of {tuple(known)}, got {ops!r}")
    return {op: w for op, w in weights.items() if w > 0}


def _ops_rate(ops: Ops, rate: float) -> float:
    """A dict of per-op rates sets the total rate; a list shares ``rate``."""
    return float(sum(ops.values())) if isinstance(ops, Mapping) else rate


class CharNoise(Augmenter):
    """Edit ``rate`` of the letters in unprotected words of ``min_word_len``+ letters (at least ``minimum``).

    Ops: ``keyboard`` (a neighbouring key), ``insert`` (a neighbouring key added),
    ``delete``, ``substitute`` (any other letter), ``swap`` (with the next letter).
    ``ops`` as a dict gives each op its own rate (the total rate is their sum).
    Edited letters are never adjacent, so each edit stays readable as one typo.
    """

    kind = "char_noise"

    def __init__(
        self,
        rate: float = 0.03,
        ops: Ops = CHAR_OPS,
        min_word_len: int = 3,
        keep_words: Sequence[str] = (),
        protect_names: Sequence[str] = (),
        minimum: int = 1,
        maximum: int | None = None,
        rules: FactRules | None = None,
    ) -> None:
        super().__init__(keep_words, protect_names, rules)
        self.weights = op_weights(ops, CHAR_OPS, "char")
        self.ops = list(self.weights)
        self.rate, self.min_word_len = _ops_rate(ops, rate), min_word_len
        self.minimum, self.maximum = minimum, maximum
        w = np.array([self.weights[o] for o in self.ops], float)
        self._cum = np.cumsum(w / w.sum())

    def params(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rate": self.rate,
            "ops": self.weights,
            "min": self.minimum,
            "max": self.maximum,
            "min_word_len": self.min_word_len,
        }

    def augment(self, texts: Sequence[str], seeds: Sequence[int], spans: Spans | None = None) -> list[Output]:
        batch = self.batch(texts, spans)
        n_texts = len(texts)
        ws, we = batch.words()
        keep = ((we - ws) >= self.min_word_len) & ~batch.touches_protected(ws, we)
        ws, we = ws[keep], we[keep]
        inside = np.zeros(batch.cps.size + 1, np.int8)  # +1 from each word's start to its end (words are disjoint)
        inside[ws] = 1
        inside[we] = -1
        eligible = np.flatnonzero(np.cumsum(inside[:-1], dtype=np.int8).view(bool) & batch.letter)
        owner = batch.text_of(eligible, ordered=True)
        per_text = np.bincount(owner, minlength=n_texts)[:n_texts]
        k = np.minimum(np.maximum(self.minimum, np.round(self.rate * per_text).astype(np.int64)), per_text)
        if self.maximum is not None:
            k = np.minimum(k, self.maximum)
        if eligible.size == 0 or not k.any():
            return [None] * n_texts
        seed_arr = seed_array(seeds)
        first = np.concatenate(([0], np.cumsum(per_text)[:-1]))
        chosen = self._choose(eligible, first, per_text, k, seed_arr)
        joined = self._apply(batch, chosen, seed_arr, eligible, first, we)
        out = batch.split(joined)
        return _edited_only(out, k > 0, batch)

    @staticmethod
    def _choose(
        eligible: np.ndarray, first: np.ndarray, per_text: np.ndarray, k: np.ndarray, seed_arr: np.ndarray
    ) -> np.ndarray:
        """``k[t]`` non-adjacent letters per text: random draws of letter numbers, an earlier draw blocking
        the same or a neighbouring letter; a text whose draws run short walks on in Python.

        Whether a draw counts depends only on the draws before it, so texts are taken in groups of equal
        ``k`` with ``3k + 4`` draws each (a few comparisons, not ``m^2`` for the batch's largest ``k``); a text
        that comes up short there is decided with the batch's ``m`` draws, as it always was."""
        rows = np.flatnonzero(k > 0)
        m = int(min(64, 3 * k[rows].max() + 4))
        chosen = []
        short_rows = [np.empty(0, np.int64)]
        for kk in np.unique(k[rows]).tolist():
            group = rows[k[rows] == kk]
            if kk == 1:  # the first draw always counts
                pick = draws(seed_arr[group], np.zeros(group.size, np.int64), 1) % per_text[group].astype(np.uint64)
                chosen.append(eligible[first[group] + pick.astype(np.int64)])
                continue
            m_group = int(min(m, 3 * kk + 4))
            picked, short = CharNoise._draw(eligible, first, per_text, k, seed_arr, group, m_group)
            chosen.append(picked)
            short_rows.append(short)
        short = np.concatenate(short_rows)
        if short.size:
            picked, still = CharNoise._draw(eligible, first, per_text, k, seed_arr, short, m)
            chosen.append(picked)
            chosen += [CharNoise._walk(eligible, first, per_text, k, seed_arr, t, m) for t in still.tolist()]
        return np.sort(np.concatenate(chosen))

    @staticmethod
    def _draw(
        eligible: np.ndarray,
        first: np.ndarray,
        per_text: np.ndarray,
        k: np.ndarray,
        seed_arr: np.ndarray,
        rows: np.ndarray,
        m: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The letters of the texts ``rows`` that got their ``k`` from ``m`` draws, and the texts that did not."""
        cols = np.arange(m)
        pick = draws(seed_arr[rows][:, None], cols[None, :], 1) % per_text[rows][:, None].astype(np.uint64)
        cand = eligible[first[rows][:, None] + pick.astype(np.int64)]
        c32 = cand.astype(np.int32) if cand.size and cand.max() < 1 << 31 else cand
        near = (c32[:, :, None] - c32[:, None, :] + 1).view(np.uint32 if c32.dtype == np.int32 else np.uint64) <= 2
        blocked = (near & (cols[None, :] < cols[:, None])[None, :, :]).any(axis=2)
        valid = ~blocked
        taken = valid & (np.cumsum(valid.view(np.int8), axis=1, dtype=np.int32) <= k[rows][:, None])
        done = taken.sum(axis=1) >= k[rows]
        return cand[taken & done[:, None]], rows[~done]

    @staticmethod
    def _walk(
        eligible: np.ndarray,
        first: np.ndarray,
        per_text: np.ndarray,
        k: np.ndarray,
        seed_arr: np.ndarray,
        t: int,
        m: int,
    ) -> np.ndarray:
        """Rare: many edits for few letters. The ``m`` draws' picks, then the text's letters in draw order."""
        cols = np.arange(m)
        pick = draws(np.full(m, seed_arr[t]), cols, 1) % np.uint64(per_text[t])
        cand = eligible[first[t] + pick.astype(np.int64)].tolist()
        got: set[int] = set()
        seen: set[int] = set()
        for p in cand:  # a draw counts when no earlier draw, counted or not, is on or next to its letter
            if len(got) < k[t] and not seen & {p - 1, p, p + 1}:
                got.add(p)
            seen.add(p)
        letters = eligible[first[t] : first[t] + per_text[t]].tolist()
        extra = draws(np.full(len(letters), seed_arr[t]), np.arange(m, m + len(letters)), 1)
        for _, p in sorted(zip(extra.tolist(), letters, strict=True)):
            if len(got) >= k[t]:
                break
            if not got & {p - 1, p, p + 1}:
                got.add(p)
        return np.array(sorted(got), np.int64)

    def _apply(
        self,
        batch: TextBatch,
        pos: np.ndarray,
        seed_arr: np.ndarray,
        eligible: np.ndarray,
        first: np.ndarray,
        word_ends: np.ndarray,
    ) -> str:
        cps = batch.cps.copy()
        n = cps.size
        owner = batch.text_of(pos, ordered=True)
        local = np.searchsorted(eligible, pos) - first[owner]  # the letter's number in its text: batch-free
        seeds = seed_arr[owner]
        op_u = (draws(seeds, local, 2) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
        ops = np.array(self.ops)[np.minimum(np.searchsorted(self._cum, op_u, side="right"), len(self.ops) - 1)]
        pick = draws(seeds, local, 3)
        orig = batch.cps[pos]
        low = tables_lower()[np.minimum(orig, 0xFFFF)]
        ascii_low = (low >= 97) & (low <= 122)
        li = np.where(ascii_low, low.astype(np.int64) - 97, 0)
        near_len = np.where(ascii_low, _NEAR_LEN[li], 26)
        near_idx = (pick % near_len.astype(np.uint64)).astype(np.int64)
        near = np.where(ascii_low, _NEAR_FLAT[_NEAR_OFF[li] + np.minimum(near_idx, _NEAR_LEN[li] - 1)], 97 + near_idx)
        sub = (pick % np.where(ascii_low, 25, 26).astype(np.uint64)).astype(np.int64)
        sub = np.where(ascii_low & (sub >= li), sub + 1, sub) + 97
        upper = (batch.flags[pos] & UPPER) > 0

        def cased(c: np.ndarray, where: np.ndarray) -> np.ndarray:
            return np.where(upper[where] & (c >= 97) & (c <= 122), c - 32, c).astype(np.uint32)

        # swap partner: the next letter of the word, else the previous one; a swap whose partner
        # neighbours another edit, or equals the letter, becomes a keyboard typo instead.
        w_end = word_ends[np.searchsorted(word_ends, pos, side="right")]
        nxt_ok = (pos + 1 < w_end) & batch.letter[np.minimum(pos + 1, n - 1)]
        partner = np.where(nxt_ok, pos + 1, pos - 1)
        close = np.zeros(pos.size, bool)
        if pos.size > 1:
            gap2 = np.diff(pos) == 2
            close[1:] |= gap2
            close[:-1] |= gap2
        is_swap = ops == "swap"
        bad_swap = is_swap & (close | ~batch.letter[partner] | (cps[partner] == orig))
        ops = np.where(bad_swap, "keyboard", ops)
        is_swap = ops == "swap"
        kb = ops == "keyboard"
        cps[pos[kb]] = cased(near[kb], kb)
        sb = ops == "substitute"
        cps[pos[sb]] = cased(sub[sb], sb)
        sp, pp = pos[is_swap], partner[is_swap]
        cps[sp], cps[pp] = batch.cps[pp], batch.cps[sp]
        ins = ops == "insert"
        dele = ops == "delete"
        if not (ins.any() or dele.any()):  # letters replaced in place: no text changes length
            return decode(cps)
        out = _inserted(cps, pos[ins], near[ins].astype(np.uint32), pos[dele])
        return decode(out)


def _edited_only(out: list[Output], edited: np.ndarray, batch: TextBatch) -> list[Output]:
    """``out`` with None for the texts not edited, and for those the batch could not use (empty in its join)."""
    if not batch.all_usable:
        edited = edited & np.array(batch.usable)
    for i in np.flatnonzero(~edited).tolist():
        out[i] = None
    return out


def _inserted(cps: np.ndarray, after: np.ndarray, new: np.ndarray, gone: np.ndarray) -> np.ndarray:
    """``cps`` with ``new[k]`` put after position ``after[k]`` and the positions ``gone`` left out (both sorted,
    disjoint): scattered through masks, several times faster than ``np.repeat`` with per-character counts."""
    out = cps
    if after.size:
        out = np.empty(cps.size + after.size, cps.dtype)
        at = after + np.arange(1, after.size + 1)
        kept = np.ones(out.size, bool)
        kept[at] = False
        out[kept] = cps
        out[at] = new
    if gone.size:
        kept = np.ones(out.size, bool)
        kept[gone + np.searchsorted(after, gone)] = False  # each insertion before a gone letter moved it by one
        out = out[kept]
    return out


class _UnitNoise(Augmenter):
    """Shared walk for augmenters that edit a text's units (words and protected spans) in Python."""

    OPS: tuple[str, ...] = ()

    def __init__(
        self,
        rate: float = 0.1,
        ops: Ops | None = None,
        keep_words: Sequence[str] = (),
        protect_names: Sequence[str] = (),
        minimum: int = 1,
        maximum: int | None = None,
        rules: FactRules | None = None,
    ) -> None:
        super().__init__(keep_words, protect_names, rules)
        ops = self.OPS if ops is None else ops
        self.weights = op_weights(ops, self.OPS, self.kind.split("_")[0])
        self.ops = list(self.weights)
        self.rate, self.minimum, self.maximum = _ops_rate(ops, rate), minimum, maximum
        total = sum(self.weights.values())
        acc, self._cum = 0.0, []
        for op in self.ops:
            acc += self.weights[op] / total
            self._cum.append(acc)

    def params(self) -> dict[str, Any]:
        return {"kind": self.kind, "rate": self.rate, "ops": self.weights, "min": self.minimum, "max": self.maximum}

    def _op(self, rng: SplitMix) -> str:
        if len(self.ops) == 1:
            return self.ops[0]
        u = rng.random()
        for op, c in zip(self.ops, self._cum, strict=True):
            if u < c:
                return op
        return self.ops[-1]

    def augment(self, texts: Sequence[str], seeds: Sequence[int], spans: Spans | None = None) -> list[Output]:
        units = batch_units(self.batch(texts, spans))
        return [self._one(u, seed) if u is not None else None for u, seed in zip(units, seeds, strict=True)]

    def _one(self, units: Units, seed: int) -> str | None:
        raise NotImplementedError


def join_gap(left: str, right: str, at_start: bool) -> str:
    """The gap left when the units between ``left`` and ``right`` go: one space, or the punctuation kept."""
    if not right.strip():
        return left if left else right
    if not left.strip():
        return "" if at_start else right
    return left.rstrip() + right


def _blank_trim(flags: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per [start, end) gap: is it all whitespace, and where its ``rstrip()`` ends (``start`` if blank); reads only
    the gaps' characters."""
    lens = ends - starts
    pos = np.repeat(starts, lens) + ranges(lens)
    gap = np.repeat(np.arange(starts.size), lens)
    solid = np.flatnonzero((flags[pos] & SPACE) == 0)
    blank = np.bincount(gap[solid], minlength=starts.size) == 0
    trim = starts.copy()
    last = solid[np.append(gap[solid][1:] != gap[solid][:-1], True)] if solid.size else solid
    trim[gap[last]] = pos[last] + 1
    return blank, trim


def _pieces(cps: np.ndarray, src: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """``cps[src[0] : src[0] + lens[0]]``, then the next piece, and so on, as one array: each character's source
    position is a running sum of steps of one that jump where a piece starts, so the cost is a sum over the
    characters and a step per piece (slicing a string per piece costs ~10x more per piece)."""
    full = lens > 0
    src, lens = src[full], lens[full]
    if src.size == 0:
        return cps[:0].copy()
    step = np.ones(int(lens.sum()), np.int64)
    step[0] = src[0]
    step[np.cumsum(lens[:-1])] = src[1:] - (src[:-1] + lens[:-1]) + 1
    return cps.take(np.cumsum(step))


def _permuted(
    cps: np.ndarray, f_start: np.ndarray, f_end: np.ndarray, perm: np.ndarray, moved: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The code points with each free unit ``moved[k]`` showing the text of unit ``perm[moved[k]]`` (units of one
    text: lengths are kept per text), and where each moved slot's text starts in the result.

    The result is pieces of the source: the stretches between moved slots shifted by the length changes before
    them, and the moved units' texts. One source position per character is a running sum of steps of one that
    jump at each piece, so the cost is a sum over the characters plus a step per moved slot, not per unit."""
    slot_start = np.zeros(f_start.size, np.int64)
    if moved.size == 0:
        return cps.copy(), slot_start
    src = f_start[perm[moved]]
    new_len = f_end[perm[moved]] - src
    shift = np.cumsum(new_len - (f_end[moved] - f_start[moved]))  # length change up to and with moved slot k
    o_end = f_end[moved] + shift
    o_start = o_end - new_len
    slot_start[moved] = o_start
    # pieces in output order: the stretch before the first moved slot, then each moved text and the stretch after
    p_src = np.empty(2 * moved.size + 1, np.int64)
    p_len = np.empty_like(p_src)
    p_src[0], p_len[0] = 0, o_start[0]
    p_src[1::2], p_len[1::2] = src, new_len
    p_src[2::2], p_len[2::2] = f_end[moved], np.append(o_start[1:], cps.size) - o_end
    return _pieces(cps, p_src, p_len), slot_start


class WordNoise(_UnitNoise):
    """EDA-style word edits on about ``rate`` of the unprotected words (at least ``minimum``).

    Ops: ``swap`` two words of one sentence, ``delete`` a word, ``insert`` a synonym of a
    random word (when a :class:`SynonymSwap` is given; else another word of the text) after a
    random word of its sentence. Protected spans are never moved, split or deleted;
    sentence-initial capitals stay at the start of their sentence. Edits are recorded per
    slot and the text is rebuilt from the untouched stretches between them, so a text costs
    about as much as its edits, not its length.
    """

    kind = "word_noise"
    OPS = WORD_OPS

    def __init__(
        self,
        rate: float = 0.1,
        ops: Ops = WORD_OPS,
        synonyms: SynonymSwap | None = None,
        keep_words: Sequence[str] = (),
        protect_names: Sequence[str] = (),
        minimum: int = 1,
        maximum: int | None = None,
        rules: FactRules | None = None,
    ) -> None:
        super().__init__(rate, ops, keep_words, protect_names, minimum, maximum, rules)
        self.synonyms = synonyms

    def augment(self, texts: Sequence[str], seeds: Sequence[int], spans: Spans | None = None) -> list[Output]:
        if self.ops == ["swap"]:
            return self._swap_batch(texts, seeds, spans)
        if self.ops == ["delete"]:
            return self._delete_batch(texts, seeds, spans)
        slots = unit_slots(self.batch(texts, spans))
        return [
            self._edit(text, sl, seed) if sl is not None else None
            for text, sl, seed in zip(texts, slots, seeds, strict=True)
        ]

    def _edit(self, text: str, sl: UnitSlots, seed: int) -> str | None:
        s_, e_, sids = sl.starts, sl.ends, sl.sids
        free = sl.free
        if not free:
            return None
        rng = SplitMix(seed)
        one_sentence = sids[0] == sids[-1]
        content: dict[int, str] = {}
        deleted: set[int] = set()
        inserts: dict[int, list[str]] = {}

        def cur(i: int) -> str:
            return content[i] if i in content else text[s_[i] : e_[i]]

        target = edit_count(len(free), self.rate, self.minimum, self.maximum)
        done = 0
        for _ in range(target * 3):
            if done >= target:
                break
            op = self._op(rng)
            alive = [i for i in free if i not in deleted] if deleted else free
            i = rng.choice(alive)
            if op == "swap":
                word = cur(i)
                same = alive if one_sentence else [j for j in alive if sids[j] == sids[i]]
                j = i
                for _ in range(4):  # a partner with other text; identical words would swap to nothing
                    j = rng.choice(same)
                    if j != i and cur(j) != word:
                        break
                else:
                    partners = [j for j in same if cur(j) != word]
                    if not partners:
                        continue
                    j = rng.choice(partners)
                content[i], content[j] = cur(j), word
            elif op == "delete":
                if len(alive) < 2 or i in inserts:
                    continue
                deleted.add(i)
            else:
                word = self._insertion(text, alive, s_, e_, cur(i), rng)
                if word is None:
                    continue
                anchor = rng.choice([j for j in alive if sids[j] == sids[i]])
                inserts.setdefault(anchor, []).append(word)
            done += 1
        if not done:
            return None
        self._fix_capitals(text, sl, content, deleted, cur)
        return self._rebuild(text, sl, content, deleted, inserts)

    def _swap_batch(self, texts: Sequence[str], seeds: Sequence[int], spans: Spans | None) -> list[Output]:
        """Swap-only noise for the whole batch in numpy: each round every text that still needs a swap draws
        a word and a partner in its sentence, keyed by (seed, round), and the text is gathered back once."""
        batch = self.batch(texts, spans)
        n_texts = len(texts)
        starts, ends, locked, owner, sid = unit_arrays(batch)
        free = np.flatnonzero(~locked)
        if free.size == 0:
            return [None] * n_texts
        f_owner = owner[free]
        # sentence groups of free units: a new group where the text or the sentence changes
        new_group = np.ones(free.size, bool)
        new_group[1:] = (f_owner[1:] != f_owner[:-1]) | (sid[free][1:] != sid[free][:-1])
        group = running_count(new_group) - 1
        g_start = np.flatnonzero(new_group)
        g_size = np.diff(np.append(g_start, free.size))
        per_text = np.bincount(f_owner, minlength=n_texts)[:n_texts]
        t_first = np.concatenate(([0], np.cumsum(per_text)[:-1]))
        k = np.minimum(np.maximum(self.minimum, np.round(self.rate * per_text).astype(np.int64)), per_text)
        if self.maximum is not None:
            k = np.minimum(k, self.maximum)
        k[per_text == 0] = 0
        f_start, f_len = starts[free], ends[free] - starts[free]
        cps = batch.cps
        perm = np.arange(free.size)  # free slot -> free unit whose text it shows
        done = np.zeros(n_texts, np.int64)
        seed_arr = seed_array(seeds)
        rounds = int(3 * k.max())
        later: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # rounds 1+, drawn at once for round 1's texts
        for r in range(rounds):
            live = np.flatnonzero(done < k)
            if live.size == 0:
                break
            if r == 0:
                d_word = draws(seed_arr[live], np.zeros(live.size, np.int64), 11)
                d_partner = draws(seed_arr[live], np.zeros(live.size, np.int64), 12)
            else:
                if later is None:
                    cols = np.arange(1, rounds)[None, :]
                    row_of = np.full(n_texts, -1, np.int64)
                    row_of[live] = np.arange(live.size)
                    later = (row_of, draws(seed_arr[live][:, None], cols, 11), draws(seed_arr[live][:, None], cols, 12))
                rows = later[0][live]
                d_word, d_partner = later[1][rows, r - 1], later[2][rows, r - 1]
            a = t_first[live] + (d_word % per_text[live].astype(np.uint64)).astype(np.int64)
            g = group[a]
            size = g_size[g]
            ok = size > 1
            off = (d_partner % np.maximum(size - 1, 1).astype(np.uint64)).astype(np.int64)
            b = g_start[g] + off
            b = np.where(b >= a, b + 1, b)  # any other unit of the sentence
            b = np.where(ok, b, a)
            pa, pb = perm[a], perm[b]
            same = ok & (f_len[pa] == f_len[pb])
            x = np.flatnonzero(same)  # equal length: compare the words themselves, letter by letter
            if x.size:
                n = f_len[pa[x]]
                at = ranges(n)
                differ = cps[np.repeat(f_start[pa[x]], n) + at] != cps[np.repeat(f_start[pb[x]], n) + at]
                ok[x] = np.add.reduceat(differ, np.cumsum(n) - n)
            a, b, who = a[ok], b[ok], live[ok]
            perm[a], perm[b] = perm[b], perm[a]
            done[who] += 1
        # capitals: a sentence's first unit keeps its capital, the word moved away from there loses it
        moved = np.flatnonzero(perm != np.arange(free.size))  # free slots now showing another unit's text
        u = free[moved]
        before = np.maximum(u - 1, 0)
        heads = moved[(u == 0) | (owner[u] != owner[before]) | (sid[u] != sid[before])]  # first unit of a sentence
        out, slot_start = _permuted(batch.cps, starts[free], ends[free], perm, moved)
        if heads.size:
            f = batch.flags
            old_first = free[heads]  # the unit that used to open the sentence
            was_cap = (f[starts[old_first]] & UPPER) > 0
            title = (
                was_cap
                & ((ends[old_first] - starts[old_first]) > 1)
                & ((f[np.minimum(starts[old_first] + 1, f.size - 1)] & UPPER) == 0)
            )
            up = tables_upper()
            low = tables_lower()
            p = slot_start[heads][was_cap]
            out[p] = up[np.minimum(out[p], 0xFFFF)]
            inv = np.empty(free.size, np.int64)
            inv[perm] = np.arange(free.size)
            moved = inv[heads][title]  # where the old first word went
            q = slot_start[moved]
            out[q] = low[np.minimum(out[q], 0xFFFF)]
        result = batch.split(decode(out))
        return _edited_only(result, done > 0, batch)

    def _delete_batch(self, texts: Sequence[str], seeds: Sequence[int], spans: Spans | None) -> list[Output]:
        """Delete-only noise for the whole batch, the same edits as the per-text walk (:meth:`_edit`): deletion
        ``j`` of a text takes word ``draw_j mod (words left)`` of those still there, with the text's
        :class:`~augment.text.SplitMix` draws (in numpy for the batch); each run of deleted units then closes
        with :func:`join_gap` and a sentence that lost its capitalised first word capitalises its new first
        one, spliced into the joined batch in one pass over the edits (not over its characters)."""
        batch = self.batch(texts, spans)
        n_texts = len(texts)
        starts, ends, locked, owner, sid = unit_arrays(batch)
        free = np.flatnonzero(~locked)
        per_text = np.bincount(owner[free], minlength=n_texts)[:n_texts]
        target = np.minimum(np.maximum(self.minimum, np.round(self.rate * per_text).astype(np.int64)), per_text)
        if self.maximum is not None:
            target = np.minimum(target, self.maximum)
        count = np.minimum(target, np.maximum(per_text - 1, 0))  # the walk never deletes a text's last free word
        rows = np.flatnonzero(count > 0)
        if rows.size == 0:
            return [None] * n_texts
        t_first = np.concatenate(([0], np.cumsum(per_text)[:-1]))
        gone = np.zeros(starts.size, bool)
        ranks = self._deleted_ranks(seed_array(seeds)[rows], per_text[rows], count[rows])
        gone[free[np.repeat(t_first[rows], count[rows]) + ranks]] = True
        g = np.flatnonzero(gone)
        # runs of deleted units inside one text, and the text around each
        same_text_prev = np.zeros(starts.size, bool)
        same_text_prev[1:] = owner[1:] == owner[:-1]
        same_text_next = np.zeros(starts.size, bool)
        same_text_next[:-1] = same_text_prev[1:]
        first = g[~(gone[np.maximum(g - 1, 0)] & same_text_prev[g])]
        last = g[~(gone[np.minimum(g + 1, starts.size - 1)] & same_text_next[g])]
        at_start = ~same_text_prev[first]
        left_s = np.where(at_start, batch.starts[owner[first]], ends[np.maximum(first - 1, 0)])
        right_e = np.where(same_text_next[last], starts[np.minimum(last + 1, starts.size - 1)], batch.ends[owner[last]])
        # capitals: a sentence whose first unit went and started with a capital capitalises its new first unit
        head = np.ones(starts.size, bool)
        head[1:] = ~same_text_prev[1:] | (sid[1:] != sid[:-1])
        lost = g[head[g] & ((batch.flags[starts[g]] & UPPER) > 0)]
        cap_at = np.empty(0, np.int64)
        cap_to = np.empty(0, np.uint32)
        redo: list[int] = []
        if lost.size:
            sentence = np.cumsum(head) - 1
            alive = np.flatnonzero(~gone)
            nxt = np.searchsorted(alive, lost)
            ok = nxt < alive.size
            lost, nxt = lost[ok], alive[nxt[ok]]
            nxt = nxt[(sentence[nxt] == sentence[lost]) & ~locked[nxt]]
            cap_at = starts[nxt]
            old = np.minimum(batch.cps[cap_at], 0xFFFF)
            multi = _UPPER_GROWS[old]  # "ß".upper() is "SS": the walk handles those
            redo = np.unique(owner[nxt][multi]).tolist()
            cap_at, cap_to = cap_at[~multi], tables_upper()[old[~multi]]
        # join_gap of each run as kept ranges [left_s, keep_left) and [right_s, keep_right) of its stretch
        left_e, right_s = starts[first], ends[last]
        blank, trim = _blank_trim(batch.flags, np.concatenate((left_s, right_s)), np.concatenate((left_e, right_e)))
        left_blank, right_blank, left_trim = blank[: first.size], blank[first.size :], trim[: first.size]
        left_empty = left_e == left_s
        keep_left = np.where(right_blank, np.where(left_empty, left_s, left_e), np.where(left_blank, left_s, left_trim))
        keep_right = np.where(
            right_blank, np.where(left_empty, right_e, right_s), np.where(left_blank & at_start, right_s, right_e)
        )
        # the output as slices of the joined batch, edits in order: up to each edit, then what it puts there
        # (a run: its kept right part; a capital: its upper-case letter, appended after the batch)
        j = batch.joined
        order = np.argsort(np.concatenate((left_s, cap_at)), kind="stable")
        cut = np.concatenate((keep_left, cap_at))[order]
        put_s = np.concatenate((right_s, len(j) + np.arange(cap_at.size)))[order]
        put_e = np.concatenate((keep_right, len(j) + 1 + np.arange(cap_at.size)))[order]
        resume = np.concatenate((right_e, cap_at + 1))[order]
        slice_s = np.empty(2 * order.size + 1, np.int64)
        slice_e = np.empty(2 * order.size + 1, np.int64)
        slice_s[0::2], slice_s[1::2] = np.concatenate(([0], resume)), put_s
        slice_e[0::2], slice_e[1::2] = np.append(cut, len(j)), put_e
        kept = _pieces(np.concatenate((batch.cps, cap_to)), slice_s, slice_e - slice_s)
        edited = np.zeros(n_texts, bool)
        edited[rows] = True
        out = _edited_only(decode(kept).split(SEP), edited, batch)
        for r in redo:
            slots = unit_slots(self.batch([texts[r]], [batch.spans(r)]))[0]
            out[r] = None if slots is None else self._edit(texts[r], slots, seeds[r])
        return out

    @staticmethod
    def _deleted_ranks(seed_arr: np.ndarray, n_free: np.ndarray, n_del: np.ndarray) -> np.ndarray:
        """Per text (row), the free-word numbers of its ``n_del`` deletions, flattened row by row: deletion ``j``
        is ``half_j mod (n_free - j)`` among the words still there (:meth:`SplitMix.below`'s 32-bit halves)."""
        most = int(n_del.max())
        first = mix64(seed_arr + np.uint64(GOLDEN)) & np.uint64(0xFFFFFFFF)  # arrays wrap without a warning
        first = (first % np.maximum(n_free, 1).astype(np.uint64)).astype(np.int64)
        if most == 1:  # the common case: one deletion per text
            return first
        ranks = np.empty((n_del.size, most), np.int64)
        ranks[:, 0] = first
        for j in range(1, most):
            live = np.flatnonzero(n_del > j)
            z = mix64(seed_arr[live] + np.uint64(((j // 2 + 1) * GOLDEN) & 0xFFFFFFFFFFFFFFFF))
            half = (z & np.uint64(0xFFFFFFFF)) if j % 2 == 0 else (z >> np.uint64(32))
            pos = (half % np.maximum(n_free[live] - j, 1).astype(np.uint64)).astype(np.int64)  # among the words left
            for c in np.sort(ranks[live, :j], axis=1).T:  # skip the words deleted before, in order
                pos += c <= pos
            ranks[live, j] = pos
        return ranks[np.arange(most)[None, :] < n_del[:, None]]

    def _insertion(
        self, text: str, alive: list[int], s_: list[int], e_: list[int], word: str, rng: SplitMix
    ) -> str | None:
        if self.synonyms is not None:
            options = self.synonyms.synonyms(word)
            if options:
                return rng.choice(options)
        low = word.lower()
        others = [w for w in (text[s_[k] : e_[k]] for k in alive) if w.lower() != low]
        if not others:
            return None
        other = rng.choice(others)
        return other.lower() if other[:1].isupper() and not other.isupper() and len(other) > 1 else other

    @staticmethod
    def _fix_capitals(text: str, sl: UnitSlots, content: dict[int, str], deleted: set[int], cur) -> None:
        """Keep "Hello there." from becoming "there Hello." after a swap or a deleted first word."""
        s_, e_, locked, sids = sl.starts, sl.ends, sl.locked, sl.sids
        heads = [i for i in (*content, *deleted) if i == 0 or sids[i - 1] != sids[i]]
        if not heads:
            return  # no sentence lost or changed its first unit
        touched = {sids[i] for i in heads}
        for sid in sorted(touched):
            members = [k for k, x in enumerate(sids) if x == sid]
            first = members[0]
            old = text[s_[first] : e_[first]]
            if locked[first] or not old[:1].isupper():
                continue
            alive = [k for k in members if k not in deleted]
            if not alive:
                continue
            new_first = alive[0]
            if cur(new_first) == old and new_first == first:
                continue
            if not locked[new_first]:
                word = cur(new_first)
                content[new_first] = word[:1].upper() + word[1:]
            if old.isupper() or old == "I" or old.startswith(("I'", "I’")):
                continue
            for j in alive[1:]:
                if j in content and content[j] == old and not locked[j]:
                    content[j] = old[:1].lower() + old[1:]

    @staticmethod
    def _rebuild(
        text: str, sl: UnitSlots, content: dict[int, str], deleted: set[int], inserts: dict[int, list[str]]
    ) -> str:
        s_, e_ = sl.starts, sl.ends
        n = len(s_)
        out: list[str] = []
        pos = 0
        affected = sorted({*content, *deleted, *inserts})
        k = 0
        while k < len(affected):
            i = affected[k]
            if i in deleted:
                b = i
                while b + 1 in deleted:
                    b += 1
                left_start = e_[i - 1] if i > 0 else 0
                right_end = s_[b + 1] if b + 1 < n else len(text)
                joined = join_gap(text[left_start : s_[i]], text[e_[b] : right_end], i == 0)
                out += [text[pos:left_start], joined]
                pos = right_end
                while k < len(affected) and affected[k] <= b:
                    k += 1
                continue
            out += [text[pos : s_[i]], content.get(i, text[s_[i] : e_[i]])]
            out += [" " + w for w in inserts.get(i, ())]
            pos = e_[i]
            k += 1
        out.append(text[pos:])
        return "".join(out)


class CaseNoise(_UnitNoise):
    """Change the case of about ``rate`` of the unprotected words: lower, Title or UPPER (never the same)."""

    kind = "case_noise"
    OPS = CASE_OPS

    def _one(self, units: Units, seed: int) -> str | None:
        rng = SplitMix(seed)
        free = [i for i in units.free() if units.units[i] != "I"]
        if not free:
            return None
        target = edit_count(len(free), self.rate, self.minimum, self.maximum)
        order = sorted(free, key=lambda i: SplitMix(seed ^ (i * 0x9E3779B97F4A7C15)).next())
        done = 0
        for i in order:
            if done >= target:
                break
            word = units.units[i]
            op = self._op(rng)
            new = {"lower": word.lower(), "title": word[:1].upper() + word[1:].lower(), "upper": word.upper()}[op]
            if new == word:
                new = word.lower() if word != word.lower() else word[:1].upper() + word[1:]
            if new != word:
                units.units[i] = new
                done += 1
        return units.join() if done else None


class PunctNoise(_UnitNoise):
    """Punctuation noise on about ``rate`` of the gaps between words: ``insert`` a mark (AEDA),
    ``delete`` one, or ``replace`` one by another. Marks inside protected spans are never touched."""

    kind = "punct_noise"
    OPS = PUNCT_OPS

    def _one(self, units: Units, seed: int) -> str | None:
        gaps = units.gaps
        inner = list(range(1, len(gaps) - 1)) if len(gaps) > 2 else []
        if not inner:
            return None
        rng = SplitMix(seed)
        target = edit_count(len(inner), self.rate, self.minimum, self.maximum)
        done = 0
        for _ in range(target * 3):
            if done >= target:
                break
            g = rng.choice(inner)
            gap = gaps[g]
            marks = [k for k, c in enumerate(gap) if c in PUNCT_MARKS]
            op = self._op(rng)
            if op == "insert":
                mark = rng.choice(PUNCT_MARKS)
                gaps[g] = f" {mark}{gap}" if gap.startswith(" ") or not gap else gap + f"{mark} "
            elif not marks:
                continue
            elif op == "delete":
                k = rng.choice(marks)
                gaps[g] = gap[:k] + gap[k + 1 :] if gap[:k] + gap[k + 1 :] else " "
            else:
                k = rng.choice(marks)
                gaps[g] = gap[:k] + rng.choice(PUNCT_MARKS.replace(gap[k], "")) + gap[k + 1 :]
            done += 1
        return units.join() if done else None

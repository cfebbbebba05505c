"""Typos and EDA word edits: cheap noise so a model does not depend on perfectly spelled input."""

from __future__ import annotations

import random
import string
from collections.abc import Sequence

from augment.base import Augmenter, Units, match_case, rng_for, words
from augment.synonym import SynonymSwap

CHAR_OPS = ("keyboard", "insert", "delete", "substitute", "swap")
WORD_OPS = ("swap", "delete", "insert")
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


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


class CharNoise(Augmenter):
    """Edit ``rate`` of the letters in unprotected words of ``min_word_len``+ letters.

    Ops: ``keyboard`` (a neighbouring key), ``insert`` (a neighbouring key added),
    ``delete``, ``substitute`` (any other letter), ``swap`` (with the next letter).
    Edited letters are never adjacent, so each edit stays readable as one typo.
    """

    kind = "char_noise"

    def __init__(
        self,
        rate: float = 0.03,
        ops: Sequence[str] = CHAR_OPS,
        min_word_len: int = 3,
        keep_words: Sequence[str] = (),
        protect_names: Sequence[str] = (),
    ) -> None:
        super().__init__(keep_words, protect_names)
        unknown = set(ops) - set(CHAR_OPS)
        if unknown or not ops:
            raise ValueError(f"char ops must be a non-empty subset of {CHAR_OPS}, got {list(ops)}")
        self.rate, self.ops, self.min_word_len = rate, list(ops), min_word_len

    def augment(self, texts: Sequence[str], seeds: Sequence[int]) -> list[str | None]:
        return [self._one(text, seed) for text, seed in zip(texts, seeds, strict=True)]

    def _one(self, text: str, seed: int) -> str | None:
        rng = rng_for(seed)
        letters: list[tuple[int, int]] = []  # (position, end of its word)
        for w in words(text, self.protected(text)):
            if not w.protected and len(w.text) >= self.min_word_len:
                letters += [(w.start + k, w.end) for k, ch in enumerate(w.text) if ch.isalpha()]
        if not letters:
            return None
        target = max(1, round(self.rate * len(letters)))
        rng.shuffle(letters)
        chosen: list[tuple[int, int]] = []
        taken: set[int] = set()
        for pos, end in letters:
            if len(chosen) >= target:
                break
            if not taken & {pos - 1, pos, pos + 1}:
                chosen.append((pos, end))
                taken.add(pos)
        chars = list(text)
        for pos, end in sorted(chosen, reverse=True):
            self._edit(chars, pos, end, rng.choice(self.ops), rng)
        return "".join(chars)

    @staticmethod
    def _edit(chars: list[str], pos: int, end: int, op: str, rng: random.Random) -> None:
        ch = chars[pos]
        low = ch.lower()
        near = KEYBOARD.get(low) or string.ascii_lowercase.replace(low, "")
        if op == "keyboard":
            chars[pos] = match_case(ch, rng.choice(near))
        elif op == "insert":
            chars.insert(pos + 1, rng.choice(near))
        elif op == "delete":
            del chars[pos]
        elif op == "substitute":
            chars[pos] = match_case(ch, rng.choice(string.ascii_lowercase.replace(low, "")))
        elif op == "swap":
            other = pos + 1 if pos + 1 < end and chars[pos + 1].isalpha() else pos - 1
            if chars[other] == ch:
                chars[pos] = match_case(ch, rng.choice(near))
            else:
                chars[pos], chars[other] = chars[other], chars[pos]


class WordNoise(Augmenter):
    """EDA-style word edits on about ``rate`` of the unprotected words (at least one edit).

    Ops: ``swap`` two words of one sentence, ``delete`` a word, ``insert`` after a random word
    either a synonym of it (when a :class:`SynonymSwap` is given) or another
    word of the same text. Protected spans are never moved, split or deleted.
    Sentence-initial capitals stay at the start of their sentence.
    """

    kind = "word_noise"

    def __init__(
        self,
        rate: float = 0.1,
        ops: Sequence[str] = WORD_OPS,
        synonyms: SynonymSwap | None = None,
        keep_words: Sequence[str] = (),
        protect_names: Sequence[str] = (),
    ) -> None:
        super().__init__(keep_words, protect_names)
        unknown = set(ops) - set(WORD_OPS)
        if unknown or not ops:
            raise ValueError(f"word ops must be a non-empty subset of {WORD_OPS}, got {list(ops)}")
        self.rate, self.ops, self.synonyms = rate, list(ops), synonyms

    def augment(self, texts: Sequence[str], seeds: Sequence[int]) -> list[str | None]:
        return [self._one(text, seed) for text, seed in zip(texts, seeds, strict=True)]

    def _one(self, text: str, seed: int) -> str | None:
        rng = rng_for(seed)
        units = Units(text, self.protected(text))
        free = units.free()
        if not free:
            return None
        firsts = self._sentence_firsts(units)
        target = max(1, round(self.rate * len(free)))
        done = 0
        for _ in range(target * 3):
            if done >= target:
                break
            done += self._apply(units, rng.choice(self.ops), rng)
        if not done:
            return None
        self._fix_capitals(units, firsts)
        return units.join()

    def _apply(self, units: Units, op: str, rng: random.Random) -> bool:
        free = units.free()
        if op == "swap":
            sentence = units.sentence_ids()
            i = rng.choice(free)
            partners = [j for j in free if sentence[j] == sentence[i] and units.units[j] != units.units[i]]
            if not partners:
                return False
            j = rng.choice(partners)
            units.units[i], units.units[j] = units.units[j], units.units[i]
        elif op == "delete":
            if len(free) < 2:
                return False
            units.delete(rng.choice(free))
        else:
            i = rng.choice(free)
            word = self._insertion(units, i, rng)
            if word is None:
                return False
            units.insert_after(i, word)
        return True

    def _insertion(self, units: Units, i: int, rng: random.Random) -> str | None:
        if self.synonyms is not None:
            options = self.synonyms.synonyms(units.units[i])
            if options:
                return rng.choice(options)
        others = [units.units[k] for k in units.free() if units.units[k].lower() != units.units[i].lower()]
        if not others:
            return None
        word = rng.choice(others)
        return word.lower() if word[:1].isupper() and not word.isupper() and len(word) > 1 else word

    @staticmethod
    def _sentence_firsts(units: Units) -> dict[int, str]:
        firsts: dict[int, str] = {}
        for k, sid in enumerate(units.sentence_ids()):
            if sid not in firsts:
                firsts[sid] = units.units[k] if not units.locked[k] and units.units[k][:1].isupper() else ""
        return firsts

    @classmethod
    def _fix_capitals(cls, units: Units, before: dict[int, str]) -> None:
        """Keep "Hello there." from becoming "there Hello." after a swap or a deleted first word."""
        sentence = units.sentence_ids()
        if len(set(sentence)) != len(before):
            return
        after = cls._sentence_firsts(units)
        for sid, old in before.items():
            if not old or after.get(sid) == old:
                continue
            k = sentence.index(sid)
            if not units.locked[k]:
                units.units[k] = units.units[k][:1].upper() + units.units[k][1:]
            if old.isupper() or old == "I" or old.startswith(("I'", "I’")):
                continue
            for j in range(k + 1, len(units.units)):
                if sentence[j] == sid and units.units[j] == old and not units.locked[j]:
                    units.units[j] = old[:1].lower() + old[1:]

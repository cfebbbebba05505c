"""WordNet synonym replacement without a POS tagger (NLTK's tagger model cannot be had offline)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from augment.base import Augmenter, match_case, rng_for, sentence_initial, words

_STOP_WORDS_TEXT = """
    a about above after again against all also am an and any are aren't as at be because been before being below
    between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
    either else ever few for from further get gets got had hadn't has hasn't have haven't having he her here hers
    herself him himself his how however i if in into is isn't it it's its itself just let let's like made make
    may me might more most much must mustn't my myself neither no nor not now of off ok okay on once only or other
    ought our ours ourselves out over own per please same shall she should shouldn't so some still such than that
    that's the their theirs them themselves then there there's these they this those through thus to too under
    until up upon us very via was wasn't we were weren't what when where whether which while who whom whose why
    will with within without won't would wouldn't yes yet you your yours yourself yourselves hi hello hey thanks
    thank dear regards sir madam go goes going went gone one two three first second new
    nobody somebody someone anyone everyone anybody everybody something anything nothing everything
"""
_DETERMINERS_TEXT = "a an the this that these those my your his her its our their some any each every no"
_VERB_CUES_TEXT = "to i we you they will would can could should must might may please don't didn't won't"
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_DETERMINERS = frozenset(_DETERMINERS_TEXT.split())
_VERB_CUES = frozenset(_VERB_CUES_TEXT.split())
_POS_ORDER = ("n", "v", "a", "r")


def _cvc(word: str) -> bool:
    """Short consonant-vowel-consonant stems double their last letter: stop -> stopped."""
    return len(re.findall(r"[aeiou]+", word)) == 1 and re.search(r"(?:^|[^aeiou])[aeiou][^aeiouwxy]$", word) is not None


def plural(word: str) -> str:
    if re.search(r"(?:s|x|z|ch|sh)$", word):
        return word + "es"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + "s"


def past(word: str) -> str:
    if word.endswith("e"):
        return word + "d"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ied"
    return word + word[-1] + "ed" if _cvc(word) else word + "ed"


def gerund(word: str) -> str:
    if word.endswith("ie"):
        return word[:-2] + "ying"
    if word.endswith("e") and not word.endswith(("ee", "ye", "oe")):
        return word[:-1] + "ing"
    return word + word[-1] + "ing" if _cvc(word) else word + "ing"


def _inflect_phrase(phrase: str, fn: Any, head_first: bool) -> str:
    parts = phrase.split(" ")
    i = 0 if head_first else len(parts) - 1
    parts[i] = fn(parts[i])
    return " ".join(parts)


class SynonymSwap(Augmenter):
    """Replace about ``rate`` of a text's words with a WordNet synonym.

    How a word is read without a tagger: stop words, short words, protected
    spans and capitalised words mid-sentence (names) are skipped. The part of
    speech is the one whose senses of the word's base form (``wordnet.morphy``)
    have the highest tagged-corpus count (``lemma.count()``), nudged by the
    previous word (a determiner favours nouns/adjectives, "to"/modals/pronouns
    favour verbs). The sense is WordNet's most frequent one (the first synset;
    the second only when the first offers nothing and the word is used at least
    half as often in it). Only lemmas attested in SemCor (count > 0) are used,
    single words first. Inflection is kept where regular: plural nouns get
    -s/-es/-ies, verbs keep -s, -ed and -ing (irregular replacements are skipped
    for the past tense); the replaced word's case pattern is copied.
    """

    kind = "synonym"

    def __init__(
        self,
        rate: float = 0.15,
        min_words: int = 1,
        max_words: int = 10,
        keep_words: Sequence[str] = (),
        protect_names: Sequence[str] = (),
    ) -> None:
        super().__init__(keep_words, protect_names)
        self.rate, self.min_words, self.max_words = rate, min_words, max_words
        from nltk.corpus import wordnet

        try:
            wordnet.ensure_loaded()
        except LookupError as e:
            raise RuntimeError("WordNet is not available to nltk; run `python -m augment.resources`") from e
        self.wn = wordnet
        exceptions = getattr(wordnet, "_exception_map", {}).get("v", {})
        self._irregular_verbs = frozenset(base for bases in exceptions.values() for base in bases)
        self._irregular_forms = frozenset(exceptions)
        self._lookup = lru_cache(maxsize=50_000)(self._lookup_uncached)

    def _pos_scores(self, lower: str, prev: str | None) -> list[tuple[float, str, str]]:
        scores = []
        for pos in _POS_ORDER:
            base = self.wn.morphy(lower, pos)
            if base is None:
                continue
            count = sum(
                lemma.count()
                for synset in self.wn.synsets(base, pos)
                for lemma in synset.lemmas()
                if lemma.name().lower() == base
            )
            if (prev in _DETERMINERS and pos in ("n", "a")) or (prev in _VERB_CUES and pos == "v"):
                count *= 3
            if count > 0:
                scores.append((count, pos, base))
        scores.sort(key=lambda s: (-s[0], _POS_ORDER.index(s[1])))
        return scores

    def _alternatives(self, base: str, pos: str) -> list[str]:
        first_count = 0
        for rank, synset in enumerate(self.wn.synsets(base, pos)[:2]):
            lemmas = {lemma.name().lower(): lemma for lemma in synset.lemmas()}
            count = lemmas[base].count() if base in lemmas else 0
            first_count = first_count or count
            if rank and count * 2 < first_count:
                continue
            attested = sorted((lemma for lemma in lemmas.values() if lemma.count() > 0), key=lambda x: -x.count())
            names = [lemma.name().replace("_", " ") for lemma in attested if lemma.name().lower() != base]
            names = [n for n in names if n.islower() and n.replace(" ", "").isalpha() and n.count(" ") <= 1]
            if names:
                return [n for n in names if " " not in n] or names
        return []

    def _inflect(self, lower: str, base: str, pos: str, alternative: str) -> str | None:
        if lower == base:
            return alternative
        if pos == "n":
            return _inflect_phrase(alternative, plural, False) if lower == plural(base) else None
        if pos != "v":
            return None
        head = alternative.split(" ")[0]
        if lower == plural(base):
            return _inflect_phrase(alternative, plural, True)
        if lower == gerund(base):
            return _inflect_phrase(alternative, gerund, True)
        if lower == past(base) or lower in self._irregular_forms:
            return None if head in self._irregular_verbs else _inflect_phrase(alternative, past, True)
        return None

    def _lookup_uncached(self, lower: str, prev: str | None) -> tuple[str, ...]:
        for _, pos, base in self._pos_scores(lower, prev)[:1]:
            out = []
            for alternative in self._alternatives(base, pos):
                inflected = self._inflect(lower, base, pos, alternative)
                if inflected and inflected != lower:
                    out.append(inflected)
            return tuple(out[:3])
        return ()

    def synonyms(self, word: str, prev: str | None = None) -> list[str]:
        """Synonyms of ``word`` in its own inflection, best first; empty when unsure."""
        lower = word.lower()
        if lower in STOP_WORDS or len(lower) < 3 or "'" in lower or "’" in lower:
            return []
        return list(self._lookup(lower, prev.lower() if prev else None))

    def augment(self, texts: Sequence[str], seeds: Sequence[int]) -> list[str | None]:
        return [self._one(text, seed) for text, seed in zip(texts, seeds, strict=True)]

    def _one(self, text: str, seed: int) -> str | None:
        rng = rng_for(seed)
        spans = self.protected(text)
        tokens = words(text, spans)
        if not tokens:
            return None
        target = min(self.max_words, max(self.min_words, round(self.rate * len(tokens))))
        order = list(range(len(tokens)))
        rng.shuffle(order)
        edits: list[tuple[int, int, str]] = []
        for i in order:
            if len(edits) >= target:
                break
            tok = tokens[i]
            if tok.protected or (tok.text[0].isupper() and not sentence_initial(text, tok.start)):
                continue
            if len(tok.text) > 1 and tok.text.isupper():
                continue
            prev = tokens[i - 1].text if i > 0 and not sentence_initial(text, tok.start) else None
            options = self.synonyms(tok.text, prev)
            if options:
                edits.append((tok.start, tok.end, match_case(tok.text, rng.choice(options))))
        if not edits:
            return None
        out = text
        for start, end, new in sorted(edits, reverse=True):
            out = out[:start] + new + out[end:]
        return out

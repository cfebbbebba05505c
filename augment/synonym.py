"""WordNet synonym replacement without a POS tagger (NLTK's tagger model cannot be had offline).

A word's part of speech comes from WordNet's tagged-corpus counts and its
neighbours, with rules in the spirit of spaCy's rule-based attribute ruler
(``spacy.blank("en")`` itself ships no tagger, and its lemma lookups need the
separate spacy-lookups-data package; WordNet's ``morphy`` and exception lists
give the same lemmas offline):

- after a determiner, possessive, number or a name -> noun (or adjective);
- after "to", a modal, a subject pronoun, "please" or "do" -> verb;
- after a form of "be"/"have": -ed/-en/-ing -> verb (participle), else adjective;
- before a determiner -> verb ("check the box");
- with no cue, the part of speech whose first counted sense is used at least 3x
  as often as any other's; an ambiguous word (guide, squeeze) is left alone;
- a noun that modifies the next noun ("squeeze filter") is left alone.

The sense is the first WordNet sense of that part of speech with a corpus
count; replacements are its lemmas used at least 10% as often as the word
itself, single words unless ``multiword``. Plural nouns, verb -s/-ed/-ing and
comparative/superlative adjectives are re-inflected (irregular targets are
skipped), the case pattern is copied and "a"/"an" before the word is made to
agree with the replacement.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from augment.base import Augmenter, Output, Spans, match_case
from augment.text import UPPER, FactRules, SplitMix, draws, seed_array
from augment.wordnet_index import load_index

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
    near across along around behind beside beyond inside outside toward towards despite past since except unlike
    onto beneath among amid throughout underneath alongside regarding per next
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_DETERMINERS_TEXT = "a an the this that these those my your his her its our their some any each every no another"
_VERB_CUES_TEXT = "to i we you they he she will would can could should must might may shall please do does did let"
_BE_TEXT = "is are was were be been being am isn't aren't wasn't weren't"
_HAVE_TEXT = "have has had having haven't hasn't hadn't"
_DETERMINERS = frozenset(_DETERMINERS_TEXT.split())
_VERB_CUES = frozenset(_VERB_CUES_TEXT.split()) | {"don't", "didn't", "won't", "can't", "cannot"}
_BE = frozenset(_BE_TEXT.split())
_HAVE = frozenset(_HAVE_TEXT.split())
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


def comparative(word: str, suffix: str = "er") -> str:
    if word.endswith("e"):
        return word + suffix[1:]
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "i" + suffix
    return word + word[-1] + suffix if _cvc(word) else word + suffix


def superlative(word: str) -> str:
    return comparative(word, "est")


def _inflect_phrase(phrase: str, fn: Any, head_first: bool) -> str:
    parts = phrase.split(" ")
    i = 0 if head_first else len(parts) - 1
    parts[i] = fn(parts[i])
    return " ".join(parts)


def article_for(word: str) -> str:
    """ "an" before a vowel letter, else "a" (spelling, not sound: good enough for swapped words)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


class SynonymSwap(Augmenter):
    """Replace about ``rate`` of a text's words (clamped to [``min_words``, ``max_words``]) with a WordNet synonym.

    Stop words, short words, protected spans, all-caps words and capitalised
    words mid-sentence (names) are skipped; see the module docstring for how
    the part of speech and sense are chosen without a tagger.
    """

    kind = "synonym"

    def __init__(
        self,
        rate: float = 0.15,
        min_words: int = 1,
        max_words: int = 10,
        keep_words: Sequence[str] = (),
        protect_names: Sequence[str] = (),
        multiword: bool = False,
        min_share: float = 0.1,
        rules: FactRules | None = None,
    ) -> None:
        super().__init__(keep_words, protect_names, rules)
        self.rate, self.min_words, self.max_words = rate, min_words, max_words
        self.multiword, self.min_share = multiword, min_share
        try:
            self.index = load_index()
        except LookupError as e:
            raise RuntimeError("WordNet is not available to nltk; run `python -m augment.resources`") from e
        exceptions = self.index.exceptions["v"]
        self._irregular_forms = frozenset(exceptions)
        self._verb_forms: dict[str, list[str]] = {}  # base -> listed forms (went, planned, planning)
        for form, bases in exceptions.items():
            for base in bases:
                self._verb_forms.setdefault(base, []).append(form)
        self._noun_irregular = frozenset(base for bases in self.index.exceptions["n"].values() for base in bases)
        self._lookup = lru_cache(maxsize=100_000)(self._lookup_uncached)
        self._pos_counts = lru_cache(maxsize=100_000)(self._pos_counts_uncached)
        self._alternatives = lru_cache(maxsize=100_000)(self._alternatives_uncached)  # type: ignore[method-assign]

    def params(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": "wordnet",
            "rate": self.rate,
            "min": self.min_words,
            "max": self.max_words,
            "multiword": self.multiword,
            "min_share": self.min_share,
        }

    # --- part of speech and sense -------------------------------------------------------------

    def _pos_counts_uncached(self, lower: str) -> tuple[tuple[str, str, int], ...]:
        """(pos, base, count of its first counted sense) for every POS ``lower`` can be, best first."""
        out = []
        for pos in _POS_ORDER:
            base = self.index.morphy(lower, pos)
            if base is None:
                continue
            count = self.index.first_count(base, pos)
            if count:
                out.append((pos, base, count))
        out.sort(key=lambda x: (-x[2], _POS_ORDER.index(x[0])))
        return tuple(out)

    def _modifies_noun(self, lower: str, nxt: str) -> bool:
        """Both words can be nouns ("squeeze filter", "storage sack"): the first likely modifies the second."""
        if not nxt[:1].islower() or nxt in STOP_WORDS:
            return False
        return (
            any(p == "n" for p, _, _ in self._pos_counts(nxt))
            and self.index.morphy(lower, "n") is not None
            and self.primary_pos(lower) not in ("a", "r")  # "small repair kit": an adjective is fine
        )

    def primary_pos(self, lower: str) -> str | None:
        counts = self._pos_counts(lower)
        return counts[0][0] if counts else None

    def context(self, prev: str | None, prev_is_name: bool, nxt: str | None) -> str:
        """A cue from the neighbours: "noun", "verb", "be", or "" for none."""
        if prev is not None:
            if prev in _DETERMINERS or prev.endswith(("'s", "’s", "s'")) or prev_is_name or prev[:1].isdigit():
                return "noun"
            if prev in _VERB_CUES:
                return "verb"
            if prev in _BE or prev in _HAVE:
                return "be"
        if nxt is not None and nxt in _DETERMINERS:
            return "verb"
        return ""

    def choose_pos(self, lower: str, cue: str) -> tuple[str, str] | None:
        """(pos, base) for ``lower`` under ``cue``, or None when the reading is unsure."""
        counts = self._pos_counts(lower)
        if not counts:
            return None
        allowed = {"noun": ("n", "a"), "verb": ("v",), "be": None, "": None}[cue]
        if cue == "be":
            allowed = ("v",) if lower.endswith(("ed", "en", "ing")) else ("a",)
        if allowed is not None:
            for pos, base, _ in counts:
                if pos in allowed:
                    return pos, base
            return None
        if len(counts) > 1 and counts[0][2] < 3 * counts[1][2]:
            return None  # noun or verb? without a cue, leave it
        return counts[0][0], counts[0][1]

    def _alternatives_uncached(self, base: str, pos: str) -> list[str]:
        first = None
        for synset in self.index.counted_synsets(base, pos):
            lemmas = {name.lower(): (name, c) for name, c in synset}  # one per spelling: the last, in first's place
            count = lemmas[base][1]
            if first is not None and count * 2 < first:
                break
            first = first or count
            floor = max(1, self.min_share * count)
            names = [
                name.replace("_", " ")
                for name, c in sorted(lemmas.values(), key=lambda x: -x[1])
                if c >= floor and name.lower() != base
            ]
            names = [
                n
                for n in names
                if n.islower()
                and n.replace(" ", "").replace("-", "").isalpha()
                and len(n) >= 3
                and re.search("[aeiouy]", n)
            ]
            if not self.multiword:
                names = [n for n in names if " " not in n]
            if names:
                return names
        return []

    def _verb_form(self, head: str, suffix: str, regular: Any) -> str | None:
        """``head`` + -ed/-ing/-s: WordNet's listed form when there is one with that ending (planned),
        None when only irregular forms are listed (went), else the regular rule."""
        listed = self._verb_forms.get(head)
        if not listed:
            return regular(head)
        endings = [f for f in listed if f.endswith(suffix) and f.startswith(head[:2])]
        return min(endings, key=len) if endings else None

    def _inflect(self, lower: str, base: str, pos: str, alternative: str) -> str | None:
        if lower == base:
            return alternative
        if pos == "n":
            if lower != plural(base) or alternative.split(" ")[-1] in self._noun_irregular:
                return None
            return _inflect_phrase(alternative, plural, False)
        if pos == "a":
            if " " in alternative:
                return None
            if lower == comparative(base):
                return comparative(alternative)
            return superlative(alternative) if lower == superlative(base) else None
        if pos != "v":
            return None
        head, _, rest = alternative.partition(" ")
        if lower == plural(base):
            form = self._verb_form(head, "s", plural)
        elif lower == gerund(base):
            form = self._verb_form(head, "ing", gerund)
        elif lower == past(base) or lower in self._irregular_forms:
            form = self._verb_form(head, "ed", past)
        else:
            return None
        return None if form is None else (f"{form} {rest}" if rest else form)

    def _lookup_uncached(self, lower: str, cue: str) -> tuple[str, ...]:
        chosen = self.choose_pos(lower, cue)
        if chosen is None:
            return ()
        pos, base = chosen
        out = []
        for alternative in self._alternatives(base, pos):
            inflected = self._inflect(lower, base, pos, alternative)
            if inflected and inflected != lower and inflected not in out:
                out.append(inflected)
        return tuple(out[:3])

    def synonyms(
        self, word: str, prev: str | None = None, nxt: str | None = None, prev_is_name: bool = False
    ) -> list[str]:
        """Synonyms of ``word`` in its own inflection, best first; empty when unsure."""
        lower = word.lower()
        if lower in STOP_WORDS or len(lower) < 3 or "'" in lower or "’" in lower:
            return []
        cue = self.context(prev.lower() if prev else None, prev_is_name, nxt.lower() if nxt else None)
        return list(self._lookup(lower, cue))

    # --- the walk over a batch ----------------------------------------------------------------

    def augment(self, texts: Sequence[str], seeds: Sequence[int], spans: Spans | None = None) -> list[Output]:
        batch = self.batch(texts, spans)
        ws, we = batch.words()
        owner = batch.text_of(ws, ordered=True)
        free = ~batch.touches_protected(ws, we)
        initial = batch.initial_words(ws, we)
        f = batch.flags
        upper = (f[ws] & UPPER) > 0
        shouting = upper & ((we - ws) > 1) & ((f[np.minimum(ws + 1, max(0, f.size - 1))] & UPPER) > 0)
        candidate = free & ((we - ws) >= 3) & ~(upper & ~initial) & ~shouting
        n_texts = len(texts)
        bounds = np.searchsorted(owner, np.arange(n_texts + 1))
        first = bounds[:-1]
        local = np.arange(ws.size) - first[owner]
        seed_arr = seed_array(seeds)
        keys = draws(seed_arr[owner], local, 7)
        cand_idx = np.flatnonzero(candidate)
        order = cand_idx[np.lexsort((keys[cand_idx], owner[cand_idx]))]
        cbounds = np.searchsorted(owner[order], np.arange(n_texts + 1)).tolist()
        order_l = order.tolist()
        rs = (ws - batch.starts[owner]).tolist()
        re_ = (we - batch.starts[owner]).tolist()
        init_l = initial.tolist()
        bounds_l = bounds.tolist()
        out: list[str | None] = []
        for i, text in enumerate(texts):
            a, b = bounds_l[i], bounds_l[i + 1]
            if not batch.usable[i] or a == b or cbounds[i] == cbounds[i + 1]:
                out.append(None)
                continue
            cands = [o - a for o in order_l[cbounds[i] : cbounds[i + 1]]]
            out.append(self._one(text, seeds[i], rs[a:b], re_[a:b], init_l[a:b], cands))
        return out

    def _one(
        self, text: str, seed: int, starts: list[int], ends: list[int], initial: list[bool], order: list[int]
    ) -> str | None:
        rng = SplitMix(seed)
        target = min(self.max_words, max(self.min_words, round(self.rate * len(starts))))
        n = len(starts)
        edits: dict[int, str] = {}
        made = 0
        for i in order:
            if made >= target:
                break
            if i in edits:
                continue
            word = text[starts[i] : ends[i]]
            lower = word.lower()
            if lower in STOP_WORDS or "'" in lower or "’" in lower:
                continue
            prev = None if initial[i] else text[starts[i - 1] : ends[i - 1]]
            prev_is_name = prev is not None and prev[:1].isupper() and not initial[i - 1]
            nxt = text[starts[i + 1] : ends[i + 1]] if i + 1 < n and not initial[i + 1] else None
            cue = self.context(prev.lower() if prev else None, prev_is_name, nxt.lower() if nxt else None)
            options = self._lookup(lower, cue)
            if not options:
                continue
            if cue != "verb" and nxt is not None and self._modifies_noun(lower, nxt):
                continue  # "the squeeze filter", "a storage sack": a noun modifying a noun, leave it
            new = match_case(word, rng.choice(options))
            edits[i] = new
            made += 1
            if prev is not None and prev.lower() in ("a", "an") and i - 1 not in edits:
                article = article_for(new)
                if article != prev.lower():
                    edits[i - 1] = match_case(prev, article)
        if not made:
            return None
        out = []
        pos = 0
        for i in sorted(edits):
            out += [text[pos : starts[i]], edits[i]]
            pos = ends[i]
        out.append(text[pos:])
        return "".join(out)

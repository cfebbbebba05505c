"""Closed English word classes the fact rules look words up in: general language, never a dataset's values.

Number words, ordinals and stop words are spaCy's own English lists (``spacy.lang.en``), read on first use
and kept in the cache folder per spaCy version (importing spaCy takes seconds at every start); the rest are
small closed classes: multipliers, clock words, weekdays, the words that join a capitalised name ("Bank of
America") and title abbreviations.
"""

from __future__ import annotations

import json
from functools import cache

from tuneprep.files import atomic_write_text

MULTIPLIERS = (
    "single double triple quadruple quintuple once twice thrice half halves dozen dozens pair couple "
    "hundreds thousands millions billions"
)
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety"
_TENS_ORD = "twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth ninetieth"
_UNITS = "one two three four five six seven eight nine"
_UNITS_ORD = "first second third fourth fifth sixth seventh eighth ninth"
# Clock times: "noon", "two pm", "quarter to 12", "half past six", "tomorrow morning".
CLOCK_WORDS = "noon midnight midday noonish o'clock o’clock oclock"
DAY_WORDS = (
    "today tonight tomorrow yesterday weekend weekends monday tuesday wednesday thursday friday saturday sunday "
    "mondays tuesdays wednesdays thursdays fridays saturdays sundays"
)
AFTER_NUMBER = "am pm o'clock o’clock oclock"  # "6:30 pm", "two pm", "five o'clock"
DAY_MODIFIERS = "next this last coming following"  # "next Tuesday"
# Amounts in words: with the word after them they are a fact ("extra foam", "whole milk", "no sugar").
QUANTIFIERS = "extra more less fewer whole full lots plenty several few many enough no"
# A variant without them says the opposite; "n't" endings are found by their letters.
NEGATIONS = "not no never none nothing nobody nowhere neither nor without cannot"
DAY_PARTS = "morning afternoon evening night"  # kept after a day: "tomorrow morning", "Friday night"
CLOCK_HEADS = "quarter half"  # with a number: "twenty past six"
CLOCK_LINKS = "past to after till til before of"
NAME_CONNECTORS = "of de del della der den di da du la le les van von y and the"
PRONOUN_I = "i i'm i'd i'll i've i’m i’d i’ll i’ve"
TITLE_ABBREVIATIONS = "mr mrs ms dr prof st mt jr sr"


@cache
def _spacy_en() -> tuple[frozenset[str], tuple[str, ...], tuple[str, ...]]:
    """spaCy's English stop words, number words and ordinals, from a copy cached per spaCy version:
    importing spaCy for them costs seconds at every start."""
    from importlib.metadata import version

    from augment.wordnet_index import cache_dir

    path = cache_dir() / f"spacy-en-words-{version('spacy')}.json"
    try:
        stop, cardinals, ordinals = json.loads(path.read_text(encoding="utf-8"))
        return frozenset(stop), tuple(cardinals), tuple(ordinals)
    except (OSError, ValueError):
        pass
    from spacy.lang.en.lex_attrs import _num_words, _ordinal_words
    from spacy.lang.en.stop_words import STOP_WORDS

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps([sorted(STOP_WORDS), list(_num_words), list(_ordinal_words)]))
    except OSError:
        pass  # a read-only home: import spaCy again next time
    return frozenset(STOP_WORDS), tuple(_num_words), tuple(_ordinal_words)


@cache
def stop_words() -> frozenset[str]:
    """spaCy's English stop words that are whole words (its clitics such as "'ll" are not words here)."""
    return frozenset(w for w in _spacy_en()[0] if w.isalpha())


@cache
def number_words() -> frozenset[str]:
    """Cardinals, ordinals (spaCy's lists), hyphenated compounds (twenty-one, forty-second) and multipliers."""
    _, cardinals, ordinals = _spacy_en()
    compounds = {f"{t}-{u}" for t in _TENS.split() for u in _UNITS.split()}
    compounds |= {f"{t}-{u}" for t in _TENS.split() for u in _UNITS_ORD.split()}
    plural = {f"{w}s" for w in _TENS.split()}  # "the twenties"
    return frozenset({*cardinals, *ordinals, *compounds, *plural, *MULTIPLIERS.split(), *_TENS_ORD.split()})


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())

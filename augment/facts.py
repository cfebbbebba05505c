"""Facts a variant must keep verbatim, found by rules that generalise: no list typed by hand per dataset.

Each text's own rules (formats, number words, counts, times, capitalised names) run in numpy inside
:class:`augment.text.TextBatch`, which every augmenter builds per call, so protection costs little per
sentence. :class:`FactFinder` adds what one text cannot know, once per record for every augmenter:

- echoes: a word that recurs across the turns of one conversation (the user says "Villa Romano", the
  assistant repeats it) is protected in every turn, so a variant never contradicts a later turn;
- corpus terms: a word the augmented split uses as a name somewhere (capitalised mid-sentence) or counts
  ("two mochas") is protected wherever it occurs, in any case ("latte" because another order says "Latte"),
  and so is a phrase of two content words that recurs across records ("black tea", "oil change"), and a
  rare word, one found in few of the records (``protect.rare_share``, 2.5%): the terms of a domain, and the
  words that tell one record from the others (a product, a misspelt drink), which a synonym or a typo
  would turn into another thing;
- entities of a trained spaCy pipeline (``protect.spacy_model``, e.g. ``en_core_web_sm``), when installed.

:func:`spacy_reference` states the per-text rules as spaCy ``Matcher`` patterns over a ``spacy.blank("en")``
tokenizer (plus a sentencizer); the tests check the numpy rules protect the same words. spaCy tokenizes a
sentence in ~25 µs, about twice what the fastest augmenters spend on it in all, which is why the rules
run in numpy and spaCy is their specification and the optional NER.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np

from augment.config import ProtectConfig
from augment.text import FactRules, KeySet, Span, TextBatch, merge
from augment.vocab import (
    AFTER_NUMBER,
    CLOCK_HEADS,
    CLOCK_LINKS,
    CLOCK_WORDS,
    DAY_PARTS,
    DAY_WORDS,
    NAME_CONNECTORS,
    PRONOUN_I,
    number_words,
    stop_words,
)


def rules_of(cfg: ProtectConfig) -> FactRules:
    return FactRules(
        numbers=cfg.numbers,
        times=cfg.times,
        names=cfg.names,
        echoes=cfg.echoes,
        negations=cfg.negations,
        phrases=cfg.phrases,
    )


class FactFinder:
    """Protected spans for the texts a stage augments, with the context a single text lacks.

    ``fit`` reads the texts of the records to be augmented (every turn of a conversation, assistant
    turns too) and keeps the stem keys of the words they use as names or counts (8 bytes a word type);
    ``spans`` then gives each text's protected spans, given which conversation each text belongs to.
    Without ``fit`` there are no corpus terms; the other rules need none.
    """

    def __init__(self, cfg: ProtectConfig | None = None, extra_words: Sequence[str] = ()) -> None:
        self.cfg = cfg or ProtectConfig()
        self.extra_words = list(extra_words)
        self.rules = rules_of(self.cfg)
        self._term_keys: list[np.ndarray] = []
        self._pair_keys: list[np.ndarray] = []  # (pair key, record) rows, one per record holding the pair
        self._word_keys: list[np.ndarray] = []  # (content word key, record) rows, one per record using the word
        self._records = 0
        self._lexicon: KeySet | None = None
        self._pairs: KeySet | None = None
        self._nlp: Any = None
        if self.cfg.spacy_model:
            self._nlp = load_pipeline(self.cfg.spacy_model)

    def fit(self, texts: Sequence[str], records: Sequence[int] | None = None, batch_size: int = 2048) -> None:
        """Add the names, counted words and two-word phrases of ``texts`` to the corpus lexicon; ``records``
        numbers the record each text belongs to (texts of one conversation share it; default: one each),
        and must keep counting up across calls. Call before ``spans``."""
        if not self.cfg.corpus_terms:
            return
        owners = np.arange(len(texts)) if records is None else np.asarray(records, np.int64)
        for lo in range(0, len(texts), batch_size):
            self._fit_chunk([t or "" for t in texts[lo : lo + batch_size]], owners[lo : lo + batch_size])
        self._lexicon = self._pairs = None

    def _fit_chunk(self, texts: list[str], owners: np.ndarray) -> None:
        rules = FactRules(numbers=True, times=False, names=True, echoes=False, negations=False, phrases=False)
        batch = TextBatch(texts, rules=rules, collect=True)
        self._term_keys.append(batch.term_keys())
        for store, (keys, text) in ((self._pair_keys, batch.term_pairs()), (self._word_keys, batch.content_words())):
            if keys.size:
                store.append(np.unique(np.stack([keys.view(np.int64), owners[text]], axis=1), axis=0))
            if sum(len(k) for k in store) > 1 << 20:  # keep what is pending compact
                store[:] = [np.unique(np.concatenate(store), axis=0)]
        if owners.size:
            self._records = max(self._records, int(owners.max()) + 1)
        if sum(k.size for k in self._term_keys) > 1 << 20:
            self._term_keys = [np.unique(np.concatenate(self._term_keys))]

    @property
    def lexicon(self) -> KeySet | None:
        """Stem keys of the corpus's one-word terms (names, counted words and rare words), or None when none."""
        if self._lexicon is None and (self._term_keys or self._word_keys):
            keys = list(self._term_keys)
            if self._word_keys and self.cfg.rare_share > 0:
                rows = np.unique(np.concatenate(self._word_keys), axis=0)
                words, counts = np.unique(rows[:, 0], return_counts=True)
                keys.append(words[counts <= self.rare_cutoff()].view(np.uint64))
            self._lexicon = KeySet(np.concatenate(keys)) if keys else None
        return self._lexicon

    def rare_cutoff(self) -> int:
        """Records a content word may be found in and still be rare."""
        return max(1, int(self.cfg.rare_share * self._records))

    @property
    def pairs(self) -> KeySet | None:
        """Keys of the two-word terms: phrases found in at least ``term_min_records`` records."""
        if self._pairs is None and self._pair_keys:
            rows = np.unique(np.concatenate(self._pair_keys), axis=0)
            keys, counts = np.unique(rows[:, 0], return_counts=True)
            self._pairs = KeySet(keys[counts >= self.cfg.term_min_records].view(np.uint64))
        return self._pairs

    def __len__(self) -> int:
        return sum(len(k) for k in (self.lexicon, self.pairs) if k is not None)

    def terms(self) -> dict[str, np.ndarray]:
        """What ``fit`` learned, as arrays (for ``use_terms`` in another process: fit once, share it)."""
        empty = np.empty(0, np.uint64)
        return {
            "lexicon": self.lexicon.keys if self.lexicon is not None else empty,
            "pairs": self.pairs.keys if self.pairs is not None else empty,
        }

    def use_terms(self, terms: Mapping[str, np.ndarray]) -> None:
        """Take the corpus terms ``terms()`` gave, instead of fitting on the same records again."""
        lexicon, pairs = np.asarray(terms["lexicon"], np.uint64), np.asarray(terms["pairs"], np.uint64)
        self._term_keys, self._pair_keys, self._word_keys = [], [], []
        self._lexicon = KeySet(lexicon) if lexicon.size else None
        self._pairs = KeySet(pairs) if pairs.size else None

    def spans(self, texts: Sequence[str], groups: Sequence[int] | None = None) -> list[list[Span]]:
        """Protected spans of each text; texts sharing a ``groups`` number (>= 0) are one conversation."""
        batch = TextBatch(texts, self.extra_words, self.rules, keys=self.lexicon, groups=groups, pairs=self.pairs)
        out = [batch.spans(i) if batch.usable[i] else [] for i in range(len(texts))]
        if self._nlp is not None:
            for i, extra in enumerate(entity_spans(self._nlp, texts, self.cfg.entity_labels, self.cfg.batch_size)):
                if extra:
                    out[i] = merge([*out[i], *extra])
        return out


def load_pipeline(name: str) -> Any:
    """A trained spaCy pipeline by package name or path, for its named entities; a clear error if absent."""
    import spacy

    try:
        return spacy.load(name, disable=["lemmatizer"])
    except OSError as e:
        raise RuntimeError(
            f"augment.protect.spacy_model: spaCy pipeline {name!r} is not installed or not found "
            f"(install its package, e.g. pip install {name}, or set spacy_model: null): {e}"
        ) from e


def entity_spans(nlp: Any, texts: Sequence[str], labels: Sequence[str], batch_size: int = 256) -> list[list[Span]]:
    """Character spans of the entities ``nlp`` finds with one of ``labels``, texts batched through ``nlp.pipe``."""
    wanted = set(labels)
    return [
        [(e.start_char, e.end_char) for e in doc.ents if e.label_ in wanted]
        for doc in nlp.pipe([t or "" for t in texts], batch_size=batch_size)
    ]


# --- the rules as spaCy patterns ---------------------------------------------------------------------


@cache
def _reference_pipeline() -> tuple[Any, Any]:
    """``spacy.blank("en")`` with a sentencizer, and a Matcher holding the per-text fact rules."""
    import spacy
    from spacy.matcher import Matcher

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    matcher = Matcher(nlp.vocab)
    numbers = sorted(number_words())
    number = {"LOWER": {"IN": numbers}}
    digits = {"IS_DIGIT": True}
    num = [[number], [digits]]
    matcher.add("NUMBER", [[number], [number, {"ORTH": "-"}, number]])
    content = {"IS_ALPHA": True, "LOWER": {"NOT_IN": sorted(stop_words())}}
    matcher.add("COUNT", [[*n, content] for n in num])
    clock = {"LOWER": {"IN": CLOCK_WORDS.split()}}
    day = {"LOWER": {"IN": DAY_WORDS.split()}}
    after = {"LOWER": {"IN": [w for w in AFTER_NUMBER.split() if "'" not in w and "’" not in w]}}
    heads = [[number], [digits], [{"LOWER": {"IN": CLOCK_HEADS.split()}}]]
    tails = [[number], [digits], [clock]]
    link = {"LOWER": {"IN": CLOCK_LINKS.split()}}
    matcher.add(
        "TIME",
        [
            [clock],
            [day],
            [day, {"LOWER": {"IN": DAY_PARTS.split()}}],
            *[[*n, after] for n in num],
            *[[*n, {"LOWER": {"IN": ["a.m.", "p.m."]}}] for n in num],
            *[[*h, link, *t] for h in heads for t in tails],
        ],
    )
    matcher.add("CAPITALISED", [[{"IS_TITLE": True}], [{"IS_UPPER": True, "IS_ALPHA": True}]])
    return nlp, matcher


def spacy_reference(texts: Sequence[str]) -> list[set[str]]:
    """Per text, the lower-cased alphabetic words the fact rules protect, found with spaCy patterns.

    Names follow the same rule as the numpy path: a run of capitalised tokens (joined by single
    spaces, or by a connector such as "of" between two of them) is a name when one of its capitalised
    tokens does not start a sentence, or when it holds two capitalised tokens; "I" is no name.
    """
    nlp, matcher = _reference_pipeline()
    connectors = set(NAME_CONNECTORS.split())
    pronoun = set(PRONOUN_I.split())
    out = []
    for doc in nlp.pipe(list(texts)):
        words: set[str] = set()
        caps: list[int] = []
        for match_id, start, end in matcher(doc):
            label = nlp.vocab.strings[match_id]
            if label == "CAPITALISED":
                if doc[start].lower_ not in pronoun:
                    caps.append(start)
                continue
            words.update(t.lower_ for t in doc[start:end] if t.is_alpha)
        runs: list[list[int]] = []
        for i in sorted(set(caps)):
            last = runs[-1][-1] if runs else None
            if last is not None and i == last + 1 and doc[last].whitespace_ == " ":
                runs[-1].append(i)
            elif (
                last is not None
                and i == last + 2
                and doc[last + 1].lower_ in connectors
                and doc[last].whitespace_ == " "
                and doc[last + 1].whitespace_ == " "
            ):
                runs[-1] += [last + 1, i]
            else:
                runs.append([i])
        for run in runs:
            capitalised = [i for i in run if doc[i].lower_ not in connectors or doc[i].text[:1].isupper()]
            late = [i for i in capitalised if not doc[i].is_sent_start]
            if late or len(capitalised) >= 2:
                words.update(doc[i].lower_ for i in run)
        out.append(words)
    return out

"""Facts augmentation must not change: the rules that find them, and every augmenter and gate keeping them.

The sentences are the kind of task dialogue where today's augmenters changed facts ("Santa Clara" -> "Sknt
Clara", "quarter to 12" -> "one-fourth to 12", "Make it at two pm." -> "Make it at pm.").
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import pytest

from augment import Augment, AugmentConfig, BackTranslator, CharNoise, TranslationBackend, WordNoise, seed_for
from augment.backtranslate import mask_protected
from augment.config import ProtectConfig
from augment.facts import FactFinder, spacy_reference
from augment.text import FORMAT_ONLY, FactRules, TextBatch
from tuneprep.records import make_records

TURNS = [
    "Find me one in Livermore, something Italian.",
    "Make it at two pm. Santa Clara or San Jose both work, quarter to 12 is fine too.",
    "Book Villa Romano at 6:30 pm for 4 people tomorrow evening, we'll be twenty-one in all.",
    "I'd like two mochas. One with Oat milk and the other with almond milk, extra foam, no sugar.",
    "We land next Tuesday at half past six and meet Dr. Smith at the Bank of America.",
    "I do not want the second one, it isn't what I ordered on Friday night.",
]
FACTS = [
    ["one", "Livermore", "Italian"],
    ["two pm", "Santa Clara", "San Jose", "quarter to 12"],
    ["Villa Romano", "6:30 pm", "4 people", "tomorrow evening", "twenty-one"],
    ["two mochas", "One", "Oat", "extra foam", "no sugar"],
    ["next Tuesday", "half past six", "Smith", "Bank of America"],
    ["not", "second one", "isn't", "Friday night"],
]


def _covered(text: str, spans) -> list[str]:
    return [text[s:e] for s, e in spans]


def _protects(text: str, spans, fact: str) -> bool:
    """Every non-space character of ``fact`` (where it occurs in ``text``) lies in a protected span."""
    at = text.find(fact)
    inside = {k for s, e in spans for k in range(s, e)}
    return at >= 0 and all(k in inside for k in range(at, at + len(fact)) if not text[k].isspace())


def test_rules_find_the_facts_of_task_dialogues() -> None:
    batch = TextBatch(TURNS)
    for i, (text, facts) in enumerate(zip(TURNS, FACTS, strict=True)):
        for fact in facts:
            assert _protects(text, batch.spans(i), fact), (fact, _covered(text, batch.spans(i)))
    # a sentence's first word alone is no name; "I" is none either
    assert not any(c.startswith(("Find", "Make", "Book", "I ")) for c in _covered(TURNS[0], batch.spans(0)))
    assert "I" not in _covered(TURNS[5], batch.spans(5))
    # the format rules alone (today's protection) miss them
    plain = TextBatch(TURNS, rules=FORMAT_ONLY)
    assert not any("Santa" in c for c in _covered(TURNS[1], plain.spans(1)))


def test_a_count_is_not_a_price_or_a_date() -> None:
    text = "Order 42 for $129.99 shipped on 2024-03-12 and 3 boxes arrived"
    covered = _covered(text, TextBatch([text]).spans(0))
    assert "$129.99" in covered and "2024-03-12" in covered and "3 boxes" in covered
    assert not any("shipped" in c or "and" in c for c in covered)


def test_spacy_patterns_and_the_numpy_rules_protect_the_same_words() -> None:
    """augment.facts states the rules as spaCy Matcher patterns over spacy.blank("en"); the numpy path agrees."""
    texts = [*TURNS, "Please send three boxes to Kwame Mensah before noon.", "the Golden Gate Bridge at dawn"]
    reference = spacy_reference(texts)
    batch = TextBatch(texts, rules=FactRules(echoes=False, negations=False))
    for i, text in enumerate(texts):
        ours = {w.lower() for c in _covered(text, batch.spans(i)) for w in c.replace("-", " ").split() if w.isalpha()}
        theirs = {w for w in reference[i] if w.isalpha()}
        assert theirs <= ours, (text, theirs - ours)


def test_echoed_values_and_corpus_terms_are_protected_everywhere() -> None:
    conv = ["can i get a cortado with oat milk", "Sure, one cortado with oat milk coming up.", "thanks"]
    finder = FactFinder()
    plain = finder.spans(conv)  # no conversation given: nothing tells "cortado" is a fact
    assert not any("cortado" in c for c in _covered(conv[0], plain[0]))
    echoed = finder.spans(conv, groups=[0, 0, 0])
    assert all(_protects(conv[0], echoed[0], w) for w in ("cortado", "oat milk"))
    finder.fit(["I'll have a Macchiato please", "A latte and two macchiatos", "Some black tea", "black tea again"])
    text = "a macchiato and black tea, thanks"
    before = FactFinder().spans([text])[0]
    assert not _protects(text, before, "macchiato") and not _protects(text, before, "black tea")
    spans = finder.spans([text])[0]
    assert _protects(text, spans, "macchiato") and _protects(text, spans, "black tea")


def _seeds(n: int) -> list[int]:
    return [seed_for(f"r{i}", 0, "test") for i in range(n)]


@pytest.mark.parametrize(
    "augmenter",
    [
        CharNoise(rate=0.5),
        CharNoise(rate=0.3, ops=["swap", "insert", "delete"]),
        WordNoise(rate=0.5, ops=["delete"]),
        WordNoise(rate=0.5, ops=["swap"]),
        WordNoise(rate=0.5, ops=["insert"]),
    ],
    ids=["char", "char-edit", "word-delete", "word-swap", "word-insert"],
)
def test_noise_never_touches_a_fact(augmenter) -> None:
    outs = augmenter(TURNS * 4, _seeds(len(TURNS) * 4))
    assert sum(o is not None for o in outs) >= len(TURNS)  # it still edits what is not a fact
    for text, facts, out in zip(TURNS * 4, FACTS * 4, outs, strict=True):
        for fact in facts:
            assert (out or text).count(fact) >= text.count(fact), (augmenter.kind, fact, out)


def test_synonyms_never_touch_a_fact() -> None:
    from augment.resources import WordNetUnavailable, ensure_wordnet

    try:
        ensure_wordnet(try_download=False)
    except WordNetUnavailable as e:
        pytest.skip(f"WordNet unavailable: {e}")
    from augment import SynonymSwap

    outs = SynonymSwap(rate=1.0, max_words=50)(TURNS * 3, _seeds(len(TURNS) * 3))
    for text, facts, out in zip(TURNS * 3, FACTS * 3, outs, strict=True):
        for fact in facts:
            assert (out or text).count(fact) >= text.count(fact), (fact, out)


class _Pivot(TranslationBackend):
    """A stand-in translation: upper-cases the text, and can lose or invent a placeholder."""

    name = "pivot"

    def __init__(self, lose: bool = False) -> None:
        self.lose = lose

    def round_trip(self, texts: Sequence[str], seeds: Sequence[int]) -> list[str | None]:
        out = []
        for t in texts:
            t = t.replace("the", "THE")
            out.append(t.replace("ZZPH0", "") if self.lose else t)
        return out


def test_back_translation_masks_facts_and_rejects_a_lost_placeholder() -> None:
    text = TURNS[1]
    masked, originals = mask_protected(text, TextBatch([text]).spans(0))
    assert "Santa Clara" in originals and "Santa" not in masked  # one placeholder per run of words
    kept = BackTranslator(_Pivot())([text], [1])[0]
    assert isinstance(kept, str) and all(f in kept for f in FACTS[1])
    lost = BackTranslator(_Pivot(lose=True))([text], [1])[0]
    assert not isinstance(lost, str) and lost.reason == "aug_placeholder_lost" and "two pm" in lost.detail


def test_the_stage_drops_a_lost_placeholder_with_its_reason() -> None:
    chat = [{"role": "user", "content": TURNS[1]}, {"role": "assistant", "content": "Booked for two pm."}]
    df = make_records([{"id": "c", "source": "s", "format": "chat", "messages": chat, "split": "train"}])
    stage = Augment(AugmentConfig(), augmenters=[BackTranslator(_Pivot(lose=True))])
    out = stage(df)
    assert out.kept.height == 1 and out.dropped["reason"].to_list() == ["aug_placeholder_lost"]
    assert "lost" in out.dropped["detail"][0]


def test_a_value_the_assistant_repeats_is_never_changed_in_the_user_turn() -> None:
    """ "Find me one in livermore" -> "Find me one in " was the user turn; the assistant still said Livermore."""
    rows = []
    for i in range(40):
        chat = [
            {"role": "user", "content": f"hello, find me a sushi place in livermore or fremont {i}"},
            {"role": "assistant", "content": "Sushi Zen in Livermore has a table."},
            {"role": "user", "content": "great, book it for my family"},
            {"role": "assistant", "content": "Done, your family table is booked."},
        ]
        rows.append({"id": f"c{i}", "source": "s", "format": "chat", "messages": chat, "split": "train"})
    df = make_records(rows)
    cfg = AugmentConfig(protect=ProtectConfig(corpus_terms=False))
    stage = Augment(cfg, augmenters=[CharNoise(rate=0.5), WordNoise(rate=0.6, ops=["delete", "swap"])])
    out = stage(df)
    variants = out.kept.filter(pl.col("aug_of").is_not_null())
    assert variants.height >= 40
    for messages in variants["messages"].to_list():
        assert "livermore" in messages[0]["content"] and "sushi" in messages[0]["content"]
        assert "family" in messages[2]["content"]
    off = Augment(
        AugmentConfig(protect=ProtectConfig(echoes=False, corpus_terms=False)),
        augmenters=[CharNoise(rate=0.5), WordNoise(rate=0.6, ops=["delete", "swap"])],
    )(df).kept.filter(pl.col("aug_of").is_not_null())
    assert any("livermore" not in m[0]["content"] for m in off["messages"].to_list())  # today's behaviour


def test_small_words_inside_a_protected_phrase_are_protected() -> None:
    conv = ["can i get the mocha light on the chocolate", "One mocha, light on the chocolate.", "thanks"]
    spans = FactFinder().spans(conv, groups=[0, 0, 0])[0]
    assert _protects(conv[0], spans, "light on the chocolate")  # deleting "on" would change the order
    both = "i'm in Santa Clara or San Jose"
    covered = _covered(both, FactFinder().spans([both])[0])
    assert "Santa Clara" in covered and "San Jose" in covered  # "or" joins two facts, not one phrase
    off = FactFinder(ProtectConfig(phrases=False)).spans(conv, groups=[0, 0, 0])[0]
    assert not _protects(conv[0], off, "light on the chocolate")


def test_corpus_terms_learned_once_serve_another_finder_alike() -> None:
    """Partitions share one fit: terms() of a fitted finder, given to a fresh one, protect exactly the same."""
    corpus = ["I'll have a Macchiato please", "A latte and two macchiatos", "Some black tea", "black tea again"]
    fitted = FactFinder()
    fitted.fit(corpus)
    shared = FactFinder()
    shared.use_terms({k: v.copy() for k, v in fitted.terms().items()})
    texts = ["a macchiato and black tea, thanks", "two lattes", "nothing here"]
    assert shared.spans(texts) == fitted.spans(texts)
    assert _protects(texts[0], shared.spans(texts)[0], "black tea")


def test_augment_fit_with_a_cache_fits_once_and_loads_the_same_terms(tmp_path) -> None:
    """The first partition fits the corpus terms and saves them; the next loads them without reading the input."""
    rows = ["I'll have a Macchiato please", "A latte and two macchiatos", "Some black tea", "black tea again"]
    batch = make_records(
        [{"id": f"r{i}", "source": "s", "format": "text", "text": t, "split": "train"} for i, t in enumerate(rows)]
    )
    cache = tmp_path / "terms" / "input.npz"
    first = Augment(AugmentConfig())
    assert first.fit(lambda: [batch], cache=cache) == len(rows) and cache.exists()
    second = Augment(AugmentConfig())

    def unread() -> list[pl.DataFrame]:
        raise AssertionError("the input was read again")

    assert second.fit(unread, cache=cache) == 0
    texts = ["a macchiato and black tea, thanks", "two lattes"]
    assert first.facts is not None and second.facts is not None
    assert second.facts.spans(texts) == first.facts.spans(texts)
    off = Augment(AugmentConfig.model_validate({"protect": {"corpus_terms": False}}))
    assert off.fit(unread, cache=tmp_path / "never.npz") == 0 and not (tmp_path / "never.npz").exists()

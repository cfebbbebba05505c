"""Quality and language filters: every rule trips on a crafted bad document and passes a good one."""

from __future__ import annotations

import random

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cleaners import (
    LanguageConfig,
    LanguageFilter,
    LengthFilter,
    Normalize,
    QualityConfig,
    QualityFilter,
    RedactPII,
    StripHtml,
    check_quality,
    detect_language,
)
from cleaners.quality import _bigram_fracs, dup_ngram_char_frac, repeated_ngram_cover, top_ngram_char_frac
from ingest.config import LoadConfig
from ingest.sources import iter_record_batches
from tuneprep.records import SCHEMA, make_records

GOOD_LINES = [
    "Our returns desk handles about forty parcels on a busy morning, and most of them arrive with the original tags.",
    "Each parcel is opened at the bench, checked against the order, and photographed before anything else happens.",
    "When an item is faulty we note the fault in the ticket so that the buyer can see what was found.",
    "Boots that have been worn on the trail cannot be resold, but they may still qualify for a warranty repair.",
    "Refunds are issued to the original payment method within five business days of the inspection.",
    "If a customer asks for an exchange, the new size ships as soon as the returned pair has been scanned.",
    "Gift receipts carry the order number, which lets us refund the person who gave the present.",
    "Questions that the desk cannot answer go to the support team with the parcel photos attached.",
]
GOOD = "\n".join(GOOD_LINES)
ALL_RULES = QualityConfig(c4_curly_brace=True, c4_max_policy_line_frac=0.2, c4_min_terminal_punct_frac=0.5)


def _rand_words(seed: int, n: int, lo: int, hi: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice("bcdfghjklmnprstvwz") for _ in range(rng.randint(lo, hi))) for _ in range(n)]


def _reason(text: str, cfg: QualityConfig | None = None) -> str | None:
    verdict = check_quality(text, cfg or QualityConfig())
    return None if verdict is None else verdict.reason


def test_good_document_passes_every_rule():
    assert len(GOOD.split()) > 100
    assert check_quality(GOOD, ALL_RULES) is None
    assert check_quality(GOOD.replace("\n", "\n\n"), ALL_RULES) is None


def test_short_texts_are_left_to_the_length_filter():
    ticket = "Order #NW-48213 #urgent #late ... still not here!!! $129.99 on 2024-03-15"
    assert check_quality(ticket, QualityConfig()) is None
    chatty = "If I order a new card, how much will it be and how long will it take me to get it?"
    assert check_quality(chatty, QualityConfig()) is None  # mean word length < 3, but only 20 words


@pytest.mark.parametrize(
    ("name", "text", "cfg", "reason"),
    [
        ("max words", GOOD, QualityConfig(max_words=50), "gopher_word_count"),
        ("min words", "just a few words here", QualityConfig(min_words=10), "gopher_word_count"),
        ("lorem", GOOD + "\nLorem ipsum dolor sit amet.", None, "c4_lorem_ipsum"),
        ("curly", GOOD + "\nfunction f() { return 1; }", ALL_RULES, "c4_curly_brace"),
        ("hash", GOOD + " " + " ".join(f"#tag{i}" for i in range(20)), None, "gopher_symbol_ratio_hash"),
        ("ellipsis", GOOD + " " + " ".join(f"wait{i}…" for i in range(20)), None, "gopher_symbol_ratio_ellipsis"),
        ("digits", GOOD + " " + " ".join(str(100000 + 7919 * i) for i in range(60)), None, "digit_frac"),
        ("alpha", GOOD + " " + " ".join(["|", "=>", "--", "::", "**"] * 10), None, "gopher_alpha_words"),
        (
            "short words",
            " ".join(random.Random(4).choices(["a", "I", "to", "be", "of", "is"], k=60)),
            None,
            "gopher_mean_word_length",
        ),
        ("long words", " ".join(_rand_words(5, 60, 12, 16)), None, "gopher_mean_word_length"),
        ("stop words", " ".join(_rand_words(6, 60, 4, 8)) + ".", None, "gopher_stop_words"),
        ("bullets", "\n".join(f"- {line}" for line in GOOD_LINES), None, "gopher_bullet_lines"),
        (
            "ellipsis lines",
            "\n".join(ln[:-1] + "..." if i % 2 else ln for i, ln in enumerate(GOOD_LINES)),
            None,
            "gopher_ellipsis_lines",
        ),
        ("dup lines", GOOD + "\nClick here." * 6, None, "gopher_dup_line_frac"),
        (
            "dup line chars",
            GOOD + "\n" + GOOD_LINES[0] + "\n" + GOOD_LINES[1] + "\n" + GOOD_LINES[2],
            None,
            "gopher_dup_line_char_frac",
        ),
        (
            "c4 policy",
            GOOD + "\nThis site uses cookies.\nPlease enable JavaScript.\nRead our privacy policy.",
            ALL_RULES,
            "c4_policy_lines",
        ),
        ("c4 punctuation", "\n".join(ln.rstrip(".") for ln in GOOD_LINES), ALL_RULES, "c4_terminal_punct"),
    ],
)
def test_each_rule_trips(name, text, cfg, reason):
    assert _reason(text, cfg) == reason, name


def test_duplicate_paragraph_rules():
    lines_off = QualityConfig(
        max_dup_line_frac=1.0, max_dup_line_char_frac=1.0, max_top_ngram_char_frac={}, max_dup_ngram_char_frac={}
    )
    short = "Thanks for reading this guide."
    assert _reason(f"{GOOD}\n\n{short}\n\n{short}", lines_off) == "gopher_dup_para_frac"
    paras = GOOD + "\n\n" + "\n\n".join(["Unique paragraph one here.", "Another unique one."])
    assert _reason(paras + "\n\n" + GOOD_LINES[0] + "\n" + GOOD_LINES[1], lines_off) is None
    head = "\n".join(GOOD_LINES[2:6])
    long_dup = f"{head}\n\nFirst note.\n\nSecond note.\n\nThird note.\n\n{GOOD_LINES[0]}\n{GOOD_LINES[1]}"
    long_dup += f"\n\n{GOOD_LINES[0]}\n{GOOD_LINES[1]}"
    assert _reason(long_dup, lines_off) == "gopher_dup_para_char_frac"


@pytest.mark.parametrize("n", [2, 3, 4])
def test_top_ngram_rule(n):
    phrase = ["credit", "card", "payment", "refund"][:n]
    text = GOOD.replace("\n", " ") + " " + " ".join(" ".join(phrase) + f" filler{i}" for i in range(25))
    cfg = QualityConfig(max_top_ngram_char_frac={n: 0.16}, max_dup_ngram_char_frac={})
    assert _reason(text, cfg) == f"gopher_top_{n}gram"
    assert _reason(GOOD, cfg) is None


@pytest.mark.parametrize("n", [5, 6, 7, 8, 9, 10])
def test_duplicate_ngram_rule(n):
    sentence = "warehouse inspectors photograph returned merchandise before authorising replacement shipments today"
    text = GOOD.replace("\n", " ") + " " + " ".join([sentence] * 3)
    cfg = QualityConfig(max_top_ngram_char_frac={}, max_dup_ngram_char_frac={n: 0.1})
    assert _reason(text, cfg) == f"gopher_dup_{n}gram"
    assert _reason(GOOD, cfg) is None


def test_ngram_measures():
    words = ["a", "b", "c", "a", "b", "c", "a", "b", "c"]
    assert top_ngram_char_frac(words, 2, 9) == pytest.approx(6 / 9)  # "a b" three times, 2 chars each
    assert dup_ngram_char_frac(words, 3, 9) == pytest.approx(6 / 9)  # first "a b c" is not a repeat
    assert top_ngram_char_frac(["one", "two", "three"], 2, 11) == 0.0  # no n-gram repeats


# Few distinct words, so n-grams repeat, overlap and tie: where the bounds are tight.
_WORDS = st.lists(st.sampled_from(["a", "bb", "the", "card", "refund", "x"]), min_size=0, max_size=60)


@settings(max_examples=300, deadline=None)
@given(_WORDS)
def test_the_ngram_bounds_hold(words):
    """``check_quality`` skips an n-gram count where a bound clears the limit: the bounds must never be below."""
    total = sum(map(len, words))
    top2, pair = _bigram_fracs(words, total)
    assert top2 == top_ngram_char_frac(words, 2, total)
    for n in range(3, 9):
        assert top_ngram_char_frac(words, n, total) <= -(-n // 2) * pair + 1e-12
    for n0 in (2, 3, 5):
        cover = repeated_ngram_cover(words, n0, total)
        assert all(dup_ngram_char_frac(words, n, total) <= cover + 1e-12 for n in range(n0, 12))


def _exact_ngram_verdict(text: str, cfg: QualityConfig) -> tuple[str, float] | None:
    """The n-gram rules by the plain count of every n, no bounds: what ``check_quality`` must agree with."""
    words = text.lower().split()
    total = sum(map(len, words))
    for n, limit in sorted(cfg.max_top_ngram_char_frac.items()):
        if (frac := top_ngram_char_frac(words, n, total)) > limit:
            return f"gopher_top_{n}gram", frac
    for n, limit in sorted(cfg.max_dup_ngram_char_frac.items()):
        if (frac := dup_ngram_char_frac(words, n, total)) > limit:
            return f"gopher_dup_{n}gram", frac
    return None


_LIMITS = st.floats(0.0, 0.6)
_SENT = ["a", "refund", "was", "sent"]
# Phrases that repeat whole, so an n-gram repeats where the (n+1)-gram around it does not.
_PHRASES = ["the card", "a refund was sent", "x", "ok.", "the card was", "sent to the bank today", "bb bb bb"]


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.lists(st.sampled_from(["a", "bb", "the", "card", "refund", "x", "ok."]), min_size=1, max_size=80),
        st.lists(st.sampled_from(_PHRASES), min_size=1, max_size=20).map(lambda ps: " ".join(ps).split()),
    ),
    st.dictionaries(st.integers(2, 5), _LIMITS, max_size=3),
    st.dictionaries(st.integers(3, 10), _LIMITS, max_size=4),
)
@example(["a", "refund", "card"] * 2, {3: 0.95}, {})  # a trigram past the limit, each of its pairs below it
@example([*_SENT, "x", *_SENT, "ok."], {}, {4: 0.3})  # a 4-gram repeated, no 5-gram
def test_bounded_ngram_rules_give_the_exact_verdicts(words, top, dup):
    cfg = QualityConfig(
        min_words_ratio=0, min_words_repetition=0, min_mean_word_length=0, max_mean_word_length=100,
        min_alpha_word_frac=0, min_stop_words=0, max_bullet_line_frac=1, max_ellipsis_line_frac=1,
        max_dup_line_frac=1, max_dup_line_char_frac=1, max_dup_para_frac=1, max_dup_para_char_frac=1,
        max_top_ngram_char_frac=top, max_dup_ngram_char_frac=dup,
    )  # fmt: skip
    verdict = check_quality(" ".join(words), cfg)
    assert (None if verdict is None else (verdict.reason, verdict.value)) == _exact_ngram_verdict(" ".join(words), cfg)


def test_c4_curly_brace_spares_placeholders():
    text = GOOD + "\nYour order {{Order Number}} ships to {{Delivery City}}."
    assert check_quality(text, ALL_RULES) is None


def _chat(rid: str, *turns: tuple[str, str]) -> dict:
    return {"id": rid, "source": "t", "format": "chat", "messages": [{"role": r, "content": c} for r, c in turns]}


def test_quality_filter_stage_accounting_reasons_and_chats():
    spam_turn = "Click the link below to claim your free prize now"
    batch = make_records(
        [
            {"id": "good", "source": "t", "format": "text", "text": GOOD},
            {"id": "lorem", "source": "t", "format": "text", "text": GOOD + " Lorem ipsum dolor sit amet."},
            {"id": "hash", "source": "t", "format": "text", "text": GOOD + " #a" * 30},
            {"id": "short", "source": "t", "format": "text", "text": "Where is #NW-48213???"},
            {"id": "none", "source": "t", "format": "text", "text": None},
            _chat("chat_ok", ("user", GOOD_LINES[0]), ("assistant", GOOD_LINES[1])),
            _chat("chat_spam", *[("assistant", spam_turn)] * 8),
        ]
    )
    out = QualityFilter()(batch)
    assert out.kept.height + out.dropped.height == batch.height
    assert set(SCHEMA) <= set(out.kept.columns) and {"stage", "reason", "detail"} <= set(out.dropped.columns)
    reasons = dict(zip(out.dropped["id"], out.dropped["reason"], strict=True))
    assert reasons == {
        "lorem": "c4_lorem_ipsum",
        "hash": "gopher_symbol_ratio_hash",
        "chat_spam": "gopher_dup_line_frac",
    }
    details = dict(zip(out.dropped["id"], out.dropped["detail"], strict=True))
    assert details["hash"].endswith("> 0.1") and float(details["hash"].split()[0]) > 0.1
    assert set(out.dropped["stage"]) == {"quality_filter"}
    assert sorted(out.kept["id"]) == ["chat_ok", "good", "none", "short"]


# --- language --------------------------------------------------------------------------------------------------

GERMAN = (
    "Ich habe meine Bestellung vor zwei Wochen aufgegeben und sie ist immer noch nicht angekommen. "
    "Können Sie mir bitte sagen, wo mein Paket ist und wann ich mit der Lieferung rechnen kann?"
)
FRENCH = (
    "J'ai commandé une veste il y a dix jours et je n'ai toujours rien reçu. Pouvez-vous vérifier "
    "le suivi de mon colis et me dire quand il arrivera, s'il vous plaît ?"
)


def test_detect_language():
    assert detect_language(GOOD)[0] == "en"
    lang, prob = detect_language(GERMAN)
    assert lang == "de" and prob > 0.9
    assert detect_language(FRENCH)[0] == "fr"


def test_language_filter_drops_foreign_keeps_english_short_and_chats():
    batch = make_records(
        [
            {"id": "en", "source": "t", "format": "text", "text": GOOD},
            {"id": "de", "source": "t", "format": "text", "text": GERMAN},
            {"id": "fr", "source": "t", "format": "text", "text": FRENCH},
            {"id": "de_short", "source": "t", "format": "text", "text": "Wo ist mein Paket?"},
            {"id": "null", "source": "t", "format": "text", "text": None},
            _chat("chat_en", ("user", "Where is my parcel? It has been two weeks."), ("assistant", GOOD_LINES[0])),
            _chat("chat_de", ("user", GERMAN), ("assistant", "Wir prüfen das sofort und melden uns bei Ihnen.")),
        ]
    )
    stage = LanguageFilter()
    out = stage(batch)
    assert out.kept.height + out.dropped.height == batch.height
    assert sorted(out.dropped["id"]) == ["chat_de", "de", "fr"]
    assert set(out.dropped["reason"]) == {"language"} and set(out.dropped["stage"]) == {"language_filter"}
    detail = dict(zip(out.dropped["id"], out.dropped["detail"], strict=True))
    assert detail["de"].startswith("de:") and float(detail["de"].split(":")[1]) >= 0.8
    assert detail["fr"].startswith("fr:")
    assert stage.summary()["undecided"] == 2 and stage.summary()["languages"]["en"] == 2
    assert LanguageFilter(LanguageConfig(languages=["en", "de"]))(batch).dropped["id"].to_list() == ["fr"]
    assert LanguageFilter(LanguageConfig(min_chars=10_000))(batch).dropped.height == 0  # too short to judge


# --- the bundled sample corpus --------------------------------------------------------------------------------


def test_sample_data_is_not_over_filtered():
    frames = [df for df, _ in iter_record_batches(["sample_data"], LoadConfig())]
    df = pl.concat(frames, how="diagonal_relaxed")
    for stage in (StripHtml(), Normalize(), RedactPII(), LengthFilter()):
        df = stage(df).kept
    n = df.height
    dropped = []
    for stage in (LanguageFilter(), QualityFilter()):
        out = stage(df)
        assert out.kept.height + out.dropped.height == df.height
        dropped += out.dropped.select("source", "reason", "detail").rows()
        df = out.kept
    for row in dropped:
        print("dropped:", *row)
    assert n > 400
    assert len(dropped) <= 0.03 * n, dropped

"""Cleaning stages: each test fails if the stage under test did nothing."""

from __future__ import annotations

import random
import unicodedata

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

import cleaners.normalize as normalize_mod
from cleaners import (
    DedupConfig,
    ExactDeduper,
    FilterConfig,
    HtmlConfig,
    LengthFilter,
    LSHIndex,
    MinHashDeduper,
    MinHasher,
    Normalize,
    NormalizeConfig,
    StripHtml,
    dedup_stages,
    fix_mojibake,
    jaccard_estimate,
    normalize_text,
    optimal_bands,
    strip_html,
)
from tuneprep.records import SCHEMA, make_records

PAGE = """<!doctype html><html><head><title>Shop | Blog</title>
<style>body { color: red }</style><script>var tracking = "SECRET_JS";</script></head>
<body class="layout has-sidebar">
<header><div class="logo">ACME HEADER</div></header>
<nav><a href="/">Home NAVLINK</a> <a href="/about">About</a></nav>
<div id="cookie-banner" class="cookie-consent">We use COOKIES to improve your experience. <button>Accept</button></div>
<div class="breadcrumb">Home &gt; Blog &gt; BREADCRUMB</div>
<main>
  <article>
    <header><h1>Caring for   sourdough</h1></header>
    <p>A sourdough starter needs <b>regular</b> feeding with flour
       and water to stay active.</p>
    <p>Keep it at room temperature.<br>Feed it daily.</p>
    <pre>def feed(jar):
    jar.add(flour=50)</pre>
    <ul><li>flour</li><li>water</li></ul>
    <div class="share-buttons">SHARE on social</div>
    <section id="comments"><h2>Comments</h2><p>COMMENT: great post!</p></section>
  </article>
</main>
<aside>SIDEBAR links</aside>
<div class="newsletter-signup">Subscribe to our NEWSLETTER</div>
<footer>(c) 2024 FOOTER</footer>
<!-- HTML_COMMENT -->
</body></html>"""


def _words(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 8))) for _ in range(n)]


def _text_rows(texts: list[str], prefix: str = "d") -> pl.DataFrame:
    return make_records({"id": f"{prefix}{i}", "source": "t", "format": "text", "text": t} for i, t in enumerate(texts))


def _chat(rid: str, *turns: tuple[str, str]) -> dict:
    return {"id": rid, "source": "t", "format": "chat", "messages": [{"role": r, "content": c} for r, c in turns]}


def _assert_balanced(batch: pl.DataFrame, out) -> None:
    assert out.kept.height + out.dropped.height == batch.height
    assert set(SCHEMA) <= set(out.kept.columns)
    assert {"stage", "reason", "detail"} <= set(out.dropped.columns)
    assert sorted(out.kept["id"].to_list() + out.dropped["id"].to_list()) == sorted(batch["id"].to_list())


# --- HTML -----------------------------------------------------------------------------------------------------


def test_strip_html_removes_boilerplate_and_keeps_article():
    text = strip_html(PAGE)
    for junk in ("SECRET_JS", "color: red", "ACME HEADER", "NAVLINK", "COOKIES", "Accept", "BREADCRUMB", "SHARE"):
        assert junk not in text, junk
    for junk in ("COMMENT", "SIDEBAR", "NEWSLETTER", "FOOTER", "HTML_COMMENT", "Shop | Blog"):
        assert junk not in text, junk
    assert text.startswith("Caring for sourdough")
    assert "needs regular feeding with flour and water to stay active." in text
    assert "\n\nA sourdough starter" in text
    assert "stay active.\n\nKeep it at room temperature.\nFeed it daily." in text
    assert "def feed(jar):\n    jar.add(flour=50)" in text
    assert "flour\nwater" in text


def test_strip_html_without_main_uses_body_and_respects_config():
    html = "<body><div class='content'><p>Para one here.</p><p>Para two here.</p></div><nav>menu</nav></body>"
    assert strip_html(html) == "Para one here.\n\nPara two here."
    assert strip_html(html, HtmlConfig(keep_paragraphs=False)) == "Para one here.\nPara two here."
    assert "menu" in strip_html(html, HtmlConfig(drop_tags=[]))


def test_strip_html_keeps_wrapper_whose_class_matches_a_pattern():
    body = " ".join(_words(1, 80))
    html = f"<div class='page with-sidebar'><p>{body}</p></div><div class='sidebar'>Popular posts</div>"
    text = strip_html(html)
    assert body in text
    assert "Popular posts" not in text


def test_strip_html_keeps_page_wide_form_wrapper():
    body = " ".join(_words(9, 120))
    html = f"<body><form id='aspnetForm'><nav>Home About</nav><div><p>{body}</p></div></form></body>"
    text = strip_html(html)
    assert body in text
    assert "Home About" not in text


def test_strip_html_falls_back_to_body_when_main_is_a_teaser():
    body = " ".join(_words(2, 100))
    html = f"<body><article><p>Teaser.</p></article><div><p>{body}</p></div></body>"
    assert body in strip_html(html)
    assert strip_html(html, HtmlConfig(main_min_share=0.0)) == "Teaser."


def test_strip_html_deep_nesting_does_not_recurse():
    html = "<div>" * 3000 + "deep text" + "</div>" * 3000
    assert strip_html(html) == "deep text"


def test_strip_html_stage_converts_drops_and_passes_through():
    chat = _chat("c1", ("user", "<b>not html</b> really"), ("assistant", "ok"))
    batch = make_records(
        [
            {"id": "h1", "source": "t", "format": "html", "text": PAGE},
            {"id": "h2", "source": "t", "format": "html", "text": "<script>only()</script><nav>x</nav>"},
            {"id": "h3", "source": "t", "format": "html", "text": None},
            {"id": "t1", "source": "t", "format": "text", "text": "<p>plain text stays</p>"},
            chat,
        ]
    )
    out = StripHtml()(batch)
    _assert_balanced(batch, out)
    assert out.dropped["id"].to_list() == ["h2", "h3"]
    assert set(out.dropped["reason"]) == {"empty_after_html"}
    assert set(out.dropped["stage"]) == {"strip_html"}
    kept = {r["id"]: r for r in out.kept.iter_rows(named=True)}
    assert kept["h1"]["format"] == "text" and kept["h1"]["text"].startswith("Caring for sourdough")
    assert kept["t1"]["text"] == "<p>plain text stays</p>" and kept["t1"]["format"] == "text"
    assert kept["c1"]["format"] == "chat" and kept["c1"]["messages"] == chat["messages"]


# --- normalisation --------------------------------------------------------------------------------------------


def test_normalize_spaces_controls_and_blank_lines():
    raw = "Hello\u00a0world\u2009again\x07\x00 \t  end   \r\n\r\n\r\n\n\nNext\u200b para  \n\n\n"
    assert normalize_text(raw) == "Hello world again end\n\nNext para"


def test_normalize_nfc_and_indentation():
    out = normalize_text("Cafe\u0301 menu\n    indented  code")
    assert out == "Café menu\n    indented code"
    assert unicodedata.is_normalized("NFC", out) and len(out.split()[0]) == 4
    assert normalize_text("    a   b", NormalizeConfig(keep_indentation=False)) == "a b"
    assert normalize_text("ﬁ", NormalizeConfig(unicode_form="NFKC")) == "fi"


@pytest.mark.parametrize("use_ftfy", [True, False])
def test_mojibake_repair(monkeypatch, use_ftfy):
    if use_ftfy and normalize_mod.ftfy is None:
        pytest.skip("ftfy not installed")
    if not use_ftfy:
        monkeypatch.setattr(normalize_mod, "ftfy", None)
    assert normalize_text("donâ€™t stop") in ("don’t stop", "don't stop")
    assert fix_mojibake("cafÃ© â€” naÃ¯ve") == "café — naïve"
    assert fix_mojibake("Ã‰tÃ©") == "Été"
    assert fix_mojibake("Â«CAFÉ» déjà vu, «Ü»") == "«CAFÉ» déjà vu, «Ü»"
    assert normalize_text("donâ€™t", NormalizeConfig(fix_mojibake=False)) == "donâ€™t"


def test_mojibake_fallback_handles_emoji_and_double_encoding(monkeypatch):
    monkeypatch.setattr(normalize_mod, "ftfy", None)
    assert fix_mojibake("ðŸ˜€") == "😀"
    once = "don’t".encode().decode("cp1252")
    twice = once.encode("utf-8").decode("cp1252")
    assert fix_mojibake(twice) == "don’t"


def test_normalize_lossy_options_are_off_by_default():
    text = "The Cat, sat on the mat!"
    assert normalize_text(text) == text
    cfg = NormalizeConfig(lowercase=True, remove_punctuation=True, remove_stopwords=True)
    assert normalize_text(text, cfg) == "cat sat mat"
    assert normalize_text("alpha beta gamma", NormalizeConfig(remove_stopwords=True, stopwords=["beta"])) == (
        "alpha gamma"
    )


def test_normalize_stage_text_and_chat_contents():
    batch = make_records(
        [
            {"id": "t", "source": "s", "format": "text", "text": "a\u00a0b  c\x07"},
            {"id": "n", "source": "s", "format": "text", "text": None},
            _chat("c", ("user", "itâ€™s\u00a0 here\n\n\n\nok"), ("assistant", "fine\t\t too  ")),
        ]
    )
    out = Normalize()(batch)
    _assert_balanced(batch, out)
    assert out.dropped.height == 0
    assert out.kept["text"].to_list() == ["a b c", None, None]
    msgs = out.kept.filter(pl.col("id") == "c")["messages"].to_list()[0]
    assert msgs == [{"role": "user", "content": "it’s here\n\nok"}, {"role": "assistant", "content": "fine too"}]
    assert out.kept.schema == batch.schema


# --- length filter --------------------------------------------------------------------------------------------


def test_length_filter_reasons():
    long_text = " ".join(_words(3, 50))
    batch = make_records(
        [
            {"id": "ok", "source": "s", "format": "text", "text": "one two three four five six seven"},
            {"id": "empty", "source": "s", "format": "text", "text": "   "},
            {"id": "null", "source": "s", "format": "text", "text": None},
            {"id": "chars", "source": "s", "format": "text", "text": "a b c d e f"},
            {"id": "words", "source": "s", "format": "text", "text": "supercalifragilistic expialidocious"},
            {"id": "long", "source": "s", "format": "text", "text": long_text},
            _chat("chat_ok", ("user", "hi"), ("assistant", "hello there, how can I help today?")),
            _chat("chat_nouser", ("system", "be nice and helpful to everyone"), ("assistant", "sure thing friend ok")),
            _chat("chat_blank", ("user", "what is the capital of france please"), ("assistant", "  ")),
            _chat("chat_empty", ("user", ""), ("assistant", "")),
            {"id": "chat_none", "source": "s", "format": "chat", "messages": []},
        ]
    )
    out = LengthFilter(FilterConfig(min_chars=20, min_words=5, max_chars=200))(batch)
    _assert_balanced(batch, out)
    reasons = dict(zip(out.dropped["id"], out.dropped["reason"], strict=True))
    assert reasons == {
        "empty": "no_content",
        "null": "no_content",
        "chars": "too_short_chars",
        "words": "too_short_words",
        "long": "too_long",
        "chat_nouser": "chat_missing_turns",
        "chat_blank": "chat_missing_turns",
        "chat_empty": "no_content",
        "chat_none": "no_content",
    }
    assert sorted(out.kept["id"]) == ["chat_ok", "ok"]
    details = dict(zip(out.dropped["id"], out.dropped["detail"], strict=True))
    assert details["chars"] == "11 chars < 20"
    assert set(out.dropped["stage"]) == {"length_filter"}


def test_length_filter_without_max_keeps_long_and_lenient_chat_rule():
    batch = make_records(
        [
            {"id": "long", "source": "s", "format": "text", "text": " ".join(_words(4, 5000))},
            _chat("solo", ("assistant", "a long monologue with plenty of words in it")),
        ]
    )
    assert LengthFilter()(batch).kept["id"].to_list() == ["long"]
    assert LengthFilter(FilterConfig(require_chat_turns=False))(batch).kept.height == 2


# --- exact dedup ----------------------------------------------------------------------------------------------


def test_exact_dedup_across_batches_and_case_whitespace(tmp_path):
    dd = ExactDeduper()
    first = _text_rows(["Hello world, this is a doc.", "Another document here.", "hello   WORLD, this is a doc."])
    out1 = dd(first)
    _assert_balanced(first, out1)
    assert out1.kept["id"].to_list() == ["d0", "d1"]
    assert out1.dropped.select("id", "reason", "detail").rows() == [("d2", "exact_duplicate", "d0")]

    second = _text_rows(["Another document here.\n", "Brand new text."], prefix="e")
    out2 = dd(second)
    assert out2.kept["id"].to_list() == ["e1"]
    assert out2.dropped.select("id", "detail").rows() == [("e0", "d1")]

    path = tmp_path / "exact.json"
    dd.save(path)
    restored = ExactDeduper.load(path)
    assert restored.seen == dd.seen
    third = restored(_text_rows(["Brand new text.", "Never seen before."], prefix="f"))
    assert third.dropped.select("id", "detail").rows() == [("f0", "e1")]
    fresh = ExactDeduper()
    fresh.load_state_dict(dd.state_dict())
    assert fresh(_text_rows(["brand NEW text."], prefix="g")).dropped["detail"].to_list() == ["e1"]


def test_exact_dedup_chats_by_conversation():
    batch = make_records(
        [
            _chat("a", ("user", "Hi there"), ("assistant", "Hello!")),
            _chat("b", ("user", "hi  there"), ("assistant", "hello!")),
            _chat("c", ("user", "Hi there"), ("assistant", "Goodbye!")),
            {"id": "t", "source": "s", "format": "text", "text": "Hi there"},
        ]
    )
    out = ExactDeduper()(batch)
    assert out.kept["id"].to_list() == ["a", "c", "t"]
    assert out.dropped.select("id", "detail").rows() == [("b", "a")]


# --- MinHash / LSH --------------------------------------------------------------------------------------------


def test_optimal_bands_matches_datasketch_and_config():
    assert optimal_bands(0.8, 128) == (9, 13)
    assert optimal_bands(0.5, 128) == (25, 5)
    assert DedupConfig(threshold=0.8).lsh_params() == (9, 13)
    assert DedupConfig().lsh_params() == optimal_bands(0.7, 128) == (14, 9)
    assert DedupConfig(bands=16, rows=8).lsh_params() == (16, 8)
    with pytest.raises(ValidationError):
        DedupConfig(bands=20, rows=10)
    with pytest.raises(ValidationError):
        DedupConfig(threshold=1.0)
    with pytest.raises(ValidationError):
        DedupConfig(unknown=1)


def test_minhasher_estimates_jaccard():
    hasher = MinHasher(num_perm=256, ngram=1)
    a = _words(5, 400)
    shared = a[:300]
    b = shared + _words(6, 100)
    true_j = len(set(a) & set(b)) / len(set(a) | set(b))
    sigs = hasher([" ".join(a), " ".join(b)])
    assert sigs.shape == (2, 256) and sigs.dtype == np.uint32
    assert abs(jaccard_estimate(sigs[0], sigs[1]) - true_j) < 0.08
    assert jaccard_estimate(sigs[0], sigs).tolist()[0] == 1.0


def test_minhasher_short_empty_and_deterministic():
    hasher = MinHasher()
    texts = ["two words", "Two   WORDS", "", "!!!", "other pair", "x" * 100, None]
    sigs = hasher(texts)
    assert sigs.shape == (7, 128)
    assert (sigs[0] == sigs[1]).all()
    assert not (sigs[0] == sigs[4]).all()
    assert not (sigs[2] == sigs[3]).all()
    assert (sigs[2] == sigs[6]).all()
    _, starts = hasher.shingles(texts)
    assert np.all(np.diff(np.append(starts, 10**9)) >= 1)
    assert (MinHasher()(texts) == sigs).all()
    assert not (MinHasher(seed=2)(texts) == sigs).all()


def test_minhasher_batch_equals_one_by_one():
    texts = [" ".join(_words(i, n)) for i, n in enumerate([1, 3, 5, 6, 40, 200])] + ["ünïcödé wörds ß " * 3]
    for shingle in ("word", "char"):
        hasher = MinHasher(shingle=shingle)
        batch = hasher(texts)
        single = np.vstack([hasher([t]) for t in texts])
        assert (batch == single).all()


def test_lsh_index_insert_query():
    hasher = MinHasher()
    base = _words(7, 200)
    near = base.copy()
    near[100:105] = ["zzz"] * 5
    sigs = hasher([" ".join(base), " ".join(near), " ".join(_words(8, 200))])
    index = LSHIndex(128, *optimal_bands(0.8, 128))
    index.insert("base", sigs[0])
    assert index.query(sigs[1]) == ["base"]
    assert index.query(sigs[2]) == []
    match = index.best_match(sigs[1], 0.8)
    assert match is not None and match[0] == "base" and match[1] >= 0.8
    assert len(index) == 1


def _corpus() -> tuple[list[str], list[str]]:
    """Documents and the expected fate of each (kept / dropped as near dup of d0)."""
    base = _words(10, 200)
    edited = base.copy()
    edited[60:70] = _words(11, 10)  # one rewritten sentence: 5% of words
    half = base.copy()
    for i in range(0, 200, 2):
        half[i] = _words(12 + i, 1)[0]  # 50% of words changed
    texts = [" ".join(base), " ".join(_words(13, 200)), " ".join(edited), " ".join(half), " ".join(base).upper()]
    fate = ["kept", "kept", "dropped", "kept", "dropped"]
    return texts, fate


def test_near_dedup_drops_near_copies_only():
    texts, fate = _corpus()
    batch = _text_rows(texts)
    out = MinHashDeduper()(batch)
    _assert_balanced(batch, out)
    assert out.kept["id"].to_list() == [f"d{i}" for i, f in enumerate(fate) if f == "kept"]
    assert out.dropped.select("id", "reason", "detail").rows() == [
        ("d2", "near_duplicate", "d0"),
        ("d4", "near_duplicate", "d0"),
    ]
    assert out.kept["group_id"].to_list() == out.kept["id"].to_list()


def test_near_dedup_keeps_existing_group_and_is_deterministic():
    texts, _ = _corpus()
    batch = _text_rows(texts).with_columns(pl.when(pl.col("id") == "d1").then(pl.lit("g1")).alias("group_id"))
    a, b = MinHashDeduper()(batch), MinHashDeduper()(batch)
    assert a.kept.equals(b.kept) and a.dropped.equals(b.dropped)
    assert dict(zip(a.kept["id"], a.kept["group_id"], strict=True))["d1"] == "g1"


def test_near_dedup_across_batches_save_and_load(tmp_path):
    texts, _ = _corpus()
    dd = MinHashDeduper()
    out1 = dd(_text_rows(texts[:2]))
    assert out1.dropped.height == 0
    out2 = dd(_text_rows(texts[2:], prefix="e"))
    assert out2.dropped.select("id", "detail").rows() == [("e0", "d0"), ("e2", "d0")]

    path = tmp_path / "near.npz"
    dd.save(path)
    restored = MinHashDeduper.load(path)
    assert len(restored.index) == len(dd.index) == 3
    fresh_drop = _text_rows([texts[2], " ".join(_words(14, 150)), texts[1] + " with a tail"], prefix="f")
    out3 = restored(fresh_drop)
    _assert_balanced(fresh_drop, out3)
    assert out3.dropped.select("id", "detail").rows() == [("f0", "d0"), ("f2", "d1")]
    assert out3.kept["id"].to_list() == ["f1"]
    with pytest.raises(ValueError, match="not compatible"):
        MinHashDeduper.load(path, DedupConfig(ngram=5))
    assert MinHashDeduper.load(path, DedupConfig(threshold=0.9)).index.bands == optimal_bands(0.9, 128)[0]


def test_near_dedup_char_shingles_and_chats():
    cfg = DedupConfig(shingle="char", ngram=5)
    answer = " ".join(_words(15, 60))
    batch = make_records(
        [
            _chat("a", ("user", "Explain the thing"), ("assistant", answer)),
            _chat("b", ("user", "Explain the thing!"), ("assistant", answer)),
            _chat("c", ("user", "Something else"), ("assistant", " ".join(_words(16, 60)))),
        ]
    )
    out = MinHashDeduper(cfg)(batch)
    assert out.kept["id"].to_list() == ["a", "c"]
    assert out.dropped["detail"].to_list() == ["a"]


def test_dedup_stages_follow_config():
    assert [s.name for s in dedup_stages()] == ["exact_dedup", "near_dedup"]
    assert [s.name for s in dedup_stages(DedupConfig(exact=False))] == ["near_dedup"]
    assert dedup_stages(DedupConfig(exact=False, near=False)) == []


# --- accounting over a mixed corpus ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_stage", [StripHtml, Normalize, LengthFilter, ExactDeduper, MinHashDeduper], ids=lambda s: s.__name__
)
def test_every_stage_accounts_for_every_row(make_stage):
    texts, _ = _corpus()
    rows = [{"id": f"t{i}", "source": "s", "format": "text", "text": t} for i, t in enumerate(texts)]
    rows += [
        {"id": "h", "source": "s", "format": "html", "text": PAGE},
        {"id": "h_empty", "source": "s", "format": "html", "text": "<nav>only nav</nav>"},
        {"id": "short", "source": "s", "format": "text", "text": "tiny"},
        {"id": "dup", "source": "s", "format": "text", "text": texts[0]},
        _chat("c", ("user", "question here please"), ("assistant", "an answer that is long enough")),
    ]
    batch = make_records(rows)
    stage = make_stage()
    out = stage(batch)
    _assert_balanced(batch, out)
    assert set(out.dropped["stage"].to_list()) <= {stage.name}
    empty = stage(batch.clear())
    assert empty.kept.height == 0 and empty.dropped.height == 0


def test_minhasher_document_longer_than_one_block():
    big = " ".join(_words(20, 20000))
    hasher = MinHasher()
    sigs = hasher(["short doc here", big, big + " tail"])
    assert (sigs[1] == hasher([big])[0]).all()
    assert jaccard_estimate(sigs[1], sigs[2]) > 0.95

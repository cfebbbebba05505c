"""Cleaning stages: each test fails if the stage under test did nothing."""

from __future__ import annotations

import unicodedata

import polars as pl
import pytest

from cleaners import (
    ExactDeduper,
    FilterConfig,
    HtmlConfig,
    LengthFilter,
    MinHashDeduper,
    Normalize,
    NormalizeConfig,
    StripHtml,
    fix_mojibake,
    normalize_text,
    strip_html,
)
from tuneprep.records import make_records

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


from builders import assert_balanced as _assert_balanced  # noqa: E402
from builders import chat as _chat  # noqa: E402
from builders import near_dup_corpus as _corpus  # noqa: E402
from builders import words as _words  # noqa: E402

# --- HTML -----------------------------------------------------------------------------------------------------


BS4 = HtmlConfig(extractor="bs4")  # the rule-based walker; tests/test_extract.py covers the default extractor


def test_strip_html_removes_boilerplate_and_keeps_article():
    text = strip_html(PAGE, BS4)
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
    assert strip_html(html, BS4) == "Para one here.\n\nPara two here."
    assert strip_html(html, HtmlConfig(extractor="bs4", keep_paragraphs=False)) == "Para one here.\nPara two here."
    assert "menu" in strip_html(html, HtmlConfig(extractor="bs4", drop_tags=[]))


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
    assert body in strip_html(html, BS4)
    assert strip_html(html, HtmlConfig(extractor="bs4", main_min_share=0.0)) == "Teaser."


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


def test_mojibake_repair():
    assert normalize_text("donâ€™t stop") in ("don’t stop", "don't stop")
    assert fix_mojibake("cafÃ© â€” naÃ¯ve") == "café — naïve"
    assert fix_mojibake("Ã‰tÃ©") == "Été"
    assert fix_mojibake("Â«CAFÉ» déjà vu, «Ü»") == "«CAFÉ» déjà vu, «Ü»"
    assert normalize_text("donâ€™t", NormalizeConfig(fix_mojibake=False)) == "donâ€™t"


def test_mojibake_repair_handles_emoji_and_double_encoding():
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


# --- dedup: tests/test_dedup.py (exact, MinHash/LSH, semantic); _corpus also feeds the accounting test below ---


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

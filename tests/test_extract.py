"""Main-text extraction behind `strip_html`: the default (auto) extractor, each backend, the boilerplate-line pass."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

import cleaners.html_text as html_mod
from cleaners import HtmlConfig, StripHtml, drop_boilerplate_lines, strip_html
from tuneprep.records import make_records

SAMPLE_WEB = Path(__file__).resolve().parents[1] / "sample_data" / "web"


def _prose(seed: int, sentences: int) -> list[str]:
    rng = random.Random(seed)
    vocab = [
        "river",
        "stove",
        "tent",
        "ridge",
        "valley",
        "trail",
        "morning",
        "camp",
        "water",
        "summit",
        "forest",
        "meadow",
        "lake",
        "pack",
        "boots",
    ]
    return [
        " ".join(rng.choice(vocab) for _ in range(rng.randint(12, 20))).capitalize() + "." for _ in range(sentences)
    ]


def _page(article: str, comments: str = "") -> str:
    return f"""<!doctype html><html><head><title>Site | Post</title><script>var t = "SECRET_JS";</script></head>
<body><header><nav><a href="/">Home NAVLINK</a> <a href="/shop">Shop</a></nav></header>
<div class="cookie-banner">We use cookies to improve your experience. <button>Accept all cookies</button></div>
<main><article>{article}
<section id="comments" class="comments"><h2>3 comments</h2>{comments}</section></article></main>
<aside class="related"><h3>Related posts</h3><ul><li><a href="/a">RELATED ONE</a></li></ul></aside>
<footer><p>&copy; 2024 Example Co. All rights reserved. FOOTERLINK</p></footer></body></html>"""


ARTICLE_PARAS = _prose(1, 8)
ARTICLE = "<h1>Trail notes from the ridge</h1>" + "".join(f"<p>{p}</p>" for p in ARTICLE_PARAS)
ARTICLE += "<ul><li>Pack the stove and fuel</li><li>Check the weather twice</li></ul>"
ARTICLE += "<p>Subscribe now to our newsletter for the full story.</p>"
COMMENTS = "<div class='comment'><p>READER COMMENT: what a lovely walk, thanks for sharing this one.</p></div>"
PAGE = _page(ARTICLE, COMMENTS)

needs_trafilatura = pytest.mark.skipif(not html_mod.available("trafilatura"), reason="trafilatura not installed")
needs_resiliparse = pytest.mark.skipif(not html_mod.available("resiliparse"), reason="resiliparse not installed")


@needs_trafilatura
def test_auto_keeps_article_and_drops_boilerplate_and_comments():
    text = strip_html(PAGE)
    assert text.startswith("Trail notes from the ridge")
    for para in ARTICLE_PARAS:
        assert para in text
    assert f"{ARTICLE_PARAS[0]}\n\n{ARTICLE_PARAS[1]}" in text  # paragraphs stay blank-line separated
    assert "- Pack the stove and fuel\n- Check the weather twice" in text
    for junk in ("SECRET_JS", "NAVLINK", "cookies", "RELATED ONE", "FOOTERLINK", "READER COMMENT", "Subscribe now"):
        assert junk not in text, junk


@needs_trafilatura
@needs_resiliparse
def test_auto_falls_back_to_resiliparse_when_trafilatura_keeps_too_little(monkeypatch):
    monkeypatch.setattr(html_mod, "_trafilatura", lambda html, cfg: "Trail notes from the ridge")
    text = strip_html(PAGE)
    assert all(p in text for p in ARTICLE_PARAS)
    assert strip_html(PAGE, HtmlConfig(recall_guard=0.0)) == "Trail notes from the ridge"


@needs_trafilatura
def test_trafilatura_short_page_is_not_doubled():
    para = " ".join(_prose(3, 2))
    text = strip_html(f"<html><body><article><h1>Short</h1><p>{para}</p></article></body></html>")
    assert text.count(para) == 1


@pytest.mark.parametrize("extractor", ["auto", "trafilatura", "resiliparse", "bs4"])
def test_every_extractor_keeps_the_article(extractor):
    if not html_mod.available("trafilatura" if extractor == "auto" else extractor):
        pytest.skip(f"{extractor} not installed")
    text = strip_html(PAGE, HtmlConfig(extractor=extractor))
    assert sum(p in text for p in ARTICLE_PARAS) >= 7
    assert "NAVLINK" not in text and "SECRET_JS" not in text
    assert strip_html("", HtmlConfig(extractor=extractor)) == ""


def test_unavailable_extractor_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(html_mod, "available", lambda name: name == "bs4")
    with pytest.raises(ImportError, match="pip install trafilatura"):
        strip_html(PAGE, HtmlConfig(extractor="trafilatura"))
    assert html_mod.resolve_extractor("auto") == "bs4"
    assert "Trail notes from the ridge" in strip_html(PAGE)


def test_keep_paragraphs_off_gives_single_newlines():
    if not html_mod.available("trafilatura"):
        pytest.skip("trafilatura not installed")
    text = strip_html(PAGE, HtmlConfig(keep_paragraphs=False))
    assert "\n\n" not in text and f"{ARTICLE_PARAS[0]}\n{ARTICLE_PARAS[1]}" in text


def test_boilerplate_lines_are_dropped_and_content_kept():
    text = "\n\n".join(
        [
            "How to return an item",
            "You can return most items within 60 days.",
            "Subscribe now to our eNATION edition for the full story.",
            "- Follow The Gleaner on Twitter and Instagram @JamaicaGleaner",
            "To unsubscribe from our newsletter, open the account page and clear the box.",
            "© 2024 Northwind Trail Supply Co. All rights reserved.",
            "Category : Press Releases",
        ]
    )
    out = drop_boilerplate_lines(text)
    assert out == (
        "How to return an item\n\nYou can return most items within 60 days.\n\n"
        "To unsubscribe from our newsletter, open the account page and clear the box."
    )
    assert drop_boilerplate_lines(text, HtmlConfig(boilerplate_lines=[])) == text
    long_line = "Subscribe now " + " ".join(["word"] * 80)
    assert drop_boilerplate_lines(long_line) == long_line  # longer than boilerplate_line_max_words


def test_bs4_keeps_code_indentation_with_line_pass():
    html = "<article><p>Run this:</p><pre>def feed(jar):\n    jar.add(flour=50)</pre></article>"
    assert "def feed(jar):\n    jar.add(flour=50)" in strip_html(html, HtmlConfig(extractor="bs4"))


@needs_trafilatura
def test_sample_pages_extract_and_planted_exact_duplicates_stay_identical():
    def read(name: str) -> str:
        data = (SAMPLE_WEB / name).read_bytes()
        return (gzip.decompress(data) if name.endswith(".gz") else data).decode("utf-8", "replace")

    texts = {p.name: strip_html(read(p.name)) for p in sorted(SAMPLE_WEB.iterdir())}
    assert texts["help-returns.html"] == texts["help-returns-legacy.html"]
    assert texts["blog-trip-lantern-lake.html"] == texts["blog-trip-lantern-lake-print.html"]
    for name, text in texts.items():
        assert "Accept all cookies" not in text and "All rights reserved" not in text, name
        if name != "store-locator.html":
            assert len(text.split()) >= 150, name


@needs_trafilatura
def test_strip_html_stage_uses_default_extractor():
    batch = make_records([{"id": "p", "source": "t", "format": "html", "text": PAGE}])
    out = StripHtml()(batch)
    assert out.kept.height == 1 and out.kept["format"][0] == "text"
    assert "READER COMMENT" not in out.kept["text"][0] and ARTICLE_PARAS[0] in out.kept["text"][0]

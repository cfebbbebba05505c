"""HTML pages to plain text: boilerplate out, article text in, paragraph breaks kept.

Four extractors sit behind ``strip_html`` (``HtmlConfig.extractor``), measured on trafilatura's 134
annotated English pages by ``bench/extract/run.py`` (figures and caveats in bench/README.md):

- ``trafilatura``: the best boilerplate removal of the libraries tried (precision 0.91 against 0.79 for
  the bs4 walker), but it misses the article on a few pages and collapses ``<pre>`` indentation.
- ``resiliparse``: 10-17x faster (C++ DOM), good recall, weaker precision on its own.
- ``bs4``: the project's rule-based walker: no extra dependency, keeps code indentation, handles
  fragments; lowest precision on real pages.
- ``auto`` (default): trafilatura without its readability/justext comparison (~1.7x faster than its
  default), with resiliparse as a recall guard: where trafilatura keeps less than ``recall_guard`` of
  the text resiliparse calls main content, it missed the article, so resiliparse's text is used.
  F1 0.939 against trafilatura's 0.926 at ~1.7x its page rate; degrades to what is installed.

Every extractor's output then loses call-to-action and legal lines (``boilerplate_lines``) that sit
inside article containers where no DOM rule sees them (F1 0.964 with them, measured in-sample).

In the pipeline (``StripHtml``) every page is bounded: one longer than ``max_page_chars`` or nested deeper
than ``max_depth`` (counted on the markup, in linear time) skips the DOM extractors, whose time grows with
the square of the depth (a 1 MB page of 100,000 nested ``<div>`` took over 5 minutes), and one that takes
longer than ``timeout_s`` is stopped by killing the worker process it runs in, which works inside C code
too. Such a page gets ``plain_text``, a linear-time tag stripper, or with ``on_limit: quarantine`` is
quarantined; an extractor that raises on a page also leaves that page to ``plain_text``.
"""

from __future__ import annotations

import html as html_lib
import importlib.util
import os
import re
from functools import cache, lru_cache
from types import SimpleNamespace
from typing import TYPE_CHECKING

from cleaners.html_tidy import tidy
from tuneprep.errors import error_summary

if TYPE_CHECKING:
    from cleaners.config import HtmlConfig


@cache
def _default() -> HtmlConfig:
    from cleaners.config import HtmlConfig

    return HtmlConfig()


def _bs4(html: str, cfg: HtmlConfig) -> str:
    from cleaners.html_bs4 import bs4_extract

    return bs4_extract(html, cfg)


@cache
def available(extractor: str) -> bool:
    """Whether an optional extractor's library is importable (bs4 always is)."""
    module = {"trafilatura": "trafilatura", "resiliparse": "resiliparse"}.get(extractor)
    return module is None or importlib.util.find_spec(module) is not None


def resolve_extractor(name: str) -> str:
    """The extractor that will run: ``auto`` degrades to whichever libraries are installed."""
    if name != "auto":
        if not available(name):
            raise ImportError(f"HtmlConfig.extractor={name!r} needs `pip install {name}`")
        return name
    if available("trafilatura"):
        return "auto"
    return "resiliparse" if available("resiliparse") else "bs4"


# Below this many characters trafilatura re-adds every paragraph of the page ("wild text"), which doubles
# short pages; 100 instead of its 250 keeps the eval set's F1 and leaves thin pages to the recall guard.
_TRAFILATURA_MIN_EXTRACTED = 100


@lru_cache(maxsize=4)
def _trafilatura_options(fallback: bool) -> object:
    from trafilatura.settings import Extractor

    # comments=True moves comment sections out of the body (then discarded); with False they stay in the text.
    # "xml" skips trafilatura's own text rendering: _render_tree reads the body tree directly.
    opts = Extractor(output_format="xml", fast=not fallback, comments=True, tables=True, formatting=False)
    opts.min_extracted_size = _TRAFILATURA_MIN_EXTRACTED
    return opts


_TF_BLOCKS = frozenset({"p", "head", "quote", "code", "list", "table", "div", "section", "comments"})
_TF_LINES = frozenset({"item", "row", "lb"})


def _render_tree(body: object) -> str:
    """trafilatura's body tree as text: blocks become paragraphs, list items and table rows lines, cells `a | b`."""
    from lxml import etree

    out: list[str] = []
    pending = ""
    for event, el in etree.iterwalk(body, events=("start", "end")):
        tag = el.tag
        if event == "start":
            if tag in _TF_BLOCKS:
                pending = "\n\n"
            elif tag in _TF_LINES and pending != "\n\n":
                pending = "\n"
            elif tag == "cell" and el.getprevious() is not None and not pending:
                pending = " | "
            if tag == "item":
                out.append(pending)
                pending = ""
                out.append("- ")
            if el.text and tag != "graphic":
                out.append(pending)
                pending = ""
                out.append(el.text)
        else:
            if tag in _TF_BLOCKS:
                pending = "\n\n"
            elif tag in ("item", "row") and pending != "\n\n":
                pending = "\n"
            if el.tail and el is not body:
                if el.tail.strip() or not pending:
                    out.append(pending)
                    pending = ""
                out.append(el.tail)
    return _drop_repeated_paragraphs(html_lib.unescape(tidy("".join(out))))


def _drop_repeated_paragraphs(text: str) -> str:
    """trafilatura's short-page recovery appends paragraphs it already kept; the first copy stays."""
    seen: set[str] = set()
    kept: list[str] = []
    for para in text.split("\n\n"):
        if para not in seen:
            seen.add(para)
            kept.append(para)
    return "\n\n".join(kept)


def _trafilatura(html: str, cfg: HtmlConfig) -> str:
    from trafilatura import bare_extraction

    doc = bare_extraction(html, options=_trafilatura_options(cfg.trafilatura_fallback), as_dict=False)
    return "" if doc is None or doc.body is None else _render_tree(doc.body)


def _resiliparse(html: str) -> str:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    text = extract_plain_text(HTMLTree.parse(html), main_content=True, comments=False, alt_texts=False)
    return tidy(text)


def _text_size(text: str) -> int:
    """Characters that are not whitespace."""
    return len("".join(text.split()))


@lru_cache(maxsize=32)
def _line_regex(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns))  # lines are lower-cased: faster than re.I


def drop_boilerplate_lines(text: str, cfg: HtmlConfig | None = None) -> str:
    """Remove short call-to-action and legal lines ("Subscribe now…", "© 2024 … All rights reserved")."""
    cfg = cfg or _default()
    rx = _line_regex(tuple(cfg.boilerplate_lines))
    if rx is None or not text:
        return text
    kept: list[str] = []
    dropped = False
    for line in text.split("\n"):
        body = line.strip().lstrip("-*•· ").strip()
        if body and len(body.split()) <= cfg.boilerplate_line_max_words and rx.search(body.lower()):
            dropped = True
            continue
        if not line.strip() and (not kept or not kept[-1].strip()):
            continue  # a removed line must not leave two blank lines in a row
        kept.append(line)
    return "\n".join(kept).strip("\n") if dropped else text


def strip_html(html: str | None, cfg: HtmlConfig | None = None) -> str:
    """Plain text of a page's main content, by the configured extractor (see the module docstring for why)."""
    if not html or not html.strip():
        return ""
    cfg = cfg or _default()
    kind = resolve_extractor(cfg.extractor)
    if kind == "bs4":
        text = _bs4(html, cfg)
    elif kind == "resiliparse":
        text = _resiliparse(html)
    else:
        text = _trafilatura(html, cfg)
        if kind == "auto":
            guard = _resiliparse(html) if available("resiliparse") else _bs4(html, cfg)
            if _text_size(text) < cfg.recall_guard * _text_size(guard):
                text = guard
    if kind != "bs4" and not cfg.keep_paragraphs:
        text = re.sub(r"\n{2,}", "\n", text)
    return drop_boilerplate_lines(text, cfg) if cfg.drop_boilerplate_lines else text


_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)(?:[^<>]*[^<>/])?(/?)>")
# Tags that never hold others, or that parsers close implicitly: they do not deepen the tree.
_FLAT_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
    | {"p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead", "tbody", "tfoot", "colgroup", "rp", "rt"}
)


def page_depth(html: str) -> int:
    """How deep the page's tags nest, counted on the markup in linear time (no DOM): +1 per opening tag, -1 per
    closing one, never below 0 (a stray closing tag), void, self-closed and implicitly closed tags not counted."""
    import numpy as np

    tags = _TAG.findall(html)
    if not tags:
        return 0
    steps = np.fromiter(
        (0 if end or name.lower() in _FLAT_TAGS else -1 if close else 1 for close, name, end in tags),
        np.int64,
        len(tags),
    )
    level = np.cumsum(steps)
    return int((level - np.minimum.accumulate(np.minimum(level, 0))).max())  # the walk clamped at 0


_HIDDEN_OPEN = re.compile(r"<!--|<(script|style|noscript|template|svg|math|head)\b")  # on ASCII-lowered markup
_MARKUP_TAG = re.compile(r"<(/?[A-Za-z][A-Za-z0-9]*)?[^<>]*>")
_BLOCK_NAMES = frozenset(
    {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section", "article", "blockquote"}
    | {"pre", "ul", "ol", "dl", "dt", "dd", "header", "footer", "main", "nav", "aside", "form", "hr", "figure"}
    | {"figcaption", "details", "summary", "address", "center", "fieldset"}
)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_SPACES = re.compile(r"[ \t\r\f\v]+")


def _visible_markup(html: str) -> str:
    """The page without comments, scripts, styles and the like; an unclosed one runs to the end, as in a browser.
    Each character is looked at a bounded number of times, so this is linear however the page is built."""
    lower = html.translate(_ASCII_LOWER)  # same length, same positions
    parts: list[str] = []
    pos = 0
    while m := _HIDDEN_OPEN.search(lower, pos):
        parts.append(html[pos : m.start()])
        if m.group(0) == "<!--":
            end = lower.find("-->", m.end())
            pos = len(html) if end < 0 else end + 3
            continue
        end = lower.find(f"</{m.group(1)}", m.end())
        close = lower.find(">", end) if end >= 0 else -1
        pos = len(html) if close < 0 else close + 1
    parts.append(html[pos:])
    return "".join(parts)


def _tag_break(m: re.Match[str]) -> str:
    name = (m.group(1) or "").lstrip("/").lower()
    return "\n" if name in _BLOCK_NAMES else " "


def plain_text(html: str) -> str:
    """A cheap extractor for pages the DOM extractors are not trusted with: linear time, no parser, no boilerplate
    removal; block tags become line breaks, every other tag goes, entities are decoded."""
    text = html_lib.unescape(_MARKUP_TAG.sub(_tag_break, _visible_markup(html)))
    return tidy(_SPACES.sub(" ", text))


def serve_pages(conn, cfg: dict) -> None:
    """An extraction worker's loop (``cleaners.html.PagePool``): a page in, ``("ok", text)``, ``("too_deep",
    plain text)`` or ``("error", summary)`` out, until the pipe closes. A worker imports this module and what the
    extractors need, not polars, bs4 or pydantic: each worker's start-up is CPU the pipeline's other work waits
    for. ``cfg`` is ``HtmlConfig.model_dump()``, validated by the parent and read here as attributes."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy, imported by the extractors, then starts no BLAS threads
    html_cfg = SimpleNamespace(**cfg)
    conn.send("ready")
    while True:
        try:
            page = conn.recv()
        except (EOFError, OSError):
            return
        try:  # the depth bound is checked here, off the parent's thread (a regex pass over the page)
            deep = page_depth(page) > html_cfg.max_depth
            conn.send(("too_deep", plain_text(page)) if deep else ("ok", strip_html(page, html_cfg)))
        except Exception as e:  # noqa: BLE001 - reported to the parent, which falls back for this page
            conn.send(("error", error_summary(e)))

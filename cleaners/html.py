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
"""

from __future__ import annotations

import html as html_lib
import importlib.util
import re
from functools import cache, lru_cache

import polars as pl
from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import CData, Comment, Declaration, Doctype, ProcessingInstruction

from cleaners.config import HtmlConfig
from tuneprep.stage import Stage, StageOutput

# Never article text, whatever the config says.
NON_CONTENT_TAGS = frozenset(
    {"head", "title", "meta", "link", "base", "template", "button", "select", "option", "textarea", "input"}
    | {"object", "embed", "canvas", "video", "audio", "picture", "map", "img"}
)
PARAGRAPH_TAGS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl", "section", "article"}
    | {"main", "figure", "hr", "header", "footer", "details", "address", "fieldset", "center", "aside", "nav", "form"}
)
LINE_TAGS = frozenset({"div", "li", "tr", "dt", "dd", "caption", "figcaption", "summary", "legend", "label"})
CELL_TAGS = frozenset({"td", "th"})
PROTECTED_TAGS = frozenset({"html", "body", "main", "article"})
# Dropped tags with no visible text go at once; the rest (nav, form...) pass the wrapper-share guard like class matches.
INVISIBLE_TAGS = frozenset({"script", "style", "noscript", "iframe", "svg", "math"})
_SKIP_STRINGS = (Comment, Doctype, CData, ProcessingInstruction, Declaration)
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")
_PRE_NL = "\ue000"
_RANK = {"": 0, " ": 1, "\n": 2, "\n\n": 3}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


_DEFAULT = HtmlConfig()


@lru_cache(maxsize=32)
def _boilerplate_regex(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile(r"(?:^|[\s_\-])(?:" + "|".join(f"(?:{p})" for p in patterns) + ")", re.I)


def _is_boilerplate(el: Tag, rx: re.Pattern[str] | None, roles: frozenset[str], drop_hidden: bool) -> bool:
    attrs = el.attrs or {}
    if drop_hidden and (
        "hidden" in attrs
        or str(attrs.get("aria-hidden", "")).lower() == "true"
        or _HIDDEN_STYLE.search(str(attrs.get("style", "")))
    ):
        return True
    if roles and str(attrs.get("role", "")).lower() in roles:
        return True
    if rx is None:
        return False
    classes = attrs.get("class") or []
    names = " ".join(classes) if isinstance(classes, list) else str(classes)
    return bool(rx.search(names) or rx.search(str(attrs.get("id", ""))))


def _tags(node: Tag) -> list[Tag]:
    """All descendant tags; plain iteration is several times faster than bs4's find_all filters."""
    return [el for el in node.descendants if isinstance(el, Tag)]


def _text_len(el: Tag) -> int:
    return sum(
        len(s.strip()) for s in el.descendants if isinstance(s, NavigableString) and not isinstance(s, _SKIP_STRINGS)
    )


class _Break(str):
    """A break marker on the traversal stack, told apart from page text by type."""


class _PreEnd:
    pass


_PRE_END = _PreEnd()


def _extract_text(root: Tag, paragraphs: bool) -> str:
    """Walk the tree without recursion (deep pages exist); adjacent block breaks merge into the widest one."""
    out: list[str] = []
    pending = ""
    pre_depth = 0
    para = _Break("\n\n" if paragraphs else "\n")
    line = _Break("\n")
    cell = _Break(" ")
    stack: list[object] = [root]
    while stack:
        node = stack.pop()
        if node is _PRE_END:
            pre_depth -= 1
        elif isinstance(node, _Break):
            pending = max(pending, node, key=_RANK.__getitem__)
        elif isinstance(node, NavigableString):
            if isinstance(node, _SKIP_STRINGS):
                continue
            s = str(node)
            if pending and not s.strip():
                continue
            out.append(pending)
            pending = ""
            out.append(s.replace("\n", _PRE_NL) if pre_depth else _HTML_SPACE.sub(" ", s))
        elif isinstance(node, Tag):
            name = node.name
            if name == "br":
                if pre_depth:
                    out.append(_PRE_NL)
                elif pending == "\n":  # <br><br> separates paragraphs
                    pending = para
                else:
                    pending = max(pending, line, key=_RANK.__getitem__)
                continue
            brk = para if name in PARAGRAPH_TAGS else line if name in LINE_TAGS else cell if name in CELL_TAGS else None
            if brk is not None:
                pending = max(pending, brk, key=_RANK.__getitem__)
                stack.append(brk)
            if name == "pre":
                pre_depth += 1
                stack.append(_PRE_END)
            stack.extend(reversed(node.contents))
    return "".join(out)


def _tidy(text: str) -> str:
    lines = [ln.strip() for ln in text.split("\n")]
    kept: list[str] = []
    for ln in lines:
        if ln or (kept and kept[-1]):
            kept.append(ln)
    return "\n".join(kept).strip().replace(_PRE_NL, "\n")


def _main_roots(body: Tag) -> list[Tag]:
    tags = _tags(body)
    mains = [t for t in tags if t.name == "main"] or [t for t in tags if t.get("role") == "main"]
    if mains:
        return [mains[0]]
    return [a for a in tags if a.name == "article" and a.find_parent("article") is None]


def _bs4_extract(html: str, cfg: HtmlConfig) -> str:
    """Drop non-content tags and boilerplate blocks, prefer <main>/<article>."""
    soup = BeautifulSoup(html, cfg.parser)
    layout = frozenset(cfg.drop_tags) - INVISIBLE_TAGS
    invisible = NON_CONTENT_TAGS | (frozenset(cfg.drop_tags) & INVISIBLE_TAGS)
    # extract(), not decompose(): nested matches stay harmless, and bs4's `decomposed` check is O(n) per call.
    for el in _tags(soup):
        if el.name in invisible:
            el.extract()
    body = soup.body or soup
    rx = _boilerplate_regex(tuple(cfg.boilerplate_patterns))
    roles = frozenset(r.lower() for r in cfg.drop_roles)
    total = _text_len(body)
    for el in _tags(body):
        if el.name in PROTECTED_TAGS or (el.name not in layout and not _is_boilerplate(el, rx, roles, cfg.drop_hidden)):
            continue
        if el.name == "header" and el.find_parent(["article", "main"]) is not None:
            continue  # an article's own header holds its title
        if total and _text_len(el) > cfg.boilerplate_max_share * total:
            continue
        el.extract()
    roots: list[Tag] = [body]
    if cfg.prefer_main:
        candidates = _main_roots(body)
        if candidates and sum(_text_len(c) for c in candidates) >= cfg.main_min_share * _text_len(body):
            roots = candidates
    sep = "\n\n" if cfg.keep_paragraphs else "\n"
    return _tidy(sep.join(_extract_text(r, cfg.keep_paragraphs) for r in roots))


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
    return _drop_repeated_paragraphs(html_lib.unescape(_tidy("".join(out))))


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
    return _tidy(text)


def _text_size(text: str) -> int:
    return sum(len(w) for w in text.split())


@lru_cache(maxsize=32)
def _line_regex(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns))  # lines are lower-cased: faster than re.I


def drop_boilerplate_lines(text: str, cfg: HtmlConfig | None = None) -> str:
    """Remove short call-to-action and legal lines ("Subscribe now…", "© 2024 … All rights reserved")."""
    cfg = cfg or _DEFAULT
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
    cfg = cfg or _DEFAULT
    kind = resolve_extractor(cfg.extractor)
    if kind == "bs4":
        text = _bs4_extract(html, cfg)
    elif kind == "resiliparse":
        text = _resiliparse(html)
    else:
        text = _trafilatura(html, cfg)
        if kind == "auto":
            guard = _resiliparse(html) if available("resiliparse") else _bs4_extract(html, cfg)
            if _text_size(text) < cfg.recall_guard * _text_size(guard):
                text = guard
    if kind != "bs4" and not cfg.keep_paragraphs:
        text = re.sub(r"\n{2,}", "\n", text)
    return drop_boilerplate_lines(text, cfg) if cfg.drop_boilerplate_lines else text


class StripHtml(Stage):
    """HTML records become text records; pages with no text left are dropped."""

    name = "strip_html"

    def __init__(self, cfg: HtmlConfig | None = None) -> None:
        self.cfg = cfg or HtmlConfig()

    def process(self, batch: pl.DataFrame) -> StageOutput:
        is_html = (batch["format"] == "html").fill_null(False)
        if not is_html.any():
            return StageOutput.keep_all(batch, self.name)
        texts = batch["text"].to_list()
        formats = batch["format"].to_list()
        new_text = [strip_html(t, self.cfg) if f == "html" else t for t, f in zip(texts, formats, strict=True)]
        out = batch.with_columns(
            pl.Series("text", new_text, dtype=pl.Utf8),
            pl.when(is_html).then(pl.lit("text")).otherwise(pl.col("format")).alias("format"),
        )
        empty = is_html & pl.Series([not t for t in new_text])
        return StageOutput(out.filter(~empty), self.drop(batch.filter(empty), "empty_after_html"))

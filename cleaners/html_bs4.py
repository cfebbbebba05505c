"""The project's rule-based extractor (``HtmlConfig.extractor: bs4``): a walk over BeautifulSoup's tree that drops
non-content tags and boilerplate blocks, prefers ``<main>``/``<article>``, and keeps paragraph breaks and code
indentation. Its own module so that the extraction workers, which run trafilatura and resiliparse, never import bs4.
"""

from __future__ import annotations

import re
from functools import lru_cache

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import CData, Comment, Declaration, Doctype, ProcessingInstruction

from cleaners.config import HtmlConfig
from cleaners.html_tidy import PRE_NL, tidy

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
_RANK = {"": 0, " ": 1, "\n": 2, "\n\n": 3}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


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
            out.append(s.replace("\n", PRE_NL) if pre_depth else _HTML_SPACE.sub(" ", s))
        elif isinstance(node, Tag):
            name = node.name
            if name == "br":
                if pre_depth:
                    out.append(PRE_NL)
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


def _main_roots(body: Tag) -> list[Tag]:
    tags = _tags(body)
    mains = [t for t in tags if t.name == "main"] or [t for t in tags if t.get("role") == "main"]
    if mains:
        return [mains[0]]
    return [a for a in tags if a.name == "article" and a.find_parent("article") is None]


def bs4_extract(html: str, cfg: HtmlConfig) -> str:
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
    return tidy(sep.join(_extract_text(r, cfg.keep_paragraphs) for r in roots))

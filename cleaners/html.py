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

import contextlib
import html as html_lib
import importlib.util
import multiprocessing
import queue
import re
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from functools import cache, lru_cache
from itertools import islice
from multiprocessing.connection import wait as connection_wait

import numpy as np
import polars as pl
from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import CData, Comment, Declaration, Doctype, ProcessingInstruction

from cleaners.config import HtmlConfig
from tuneprep.stage import Stage, StageOutput, error_summary

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


_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)(?:[^<>]*[^<>/])?(/?)>")
# Tags that never hold others, or that parsers close implicitly: they do not deepen the tree.
_FLAT_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
    | {"p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead", "tbody", "tfoot", "colgroup", "rp", "rt"}
)


def page_depth(html: str) -> int:
    """How deep the page's tags nest, counted on the markup in linear time (no DOM): +1 per opening tag, -1 per
    closing one, never below 0 (a stray closing tag), void, self-closed and implicitly closed tags not counted."""
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
    return _tidy(_SPACES.sub(" ", text))


LIMIT_REASONS = {"too_large": "page_too_large", "too_deep": "page_too_deep", "timeout": "extraction_timeout"}
_CANCEL_POLL_S = 0.1  # how often a cancellable extraction looks at its caller's flag while pages run
_WORKER_START_S = 300.0  # importing the extractors in a fresh process; not counted against a page


class WorkerUnavailable(RuntimeError):
    """No extraction worker process could be started (the interpreter cannot spawn one here)."""


class ExtractionCancelled(RuntimeError):
    """A cancellable ``PagePool.extract`` was told to stop."""


class PageWorker:
    """One child process running ``strip_html`` on one page at a time; ``PagePool`` drives it.

    A thread or an alarm cannot stop a C extension (lxml, resiliparse) mid-call; killing a process can. The
    worker is spawned (not forked: the parent runs threads).
    """

    def __init__(self, cfg: HtmlConfig) -> None:
        self.cfg = cfg
        self.proc = None
        self.conn = None
        self._finalizer = None
        self.ready = False
        self.page: int | None = None  # the index of the page it is extracting
        self.since = 0.0  # when it started, or was sent its page

    def start(self) -> None:
        """Spawn the worker, unless it is running, without waiting for it: its start-up (a fresh interpreter
        importing the extractors, about a second) runs beside whatever the caller does before the first page."""
        if self.proc is None or not self.proc.is_alive():
            self.close()
            ctx = multiprocessing.get_context("spawn")
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child, self.cfg.model_dump()), daemon=True, name="tuneprep-html")
            proc.start()
            child.close()
            self.proc, self.conn, self.since = proc, parent, time.monotonic()
            self._finalizer = weakref.finalize(self, _stop, proc, parent)

    def send(self, index: int, page: str) -> None:
        self.conn.send(page)
        self.page, self.since = index, time.monotonic()

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self.proc = self.conn = self._finalizer = None
        self.ready = False
        self.page = None


class PagePool:
    """``strip_html`` over a batch of pages in up to ``workers`` processes at once, each page stopped (its worker
    killed and replaced) after ``timeout_s``.

    Workers start as pages need them, and a page goes to whichever worker is free; each page's text depends on
    that page alone, so the results (in page order) do not depend on which worker ran what.
    """

    def __init__(self, cfg: HtmlConfig, timeout_s: float, workers: int = 1) -> None:
        self.timeout_s = timeout_s
        self.workers = [PageWorker(cfg) for _ in range(max(1, workers))]

    def start(self) -> None:
        """Spawn every worker now, without waiting for them (see ``PageWorker.start``)."""
        for worker in self.workers:
            worker.start()

    def extract(self, pages: list[str], cancelled: Callable[[], bool] | None = None) -> list[tuple[str, str]]:
        """Per page, ``("ok", text)``, ``("too_deep", plain text)``, ``("error", summary)`` or ``("timeout", "")``.

        Raises ``WorkerUnavailable`` when no worker starts at all; the pages then need another way. When
        ``cancelled()`` turns true, the workers still on a page are stopped (their answers would come after
        nobody waits for them) and ``ExtractionCancelled`` is raised.
        """
        results: list[tuple[str, str] | None] = [None] * len(pages)
        todo = deque(range(len(pages)))
        active = self.workers[: min(len(self.workers), len(pages))]
        for worker in active:
            worker.start()
        while todo or any(w.page is not None for w in active):
            if cancelled is not None and cancelled():
                for worker in active:
                    if worker.page is not None:
                        worker.close()
                raise ExtractionCancelled("page extraction cancelled")
            for worker in active:
                if worker.ready and worker.page is None and todo:
                    i = todo.popleft()
                    try:
                        worker.send(i, pages[i])
                    except OSError:  # it died while idle: the page goes back, the worker is replaced
                        todo.appendleft(i)
                        worker.close()
                        worker.start()
            waiting = {w.conn: w for w in active if w.conn is not None and (w.page is not None or not w.ready)}
            if not waiting:
                raise WorkerUnavailable("the HTML extraction worker did not start")
            now = time.monotonic()
            due = min(w.since + (self.timeout_s if w.page is not None else _WORKER_START_S) for w in waiting.values())
            wait = max(0.0, due - now) if cancelled is None else min(max(0.0, due - now), _CANCEL_POLL_S)
            for conn in connection_wait(list(waiting), wait):
                worker = waiting[conn]
                try:
                    message = conn.recv()
                except (EOFError, OSError):  # the worker died: a crash in C code, or out of memory
                    if worker.page is None:  # before it was ready: it cannot start here
                        worker.close()
                        active.remove(worker)
                        continue
                    results[worker.page] = ("error", "the extraction worker died on this page")
                    worker.close()
                    worker.start()
                    continue
                if message == "ready":
                    worker.ready = True
                else:
                    results[worker.page] = message
                    worker.page = None
            now = time.monotonic()
            for worker in list(active):
                if worker.page is not None and now - worker.since > self.timeout_s:
                    results[worker.page] = ("timeout", "")
                    worker.close()
                    worker.start()
                elif not worker.ready and worker.page is None and now - worker.since > _WORKER_START_S:
                    worker.close()
                    active.remove(worker)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        for worker in self.workers:
            worker.close()


def _stop(proc, conn) -> None:
    conn.close()
    if proc.is_alive():
        proc.kill()
    proc.join(5)


def _serve(conn, cfg: dict) -> None:
    """The worker's loop: a page in, ("ok", text) or ("error", summary) out, until the pipe closes."""
    html_cfg = HtmlConfig(**cfg)
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


class PagePrefetch:
    """Pages extracted ahead, on a thread, in the order the stage will ask for them.

    The thread hands ``chunk`` pages at a time to the stage's own extraction (the worker pool) and keeps at
    most ``ahead`` chunks of results waiting, so the workers run while the caller cleans the text records in
    front of the pages. ``take`` checks that it is asked for the very pages it extracted; anything else (a
    batch retried in halves, a stage before this one that dropped a page) ends the prefetch, and the stage
    extracts as if there had been none, so the text never depends on it.
    """

    _END = object()

    def __init__(self, extract, pages: Iterable[str | None], chunk: int = 32, ahead: int = 4) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=ahead)
        self._ready: deque = deque()  # (page, result) of a chunk taken off the queue, not yet asked for
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(extract, iter(pages), chunk), daemon=True)
        self._thread.start()

    def _run(self, extract, pages: Iterator[str | None], chunk: int) -> None:
        try:
            while block := list(islice(pages, chunk)):
                if self._stop.is_set():
                    return
                self._put(list(zip(block, extract(block, self._stop.is_set), strict=True)))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which then extracts on its own
            self._put(e)
        finally:
            self._put(self._END)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def take(self, pages: list[str | None]) -> list[tuple[str, str | None]] | None:
        """The results for ``pages`` when they are the next pages extracted ahead, else None (and the prefetch
        stops: the caller extracts them itself)."""
        out = []
        for page in pages:
            if not self._ready:
                item = self._queue.get()
                if item is self._END or isinstance(item, BaseException):
                    self.close()
                    return None
                self._ready.extend(item)
            ahead, result = self._ready.popleft()
            if ahead != page:
                self.close()
                return None
            out.append(result)
        return out

    def close(self) -> None:
        """Stop the thread and wait for it, so the pool is free again (a chunk in flight is cancelled, its busy
        workers stopped)."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)
        self._ready.clear()


class StripHtml(Stage):
    """HTML records become text records; pages with no text left are dropped.

    Each page is bounded (see the module docstring): past a bound it gets ``plain_text`` or, with
    ``on_limit: quarantine``, is quarantined; ``summary`` counts the pages that fell back, by why.
    """

    name = "strip_html"

    def __init__(self, cfg: HtmlConfig | None = None) -> None:
        self.cfg = cfg or HtmlConfig()
        timeout = self.cfg.timeout_s
        self.pool = PagePool(self.cfg, timeout, self.cfg.workers) if timeout is not None else None
        self.fallbacks: Counter = Counter()
        self.worker_error: str | None = None
        self.ahead: PagePrefetch | None = None

    def _bounded(self, page: str | None, depth: bool = True) -> tuple[str, str | None] | None:
        """The text of a page that never reaches an extractor (empty, or past a bound), else None; ``depth=False``
        leaves the depth bound to the worker."""
        if not page or not page.strip():
            return "", None
        if len(page) > self.cfg.max_page_chars:
            return plain_text(page), "too_large"
        if depth and page_depth(page) > self.cfg.max_depth:
            return plain_text(page), "too_deep"
        return None

    def _in_process(self, page: str) -> tuple[str, str | None]:
        try:
            return strip_html(page, self.cfg), None
        except Exception:  # noqa: BLE001 - an extractor failing on one page: that page gets the fallback
            return plain_text(page), "error"

    def extract(self, pages: list[str | None]) -> list[tuple[str, str | None]]:
        """Each page's text, and why it came from the fallback (None when the configured extractor made it)."""
        if self.ahead is not None:
            got = self.ahead.take(pages)
            if got is not None:
                return got
            self.ahead = None
        return self._extract(pages)

    def _extract(
        self, pages: list[str | None], cancelled: Callable[[], bool] | None = None
    ) -> list[tuple[str, str | None]]:
        depth_checked = self.pool is None  # else the workers check it
        out = [self._bounded(p, depth=depth_checked) for p in pages]
        todo = [i for i, o in enumerate(out) if o is None]
        if self.pool is not None and todo:
            try:
                results = self.pool.extract([pages[i] for i in todo], cancelled)
            except WorkerUnavailable as e:  # e.g. a script without a __main__ guard cannot spawn: no time limit then
                self.worker_error = f"{e}; pages extracted in-process, without the time limit"
                self.pool.close()
                self.pool = None
            else:
                for i, (status, text) in zip(todo, results, strict=True):
                    if status == "ok":
                        out[i] = (text, None)
                    else:
                        out[i] = (text, status) if status == "too_deep" else (plain_text(pages[i]), status)
                todo = []
        for i in todo:  # in-process: the depth bound is checked here if the workers were to check it
            out[i] = (None if depth_checked else self._bounded(pages[i])) or self._in_process(pages[i])
        return out  # type: ignore[return-value]

    def process(self, batch: pl.DataFrame) -> StageOutput:
        is_html = (batch["format"] == "html").fill_null(False)
        if not is_html.any():
            return StageOutput.keep_all(batch, self.name)
        texts = batch["text"].to_list()
        rows = is_html.arg_true().to_list()
        new_text: list[str | None] = list(texts)
        held: list[str | None] = [None] * len(texts)
        for row, (text, why) in zip(rows, self.extract([texts[r] for r in rows]), strict=True):
            quarantine = why in LIMIT_REASONS and self.cfg.on_limit == "quarantine"
            if why and not quarantine:
                self.fallbacks[why] += 1
            new_text[row] = text
            held[row] = why if quarantine else None
        out = batch.with_columns(
            pl.Series("text", new_text, dtype=pl.Utf8),
            pl.when(is_html).then(pl.lit("text")).otherwise(pl.col("format")).alias("format"),
        )
        is_held = pl.Series([h is not None for h in held])
        empty = is_html & pl.Series([not t for t in new_text]) & ~is_held
        bounds = {
            "too_large": f"longer than clean.html.max_page_chars={self.cfg.max_page_chars}",
            "too_deep": f"nested deeper than clean.html.max_depth={self.cfg.max_depth}",
            "timeout": f"extraction took over clean.html.timeout_s={self.cfg.timeout_s}",
        }
        why = [h for h in held if h is not None]
        quarantined = self.quarantine(
            batch.filter(is_held),
            "",
            pl.lit(pl.Series([LIMIT_REASONS[h] for h in why], dtype=pl.Utf8)),
        ).with_columns(pl.Series("detail", [bounds[h] for h in why], dtype=pl.Utf8))
        kept = out.filter(~empty & ~is_held)
        return StageOutput(kept, self.drop(batch.filter(empty), "empty_after_html"), quarantined)

    def prefetch(self, pages: Iterable[str | None]) -> None:
        """Extract ``pages`` (every HTML page this stage will see, in order) on the worker pool while the caller
        works on what comes before them; without a pool there is nothing to overlap, so nothing happens."""
        if self.pool is None:
            return
        self.pool.start()
        self.ahead = PagePrefetch(self._extract, pages)

    def summary(self) -> dict:
        out: dict = {"fallback": dict(self.fallbacks)} if self.fallbacks else {}
        if self.worker_error:
            out["worker"] = self.worker_error
        return out

    def close(self) -> None:
        """Stop the prefetch and the extraction workers, if any were started."""
        if self.ahead is not None:
            self.ahead.close()
            self.ahead = None
        if self.pool is not None:
            self.pool.close()

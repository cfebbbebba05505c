"""The ``StripHtml`` stage and the worker processes it extracts pages in.

The extractors themselves are plain functions in ``cleaners.html_text`` (see its docstring for which runs
and why, and for the bounds every page is held to); a worker process imports only that module. Here:
``PagePool`` runs ``strip_html`` in up to ``workers`` processes and kills one whose page runs past
``timeout_s`` (which stops C code too), ``PagePrefetch`` extracts a partition's pages ahead while the text
records in front of them are cleaned, and ``StripHtml`` turns HTML records into text records.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import queue
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from multiprocessing.connection import wait as connection_wait

import numpy as np
import polars as pl

from cleaners.config import HtmlConfig
from cleaners.html_text import (
    available,
    drop_boilerplate_lines,
    page_depth,
    plain_text,
    resolve_extractor,
    serve_pages,
    strip_html,
)
from tuneprep.stage import Stage, StageOutput

__all__ = [
    "ExtractionCancelled",
    "PagePool",
    "PagePrefetch",
    "StripHtml",
    "WorkerUnavailable",
    "available",
    "page_batches",
    "drop_boilerplate_lines",
    "page_depth",
    "plain_text",
    "resolve_extractor",
    "strip_html",
]

LIMIT_REASONS = {"too_large": "page_too_large", "too_deep": "page_too_deep", "timeout": "extraction_timeout"}
_CANCEL_POLL_S = 0.1  # how often a cancellable extraction looks at its caller's flag while pages run
_WORKER_START_S = 300.0  # importing the extractors in a fresh process; not counted against a page
PAGE_CHUNK = 32  # pages handed to the worker pool at once, and the most a batch of pages holds (``page_batches``)


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
            proc = ctx.Process(
                target=serve_pages, args=(child, self.cfg.model_dump()), daemon=True, name="tuneprep-html"
            )
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


def page_batches(batches: Iterable[pl.DataFrame], chunk: int = PAGE_CHUNK) -> Iterator[pl.DataFrame]:
    """``batches`` cut where HTML pages start and end, and runs of pages into batches of at most ``chunk``.

    A page costs the extractor about as much as a hundred text records, so a batch of pages the size of a text
    batch would hold the stages after extraction until its last page is done, and hold every page in memory.
    Cut like this, the text in front of the pages is cleaned while they are extracted, and each chunk of pages
    is cleaned while the workers extract the next. Rows keep their order.
    """
    for batch in batches:
        if "format" not in batch.columns:
            yield batch
            continue
        is_html = (batch["format"] == "html").fill_null(False).to_numpy()
        if not is_html.any():
            yield batch
            continue
        edges = np.flatnonzero(is_html[1:] != is_html[:-1]) + 1
        bounds = [0, *edges.tolist(), batch.height]
        for lo, hi in itertools.pairwise(bounds):
            step = chunk if is_html[lo] else hi - lo
            for start in range(lo, hi, step):
                yield batch.slice(start, min(step, hi - start))


class PagePrefetch:
    """Pages extracted ahead, on a thread, in the order the stage will ask for them.

    The thread hands ``chunk`` pages at a time to the stage's own extraction (the worker pool) and keeps at
    most ``ahead`` chunks of results waiting, so the workers run while the caller cleans the text records in
    front of the pages. ``take`` checks that it is asked for the very pages it extracted; anything else (a
    batch retried in halves, a stage before this one that dropped a page) ends the prefetch, and the stage
    extracts as if there had been none, so the text never depends on it.
    """

    _END = object()

    def __init__(self, extract, pages: Iterable[str | None], chunk: int = PAGE_CHUNK, ahead: int = 4) -> None:
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

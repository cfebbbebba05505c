"""Polite web fetching: pages from URLs and sitemaps become ``html`` records, failures quarantine entries.

Polite means: robots.txt is read once per host and obeyed (its Crawl-delay too, up to
``max_backoff_s``), requests to one host are at least ``rate_limit_s`` apart, 5xx/408/429,
timeouts and dropped connections are retried a bounded number of times with exponential
backoff, and every request is capped in size and time. The User-Agent names the project.

Every page is kept raw as ``RAW_DIR/<sha256 of url>.html`` with a line in ``RAW_DIR/index.jsonl``,
so later runs can reprocess without fetching again. A failure never stops the run; its reason is one of
``unsupported_scheme``, ``invalid_url``, ``robots_disallowed``, ``robots_unavailable``, ``http_<status>``,
``timeout``, ``connection_error``, ``too_large``, ``too_many_redirects``, ``unsupported_content_type``,
``decoding_error``, ``empty_body`` or, for a sitemap, ``bad_sitemap``.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import json
import logging
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
from protego import Protego

from ingest.config import ScrapeConfig
from tuneprep.records import Quarantined, record_id

log = logging.getLogger(__name__)

ROBOTS_MAX_BYTES = 512_000  # RFC 9309 lets a crawler stop parsing past 500 KiB
_DISALLOW_ALL = "User-agent: *\nDisallow: /\n"
SITEMAP_MAX_DEPTH = 3  # an index of indexes of sitemaps, no deeper
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


@dataclass
class ScrapeStats:
    """What the scraper did, for the report: requests made, retries, pages kept, bytes…"""

    requests: int = 0
    retries: int = 0
    pages: int = 0  # fetched and kept raw
    failed: int = 0  # quarantine entries (pages and sitemaps)
    bytes: int = 0
    sitemaps: int = 0
    robots_blocked: int = 0  # URLs not fetched because of robots.txt
    duplicates: int = 0  # URLs listed more than once, fetched once
    over_max_pages: int = 0  # URLs left unfetched past max_pages

    def to_dict(self) -> dict:
        return asdict(self)


class FetchError(Exception):
    """One URL that could not be fetched; ``reason`` is a short code for the quarantine file."""

    def __init__(
        self,
        reason: str,
        detail: str = "",
        *,
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail
        self.retryable, self.status, self.retry_after = retryable, status, retry_after


@dataclass
class Page:
    url: str
    final_url: str
    status: int
    content_type: str  # the media type alone, lower-cased
    charset: str | None
    body: bytes
    fetched_at: str


@dataclass
class _Redirect:
    status: int
    location: str


class Fetcher:
    """One polite HTTP client. Not thread-safe: pacing assumes requests go one at a time."""

    def __init__(
        self,
        cfg: ScrapeConfig,
        stats: ScrapeStats | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.stats = stats if stats is not None else ScrapeStats()
        self.allowed_types = {t.lower() for t in cfg.allowed_content_types}
        self._sleep, self._clock = sleep, clock
        self._last: dict[str, float] = {}
        self._robots: dict[str, tuple[Protego, str]] = {}
        self._client = httpx.Client(headers={"User-Agent": cfg.user_agent}, follow_redirects=False)

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def fetch(
        self,
        url: str,
        content_types: Collection[str] | None = (),
        max_bytes: int | None = None,
        obey_robots: bool = True,
    ) -> Page:
        """GET ``url``, following at most ``max_redirects`` redirects (each hop checked again).

        ``content_types`` () means the configured ``allowed_content_types``; None accepts any.
        Raises ``FetchError``.
        """
        types = self.allowed_types if content_types == () else content_types
        cap = max_bytes or self.cfg.max_bytes
        chain = [url]
        current = url
        while True:
            _check_url(current)
            if obey_robots:
                self._check_robots(current)
            got = self._get_with_retries(current, types, cap)
            if isinstance(got, Page):
                got.url = url
                return got
            nxt = urldefrag(urljoin(current, got.location)).url
            if nxt in chain:
                raise FetchError("too_many_redirects", "redirect loop: " + " -> ".join([*chain, nxt]))
            if len(chain) > self.cfg.max_redirects:
                raise FetchError("too_many_redirects", f"more than max_redirects={self.cfg.max_redirects} from {url}")
            chain.append(nxt)
            current = nxt

    def _check_robots(self, url: str) -> None:
        parts = urlsplit(url)
        parser, problem = self._robots_for(parts.scheme.lower(), parts.netloc.lower())
        if not parser.can_fetch(url, self.cfg.user_agent):
            self.stats.robots_blocked += 1
            if problem:
                raise FetchError("robots_unavailable", f"robots.txt could not be read ({problem}); not fetching")
            raise FetchError("robots_disallowed", f"robots.txt of {parts.netloc} disallows this path")

    def _robots_for(self, scheme: str, netloc: str) -> tuple[Protego, str]:
        """Read robots.txt once per host and parse it by RFC 9309 (protego: longest match wins, ``*`` and ``$``).

        401/403 forbid everything and other 4xx allow everything, as urllib.robotparser does; a file too
        large to read is treated as absent (RFC 9309 lets a crawler ignore rules past its cap); any other
        failure (5xx, timeout) forbids the host, since the rules are unknown.
        """
        key = f"{scheme}://{netloc}"
        if key not in self._robots:
            problem = ""
            try:
                page = self.fetch(
                    f"{key}/robots.txt", content_types=None, max_bytes=ROBOTS_MAX_BYTES, obey_robots=False
                )
                parser = Protego.parse(page.body.decode("utf-8", "replace"))
            except FetchError as e:
                forbid = e.status in (401, 403) or not (
                    (e.status is not None and 400 <= e.status < 500) or e.reason == "too_large"
                )
                parser = Protego.parse(_DISALLOW_ALL if forbid else "")
                if forbid and e.status not in (401, 403):
                    problem = f"{e.reason}: {e.detail}"
            self._robots[key] = (parser, problem)
        return self._robots[key]

    def _interval(self, scheme: str, netloc: str) -> float:
        robots = self._robots.get(f"{scheme}://{netloc}")
        delay = robots[0].crawl_delay(self.cfg.user_agent) if robots and not robots[1] else None
        return max(self.cfg.rate_limit_s, min(float(delay or 0), self.cfg.max_backoff_s))

    def _pace(self, url: str) -> None:
        parts = urlsplit(url)
        host = parts.netloc.lower()
        wait = self._last.get(host, float("-inf")) + self._interval(parts.scheme.lower(), host) - self._clock()
        if wait > 0:
            self._sleep(wait)
        self._last[host] = self._clock()

    def _get_with_retries(self, url: str, types: Collection[str] | None, cap: int) -> Page | _Redirect:
        for attempt in range(self.cfg.retries + 1):
            try:
                return self._get_once(url, types, cap)
            except FetchError as e:
                if not e.retryable or attempt == self.cfg.retries:
                    if attempt:
                        e.detail = f"{e.detail} (after {attempt + 1} attempts)"
                    raise
                delay = min(self.cfg.backoff_s * 2**attempt, self.cfg.max_backoff_s)
                if e.retry_after is not None:
                    delay = max(delay, min(e.retry_after, self.cfg.max_backoff_s))
                log.info("retrying %s in %.2fs after %s", url, delay, e.reason)
                self.stats.retries += 1
                self._sleep(delay)
        raise AssertionError("unreachable")

    def _get_once(self, url: str, types: Collection[str] | None, cap: int) -> Page | _Redirect:
        cfg = self.cfg
        self._pace(url)
        self.stats.requests += 1
        deadline = self._clock() + cfg.deadline_s
        read = min(cfg.timeout_s, cfg.deadline_s)
        timeout = httpx.Timeout(read, connect=min(cfg.connect_timeout_s, cfg.deadline_s), pool=read)
        try:
            with self._client.stream("GET", url, timeout=timeout) as resp:
                if resp.is_redirect:
                    return _Redirect(resp.status_code, resp.headers["location"])
                status = resp.status_code
                if not 200 <= status < 300:
                    raise FetchError(
                        f"http_{status}",
                        resp.reason_phrase,
                        retryable=status >= 500 or status in (408, 429),
                        status=status,
                        retry_after=_retry_after(resp.headers.get("retry-after")),
                    )
                mime, charset = _content_type(resp.headers.get("content-type", ""))
                if types is not None and mime not in types:
                    raise FetchError("unsupported_content_type", mime or "no Content-Type", status=status)
                length = resp.headers.get("content-length", "")
                if length.isdigit() and int(length) > cap:
                    raise FetchError("too_large", f"Content-Length {length} > max_bytes={cap}", status=status)
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > cap:
                        raise FetchError("too_large", f"body passed max_bytes={cap}", status=status)
                    if self._clock() > deadline:
                        raise FetchError(
                            "timeout", f"body not complete within deadline_s={cfg.deadline_s}", retryable=True
                        )
                fetched_at = datetime.now(UTC).isoformat(timespec="seconds")
                return Page(url, str(resp.url), status, mime, charset, bytes(body), fetched_at)
        except httpx.TimeoutException as e:
            raise FetchError("timeout", f"{type(e).__name__}: {e}", retryable=True) from e
        except httpx.UnsupportedProtocol as e:
            raise FetchError("unsupported_scheme", str(e)) from e
        except httpx.InvalidURL as e:
            raise FetchError("invalid_url", str(e)) from e
        except httpx.DecodingError as e:
            raise FetchError("decoding_error", str(e)) from e
        except httpx.TransportError as e:
            raise FetchError("connection_error", f"{type(e).__name__}: {e}", retryable=True) from e


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise FetchError("invalid_url", str(e)) from e
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError("unsupported_scheme", f"only http and https are fetched, not {parts.scheme or 'no scheme'!r}")
    if not parts.hostname:
        raise FetchError("invalid_url", "no host")


def _content_type(header: str) -> tuple[str, str | None]:
    mime, *params = header.split(";")
    charset = None
    for p in params:
        name, _, value = p.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    return mime.strip().lower(), charset


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def decode_page(body: bytes, charset: str | None) -> str:
    """The page as text: BOM, then the header's charset, then a ``<meta charset>``, then UTF-8; bad bytes replaced."""
    if body.startswith(codecs.BOM_UTF8):
        return body[3:].decode("utf-8", "replace")
    found = _META_CHARSET.search(body[:4096])
    for enc in (charset, found.group(1).decode("ascii") if found else None):
        if enc:
            try:
                return body.decode(codecs.lookup(enc).name, "replace")
            except LookupError:
                continue
    return body.decode("utf-8", "replace")


class RawStore:
    """Fetched bodies under ``raw_dir`` named by the URL's sha256, with one index line per fetch (the last wins)."""

    def __init__(self, raw_dir: Path) -> None:
        self.dir = Path(raw_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.index = self.dir / "index.jsonl"

    def path_for(self, url: str) -> Path:
        return self.dir / f"{hashlib.sha256(url.encode()).hexdigest()}.html"

    def save(self, page: Page) -> Path:
        path = self.path_for(page.url)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(page.body)
        os.replace(tmp, path)
        entry = {
            "url": page.url,
            "final_url": page.final_url,
            "status": page.status,
            "content_type": page.content_type,
            "fetched_at": page.fetched_at,
            "sha256": hashlib.sha256(page.body).hexdigest(),
            "bytes": len(page.body),
            "file": path.name,
        }
        with self.index.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return path


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def sitemap_urls(
    fetcher: Fetcher, url: str, depth: int = 0, seen: set[str] | None = None
) -> Iterator[str | Quarantined]:
    """Page URLs listed by a sitemap, a sitemap index (followed up to 3 levels), a .xml.gz or a plain-text list."""
    seen = seen if seen is not None else set()
    seen.add(url)
    try:
        page = fetcher.fetch(url, content_types=None)
    except FetchError as e:
        yield Quarantined(url, "", e.reason, f"sitemap: {e.detail}")
        return
    fetcher.stats.sitemaps += 1
    data = page.body
    try:
        if data[:2] == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                data = gz.read(fetcher.cfg.max_bytes + 1)
            if len(data) > fetcher.cfg.max_bytes:
                raise FetchError("too_large", f"sitemap decompresses past max_bytes={fetcher.cfg.max_bytes}")
        if b"<!ENTITY" in data:
            raise FetchError("bad_sitemap", "entity declarations are not allowed in a sitemap")
        root = ET.fromstring(data)
    except FetchError as e:
        yield Quarantined(url, "", e.reason, e.detail)
        return
    except (OSError, EOFError, ET.ParseError) as e:
        lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
        if lines and all(ln.startswith(("http://", "https://")) for ln in lines):
            yield from lines
        else:
            yield Quarantined(url, "", "bad_sitemap", f"{type(e).__name__}: {e}", data[:300].decode("utf-8", "replace"))
        return
    kind = _local(root.tag)
    locs = [
        urljoin(url, loc.text.strip())
        for entry in root
        if _local(entry.tag) in ("url", "sitemap")
        for loc in entry
        if _local(loc.tag) == "loc" and loc.text and loc.text.strip()
    ]
    if kind == "urlset":
        yield from locs
    elif kind == "sitemapindex":
        for child in locs:
            if child in seen:
                continue
            if depth + 1 > SITEMAP_MAX_DEPTH:
                yield Quarantined(child, "", "bad_sitemap", f"sitemap indexes nested deeper than {SITEMAP_MAX_DEPTH}")
                continue
            yield from sitemap_urls(fetcher, child, depth + 1, seen)
    else:
        yield Quarantined(url, "", "bad_sitemap", f"root element <{kind}> is neither <urlset> nor <sitemapindex>")


def _page_unit(fetcher: Fetcher, store: RawStore, url: str) -> dict | Quarantined:
    try:
        page = fetcher.fetch(url)
    except FetchError as e:
        return Quarantined(url, "", e.reason, e.detail)
    store.save(page)
    fetcher.stats.pages += 1
    fetcher.stats.bytes += len(page.body)
    text = decode_page(page.body, page.charset)
    if not text.strip():
        return Quarantined(url, "", "empty_body", f"{len(page.body)} bytes, nothing but whitespace")
    fmt = "text" if page.content_type == "text/plain" else "html"
    return {"id": record_id(url, text), "source": url, "format": fmt, "text": text}


def scrape_records(
    cfg: ScrapeConfig, raw_dir: str | Path, stats: ScrapeStats | None = None, urls: Iterable[str] = ()
) -> Iterator[dict | Quarantined]:
    """Fetch ``urls``, then ``cfg.urls``, then the pages of ``cfg.sitemaps``; one record or quarantine entry per page.

    A URL listed twice is fetched once; past ``cfg.max_pages`` the rest is only counted. A sitemap
    that cannot be read is one quarantine entry; one that can be read is not a unit itself.
    """
    stats = stats if stats is not None else ScrapeStats()
    store = RawStore(Path(raw_dir))
    seen: set[str] = set()
    with Fetcher(cfg, stats) as fetcher:

        def listed() -> Iterator[str | Quarantined]:
            yield from urls
            yield from cfg.urls
            for sm in cfg.sitemaps:
                yield from sitemap_urls(fetcher, sm)

        for item in listed():
            if isinstance(item, Quarantined):
                stats.failed += 1
                yield item
                continue
            url = urldefrag(item.strip()).url
            if url in seen:
                stats.duplicates += 1
                continue
            if len(seen) >= cfg.max_pages:
                stats.over_max_pages += 1
                continue
            seen.add(url)
            unit = _page_unit(fetcher, store, url)
            if isinstance(unit, Quarantined):
                stats.failed += 1
                log.info("not fetched: %s (%s)", url, unit.reason)
            yield unit

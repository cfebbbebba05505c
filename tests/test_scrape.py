import contextlib
import gzip
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from ingest.config import LoadConfig, ScrapeConfig
from ingest.scrape import Fetcher, FetchError, ScrapeStats, decode_page, scrape_records
from ingest.sources import LoadError, LoadStats, iter_record_batches
from tuneprep.records import Quarantined

STALL_S = 1.5  # longer than the test's read timeout
ROBOTS = b"User-agent: *\nDisallow: /private\n"


def _page(title: str) -> bytes:
    return f"<html><head><title>{title}</title></head><body><p>{title} body text.</p></body></html>".encode()


class _Handler(BaseHTTPRequestHandler):
    log: list[tuple[float, str, str]]  # (time, path, user agent), set on the server's subclass

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", ctype: str = "text/html; charset=utf-8", **headers) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k.replace("_", "-"), v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.log.append((time.monotonic(), self.path, self.headers.get("User-Agent", "")))
        base = f"http://{self.headers['Host']}"
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
            self._route(base)

    def _route(self, base: str) -> None:
        p = self.path
        if p == "/robots.txt":
            self._send(200, ROBOTS, "text/plain")
        elif p in ("/page1", "/page2", "/page4"):
            self._send(200, _page(p.strip("/")))
        elif p == "/page3":
            self._send(200, b"plain text page", "text/plain")
        elif p == "/latin1":
            self._send(200, "<p>caf\xe9</p>".encode("latin-1"), "text/html; charset=iso-8859-1")
        elif p == "/moved":
            self._send(301, Location="/page4")
        elif p == "/loop-a":
            self._send(302, Location="/loop-b")
        elif p == "/loop-b":
            self._send(302, Location=f"{base}/loop-a")
        elif p == "/error":
            self._send(500, b"boom")
        elif p == "/data.json":
            self._send(200, b'{"a": 1}', "application/json")
        elif p == "/stall":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"<html><body>partial")
            self.wfile.flush()
            time.sleep(STALL_S)
        elif p == "/trickle":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            for _ in range(100):  # bounded: 10 s at most
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        elif p == "/endless":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            chunk = b"<p>" + b"a" * 65_536 + b"</p>"
            for _ in range(2_000):  # bounded at ~130 MB; the client stops long before
                self.wfile.write(chunk)
        elif p == "/sitemap.xml":
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"<sitemap><loc>{base}/sitemap-pages.xml.gz</loc></sitemap>"
                f"<sitemap><loc>{base}/sitemap-missing.xml</loc></sitemap>"
                "</sitemapindex>"
            )
            self._send(200, body.encode(), "application/xml")
        elif p == "/sitemap-pages.xml.gz":
            urls = ["/page2", "/page3", "/private/secret", "/page1"]
            body = (
                '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                + "".join(f"<url><loc>{base}{u}</loc></url>" for u in urls)
                + "</urlset>"
            )
            self._send(200, gzip.compress(body.encode(), mtime=0), "application/gzip")
        else:
            self._send(404, b"not here")


@pytest.fixture(scope="module")
def server():
    handler = type("Handler", (_Handler,), {"log": []})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", handler.log
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def _cfg(**kw) -> ScrapeConfig:
    base = {
        "rate_limit_s": 0.2,
        "connect_timeout_s": 1.0,
        "timeout_s": 0.5,
        "deadline_s": 5.0,
        "max_bytes": 200_000,
        "max_redirects": 5,
        "retries": 2,
        "backoff_s": 0.05,
        "max_backoff_s": 0.5,
    }
    return ScrapeConfig(**{**base, **kw})


def test_scrape_run_finishes_with_right_reasons(server, tmp_path):
    base, log = server
    log.clear()
    cfg = _cfg(
        urls=[
            f"{base}/page1",
            f"{base}/moved",
            f"{base}/error",
            f"{base}/stall",
            f"{base}/endless",
            f"{base}/loop-a",
            f"{base}/data.json",
            f"{base}/private/secret",
            "ftp://127.0.0.1/file.txt",
            f"{base}/page1#again",
        ],
        sitemaps=[f"{base}/sitemap.xml"],
    )
    stats = ScrapeStats()
    t0 = time.monotonic()
    units = list(scrape_records(cfg, tmp_path / "raw", stats))
    elapsed = time.monotonic() - t0

    records = {u["source"]: u for u in units if isinstance(u, dict)}
    failures = {q.source: q for q in units if isinstance(q, Quarantined)}
    assert {u.removeprefix(base) for u in records} == {"/page1", "/moved", "/page2", "/page3"}
    assert records[f"{base}/page1"]["format"] == "html" and "page1 body" in records[f"{base}/page1"]["text"]
    assert records[f"{base}/page3"]["format"] == "text"
    assert {k.removeprefix(base): q.reason for k, q in failures.items()} == {
        "/error": "http_500",
        "/stall": "timeout",
        "/endless": "too_large",
        "/loop-a": "too_many_redirects",
        "/data.json": "unsupported_content_type",
        "/private/secret": "robots_disallowed",
        "ftp://127.0.0.1/file.txt": "unsupported_scheme",
        "/sitemap-missing.xml": "http_404",
    }
    assert "redirect loop" in failures[f"{base}/loop-a"].detail
    assert stats.duplicates == 3 and stats.pages == 4 and stats.sitemaps == 2

    paths = [p for _, p, _ in log]
    assert paths.count("/error") == 3 and paths.count("/stall") == 3  # two retries each
    assert stats.retries >= 4 and "after 3 attempts" in failures[f"{base}/error"].detail
    assert paths.count("/robots.txt") == 1
    assert not any(p.startswith("/private") for p in paths)
    assert paths.count("/endless") == 1 and paths.count("/loop-a") == 1
    assert all(ua.startswith("tuneprep/") and "+https://github.com/tuneprep/tuneprep" in ua for _, _, ua in log)

    times = sorted(t for t, _, _ in log)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.1, gaps  # rate_limit_s=0.2 on one host, with slack for a busy machine
    assert elapsed < 30

    index = [json.loads(line) for line in (tmp_path / "raw" / "index.jsonl").read_text().splitlines()]
    assert {e["url"] for e in index} == set(records)
    for e in index:
        body = (tmp_path / "raw" / f"{hashlib.sha256(e['url'].encode()).hexdigest()}.html").read_bytes()
        assert hashlib.sha256(body).hexdigest() == e["sha256"] and len(body) == e["bytes"] and e["status"] == 200
        assert e["fetched_at"].endswith("+00:00")
    moved = next(e for e in index if e["url"] == f"{base}/moved")
    assert moved["final_url"] == f"{base}/page4" and moved["content_type"] == "text/html"


def test_trickling_body_hits_the_deadline(server):
    base, _ = server
    cfg = _cfg(timeout_s=0.5, deadline_s=0.6, retries=0, rate_limit_s=0.0)
    t0 = time.monotonic()
    with Fetcher(cfg) as f, pytest.raises(FetchError) as err:
        f.fetch(f"{base}/trickle")
    assert err.value.reason == "timeout" and time.monotonic() - t0 < 3


def test_redirect_limit_and_charset(server):
    base, _ = server
    with Fetcher(_cfg(max_redirects=0, rate_limit_s=0.0)) as f:
        with pytest.raises(FetchError) as err:
            f.fetch(f"{base}/moved")
        assert err.value.reason == "too_many_redirects"
        page = f.fetch(f"{base}/latin1")
    assert decode_page(page.body, page.charset) == "<p>caf\xe9</p>"
    assert decode_page(b'<meta charset="windows-1252"><p>\x93hi\x94</p>', None).endswith("\u201chi\u201d</p>")


def test_url_inputs_go_through_the_loader_with_accounting(server, tmp_path):
    base, _ = server
    (tmp_path / "a.txt").write_text("a local document")
    stats = LoadStats()
    inputs = [str(tmp_path / "a.txt"), f"{base}/page1", f"{base}/error", "ftp://example.invalid/x"]
    cfg = _cfg(retries=0, rate_limit_s=0.0)
    records, bad = [], []
    for batch, q in iter_record_batches(inputs, LoadConfig(), 2, stats, scrape=cfg, raw_dir=tmp_path / "raw"):
        records.extend(batch.to_dicts())
        bad.extend(q)
    assert [r["source"] for r in records] == ["a.txt", f"{base}/page1"]
    assert sorted(q.reason for q in bad) == ["http_500", "unsupported_scheme"]
    assert stats.read == stats.kept + stats.quarantined == 4 and stats.files == 1
    assert stats.scrape is not None and stats.scrape.pages == 1
    with pytest.raises(LoadError, match="raw_dir"):
        list(iter_record_batches([f"{base}/page1"], LoadConfig()))


RFC9309_ROBOTS = """User-agent: *
Disallow: /shop/
Allow: /shop/public/
Disallow: /*.pdf$
Disallow: /tmp*x
"""


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/shop/cart", False),
        ("/shop/public/page", True),  # the longest match wins, not the first (urllib.robotparser says no)
        ("/docs/manual.pdf", False),  # "*" and "$" (urllib.robotparser has neither)
        ("/docs/manual.pdf?x=1", True),  # "$" anchors the end
        ("/tmp-cache/box", False),
        ("/blog/post", True),
    ],
)
def test_robots_txt_follows_rfc_9309(path, allowed):
    class _Stub(Fetcher):
        def fetch(self, url, **_kw):
            assert url == "http://shop.example/robots.txt"
            return SimpleNamespace(body=RFC9309_ROBOTS.encode())

    fetcher = _Stub(_cfg())
    if allowed:
        fetcher._check_robots(f"http://shop.example{path}")
    else:
        with pytest.raises(FetchError, match="disallows"):
            fetcher._check_robots(f"http://shop.example{path}")

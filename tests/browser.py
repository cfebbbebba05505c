"""Open a local HTML file in headless Chromium (Debian's ``chromium``) through Playwright, offline.

Playwright drives the system browser (``executable_path``); it never downloads one. The flags keep
Chromium from reaching the network on its own (updates, sync, field trials) and from needing a GPU.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

IMAGES_JS = """() => Array.from(document.images).map(img => {
  const box = img.getBoundingClientRect();
  return {alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
          width: box.width, height: box.height};
})"""


def chromium_path() -> str | None:
    return os.environ.get("TUNEPREP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def require_browser() -> str:
    """The Chromium executable, or skip the test saying what is missing."""
    pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[dev]')"
    )
    path = chromium_path()
    if path is None:
        pytest.skip("chromium is not installed: apt-get install chromium (scripts/setup_system.sh does it as root)")
    return path


@dataclass
class PageCheck:
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    title: str = ""


def open_page(html_file: Path, screenshot: Path, executable: str, full_page: bool = False, actions=None) -> PageCheck:
    """Load ``html_file``, wait for it to settle, screenshot it and report console errors, requests and images.

    ``actions(page)`` runs after the load (e.g. clicking), before the screenshot.
    """
    from playwright.sync_api import sync_playwright

    check = PageCheck()
    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="tuneprep-chromium-") as profile:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=FLAGS, viewport={"width": 1280, "height": 900}
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: check.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: check.console_errors.append(f"uncaught: {e}"))
            page.on("request", lambda r: check.requests.append(r.url))
            page.goto(html_file.resolve().as_uri(), wait_until="load")
            page.wait_for_load_state("networkidle")
            check.images = page.evaluate(IMAGES_JS)
            check.title = page.title()
            if actions is not None:
                actions(page)
            page.screenshot(path=str(screenshot), full_page=full_page)
        finally:
            context.close()
    return check

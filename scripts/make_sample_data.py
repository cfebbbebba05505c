#!/usr/bin/env python3
"""Generate tuneprep's bundled sample corpus under ``sample_data/`` (stdlib only, deterministic).

Every word is produced by the ``sample_corpus`` package next to this script, from hand-written
templates and small grammars (its ``data/`` folder: JSON tables, HTML/CSS templates) about a
fictional outdoor-gear retailer, "Northwind Trail Supply" (help center, blog, staff docs,
support chats and tickets). Nothing is copied from elsewhere. Fixed seeds, gzip ``mtime=0``
and no set/hash-order dependence make two runs byte-identical. ``sample_data/`` is wiped and
rewritten on every run; ``--out DIR`` writes elsewhere. ``build()`` returns the files in memory.
This script is the entry point; it also re-exports the plant registry (``sample_corpus.plants``).

Planted items (the tests in tests/test_sample_data.py check every one)
-----------------------------------------------------------------------
web/  39 pages: 33 distinct help-center/blog articles plus the plants below. Boilerplate on
    every page: <header> with <nav> menu and search form, breadcrumbs, <aside> related
    articles, <footer> with copyright and links, <div class="cookie-banner">...Accept all
    cookies...</div>, <script> (analytics, JSON-LD) and <style> blocks. Main text sits in
    <main><article> (150-600 words per page).
    - help-gift-cards.html.gz            gzip-compressed page (mtime=0)
    - howto-fit-hiking-boots.htm         the one ".htm" page
    - exact duplicates (identical <article>, different boilerplate):
        help-returns-legacy.html == help-returns.html
        blog-trip-lantern-lake-print.html == blog-trip-lantern-lake.html
    - near duplicates (date plus one or two sentences edited, ~5-10% of words):
        help-shipping-2023.html ~ help-shipping.html
        blog-tips-winter-camping-updated.html ~ blog-tips-winter-camping.html
        care-fjordline-rain-shell-v2.html ~ care-fjordline-rain-shell.html
    - store-locator.html                 boilerplate only, one-sentence <main> (min-length filter)
    - blog-trip-owl-creek.html           invalid UTF-8 (stray 0xff 0xfe mid-paragraph): quarantine
docs/ 27 files (.md guides and release notes, .txt procedures and how-tos, 100-800 words), with
    messy whitespace (tabs, trailing spaces, runs of blank lines, one CRLF file), non-breaking
    spaces in spec lists, curly quotes (support-style-guide.txt and others).
    - guide-ridgeline-45-copy.md         exact copy of guide-ridgeline-45.md
    - returns-desk-procedure-v2.txt      near duplicate of returns-desk-procedure.txt
    - howto-rewax-leather-boots.txt      mojibake ("donâ€™t")
    - empty.txt (0 bytes), tiny.txt (3 words), bad_bytes.txt (latin-1 "caf\\xe9": invalid UTF-8)
support_chats.jsonl  107 lines: 100 distinct conversations c0001-c0100 (6 intents, 2-6 turns, some
    with a system message first) plus these plants (1-based line numbers):
    - line 43: exact copy of c0007's line; line 94: exact copy of c0063's line
    - line 54: c0101, near duplicate of c0015; line 107: c0102, near duplicate of c0072
    - line 26: truncated JSON (c0103); line 35: blank; line 75: {"conversation_id": "c9999", "label": "refund"}
tickets.csv  308 rows (ticket_id,subject,text,label), 6 labels, product_info rare (15 rows);
    quoted commas and 6 texts with embedded newlines. Plants:
    - exact duplicate texts: T-1049 = T-1011, T-1162 = T-1124, T-1275 = T-1237
    - near duplicates: T-1072 ~ T-1047, T-1180 ~ T-1155, T-1293 ~ T-1268
    - empty text: T-1081, T-1208
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The package sits next to this script; put it on the path also when the script is loaded by file path
# (tests/test_sample_data.py does), and re-export the plant registry, which those tests read from here.
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from sample_corpus import build, summarize, write  # noqa: E402
from sample_corpus.plants import *  # noqa: E402, F403

DEFAULT_OUT = HERE.parent / "sample_data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (wiped first)")
    args = ap.parse_args()
    report: dict = {}
    files = build(report)
    write(args.out, files)
    print(summarize(files, report))


if __name__ == "__main__":
    main()

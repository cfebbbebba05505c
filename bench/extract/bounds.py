"""What the per-page bounds of the ``strip_html`` stage cost on real pages, and what they save on a hostile one.

Side by side in one run, over trafilatura's 134 English evaluation pages (``--data``):

- baseline: ``strip_html`` called in-process, page by page, with no bound (what the stage did before);
- bounded: the ``StripHtml`` stage with its defaults: a depth/size pre-check per page and extraction in a
  worker process that is killed past ``timeout_s``; the worker is started before the clock (its start-up,
  once per run, is reported on its own).

Both must give the same text on every page (none of these pages is near a bound). Then one hostile page, a
1 MB page nested 100,000 ``<div>`` deep: the bounded stage's time, and the baseline's time on a page only
``--deep`` (default 12,000) levels deep, since the unbounded extractors' time grows with the square of the
depth (the full page took over 5 minutes).

    .venv/bin/python -m bench.extract.bounds [--data DIR] [--repeat N] [--deep N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cleaners.config import HtmlConfig  # noqa: E402
from cleaners.html import StripHtml, strip_html  # noqa: E402
from tuneprep.records import make_records  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "trafilatura_eval_en"


def deep_page(depth: int) -> str:
    return (
        "<html><body>" + "<div>" * depth + "<p>the only paragraph of the page</p>" + "</div>" * depth + "</body></html>"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--repeat", type=int, default=3, help="timing passes; the best is kept")
    ap.add_argument("--deep", type=int, default=12_000, help="depth of the page the unbounded baseline gets")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "extract_bounds.json")
    args = ap.parse_args(argv)
    html_dir = args.data / "html"
    if not html_dir.is_dir():
        sys.exit(f"no evaluation pages at {html_dir} (see bench/README.md)")
    pages = [p.read_bytes().decode("utf-8", "replace") for p in sorted(html_dir.iterdir()) if p.is_file()]
    batch = make_records([{"id": f"{i:020x}", "source": "p", "format": "html", "text": t} for i, t in enumerate(pages)])
    cfg = HtmlConfig()

    base_s, bound_s, start_s, base_out, bound_out = [], [], [], None, None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        base_out = [strip_html(p, cfg) for p in pages]
        base_s.append(time.perf_counter() - t0)
        stage = StripHtml(cfg)
        t0 = time.perf_counter()
        stage.worker._start()
        start_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out = stage(batch)
        bound_s.append(time.perf_counter() - t0)
        stage.close()
        texts = dict(zip(out.kept["id"].to_list(), out.kept["text"].to_list(), strict=True))
        bound_out = [texts.get(f"{i:020x}", "") for i in range(len(pages))]
    same = sum(a == b for a, b in zip(base_out, bound_out, strict=True))

    stage = StripHtml(cfg)
    t0 = time.perf_counter()
    stage(make_records([{"id": "0" * 20, "source": "p", "format": "html", "text": deep_page(100_000)}]))
    deep_bounded = time.perf_counter() - t0
    stage.close()
    t0 = time.perf_counter()
    strip_html(deep_page(args.deep), cfg)
    deep_base = time.perf_counter() - t0

    report = {
        "pages": len(pages),
        "baseline_pages_per_s": round(len(pages) / min(base_s), 1),
        "bounded_pages_per_s": round(len(pages) / min(bound_s), 1),
        "ratio_bounded_vs_baseline": round(min(base_s) / min(bound_s), 3),
        "worker_start_s": round(min(start_s), 2),
        "same_text": same,
        "deep_100k_bounded_s": round(deep_bounded, 2),
        f"deep_{args.deep}_baseline_s": round(deep_base, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Main-text extraction benchmark: tuneprep's `strip_html` against plain BeautifulSoup, trafilatura and resiliparse.

Data: trafilatura's English evaluation pages (``--data``, default ``../shared/data/trafilatura_eval_en``):
``evaldata_subset.json`` maps each page to ``with`` snippets (main text that must survive extraction)
and ``without`` snippets (boilerplate that must be gone); the HTML is under ``html/``. Every extractor
gets the same ``str`` (the page decoded as UTF-8), as ``StripHtml`` does in the pipeline.

Scoring, per snippet, summed over all pages (trafilatura's own eval, ``tests/eval_common.py``):

- snippet (the headline P/R/F1): the snippet counts as present when its whitespace-normalised form is a
  substring of the whitespace-normalised output. TP = `with` present, FN = `with` missing,
  FP = `without` present, TN = `without` absent; P = TP/(TP+FP), R = TP/(TP+FN), F1 = 2PR/(P+R).
  An extractor that crashes or returns nothing scores every snippet of the page as absent.
- lenient: as snippet, but present when at least 80% of the snippet's word tokens (lowercase ``\\w+``)
  occur as one contiguous run in the output's tokens: tolerant of punctuation, case and inline markup.
- token: partial credit. For each snippet, m = the longest run of its tokens found contiguously in the
  output; a `with` snippet adds m to TP and (len - m) to FN, a `without` snippet m to FP and (len - m) to TN.

Comments: 23 pages also list 66 ``comments`` snippets (reader comments, not scored by trafilatura); the
``comments`` column counts how many of them leak into the output, as a separate measure of boilerplate.

Speed: pages/s over all pages, the best of ``--repeat`` passes (single process; the machine is shared,
so compare ratios within one run). Ratios are against ``trafilatura`` (its default settings with
comments off, as in its eval).

    .venv/bin/python -m bench.extract.run [--data DIR] [--repeat N] [--only NAME ...]

Writes the table as JSON to ``bench/out/extract.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import headline, require_data  # noqa: E402
from cleaners.config import HtmlConfig  # noqa: E402
from cleaners.html import available, strip_html  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "trafilatura_eval_en"
REFERENCE = "trafilatura"
DEFAULT = "strip_html[auto]"  # what the pipeline runs
_WS = re.compile(r"\s+")
_TOKEN = re.compile(r"\w+")


def _norm(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def longest_run(needle: list[str], positions: dict[str, list[int]]) -> int:
    """Length of the longest contiguous run of ``needle`` tokens that occurs contiguously in the output."""
    best = 0
    prev: dict[int, int] = {}
    for tok in needle:
        cur = {p: prev.get(p - 1, 0) + 1 for p in positions.get(tok, ())}
        if cur:
            best = max(best, max(cur.values()))
        prev = cur
    return best


@dataclass
class Counts:
    tp: float = 0
    fp: float = 0
    fn: float = 0
    tn: float = 0

    def scores(self) -> tuple[float, float, float]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def comments_leaked(pages: list[dict], outputs: list[str | None]) -> int:
    """How many annotated reader-comment snippets appear in the output (not part of P/R/F1)."""
    return sum(_norm(c) in _norm(o or "") for p, o in zip(pages, outputs, strict=True) for c in p.get("comments", []))


def score(pages: list[dict], outputs: list[str | None]) -> dict[str, Counts]:
    """Snippet, lenient-snippet and token-level confusion counts (see the module docstring)."""
    res = {"snippet": Counts(), "lenient": Counts(), "token": Counts()}
    for item, out in zip(pages, outputs, strict=True):
        text = _norm(out or "")
        toks = _tokens(text)
        positions: dict[str, list[int]] = {}
        for i, t in enumerate(toks):
            positions.setdefault(t, []).append(i)
        for key, positive in (("with", True), ("without", False)):
            for snip in item[key]:
                found = _norm(snip) in text
                stoks = _tokens(snip)
                run = longest_run(stoks, positions) if stoks else 0
                lenient = found or (bool(stoks) and run >= 0.8 * len(stoks))
                for name, hit, miss in (
                    ("snippet", int(found), 1 - int(found)),
                    ("lenient", int(lenient), 1 - int(lenient)),
                    ("token", run, len(stoks) - run),
                ):
                    c = res[name]
                    if positive:
                        c.tp += hit
                        c.fn += miss
                    else:
                        c.fp += hit
                        c.tn += miss
    return res


def extractors() -> dict[str, tuple[Callable[[str], str | None], str]]:
    """name -> (function, what it is). Libraries that are not installed are left out with a note."""
    out: dict[str, tuple[Callable[[str], str | None], str]] = {}
    from bs4 import BeautifulSoup

    out["bs4_get_text"] = (lambda h: BeautifulSoup(h, "lxml").get_text(), 'BeautifulSoup(html, "lxml").get_text()')
    if available("trafilatura"):
        import trafilatura

        opts = {"include_comments": False, "include_tables": True, "include_formatting": False}
        out["trafilatura"] = (lambda h: trafilatura.extract(h, **opts), "trafilatura.extract, default (with fallback)")
        out["trafilatura_fast"] = (
            lambda h: trafilatura.extract(h, no_fallback=True, **opts),
            "trafilatura.extract(no_fallback=True)",
        )
    else:
        print("trafilatura not installed: `pip install trafilatura` to compare", file=sys.stderr)
    if available("resiliparse"):
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.html import HTMLTree

        out["resiliparse"] = (
            lambda h: extract_plain_text(HTMLTree.parse(h), main_content=True, comments=False),
            "resiliparse extract_plain_text(main_content=True, comments=False)",
        )
    else:
        print("resiliparse not installed: `pip install resiliparse` to compare", file=sys.stderr)

    def ours(**kw: object) -> Callable[[str], str]:
        cfg = HtmlConfig(**kw)
        return lambda h: strip_html(h, cfg)

    out["strip_html[bs4,no-lines]"] = (
        ours(extractor="bs4", drop_boilerplate_lines=False),
        "tuneprep bs4 walker alone (the previous default)",
    )
    out["strip_html[bs4]"] = (ours(extractor="bs4"), "tuneprep bs4 walker + boilerplate-line filter")
    if available("trafilatura"):
        out["strip_html[auto,no-lines]"] = (
            ours(drop_boilerplate_lines=False),
            "trafilatura fast + resiliparse recall guard, no line filter",
        )
        out["strip_html[auto]"] = (ours(), "tuneprep default: auto + boilerplate-line filter")
    return out


def run(data: Path, repeat: int, only: list[str] | None) -> dict:
    spec = data / "evaldata_subset.json"
    require_data(spec, data / "html")
    evaldata = json.loads(spec.read_text(encoding="utf-8"))
    pages = list(evaldata.values())
    htmls = [(data / "html" / p["file"]).read_bytes().decode("utf-8", "replace") for p in pages]
    todo = extractors()
    if only:
        missing = [n for n in only if n not in todo]
        if missing:
            sys.exit(f"unknown or unavailable extractor(s) {missing}; choose from {sorted(todo)}")
        todo = {n: todo[n] for n in todo if n in only or n == REFERENCE}
    warnings.filterwarnings("ignore")
    outputs: dict[str, list[str | None]] = {}
    best: dict[str, float] = {}
    errors: dict[str, int] = {}
    for rnd in range(repeat):
        order = list(todo) if rnd % 2 == 0 else list(reversed(todo))  # alternate order: drift hits all alike
        for name in order:
            fn = todo[name][0]
            outs: list[str | None] = []
            n_err = 0
            t0 = time.perf_counter()
            for h in htmls:
                try:
                    outs.append(fn(h))
                except Exception:  # a crash scores as an empty page, as in trafilatura's eval
                    outs.append(None)
                    n_err += 1
            dt = time.perf_counter() - t0
            best[name] = min(best.get(name, dt), dt)
            outputs.setdefault(name, outs)
            errors[name] = n_err
    rows = []
    for name, (_, what) in todo.items():
        counts = score(pages, outputs[name])
        p, r, f = counts["snippet"].scores()
        lp, lr, lf = counts["lenient"].scores()
        tp_, tr, tf = counts["token"].scores()
        rows.append(
            {
                "extractor": name,
                "what": what,
                "precision": round(p, 4),
                "recall": round(r, 4),
                "f1": round(f, 4),
                "lenient_f1": round(lf, 4),
                "token_precision": round(tp_, 4),
                "token_recall": round(tr, 4),
                "token_f1": round(tf, 4),
                "pages_per_s": round(len(pages) / best[name], 2),
                "seconds": round(best[name], 3),
                "errors": errors[name],
                "comments_leaked": comments_leaked(pages, outputs[name]),
                "counts": {k: asdict(v) for k, v in counts.items()},
            }
        )
    ref = next((r for r in rows if r["extractor"] == REFERENCE), None)
    for row in rows:
        row["f1_vs_trafilatura"] = round(row["f1"] - ref["f1"], 4) if ref else None
        row["speed_vs_trafilatura"] = round(row["pages_per_s"] / ref["pages_per_s"], 2) if ref else None
    return {
        "data": str(data),
        "pages": len(pages),
        "snippets": {
            "with": sum(len(p["with"]) for p in pages),
            "without": sum(len(p["without"]) for p in pages),
            "comments": sum(len(p.get("comments", [])) for p in pages),
        },
        "repeat": repeat,
        "reference": REFERENCE if ref else None,
        "versions": {m: _version(m) for m in ("trafilatura", "resiliparse", "beautifulsoup4", "lxml")},
        "python": platform.python_version(),
        "results": rows,
    }


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def table(report: dict) -> str:
    head = (
        f"{'extractor':26} {'P':>6} {'R':>6} {'F1':>6} {'lenF1':>6} {'tokP':>6} {'tokR':>6} {'tokF1':>6}"
        f" {'pages/s':>8} {'ΔF1':>7} {'speed×':>7} {'comments':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in report["results"]:
        d = "" if r["f1_vs_trafilatura"] is None else f"{r['f1_vs_trafilatura']:+.4f}"
        x = "" if r["speed_vs_trafilatura"] is None else f"{r['speed_vs_trafilatura']:.2f}"
        lines.append(
            f"{r['extractor']:26} {r['precision']:6.3f} {r['recall']:6.3f} {r['f1']:6.3f} {r['lenient_f1']:6.3f}"
            f" {r['token_precision']:6.3f} {r['token_recall']:6.3f} {r['token_f1']:6.3f} {r['pages_per_s']:8.1f}"
            f" {d:>7} {x:>7} {r['comments_leaked']:>8}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="trafilatura_eval_en folder")
    ap.add_argument("--repeat", type=int, default=2, help="timing passes; the best is kept")
    ap.add_argument("--only", nargs="+", help="extractor names to run (trafilatura is always added)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "extract.json")
    ap.add_argument("--quick", action="store_true", help="one pass, the default extractor against trafilatura only")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat, args.only = 1, args.only or [DEFAULT]
    report = run(args.data, max(1, args.repeat), args.only)
    print(
        f"{report['pages']} pages, {report['snippets']['with']} with / {report['snippets']['without']} without"
        f" snippets; best of {report['repeat']} passes; ΔF1 and speed× vs {report['reference']}"
    )
    print(table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    ours = next((r for r in report["results"] if r["extractor"] == DEFAULT), None)
    if ours is not None and ours["f1_vs_trafilatura"] is not None:
        headline(ours["f1_vs_trafilatura"], "", "F1 of strip_html (default) minus trafilatura's, snippet eval", ">=", 0)
        headline(ours["speed_vs_trafilatura"], "x", "strip_html (default) / trafilatura pages/s", ">=", 1)


if __name__ == "__main__":
    main()

"""docs/: owner's guides, release notes, staff procedures and how-tos, made messy, plus the planted files."""

from __future__ import annotations

import datetime as dt
import random
import re

from . import plants
from .common import (
    MONTHS,
    PRODUCTS,
    SEED,
    VOCAB,
    Gen,
    cap,
    changed_fraction,
    jaccard,
    load_json,
    load_text,
    long_date,
    shingles,
)

D = load_json("docs.json")
W = load_json("web.json")  # guides reuse the help center's how-to, care and warranty sentences
NBSP_UNITS = re.compile(r"(\d) (L|kg|g|cm|mm|in|m²|°F|h|min|kW)\b")


def smarten(text: str) -> str:
    text = re.sub(r'"([^"\n]+)"', "\u201c\\1\u201d", text)
    return re.sub(r"(\w)'(\w)", "\\1\u2019\\2", text)


def messify(
    text: str, rng: random.Random, *, tabs: bool = False, trailing: float = 0.15, blank_runs: float = 0.3
) -> str:
    """Tab-indented list lines, trailing whitespace and runs of blank lines, as real staff documents have."""
    lines = []
    for line in text.split("\n"):
        if tabs and re.match(r"^(\d+\.|-) ", line):
            line = "\t" + line
        if line and rng.random() < trailing:
            line += rng.choice([" ", "  ", "\t", "   "])
        lines.append(line)
    parts = "\n".join(lines).split("\n\n")
    text = parts[0]
    for part in parts[1:]:
        text += ("\n\n\n\n" if rng.random() < blank_runs else "\n\n") + part
    return text


def product_guide(g: Gen, p: dict) -> str:
    rng = g.rng
    colors = rng.sample(VOCAB["colors"], 2)
    frame = {
        "product": p["name"],
        "cat": p["cat"],
        "use": p["use"],
        "price": p["price"],
        "color": colors[0],
        "color2": colors[1],
    }
    steps = sorted(rng.sample(range(len(W["howto_steps"])), 5))
    warranty = rng.sample(W["policies"][2]["facts"][:6], 2)
    spec_lines = [NBSP_UNITS.sub("\\1\u00a0\\2", s) for s in p["specs"]]
    d = g.date()
    lines = [
        f"# {p['name'][0].upper() + p['name'][1:]}: owner's guide",
        "",
        f"*Product code NW-{p['slug'].upper()} · Guide version {rng.randint(1, 3)}.{rng.randint(0, 9)} · "
        f"Updated {MONTHS[d.month - 1]} {d.year}*",
        "",
        "## Overview",
        "",
        " ".join(g.pick(D["product_overview"], 4, frame)),
        "",
        "## Specifications",
        "",
        *[f"- {s}" for s in spec_lines],
        "",
        "## Getting started",
        "",
        " ".join(g.pick(W["howto_setup"], 3, frame)),
        "",
        *[f"{n + 1}. {cap(g.fill(W['howto_steps'][i], frame))}" for n, i in enumerate(steps)],
        "",
        "## Care and storage",
        "",
        " ".join(g.pick(W["care_clean"], 2, frame) + g.pick(W["care_dry"], 1, frame)),
        "",
        "## Warranty",
        "",
        " ".join(warranty),
        "",
    ]
    return "\n".join(lines)


def release_notes(g: Gen, version: str) -> str:
    rng = g.rng
    r = D["release"]
    d = g.date(60, 300)
    feats = rng.sample(r["features"], rng.randint(2, 4))
    new = [cap(g.fill(rng.choice(r["new"]), {"feature": f})) for f in feats]
    improved = [
        cap(g.fill(t, {"screen": r["screens"], "pct": r["pct"]})) for t in rng.sample(r["improved"], rng.randint(2, 3))
    ]
    fixed = []
    for ui in rng.sample(r["ui"], rng.randint(3, 5)):
        fixed.append(f"Fixed an issue where {ui} {rng.choice(r['bug'])} {rng.choice(r['ctx'])}.")
    intro = g.pick(r["intro"], 2, {"focus": r["focus"]})
    lines = [
        f"# Northwind Trail app {version}",
        "",
        f"Released {long_date(d)} for iOS and Android.",
        "",
        " ".join(intro),
        "",
        "## New",
        "",
        *[f"- {x}" for x in new],
        "",
        "## Improved",
        "",
        *[f"- {x}" for x in improved],
        "",
        "## Fixed",
        "",
        *[f"- {x}" for x in fixed],
        "",
        cap(g.fill(rng.choice(r["intro"][3:]), {})),
        "",
    ]
    return "\n".join(lines)


def procedure_doc(g: Gen, spec: dict, date: dt.date, revision: int) -> str:
    generic = g.rng.sample(D["staff_generic"], 5)
    lines = [
        spec["title"],
        f"Document owner: Store Operations | Revision {revision} | Effective {long_date(date)}",
        "",
        "PURPOSE",
        " ".join(generic[:2]),
        "",
        "STEPS",
        *[f"{n + 1}. {s}" for n, s in enumerate(spec["steps"])],
        "",
        "NOTES",
        " ".join(generic[2:]),
        "",
    ]
    return "\n".join(lines)


def doc_howto(g: Gen, spec: dict) -> str:
    generic = g.rng.sample(D["howto_doc_generic"], 5)
    title = spec["title"]
    lines = [
        title,
        "=" * len(title),
        "",
        " ".join(generic[:3]),
        "",
        "Steps:",
        "",
        *[f"{n + 1}. {s}" for n, s in enumerate(spec["steps"])],
        "",
        "Tips:",
        "",
        *[f"- {s}" for s in generic[3:]],
        "",
    ]
    return "\n".join(lines)


def build_docs(report: dict) -> dict[str, bytes]:
    """Every file under docs/ (duplicates, mojibake, CRLF, empty, tiny and latin-1 plants included)."""
    g = Gen(SEED + 2)
    rng = g.rng
    texts: dict[str, str] = {}
    for p in PRODUCTS:
        texts[f"guide-{p['slug']}.md"] = product_guide(g, p)
    for version in D["release"]["versions"]:
        texts[f"release-notes-{version.rsplit('.', 1)[0]}.md"] = release_notes(g, version)
    proc_dates = {}
    for spec in D["procedures"]:
        proc_dates[spec["file"]] = g.date()
        text = procedure_doc(g, spec, proc_dates[spec["file"]], 3)
        if spec["file"] == "support-style-guide.txt":
            text = smarten(text)
        texts[spec["file"]] = text
    for spec in D["doc_howtos"]:
        texts[spec["file"]] = doc_howto(g, spec)

    # near duplicate: a later revision of the returns desk procedure
    (v2_name, src), *_ = plants.DOCS_NEAR_DUPS.items()
    v2 = texts[src]
    for old, new in D["returns_v2_edits"]:
        old = old.format(effective=long_date(proc_dates[src]))
        assert old in v2
        v2 = v2.replace(old, new)
    texts[v2_name] = v2
    report.setdefault("near", {})[f"docs/{v2_name}"] = (
        f"docs/{src}",
        round(changed_fraction(texts[src], v2), 3),
        round(jaccard(shingles(texts[src]), shingles(v2)), 3),
    )

    # whitespace mess, curly quotes, mojibake
    for name in sorted(texts):
        if name.endswith(".txt"):
            texts[name] = messify(texts[name], rng, tabs=name.startswith(("returns", "store", "howto-patch")))
        elif rng.random() < 0.5:
            texts[name] = messify(texts[name], rng, trailing=0.08, blank_runs=0.15)
    mojibake = plants.DOCS_MOJIBAKE
    texts[mojibake] = texts[mojibake].replace("\u2019", "\u2019".encode("utf-8").decode("cp1252"))
    texts["guide-summit-ember.md"] = smarten(texts["guide-summit-ember.md"])
    texts[plants.DOCS_CRLF] = texts[plants.DOCS_CRLF].replace("\n", "\r\n")

    out = {f"docs/{name}": text.encode("utf-8") for name, text in texts.items()}
    for dup, src in plants.DOCS_EXACT_DUPS.items():
        out[f"docs/{dup}"] = out[f"docs/{src}"]
    out[f"docs/{plants.DOCS_EMPTY}"] = b""
    out[f"docs/{plants.DOCS_TINY}"] = b"TODO: write intro\n"
    out[f"docs/{plants.DOCS_BAD_BYTES}"] = load_text("bad_bytes.txt").encode("latin-1")
    return out

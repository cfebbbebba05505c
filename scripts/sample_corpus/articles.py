"""Help-center and blog articles as blocks, from the templates in data/web.json.

An article is a list of blocks: ("h1" | "meta" | "h2", str) or ("p" | "ul" | "ol", [str, ...]).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence

from .common import ALL_PRODUCTS, GRAMMAR, Gen, cap, changed_fraction, load_json, long_date

W = load_json("web.json")


def article_text(blocks: list) -> str:
    parts = []
    for _kind, val in blocks:
        parts.extend(val if isinstance(val, list) else [val])
    return "\n".join(parts)


def policy_article(g: Gen, topic: dict, date: dt.date) -> list:
    rng = g.rng
    generic = rng.sample(W["policy_generic"], 3)
    closing = rng.sample(W["policy_closing"], 2)
    facts = topic["facts"]
    k = (len(facts) + 1) // 2
    n_items = min(len(topic["items"]), rng.randint(3, 5))
    keep = sorted(rng.sample(range(len(topic["items"])), n_items))
    return [
        ("h1", topic["title"]),
        ("meta", f"Last updated {long_date(date)} · {rng.randint(2, 5)} min read"),
        ("p", topic["intro"] + [generic[0]]),
        ("h2", topic["headings"][0]),
        ("p", facts[:k]),
        ("ul", [topic["items"][i] for i in keep]),
        ("h2", topic["headings"][1]),
        ("p", facts[k:] + [generic[1]]),
        ("h2", rng.choice(W["closing_headings"])),
        ("p", [generic[2]] + closing),
    ]


def care_article(g: Gen, guide: dict, date: dt.date) -> list:
    rng = g.rng
    frame = {"product": guide["product"], "cat": guide["cat"]}
    special, head = guide["special"], W["care_headings"]
    steps = sorted(rng.sample(range(len(W["care_steps"])), 5))
    return [
        ("h1", cap(g.fill(guide["title"], frame))),
        ("meta", f"Last updated {long_date(date)} · {rng.randint(3, 6)} min read"),
        ("p", g.pick(W["care_intro"], 2, frame) + [special[0]]),
        ("h2", rng.choice(head["clean"])),
        ("p", g.pick(W["care_clean"], 3, frame) + [special[1]]),
        ("ol", [W["care_steps"][i] for i in steps]),
        ("h2", rng.choice(head["dry"])),
        ("p", [special[2]] + g.pick(W["care_dry"], 2, frame)),
        ("h2", rng.choice(head["check"])),
        ("p", g.pick(W["care_check"], 3, frame) + [special[3]]),
    ]


def howto_article(g: Gen, spec: dict, date: dt.date) -> list:
    rng = g.rng
    frame = {"product": spec["product"], "cat": spec["cat"]}
    sp, head = spec["special"], W["howto_headings"]
    steps = sorted(rng.sample(range(len(W["howto_steps"])), 5))
    return [
        ("h1", spec["title"]),
        ("meta", f"Last updated {long_date(date)} · {rng.randint(3, 7)} min read"),
        ("p", g.pick(W["howto_choose"], 2, frame) + [sp[0]]),
        ("h2", rng.choice(head["start"])),
        ("p", [sp[1]] + g.pick(W["howto_choose"], 1, frame) + g.pick(W["howto_setup"], 1, frame)),
        ("ol", [cap(g.fill(W["howto_steps"][i], frame)) for i in steps]),
        ("h2", rng.choice(head["setup"])),
        ("p", g.pick(W["howto_setup"], 2, frame) + [sp[2]]),
        ("h2", rng.choice(head["trail"])),
        ("p", [sp[3]] + g.pick(W["howto_trail"], 2, frame)),
    ]


def trip_article(g: Gen, trip: dict, author: str, date: dt.date) -> list:
    rng = g.rng
    prod = rng.choice(ALL_PRODUCTS)
    frame = {
        "place": trip["place"],
        "duration": trip["duration"],
        "season": rng.choice(GRAMMAR["season"]),
        "friend": rng.choice(GRAMMAR["friend"]),
        "product": prod[0],
    }
    head = W["trip_headings"]
    route = g.pick(W["trip_route"], 6, frame)
    gear = rng.sample([p for p in ALL_PRODUCTS if p != prod], 3) + [prod]
    reasons = rng.sample(W["trip_gear"], 4)
    return [
        ("h1", trip["title"]),
        ("meta", f"By {author} · {long_date(date)} · {rng.randint(4, 8)} min read"),
        ("p", g.pick(W["trip_intro"], 3, frame)),
        ("h2", rng.choice(head["route"])),
        ("p", route[:3]),
        ("p", route[3:]),
        ("h2", rng.choice(head["camp"])),
        ("p", g.pick(W["trip_camp"], 3, frame)),
        ("h2", head["packed"]),
        ("ul", [f"{name}: {why}" for (name, _c, _p), why in zip(gear, reasons, strict=True)]),
        ("h2", head["practical"]),
        ("p", g.pick(W["trip_practical"], 3, frame)),
        ("p", g.pick(W["trip_end"], 2, frame)),
    ]


def tips_article(g: Gen, spec: dict, author: str, date: dt.date) -> list:
    rng = g.rng
    prod = rng.choice(ALL_PRODUCTS)
    frame = {"product": prod[0], "cat": prod[1]}
    blocks = [
        ("h1", spec["title"]),
        ("meta", f"By {author} · {long_date(date)} · {rng.randint(4, 7)} min read"),
        ("p", spec["intro"] + g.pick(W["howto_choose"], 1, frame)),
    ]
    generic = g.pick(W["howto_trail"] + W["howto_setup"], 5, frame)
    chosen = sorted(rng.sample(range(len(spec["tips"])), 5))
    for n, i in enumerate(chosen):
        tip = spec["tips"][i]
        blocks.append(("h2", f"{n + 1}. {tip['heading']}"))
        blocks.append(("p", list(tip["lines"]) + [generic[n]]))
    blocks.append(("h2", rng.choice(W["tips_headings"]["end"])))
    blocks.append(("p", g.pick(W["trip_practical"], 2, frame)))
    return blocks


def near_duplicate(
    g: Gen,
    blocks: list,
    pool: list[str],
    frame: dict,
    meta: str,
    edits: Sequence[Sequence[str]] = (),  # (old, new) pairs, each must match exactly once
    lo: float = 0.05,
    hi: float = 0.10,
) -> list:
    """Copy an article, change its meta line, apply edits, then swap sentences until lo <= changed <= hi."""
    out = copy.deepcopy(blocks)
    out = [("meta", meta) if kind == "meta" else (kind, val) for kind, val in out]
    for old, new in edits:
        hits = 0
        for _kind, val in out:
            if isinstance(val, list):
                for j, s in enumerate(val):
                    if old in s:
                        val[j] = s.replace(old, new)
                        hits += 1
        assert hits == 1, (old, hits)
    base = article_text(blocks)
    used = set(article_text(out).split("\n"))
    slots = [(i, j) for i, (kind, val) in enumerate(out) if kind == "p" for j in range(len(val))]
    candidates = g.rng.sample(pool, len(pool))
    for i, j in g.rng.sample(slots, len(slots)):
        if changed_fraction(base, article_text(out)) >= lo:
            break
        while candidates:
            new = cap(g.fill(candidates.pop(), frame))
            if new not in used:
                used.add(new)
                out[i][1][j] = new
                break
    frac = changed_fraction(base, article_text(out))
    assert lo <= frac <= hi, frac
    return out

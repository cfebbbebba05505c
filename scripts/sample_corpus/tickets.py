"""tickets.csv: support tickets from the per-label templates in data/tickets.json, plus the planted rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re

from . import plants
from .chats import chat_frame
from .common import (
    BASE_DATE,
    SEED,
    VOCAB,
    Gen,
    Novelty,
    cap,
    changed_fraction,
    jaccard,
    load_json,
    shingles,
    short_date,
    tidy,
    words,
)

T = load_json("tickets.json")


def ticket_frame(rng: random.Random) -> dict:
    f = chat_frame(rng)
    f.update(
        {
            "code": rng.choice(T["discount_codes"]),
            "last4": str(rng.randint(1000, 9999)),
            "version": f"4.{rng.randint(0, 3)}.{rng.randint(0, 4)}",
            "year": str(rng.randint(2016, 2023)),
            "place": rng.choice(VOCAB["places"]),
            "email": f["email"],
            "date": short_date(BASE_DATE + dt.timedelta(days=rng.randint(0, 300)), 0),
        }
    )
    return f


def make_ticket(g: Gen, label: str, multiline: bool) -> tuple[str, str]:
    rng = g.rng
    spec = T["labels"][label]
    f = ticket_frame(rng)
    subject, problem = rng.choice(spec["problem"])
    if rng.random() < 0.2:
        subject = rng.choice(spec["subject"])
    detail, request = rng.choice(spec["detail"]), rng.choice(spec["request"])
    if multiline:
        body = " ".join([problem, detail, request])
        text = "\n".join([rng.choice(T["multiline_greetings"]), tidy(g.fill(body, f)), "Thanks,", f["first"]])
    else:
        shape = rng.choice(
            [
                [problem],
                [problem, request],
                [problem, detail],
                [problem, detail, request],
                [problem, detail, request],
                [rng.choice(T["openers"]), problem, detail, request],
                [problem, request, rng.choice(T["signoffs"])],
                [problem, detail, rng.choice(T["signoffs"])],
            ]
        )
        text = tidy(g.fill(" ".join(shape), f))
    return cap(g.fill(subject, f)), text


def build_tickets(report: dict) -> dict[str, bytes]:
    """tickets.csv: novel tickets per label, with exact, near, empty and multi-line plants."""
    g = Gen(SEED + 4)
    rng = g.rng
    labels = [name for name, n in plants.TICKET_LABEL_COUNTS.items() for _ in range(n)]
    rng.shuffle(labels)
    multiline_at = set(rng.sample(range(len(labels)), plants.TICKET_N_MULTILINE))
    guard = Novelty(0.5)
    rows: list[dict] = []
    for i, label in enumerate(labels):
        for _attempt in range(500):
            subject, text = make_ticket(g, label, i in multiline_at)
            if guard.accept(text):
                break
        else:
            raise RuntimeError(f"could not make a novel ticket for row {i} ({label})")
        rows.append({"subject": subject, "text": text, "label": label, "plant": None})

    def eligible(i: int, min_words: int) -> bool:
        r = rows[i]
        return r["label"] != "product_info" and "\n" not in r["text"] and len(words(r["text"])) >= min_words

    plants_at: list[tuple[int, dict]] = []  # (insert after base index, row)
    for start in (10, 120, 230)[: plants.TICKET_N_EXACT]:
        i = next(j for j in range(start, len(rows)) if eligible(j, 8))
        rows[i]["plant"] = "exact_src"
        plants_at.append(
            (
                i + 37,
                {
                    "subject": "Re: " + rows[i]["subject"],
                    "text": rows[i]["text"],
                    "label": rows[i]["label"],
                    "plant": "exact_dup",
                },
            )
        )
    edits = [
        lambda t: re.sub(r"#NW-(\d)(\d{4})", lambda m: f"#NW-{(int(m.group(1)) + 1) % 10}{m.group(2)}", t, count=1),
        lambda t: t + " Any update would be appreciated.",
        lambda t: t.replace(" the ", " my ", 1) if " the " in t else t + " Thanks.",
    ]
    for start, edit in zip((40, 150, 260), edits[: plants.TICKET_N_NEAR], strict=True):
        i = next(
            j
            for j in range(start, len(rows))
            if eligible(j, 22) and rows[j]["plant"] is None and edit(rows[j]["text"]) != rows[j]["text"]
        )
        rows[i]["plant"] = "near_src"
        new = edit(rows[i]["text"])
        plants_at.append(
            (i + 23, {"subject": rows[i]["subject"], "text": new, "label": rows[i]["label"], "plant": "near_dup"})
        )
    plants_at.append((77, {"subject": "Charged twice", "text": "", "label": "billing", "plant": "empty"}))
    plants_at.append((201, {"subject": "App crash", "text": "", "label": "technical", "plant": "empty"}))
    final: list[dict] = []
    for i, r in enumerate(rows):
        final.append(r)
        final.extend(p for after, p in plants_at if after == i)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["ticket_id", "subject", "text", "label"])
    ids = {}
    for n, r in enumerate(final):
        tid = f"T-{1001 + n}"
        ids[id(r)] = tid
        w.writerow([tid, r["subject"], r["text"], r["label"]])
    info: dict[str, list] = {}
    for r in final:
        if r["plant"]:
            info.setdefault(r["plant"], []).append(ids[id(r)])
    near_pairs = []
    srcs = [r for r in final if r["plant"] == "near_src"]
    dups = [r for r in final if r["plant"] == "near_dup"]
    for s in srcs:
        d = next(d for d in dups if d["label"] == s["label"] and changed_fraction(s["text"], d["text"]) < 0.3)
        near_pairs.append((ids[id(d)], ids[id(s)], round(jaccard(shingles(s["text"]), shingles(d["text"])), 3)))
    info["near_pairs"] = near_pairs
    report["tickets"] = info
    return {"tickets.csv": buf.getvalue().encode("utf-8")}

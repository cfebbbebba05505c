"""support_chats.jsonl: conversations from the intent templates in data/chats.json, plus the planted lines."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import re

from . import plants
from .common import (
    ALL_PRODUCTS,
    BASE_DATE,
    SEED,
    VOCAB,
    WEIGHTS,
    Gen,
    Novelty,
    changed_fraction,
    jaccard,
    load_json,
    shingles,
    short_date,
    tidy,
)

C = load_json("chats.json")


def person(rng: random.Random) -> tuple[str, str, str]:
    first, last = rng.choice(VOCAB["first_names"]), rng.choice(VOCAB["last_names"])
    n = rng.randint(2, 98)
    email = rng.choice(
        [
            f"{first}.{last}@example.com",
            f"{first[0]}{last}{n}@example.net",
            f"{first}{n}@example.org",
            f"{last}.{first}@mail.example",
        ]
    ).lower()
    return first, last, email


def chat_frame(rng: random.Random, products: str | None = None) -> dict:
    """Entities for one conversation or ticket; ``products`` may name a vocab product pool, or "pairs"."""
    first, last, email = person(rng)
    prices = {n: pr for n, _c, pr in ALL_PRODUCTS}
    if products == "pairs":
        name, other_name = rng.choice(VOCAB["product_pairs"])
    else:
        name = rng.choice(VOCAB["product_pools"][products] if products else [n for n, _c, _p in ALL_PRODUCTS])
        other_name = rng.choice([n for n, _c, _p in ALL_PRODUCTS if n != name])
    price = prices[name]
    d = BASE_DATE + dt.timedelta(days=rng.randint(0, 300))
    d2 = d + dt.timedelta(days=rng.randint(3, 12))
    style = rng.randint(0, 1)
    p2 = float(price[1:]) * rng.choice([0.75, 0.8, 0.85])
    return {
        "first": first,
        "email": email,
        "email2": f"{first}.{last}@work.example".lower(),
        "order": f"#NW-{rng.randint(10000, 99999)}",
        "tracking": f"NW{rng.randint(10**9, 10**10 - 1)}",
        "rma": f"RMA-{rng.randint(20000, 29999)}",
        "product": name,
        "product2": other_name,
        "price": price,
        "price2": f"${p2:.2f}",
        "fee": rng.choice(C["fees"]),
        "date": short_date(d, style),
        "date2": short_date(d2, style),
        "days": str(rng.randint(3, 12)),
        "city": rng.choice(VOCAB["cities"]),
        "country": rng.choice(VOCAB["countries"]),
        "store_name": rng.choice(VOCAB["store_names"]),
        "points": str(rng.randint(12, 90) * 10),
        "size": rng.choice(VOCAB["sizes"]),
        "color": rng.choice(VOCAB["colors"]),
        "weight": WEIGHTS[name],
        "temp": rng.choice(C["temps"]),
        "otherbrand": rng.choice(VOCAB["other_brands"]),
        "months": str(rng.randint(3, 20)),
        "season": rng.choice(C["seasons"]),
    }


def make_chat(g: Gen, intent: str, exchanges: int) -> list[dict]:
    rng = g.rng
    spec = C["intents"][intent]
    branch = rng.choice(spec["open"])
    frame = chat_frame(rng, branch.get("products"))
    msgs = []
    if rng.random() < 0.35:
        msgs.append({"role": "system", "content": rng.choice(C["system_prompts"])})
    parts = [rng.choice(C["greetings"])] + [rng.choice(p) for p in branch["user"]] + [rng.choice(C["signoffs"])]
    user = tidy(g.fill(" ".join(parts), frame))
    if rng.random() < 0.12:  # casual typing
        user = user[0].lower() + user[1:].rstrip(".")
    ack = rng.choice(spec["ack"]) if rng.random() < 0.8 else ""
    asst = tidy(g.fill(" ".join([ack] + [rng.choice(p) for p in branch["assistant"]]), frame))
    msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": asst}]
    follows = rng.sample(spec["follow"], 2)
    for n in range(1, exchanges):
        if n == 2 and rng.random() < 0.6:
            u, a = rng.choice(C["close_user"]), rng.choice(C["close_assistant"])
        else:
            u, a = rng.choice(follows[n - 1]["user"]), rng.choice(follows[n - 1]["assistant"])
        msgs += [
            {"role": "user", "content": tidy(g.fill(u, frame))},
            {"role": "assistant", "content": tidy(g.fill(a, frame))},
        ]
    return msgs


def chat_text(msgs: list[dict]) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in msgs)


def chat_line(cid: str, label: str, msgs: list[dict]) -> str:
    return json.dumps({"conversation_id": cid, "label": label, "messages": msgs}, ensure_ascii=False)


def near_copy_chat(msgs: list[dict]) -> list[dict]:
    """The same conversation with a new greeting and one extra closing sentence."""
    out = copy.deepcopy(msgs)
    users = [m for m in out if m["role"] == "user"]
    first = users[0]["content"]
    greeting = re.match(r"^(Hi there,|Hi team,|Good morning,|Good afternoon,|Hello,|Hey,|Hi,)\s*", first)
    rest = first[greeting.end() :] if greeting else first
    users[0]["content"] = "Hello again, " + rest[0].lower() + rest[1:]
    last = [m for m in out if m["role"] == "assistant"][-1]
    last["content"] = last["content"] + " Have a good weekend!"
    return out


def build_chats(report: dict) -> dict[str, bytes]:
    """support_chats.jsonl: distinct conversations with exact, near, malformed, blank and no-messages lines."""
    g = Gen(SEED + 3)
    rng = g.rng
    intents = [name for name, n in plants.CHAT_INTENT_COUNTS.items() for _ in range(n)]
    assert len(intents) == plants.CHAT_BASE
    rng.shuffle(intents)
    guard = Novelty(0.4)
    convs: dict[str, tuple[str, list[dict]]] = {}
    forced_long = set(plants.CHAT_NEAR_DUPS.values())
    for i, intent in enumerate(intents):
        cid = f"c{i + 1:04d}"
        for _attempt in range(200):
            k = 3 if cid in forced_long else rng.choice([1, 1, 2, 2, 2, 3, 3])
            msgs = make_chat(g, intent, k)
            if guard.accept(chat_text(msgs)):
                break
        else:
            raise RuntimeError(f"could not make a novel conversation for {cid}")
        convs[cid] = (intent, msgs)
    lines_after: dict[str, list[str]] = {}
    for src, after in plants.CHAT_EXACT_DUPS.items():
        lines_after.setdefault(after, []).append(chat_line(src, *convs[src]))
    for new, src in plants.CHAT_NEAR_DUPS.items():
        intent, msgs = convs[src]
        near = near_copy_chat(msgs)
        lines_after.setdefault(plants.CHAT_NEAR_AFTER[new], []).append(chat_line(new, intent, near))
        report.setdefault("near", {})[f"support_chats.jsonl:{new}"] = (
            src,
            round(changed_fraction(chat_text(msgs), chat_text(near)), 3),
            round(jaccard(shingles(chat_text(msgs)), shingles(chat_text(near))), 3),
        )
    broken = chat_line("c0103", "shipping", make_chat(g, "shipping", 2))
    lines_after.setdefault(plants.CHAT_MALFORMED_AFTER, []).append(broken[: int(len(broken) * 0.6)])
    lines_after.setdefault(plants.CHAT_BLANK_AFTER, []).append("")
    lines_after.setdefault(plants.CHAT_NO_MESSAGES_AFTER, []).append(plants.CHAT_NO_MESSAGES_LINE)
    lines = []
    for cid, (intent, msgs) in convs.items():
        lines.append(chat_line(cid, intent, msgs))
        lines.extend(lines_after.get(cid, []))
    found = {}
    for n, line in enumerate(lines, start=1):
        if line == "":
            found["blank"] = n
        elif line == plants.CHAT_NO_MESSAGES_LINE:
            found["no_messages"] = n
        elif not line.endswith("}"):
            found["malformed"] = n
        elif lines.index(line) != n - 1:
            found.setdefault("exact_dup", []).append(n)
        elif '"c0101"' in line[:40] or '"c0102"' in line[:40]:
            found.setdefault("near_dup", []).append(n)
    report["chat_lines"] = found
    report["chat_texts"] = {cid: chat_text(m) for cid, (_i, m) in convs.items()}
    return {"support_chats.jsonl": ("\n".join(lines) + "\n").encode("utf-8")}

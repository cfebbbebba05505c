"""Shared pieces: data-file loading, the shared vocabulary, text helpers and the seeded template filler."""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import json
import random
import re
from pathlib import Path
from typing import Any

SEED = 1729
SITE = "https://www.northwind-trail.example"
BASE_DATE = dt.date(2024, 1, 8)
DATA = Path(__file__).resolve().parent / "data"


@functools.cache
def load_json(name: str) -> Any:
    """One JSON table file from data/ (cached: callers must not mutate what they get)."""
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@functools.cache
def load_text(name: str) -> str:
    """One text file (template, stylesheet, article) from data/."""
    return (DATA / name).read_text(encoding="utf-8")


VOCAB = load_json("vocab.json")
GRAMMAR: dict[str, list[str]] = VOCAB["grammar"]
PRODUCTS: list[dict] = VOCAB["products"]  # the eight with owner's guides
# (name, category, price) tuples: code compares them, so they must not be lists
ALL_PRODUCTS = [(p["name"], p["cat"], p["price"]) for p in PRODUCTS + VOCAB["extra_products"]]
WEIGHTS = {p["name"]: p["weight"] for p in PRODUCTS + VOCAB["extra_products"]}
MONTHS: list[str] = VOCAB["months"]

_SLOT = re.compile(r"\{(\w+)\}")
_WORD = re.compile(r"[a-z0-9]+")


def cap(s: str) -> str:
    s = s.strip()
    return s[:1].upper() + s[1:]


def tidy(s: str) -> str:
    """Collapse spaces and capitalize sentence starts (used for chat and ticket text)."""
    s = re.sub(r"[ \t]+", " ", s).strip()
    s = re.sub(r"([.!?] )([a-z])", lambda m: m.group(1) + m.group(2).upper(), s)
    return cap(s)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def shingles(text: str, n: int = 3) -> set[str]:
    w = words(text)
    if len(w) < n:
        return {" ".join(w)} if w else set()
    return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if (a or b) else 1.0


def changed_fraction(a: str, b: str) -> float:
    """Share of words that differ between two texts (1 - difflib ratio over word lists)."""
    return 1.0 - difflib.SequenceMatcher(a=words(a), b=words(b), autojunk=False).ratio()


def long_date(d: dt.date) -> str:
    return f"{MONTHS[d.month - 1]} {d.day}, {d.year}"


def short_date(d: dt.date, style: int) -> str:
    if style == 0:
        return f"{MONTHS[d.month - 1]} {d.day}"
    if style == 1:
        return long_date(d)
    if style == 2:
        return d.isoformat()
    return f"{d.month}/{d.day}"


class Gen:
    """A seeded random source plus a tiny recursive template filler."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def fill(self, template: str, frame: dict | None = None) -> str:
        frame = frame or {}

        def sub(m: re.Match) -> str:
            key = m.group(1)
            if key in frame:
                val = frame[key]
            elif key in GRAMMAR:
                val = GRAMMAR[key]
            else:
                raise KeyError(f"unknown slot {key!r} in {template!r}")
            if isinstance(val, list | tuple):
                val = self.rng.choice(val)
            return self.fill(str(val), frame)

        return _SLOT.sub(sub, template)

    def pick(self, pool: list[str], k: int, frame: dict | None = None) -> list[str]:
        """k distinct templates from pool, in random order, filled and capitalized."""
        return [cap(self.fill(t, frame)) for t in self.rng.sample(pool, k)]

    def date(self, lo: int = 0, hi: int = 300) -> dt.date:
        return BASE_DATE + dt.timedelta(days=self.rng.randint(lo, hi))


class Novelty:
    """Rejects texts too similar (word 3-gram Jaccard) to anything accepted before."""

    def __init__(self, limit: float):
        self.limit = limit
        self.seen: list[set[str]] = []

    def accept(self, text: str) -> bool:
        sh = shingles(text)
        if any(jaccard(sh, s) >= self.limit for s in self.seen):
            return False
        self.seen.append(sh)
        return True

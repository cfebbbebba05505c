"""Readers for the real public data in ``../shared/data`` (attribution in bench/README.md#data).

Each reader skips the benchmark (``bench.common.skip``) with a clear message when its files are absent,
as they are on a fresh clone.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from bench.common import DATA, require_data

BANKING77 = "banking77"
BITEXT = "bitext_customer_support"
TASKMASTER = "taskmaster4_coffee"
TRAFILATURA = "trafilatura_eval_en"
ROLES = {"user": "user", "assistant": "assistant"}  # Taskmaster-4's speakers are already user/assistant


@dataclass(frozen=True)
class Labeled:
    text: str
    label: str


@dataclass(frozen=True)
class Exchange:
    """A Bitext pair: a customer's request and the agent's reply."""

    instruction: str
    response: str
    label: str

    @property
    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.instruction}, {"role": "assistant", "content": self.response}]


@dataclass(frozen=True)
class Dialogue:
    id: str
    messages: list[dict[str, str]]
    label: str


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def banking77(data: Path = DATA, splits: tuple[str, ...] = ("train", "test")) -> list[Labeled]:
    """Banking77 customer queries with their intent (PolyAI, CC-BY-4.0)."""
    paths = [data / BANKING77 / f"{s}.csv" for s in splits]
    require_data(*paths)
    return [Labeled(r["text"], r["category"]) for p in paths for r in _csv_rows(p)]


def bitext(data: Path = DATA) -> list[Exchange]:
    """Bitext customer-support instruction/response pairs with their intent (CDLA-Sharing-1.0)."""
    path = data / BITEXT / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    require_data(path)
    return [Exchange(r["instruction"], r["response"], r["intent"]) for r in _csv_rows(path)]


def taskmaster(data: Path = DATA) -> list[Dialogue]:
    """Taskmaster-4 coffee-order dialogues, turns as chat messages (Google, CC-BY-4.0)."""
    path = data / TASKMASTER / "data_07.json"
    require_data(path)
    out = []
    for d in json.loads(path.read_text(encoding="utf-8")):
        msgs = [{"role": ROLES.get(u["speaker"], u["speaker"]), "content": u["text"]} for u in d["utterances"]]
        out.append(Dialogue(d["conversation_id"], msgs, (d.get("vertical") or "coffee").lower()))
    return out


def trafilatura_pages(data: Path = DATA) -> list[Path]:
    """The 134 English pages of trafilatura's evaluation set (annotations Apache-2.0; pages their publishers')."""
    folder = data / TRAFILATURA / "html"
    require_data(folder)
    return sorted(p for p in folder.iterdir() if p.suffix in (".html", ".htm"))


def joined(messages: list[dict[str, str]]) -> str:
    """A conversation as one plain document, one ``Role: text`` line per turn (for text-only tools)."""
    return "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)

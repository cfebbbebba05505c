"""Small record builders and checks shared by the stage tests."""

import random

import polars as pl

from tuneprep.records import SCHEMA, make_records


def words(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 8))) for _ in range(n)]


def text_rows(texts: list[str], prefix: str = "d") -> pl.DataFrame:
    return make_records({"id": f"{prefix}{i}", "source": "t", "format": "text", "text": t} for i, t in enumerate(texts))


def chat(rid: str, *turns: tuple[str, str]) -> dict:
    return {"id": rid, "source": "t", "format": "chat", "messages": [{"role": r, "content": c} for r, c in turns]}


def assert_balanced(batch: pl.DataFrame, out) -> None:
    """Every input row comes out exactly once, kept or dropped with stage/reason/detail."""
    assert out.kept.height + out.dropped.height == batch.height
    assert set(SCHEMA) <= set(out.kept.columns)
    assert {"stage", "reason", "detail"} <= set(out.dropped.columns)
    assert sorted(out.kept["id"].to_list() + out.dropped["id"].to_list()) == sorted(batch["id"].to_list())


def near_dup_corpus() -> tuple[list[str], list[str]]:
    """Documents and the expected fate of each (kept / dropped as near dup of d0)."""
    base = words(10, 200)
    edited = base.copy()
    edited[60:70] = words(11, 10)  # one rewritten sentence: 5% of words
    half = base.copy()
    for i in range(0, 200, 2):
        half[i] = words(12 + i, 1)[0]  # 50% of words changed
    texts = [" ".join(base), " ".join(words(13, 200)), " ".join(edited), " ".join(half), " ".join(base).upper()]
    fate = ["kept", "kept", "dropped", "kept", "dropped"]
    return texts, fate

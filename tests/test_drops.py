"""Data drops: versions of the corpus in a store, a ledger by content hash, ``latest`` swapped on completion.

Runs the tuneprep-drops flow under Prefect's test harness on files copied from sample_data/: a first
drop with bad files, a second one deduplicated against the first with earlier splits kept and the
fine-tune continued from the first model, the same files again (nothing added), and a drop that fails
midway (nothing applied) and is then retried to completion from where it failed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from flows.store import CorpusStore

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
pytestmark = pytest.mark.slow


def drops_config(tmp_path: Path, **finetune):
    from flows.config import PipelineConfig

    return PipelineConfig.model_validate(
        {
            "name": "drops",
            "batch_size": 64,
            "augment": {"enabled": False},
            "finetune": {"max_steps": 4, "eval_every": 0, "batch_size": 8, "generate_n": 0, **finetune},
            "drops": {"inbox": [str(tmp_path / "inbox")], "store": str(tmp_path / "store"), "min_age_s": 0},
        }
    )


def deliver(inbox: Path, name: str, *files: Path) -> None:
    folder = inbox / name
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(f, folder / f.name)


async def accepted_events() -> list:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter

    async with get_client() as client:
        for _ in range(40):  # the server writes events in batches every few seconds
            page = await client.read_events(
                filter=EventFilter(event=EventNameFilter(name=["tuneprep.drop.accepted"])), limit=50
            )
            if len(page.events) >= 2:
                return page.events
            await asyncio.sleep(0.5)
        return page.events


def test_drops_grow_the_corpus_one_version_at_a_time(prefect_harness, tmp_path):
    from flows.drops import drops_flow

    cfg = drops_config(tmp_path)
    inbox, store = tmp_path / "inbox", CorpusStore(tmp_path / "store")
    docs = sorted((SAMPLE / "docs").glob("*.txt"))  # bad_bytes.txt and empty.txt among them
    deliver(inbox, "monday", SAMPLE / "tickets.csv", *docs)

    first = drops_flow(config=cfg)
    assert first["status"] == "accepted" and first["version"] == "v0001"
    v1 = store.latest()
    assert v1 == store.versions / "v0001" and (v1 / "model" / "metrics.json").exists()
    ledger = [json.loads(line) for line in store.ledger_path.read_text().splitlines()]
    assert len(ledger) == 1 + len(docs)
    bad = {e["relative"].split("/")[-1]: e for e in ledger if e["status"] == "quarantined"}
    assert set(bad) == {"bad_bytes.txt", "empty.txt"} and bad["bad_bytes.txt"]["reason"] == "invalid_utf8"
    assert first["files_quarantined"] == 2 and first["records_read"] > 300

    # A second drop: new files, and one old file again under another name.
    deliver(inbox, "tuesday", SAMPLE / "support_chats.jsonl", *sorted((SAMPLE / "web").glob("help-*.html")))
    shutil.copy(SAMPLE / "tickets.csv", inbox / "tuesday" / "tickets-resent.csv")
    second = drops_flow(config=cfg)
    assert second["version"] == "v0002" and store.latest().name == "v0002"
    v2 = store.latest()
    drop2 = json.loads((v2 / "drop.json").read_text())
    assert "tickets-resent.csv" not in {Path(f["relative"]).name for f in drop2["files"]}  # same content: seen
    index = [
        next(s for s in json.loads((v / "manifest.json").read_text())["stages"] if s["name"] == "exact_dedup")
        for v in (v1, v2)
    ]
    assert index[1]["extra"]["index_size"] == index[0]["extra"]["index_size"] + index[1]["kept"]  # v1's + the new
    groups1, groups2 = (pl.read_parquet(v / "splits.parquet") for v in (v1, v2))
    kept = groups1.join(groups2, on="group", suffix="_2")
    assert kept.height == groups1.height and (kept["split"] == kept["split_2"]).all()  # no earlier group moved
    assert groups2.height > groups1.height
    tok1, tok2 = (json.loads((v / "manifest.json").read_text())["tokenizer"] for v in (v1, v2))
    assert tok1["vocab_size"] == tok2["vocab_size"]
    training2 = json.loads((v2 / "model" / "training.json").read_text())
    assert training2["model"]["source"] == str(v1 / "model")  # continued from the last fine-tuned model

    # The same drop delivered again adds nothing.
    deliver(inbox, "monday-again", SAMPLE / "tickets.csv", *docs)
    again = drops_flow(config=cfg)
    assert again["status"] == "nothing new" and store.latest().name == "v0002"
    assert not (store.versions / "v0003").exists()

    events = asyncio.run(accepted_events())
    mine = [e for e in events if e.payload.get("store") == str(store.root.resolve())]
    payloads = sorted((e.payload for e in mine), key=lambda p: p["version"])
    assert [p["version"] for p in payloads] == ["v0001", "v0002"]
    assert payloads[1]["files"] == len(drop2["files"]) and payloads[1]["rows"]["train"] > 0
    assert all(e.resource.id.startswith("tuneprep.drop.") for e in mine)


def test_a_failed_drop_is_never_half_applied_and_resumes(prefect_harness, tmp_path, monkeypatch):
    from flows import steps
    from flows.drops import drops_flow

    cfg = drops_config(tmp_path)
    cfg = cfg.model_copy(update={"drops": cfg.drops.model_copy(update={"finetune": False})})
    inbox, store = tmp_path / "inbox", CorpusStore(tmp_path / "store")
    deliver(inbox, "d1", SAMPLE / "tickets.csv")

    def broken(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setitem(steps.STEPS, "decontaminate", broken)
    with pytest.raises(OSError, match="disk full"):
        drops_flow(config=cfg)
    assert store.latest() is None and not store.ledger_entries()
    assert not store.ledger_path.exists() or store.ledger_path.read_text() == ""
    assert json.loads((store.versions / "v0001" / "drop.json").read_text())["status"] == "pending"

    monkeypatch.undo()
    result = drops_flow(config=cfg)
    assert result["status"] == "accepted" and store.latest().name == "v0001"
    redo = json.loads((store.latest() / ".done" / "run.json").read_text())
    assert [s for s, r in redo.items() if r["status"] == "reused"] == ["load", "clean", "dedup", "split"]
    assert len(store.ledger_entries()) == 1
    assert json.loads((store.latest() / "drop.json").read_text())["attempts"] == 2

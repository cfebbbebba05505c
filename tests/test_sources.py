import gzip
import json

import pytest

from tuneprep.config import LoadConfig
from tuneprep.sources import LoadError, LoadStats, iter_record_batches


def load(paths, **cfg):
    stats = LoadStats()
    records, bad = [], []
    for batch, q in iter_record_batches([str(p) for p in paths], LoadConfig(**cfg), batch_size=3, stats=stats):
        records.extend(batch.to_dicts())
        bad.extend(q)
    return records, bad, stats


def test_every_format_is_read_and_accounted(tmp_path):
    d = tmp_path / "data"
    (d / "web").mkdir(parents=True)
    (d / "a.txt").write_text("Plain text document.")
    (d / "b.md").write_text("# Title\n\nMarkdown body.")
    (d / "web" / "c.html").write_text("<html><body><p>Hello</p></body></html>")
    (d / "web" / "d.htm.gz").write_bytes(gzip.compress(b"<p>zipped</p>", mtime=0))
    (d / "e.jsonl").write_text(
        json.dumps(
            {
                "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                "label": "greet",
            }
        )
        + "\n"
        + json.dumps({"text": "a jsonl doc", "category": "misc"})
        + "\n"
    )
    (d / "f.csv").write_text('text,label\n"multi\nline, with comma",billing\nsecond,shipping\n')
    (d / "ignored.bin").write_bytes(b"\x00\x01")
    records, bad, stats = load([d])
    assert bad == []
    assert stats.read == stats.kept == len(records) == 8
    by_fmt = {}
    for r in records:
        by_fmt.setdefault(r["format"], []).append(r)
    assert len(by_fmt["html"]) == 2 and len(by_fmt["chat"]) == 1 and len(by_fmt["text"]) == 5
    chat = by_fmt["chat"][0]
    assert chat["messages"][1] == {"role": "assistant", "content": "hello"} and chat["label"] == "greet"
    csv_rows = [r for r in records if r["source"] == "data/f.csv"]
    assert csv_rows[0]["text"] == "multi\nline, with comma" and csv_rows[0]["label"] == "billing"
    assert any(r["text"] == "<p>zipped</p>" for r in records)
    assert {r["source"] for r in records} >= {"data/a.txt", "data/web/c.html", "data/e.jsonl"}


def test_bad_inputs_are_quarantined_with_reasons(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (tmp_path / "chats.jsonl").write_text(
        '{"messages": [{"role": "user", "content": "ok"}]}\n{"messages": [{"role": "user"\n\n{"label": "x"}\n'
        '{"messages": [{"role": "robot", "content": "?"}]}\n[1, 2]\n'
    )
    (tmp_path / "t.csv").write_text("text,label\n,billing\nfine text,billing\n")
    records, bad, stats = load([tmp_path])
    reasons = sorted(q.reason for q in bad)
    assert reasons == sorted(
        [
            "empty_file",
            "invalid_utf8",
            "malformed_json",
            "blank_line",
            "bad_record",
            "bad_record",
            "bad_record",
            "empty_text",
        ]
    )
    assert stats.read == stats.kept + stats.quarantined == len(records) + len(bad)
    assert len(records) == 2
    latin = next(q for q in bad if q.reason == "invalid_utf8")
    assert "\\xe9" in latin.raw
    assert next(q for q in bad if q.reason == "malformed_json").locator == "line 2"


def test_ids_are_content_derived_stable_and_unique(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "same"}\n{"text": "same"}\n{"text": "other"}\n')
    first, _, _ = load([tmp_path])
    again, _, _ = load([tmp_path])
    ids = [r["id"] for r in first]
    assert ids == [r["id"] for r in again]
    assert len(set(ids)) == 3


def test_replace_mode_keeps_undecodable_files(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    records, bad, _ = load([tmp_path], on_decode_error="replace")
    assert not bad and records[0]["text"] == "caf\ufffd au lait"


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(LoadError, match="input not found"):
        load([tmp_path / "nope"])


def test_saved_datasets_dataset(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"text": ["one doc here", "two doc here"], "label": ["a", "b"]}).save_to_disk(
        str(tmp_path / "ds")
    )
    records, bad, _ = load([tmp_path / "ds"])
    assert [r["text"] for r in records] == ["one doc here", "two doc here"] and not bad

import gzip
import json

import pytest

from ingest.config import LoadConfig
from ingest.sources import LoadError, LoadStats, iter_record_batches


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


def test_gz_json_and_nested_globs(tmp_path, monkeypatch):
    d = tmp_path / "data"
    (d / "deep" / "er").mkdir(parents=True)
    (d / ".hidden").mkdir()
    (d / ".hidden" / "x.txt").write_text("skipped: hidden folder")
    lines = [json.dumps({"text": "zipped line one"}), json.dumps({"text": "zipped line two", "label": "z"})]
    (d / "deep" / "a.jsonl.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    (d / "deep" / "er" / "arr.json").write_text(json.dumps([{"text": "array item"}, {"body": "second"}, 7, {}]))
    (d / "deep" / "er" / "obj.JSON").write_text(json.dumps({"meta": 1, "records": [{"content": "under a key"}]}))
    (d / "deep" / "custom.json").write_text(json.dumps({"payload": [{"text": "custom key"}]}))
    (d / "one.json").write_text(json.dumps({"text": "a single object", "label": "solo"}))
    (d / "broken.json").write_text('[{"text": "no end"')
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"text": ["inside a folder"]}).save_to_disk(str(d / "deep" / "saved"))

    records, bad, stats = load([d], json_list_keys=["records", "payload"])
    assert stats.read == stats.kept + stats.quarantined == len(records) + len(bad)
    texts = {r["text"] for r in records}
    assert texts == {
        "zipped line one",
        "zipped line two",
        "array item",
        "second",
        "under a key",
        "custom key",
        "a single object",
        "inside a folder",
    }
    assert sorted((q.source, q.locator, q.reason) for q in bad) == [
        ("data/broken.json", "line 1", "malformed_json"),
        ("data/deep/er/arr.json", "item 2", "bad_record"),
        ("data/deep/er/arr.json", "item 3", "bad_record"),
    ]
    assert stats.files == 7  # the saved dataset counts once; its own json files are not read as data

    monkeypatch.chdir(tmp_path)
    rel, _, rel_stats = load(["data/**/*.json"])
    absolute, _, _ = load([str(d / "**" / "*.json")])
    assert {r["source"] for r in rel} == {r["source"] for r in absolute} >= {"data/deep/er/arr.json", "data/one.json"}
    assert [r["id"] for r in rel] == [r["id"] for r in absolute]
    assert rel_stats.read == rel_stats.kept + rel_stats.quarantined
    both, _, _ = load(["data/deep/*.gz", "data/deep"])  # a file named twice is read once
    assert sum(r["text"].startswith("zipped") for r in both) == 2
    with pytest.raises(LoadError, match="matches no file"):
        load(["data/*.nothing"])


def test_parquet_and_oversized_gzip(tmp_path):
    import polars as pl

    pl.DataFrame({"document": ["p one", "p two", ""], "intent": ["x", None, "y"]}).write_parquet(tmp_path / "t.parquet")
    (tmp_path / "bomb.txt.gz").write_bytes(gzip.compress(b"a" * 5000, mtime=0))
    records, bad, stats = load([tmp_path], max_file_bytes=1000)
    assert [(r["text"], r["label"]) for r in records] == [("p one", "x"), ("p two", None)]
    assert sorted(q.reason for q in bad) == ["empty_text", "too_large"]
    assert "max_file_bytes" in next(q for q in bad if q.reason == "too_large").detail
    assert stats.read == stats.kept + stats.quarantined == 4


def test_column_mapping_and_role_aliases(tmp_path):
    rows = [
        {
            "dialog": [
                {"speaker": "Customer", "utterance": "my order is late"},
                {"speaker": "agent", "utterance": "sorry, checking"},
            ],
            "topic": "shipping",
        },
        {"dialog": [{"speaker": "human", "utterance": "hi"}, {"speaker": "gpt", "utterance": "hello"}]},
        {"dialog": [{"speaker": "narrator", "utterance": "?"}]},
        {"dialog": [{"speaker": "user"}]},
        {"body_text": "plain row", "topic": "misc"},
    ]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {
        "text_fields": ["body_text"],
        "label_fields": ["topic"],
        "messages_fields": ["dialog"],
        "role_fields": ["speaker"],
        "content_fields": ["utterance"],
    }
    records, bad, stats = load([tmp_path], **cfg)
    assert stats.read == stats.kept + stats.quarantined == 5
    chats = [r for r in records if r["format"] == "chat"]
    assert chats[0]["messages"] == [
        {"role": "user", "content": "my order is late"},
        {"role": "assistant", "content": "sorry, checking"},
    ]
    assert chats[0]["label"] == "shipping" and [m["role"] for m in chats[1]["messages"]] == ["user", "assistant"]
    assert next(r for r in records if r["format"] == "text")["text"] == "plain row"
    assert sorted(q.locator for q in bad) == ["line 3", "line 4"] and {q.reason for q in bad} == {"bad_record"}
    assert "role_aliases" in next(q for q in bad if q.locator == "line 3").detail

    records, bad, _ = load([tmp_path], **cfg, role_aliases={"Narrator": "system"})
    assert [q.locator for q in bad] == ["line 1", "line 2", "line 4"]  # the defaults are replaced, not extended
    records, bad, _ = load(
        [tmp_path], **cfg, role_aliases={"narrator": "system", "customer": "user", "agent": "assistant"}
    )
    assert [q.locator for q in bad] == ["line 2", "line 4"]
    with pytest.raises(ValueError, match="role_aliases"):
        LoadConfig(role_aliases={"bot": "robot"})


def test_hub_dataset_from_a_local_folder(tmp_path):
    import polars as pl

    folder = tmp_path / "hubds"
    folder.mkdir()
    pl.DataFrame({"text": ["first hub row", "second hub row"], "label": ["a", "b"]}).write_parquet(
        folder / "train.parquet"
    )
    pl.DataFrame({"text": ["held out row"], "label": ["a"]}).write_parquet(folder / "test.parquet")
    cache = str(tmp_path / "cache")
    records, bad, stats = load([f"hf://{folder}", f"hf://{folder}@train"], hub_cache_dir=cache)
    assert not bad and stats.files == 2 and stats.read == stats.kept == 5
    assert [r["text"] for r in records if r["source"] == f"hf://{folder}@train"] == ["first hub row", "second hub row"]
    assert {r["source"] for r in records} >= {f"hf://{folder}[train]", f"hf://{folder}[test]"}


def test_hub_input_syntax():
    from ingest.sources import parse_hub_input, url_inputs

    h = parse_hub_input("hf://owner/name:cfg@train[:10%]#v1.0")
    assert (h.name, h.config, h.split, h.revision) == ("owner/name", "cfg", "train[:10%]", "v1.0")
    assert parse_hub_input("hf://imdb").config is None
    with pytest.raises(LoadError, match="expected hf://NAME"):
        parse_hub_input("hf://datasets/owner/name")
    assert url_inputs(["a/b", "hf://x", "https://e.org/p", "ftp://e.org/f"]) == ["https://e.org/p", "ftp://e.org/f"]


def test_unreachable_hub_is_one_clear_load_error(tmp_path, monkeypatch):
    import datasets
    import huggingface_hub.constants

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # both read the variable once, at import
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    (tmp_path / "a.txt").write_text("never read: the hub is checked first")
    with pytest.raises(LoadError) as err:
        load([tmp_path / "a.txt", "hf://tuneprep-no-such-owner/no-such-dataset"], hub_cache_dir=str(tmp_path / "c"))
    msg = str(err.value)
    assert "\n" not in msg and "'tuneprep-no-such-owner/no-such-dataset'" in msg
    assert "unreachable" in msg and "HF_DATASETS_OFFLINE" in msg


def test_instruction_response_pairs_become_two_turn_chats(tmp_path):
    (tmp_path / "pairs.csv").write_text(
        'instruction,response,category\n"Cancel my order {{Order Number}}","I can help.\nFirst, sign in.",cancel\n'
        "Track it,,track\n"
    )
    records, bad, stats = load([tmp_path])
    assert stats.read == stats.kept + stats.quarantined == 2
    (chat,) = records
    assert chat["format"] == "chat" and chat["label"] == "cancel"
    assert chat["messages"] == [
        {"role": "user", "content": "Cancel my order {{Order Number}}"},
        {"role": "assistant", "content": "I can help.\nFirst, sign in."},
    ]
    assert bad[0].reason == "bad_record"


def test_jsonl_and_csv_stream_past_the_document_size_cap_and_bad_bytes_cost_one_line(tmp_path):
    lines = [json.dumps({"text": f"document number {i} " + "word " * 20}) for i in range(200)]
    raw = ("\n".join(lines[:100]) + "\n").encode() + b'{"text": "caf\xe9"}\n' + ("\n".join(lines[100:]) + "\n").encode()
    (tmp_path / "big.jsonl").write_bytes(raw)
    (tmp_path / "big.csv").write_text("text,label\n" + "".join(f'"row {i}, quoted",x\n' for i in range(300)))
    records, bad, stats = load([tmp_path], max_file_bytes=1000)
    assert len(records) == 500 and stats.read == 501
    assert [(q.reason, q.locator) for q in bad] == [("invalid_utf8", "line 101")]

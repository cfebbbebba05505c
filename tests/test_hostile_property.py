"""Property-based: whatever bytes, nesting or damage the loader is fed, it finishes and accounts for every line.

Each example writes files into a fresh folder and loads it; the properties:

- loading never raises (a missing input aside) and ``read == kept + quarantined``;
- in a JSONL or CSV file every physical line belongs to exactly one unit (a record, a quarantine entry, the
  CSV header), and for JSONL ``records + quarantined == lines``;
- records are valid Unicode with no NUL, and every undamaged JSONL line is kept with its text;
- undamaged CSV rows before the first damaged one are kept exactly.
"""

import json
import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.config import LoadConfig
from ingest.sources import LoadStats, iter_record_batches

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXTENSIONS = [".txt", ".md", ".html", ".jsonl", ".json", ".csv", ".txt.gz", ".jsonl.gz", ".csv.gz", ".parquet"]
WORDS = st.text(alphabet=string.ascii_letters + " ,.'\"\n\té€", min_size=1, max_size=40)


def load(folder: Path, **cfg):
    stats = LoadStats()
    records, bad = [], []
    for batch, q in iter_record_batches([str(folder)], LoadConfig(**cfg), batch_size=5, stats=stats):
        records.extend(batch.to_dicts())
        bad.extend(q)
    assert stats.read == stats.kept + stats.quarantined == len(records) + len(bad)
    for r in records:
        for value in (r["text"], r["source"], *(m["content"] for m in r["messages"] or [])):
            if value is not None:
                value.encode("utf-8")  # no lone surrogates anywhere
    for ledger in stats.per_input.values():
        if ledger.lines is not None and not ledger.unread_rest:
            assert ledger.covered == ledger.lines
    return records, bad, stats


def lines_of(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


@SETTINGS
@given(files=st.lists(st.tuples(st.sampled_from(EXTENSIONS), st.binary(max_size=400)), min_size=1, max_size=6))
def test_random_bytes_in_any_format(files):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for i, (ext, data) in enumerate(files):
            (folder / f"f{i}{ext}").write_bytes(data)
        records, bad, stats = load(folder)
        for i, (ext, data) in enumerate(files):
            ledger = stats.per_input[f"in/f{i}{ext}"]
            if ext == ".jsonl" and ledger.lines is not None:
                assert ledger.lines == lines_of(data)
                assert ledger.records + ledger.quarantined == max(ledger.lines, 1)


def nested(depth: int, leaf: str, kind: str) -> str:
    if kind == "list":
        return "[" * depth + json.dumps(leaf) + "]" * depth
    return '{"a": ' * depth + json.dumps(leaf) + "}" * depth


@SETTINGS
@given(
    depth=st.integers(min_value=0, max_value=60_000),
    kind=st.sampled_from(["list", "dict"]),
    where=st.sampled_from(["text", "label", "root", "messages"]),
)
def test_random_nesting(depth, kind, where):
    inner = nested(depth, "deep", kind)
    doc = {
        "text": f'{{"text": {inner}}}',
        "label": f'{{"text": "a fine text", "label": {inner}}}',
        "root": inner,
        "messages": f'{{"messages": {inner}}}',
    }[where]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        good = [json.dumps({"text": f"good line {i}"}) for i in range(3)]
        (folder / "a.jsonl").write_text("\n".join([good[0], doc, good[1], good[2]]) + "\n")
        (folder / "b.json").write_text(doc)
        records, bad, stats = load(folder)
        assert {"good line 0", "good line 1", "good line 2"} <= {r["text"] for r in records}
        assert stats.per_input["in/a.jsonl"].lines == 4
        assert stats.per_input["in/a.jsonl"].records + stats.per_input["in/a.jsonl"].quarantined == 4
        assert stats.per_input["in/b.json"].records + stats.per_input["in/b.json"].quarantined >= 1


JSONL_DAMAGE = [
    None,
    lambda line: line[: len(line) // 2],  # truncated
    lambda line: line + "}",  # trailing garbage
    lambda line: "",  # blank
    lambda line: "[1, 2]",  # not an object
    lambda line: '{"text": ' + "[" * 5000 + "]" * 5000 + "}",  # deep
    lambda line: line.replace("text", "txet"),  # no text field
    lambda line: b"\xff\xfe".decode("latin-1") + line,  # bytes that are not UTF-8 (written as latin-1 below)
    lambda line: line.replace("l", "l\x00", 1),  # a NUL inside
]


@SETTINGS
@given(
    texts=st.lists(WORDS.filter(lambda t: t.strip()), min_size=1, max_size=25),
    damage=st.lists(st.integers(min_value=0, max_value=len(JSONL_DAMAGE) - 1), min_size=25, max_size=25),
    trailing_newline=st.booleans(),
)
def test_jsonl_damage_costs_only_the_damaged_lines(texts, damage, trailing_newline):
    chunks, kept = [], []
    for text, d in zip(texts, damage, strict=False):
        line = json.dumps({"text": text})
        fn = JSONL_DAMAGE[d]
        if fn is None:
            kept.append(text)
            chunks.append(line.encode())
        elif d == 7:
            chunks.append(fn(line).encode("latin-1", "replace"))
        else:
            chunks.append(fn(line).encode())
    data = b"\n".join(chunks) + (b"\n" if trailing_newline else b"")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        (folder / "a.jsonl").write_bytes(data)
        records, bad, stats = load(folder)
        ledger = stats.per_input["in/a.jsonl"]
        # a blank last line without a final newline is not a line at all
        assert ledger.lines == lines_of(data) == len(texts) - (chunks[-1] == b"" and not trailing_newline)
        if data:
            assert ledger.records + ledger.quarantined == ledger.lines
        else:  # an empty file is one unit, quarantined whole
            assert (ledger.records, ledger.quarantined) == (0, 1) and bad[0].reason == "empty_file"
        got = [r["text"] for r in records]
        assert all(t in got for t in kept)  # every undamaged line is a record
        assert all(q.locator.startswith("line ") for q in bad) or not data


@SETTINGS
@given(
    rows=st.lists(
        st.tuples(
            WORDS, st.sampled_from(["a", "b", ""]), st.sampled_from(["ok", "quote", "ragged", "nul", "bytes", "blank"])
        ),
        min_size=1,
        max_size=20,
    ),
    crlf=st.booleans(),
)
def test_csv_damage_costs_only_the_damaged_rows(rows, crlf):
    nl = b"\r\n" if crlf else b"\n"
    out = [b"text,label"]
    expected_prefix = []
    damaged = False
    for text, label, kind in rows:
        cell = '"' + text.replace('"', '""') + '"'
        if kind == "ok":
            out.append(f"{cell},{label}".encode())
            if not damaged and text.strip():
                expected_prefix.append(text)
            continue
        damaged = True
        out.append(
            {
                "quote": f'"{text},{label}'.encode(),
                "ragged": f"{cell},{label},extra".encode(),
                "nul": f"{cell}\x00,{label}".encode(),
                "bytes": f"{cell},{label}".encode() + b"\xff",
                "blank": b"",
            }[kind]
        )
    data = nl.join(out) + nl
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        (folder / "a.csv").write_bytes(data)
        records, bad, stats = load(folder)
        ledger = stats.per_input["in/a.csv"]
        assert ledger.lines == lines_of(data) == ledger.covered
        got = [r["text"] for r in records]
        crlf_fixed = [t.replace("\n", "\r\n") if crlf else t for t in expected_prefix]
        assert got[: len(expected_prefix)] == crlf_fixed or got[: len(expected_prefix)] == expected_prefix
        if not damaged:
            assert not [q for q in bad if q.reason not in ("empty_text",)]

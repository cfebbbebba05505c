"""Hostile input never stops a run and never loses a record: the fixture folder of tests/hostile.py, end to end."""

import itertools
import json
import os
from pathlib import Path

import datasets
import hostile
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleaners.config import HtmlConfig
from ingest.config import LoadConfig
from ingest.sources import LoadStats, iter_record_batches, source_name
from tuneprep.records import make_records


def load(paths, **cfg):
    stats = LoadStats()
    records, bad = [], []
    for batch, q in iter_record_batches([str(p) for p in paths], LoadConfig(**cfg), batch_size=4, stats=stats):
        records.extend(batch.to_dicts())
        bad.extend(q)
    return records, bad, stats


def _expected(h: hostile.Hostile) -> dict[tuple[str, str], str]:
    whole = {(src, ""): reason for src, reason in h.bad.items()}
    return whole | {(src, loc): reason for src, locs in h.bad_lines.items() for loc, reason in locs.items()}


def _contents(record: dict) -> str:
    return record["text"] if record["text"] is not None else "\n".join(m["content"] for m in record["messages"])


def test_every_hostile_unit_is_quarantined_naming_its_file_and_every_good_record_is_read(tmp_path):
    h = hostile.build(tmp_path)
    records, bad, stats = load([h.root])
    assert {(q.source.removeprefix("hostile/"), q.locator): q.reason for q in bad} == _expected(h)
    assert all(q.detail for q in bad if q.reason not in ("blank_line",))
    assert stats.read == stats.kept + stats.quarantined == len(records) + len(bad)
    contents = [_contents(r) for r in records]
    assert all(any(text in c for c in contents) for text in h.good)
    assert len(records) == len(h.good)  # nothing else slipped through
    assert source_name(os.fsdecode(b"caf\xe9-\xff.txt")) == "caf\\xe9-\\xff.txt"
    assert "hostile/caf\\xe9-\\xff.txt" in {r["source"] for r in records}
    for src, n in h.line_files.items():  # line formats: every line is one unit (or part of a multi-line CSV row)
        ledger = stats.per_input[f"hostile/{src}"]
        assert ledger.lines == ledger.covered == n == hostile.physical_lines((h.root / src).read_bytes())
    jsonl = stats.per_input["hostile/mixed.jsonl"]
    assert jsonl.records + jsonl.quarantined == jsonl.lines
    assert stats.skipped == ["hostile/readme.bin"]


def test_permission_errors_are_quarantined(tmp_path, monkeypatch):
    d = tmp_path / "d"
    (d / "locked").mkdir(parents=True)
    (d / "ok.txt").write_text("A readable file with enough words in it.")
    (d / "secret.txt").write_text("not for us")
    (d / "secret.jsonl").write_text('{"text": "not for us either"}\n')
    (d / "locked" / "x.txt").write_text("inside a folder that cannot be listed")
    real_open, real_iterdir = os.open, Path.iterdir

    def refusing_open(path, flags, *args, **kwargs):  # root reads anything: make the OS say no
        if os.fspath(path).endswith(("secret.txt", "secret.jsonl")):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    def refusing_iterdir(self):
        if self.name == "locked":
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(os, "open", refusing_open)
    monkeypatch.setattr(Path, "iterdir", refusing_iterdir)
    records, bad, stats = load([d])
    assert [r["source"] for r in records] == ["d/ok.txt"]
    assert sorted((q.source, q.reason) for q in bad) == [
        ("d/locked", "permission_denied"),
        ("d/secret.jsonl", "permission_denied"),
        ("d/secret.txt", "permission_denied"),
    ]
    assert "Permission denied" in next(q for q in bad if q.source == "d/secret.txt").detail


def test_lines_rows_and_records_over_the_size_cap(tmp_path):
    long = "word " * 300
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"text": "short one"}) + "\n" + json.dumps({"text": long}) + "\nnext\n"
    )
    (tmp_path / "b.csv").write_text(f"text\nshort row\n{long}\nlast row\n")
    pl.DataFrame({"text": ["fine", long]}).write_parquet(tmp_path / "c.parquet")
    records, bad, stats = load([tmp_path], max_file_bytes=1000)
    assert sorted(r["text"] for r in records) == ["fine", "last row", "short one", "short row"]
    assert sorted((q.source, q.locator, q.reason) for q in bad) == [
        (f"{tmp_path.name}/a.jsonl", "line 2", "too_large"),
        (f"{tmp_path.name}/a.jsonl", "line 3", "malformed_json"),
        (f"{tmp_path.name}/b.csv", "line 3", "too_large"),
        (f"{tmp_path.name}/c.parquet", "row 1", "too_large"),
    ]
    assert stats.per_input[f"{tmp_path.name}/a.jsonl"].lines == 3


def _html_batch(pages):
    return make_records(
        [{"id": f"{i:020x}", "source": "p.html", "format": "html", "text": p} for i, p in enumerate(pages)]
    )


NORMAL_PAGE = (
    "<html><body><article><h1>Title</h1><p>A real paragraph of article text to keep.</p></article></body></html>"
)


@pytest.mark.parametrize("timeout_s", [None, 60.0], ids=["in-process", "worker-checks-depth"])
def test_deep_and_long_pages_fall_back_to_plain_text_or_are_quarantined(timeout_s):
    from cleaners.html import StripHtml, page_depth, plain_text

    deep = (
        "<html><body>" + "<div>" * 100_000 + f"<p>{hostile.DEEP_PAGE_TEXT}</p>" + "</div>" * 100_000 + "</body></html>"
    )
    assert page_depth(deep) == 100_002 and page_depth(NORMAL_PAGE) == 4
    assert page_depth("</div>" * 50 + "<div>" * 3 + '<br><img/><svg><path d="x"/></svg>') == 4
    assert plain_text("<p>a &amp; b<script>x</script><!-- c --></p><div>d</div><style>") == "a & b\n\nd"
    assert plain_text("<" * 1000 + "text") == "<" * 1000 + "text"  # no tag, no loss, linear time
    stage = StripHtml(HtmlConfig(timeout_s=timeout_s, max_page_chars=2_000_000))
    out = stage(_html_batch([deep, NORMAL_PAGE, "<p>" + "long page " * 250_000 + "</p>"]))
    stage.close()
    assert out.kept["text"][0] == hostile.DEEP_PAGE_TEXT and "A real paragraph" in out.kept["text"][1]
    assert out.kept["text"][2].startswith("long page") and stage.summary() == {
        "fallback": {"too_deep": 1, "too_large": 1}
    }
    strict = StripHtml(HtmlConfig(timeout_s=timeout_s, on_limit="quarantine", max_page_chars=2_000_000))
    out = strict(_html_batch([deep, NORMAL_PAGE, "<p>" + "long page " * 250_000 + "</p>"]))
    strict.close()
    assert out.quarantined["reason"].to_list() == ["page_too_deep", "page_too_large"]
    assert "max_depth=2000" in out.quarantined["detail"][0] and out.kept.height == 1


def test_a_page_over_the_time_limit_is_stopped_in_its_worker():
    from cleaners.html import StripHtml

    slow = "<html><body>" + "<div>" * 1500 + "<p>nested text</p>" + "</div>" * 1500 + "</body></html>"
    stage = StripHtml(HtmlConfig(timeout_s=0.0001))  # nothing is extracted that fast; the worker is killed
    try:
        out = stage(_html_batch([slow, NORMAL_PAGE]))
        assert out.kept["text"].to_list() == ["nested text", "Title\n\nA real paragraph of article text to keep."]
        assert stage.summary() == {"fallback": {"timeout": 2}}
        stage.cfg = HtmlConfig(timeout_s=30)
        stage.pool.timeout_s = 30  # a fresh worker after the kill: pages extract normally again
        assert stage(_html_batch([NORMAL_PAGE])).kept["text"][0] == "Title\n\nA real paragraph of article text to keep."
    finally:
        stage.close()
    quarantining = StripHtml(HtmlConfig(timeout_s=0.0001, on_limit="quarantine"))
    try:
        assert quarantining(_html_batch([slow])).quarantined["reason"].to_list() == ["extraction_timeout"]
    finally:
        quarantining.close()


def test_pages_spread_over_several_workers_come_back_in_order_with_the_in_process_text():
    from cleaners.html import StripHtml

    pages = [NORMAL_PAGE.replace("Title", f"Title {i}") for i in range(9)] + ["", "<p>second kind</p>"]
    alone = StripHtml(HtmlConfig(timeout_s=None))(_html_batch(pages))
    pooled = StripHtml(HtmlConfig(timeout_s=30, workers=3))
    try:
        out = pooled(_html_batch(pages))
        assert out.kept["text"].to_list() == alone.kept["text"].to_list()
        assert out.kept["text"][4].startswith("Title 4") and out.dropped.height == alone.dropped.height == 1
        assert sum(w.proc is not None for w in pooled.pool.workers) == 3
    finally:
        pooled.close()


def test_pages_extracted_ahead_give_the_same_text_and_a_different_order_stops_the_prefetch():
    from cleaners.html import StripHtml

    pages = [NORMAL_PAGE.replace("Title", f"Title {i}") for i in range(40)] + ["", "<p>second kind</p>"]
    alone = StripHtml(HtmlConfig(timeout_s=None))
    want = [alone(_html_batch(pages[i : i + 7])).kept["text"].to_list() for i in range(0, len(pages), 7)]
    ahead = StripHtml(HtmlConfig(timeout_s=30, workers=2))
    try:
        ahead.prefetch(iter(pages))  # more pages than one chunk, taken in batches that do not line up with chunks
        assert [ahead(_html_batch(pages[i : i + 7])).kept["text"].to_list() for i in range(0, len(pages), 7)] == want
        assert ahead.ahead is not None  # every page came from the prefetch
    finally:
        ahead.close()
    assert ahead.ahead is None
    skipping = StripHtml(HtmlConfig(timeout_s=30, workers=2))
    try:
        skipping.prefetch(iter(pages))
        assert skipping(_html_batch(pages[:3])).kept["text"].to_list() == want[0][:3]
        # pages the prefetch did not expect next (a stage before this one dropped some, a batch was retried)
        assert skipping(_html_batch(pages[10:14])).kept["text"].to_list() == want[1][3:7]
        assert skipping.ahead is None  # it stopped; the stage extracted these itself
        assert skipping(_html_batch(pages[20:21])).kept["text"].to_list() == want[2][6:7]
    finally:
        skipping.close()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["html", "text", "jsonl", None]), max_size=60),
    st.lists(st.integers(1, 25), min_size=1, max_size=5),
    st.integers(1, 9),
)
def test_page_batches_keep_every_row_in_order_and_cut_pages_into_chunks(formats, sizes, chunk):
    """Text runs stay whole within a batch; a run of pages is cut into chunks; nothing else is cut."""
    from cleaners.html import page_batches

    frame = pl.DataFrame(
        {"row": list(range(len(formats))), "format": formats}, schema={"row": pl.Int64, "format": pl.Utf8}
    )
    batches, start = [], 0
    for size in sizes * (len(formats) // sum(sizes) + 1):
        if start >= frame.height:
            break
        batches.append(frame.slice(start, size))
        start += size
    out = list(page_batches(iter(batches), chunk))
    assert pl.concat(out, how="vertical").equals(frame) if out else frame.height == 0
    ends = set(itertools.accumulate(b.height for b in batches))
    pos = 0
    for b in out:
        html = (b["format"] == "html").fill_null(False)
        assert b.height and (html.all() or not html.any())
        assert not html.all() or b.height <= chunk
        if not html.any():  # a text batch ends at its input batch's end or where pages start
            end = pos + b.height
            assert end in ends or formats[end] == "html"
        pos += b.height
    assert pos == len(formats)


def test_the_prefetch_stops_when_the_page_source_fails():
    from cleaners.html import StripHtml

    def failing():
        yield NORMAL_PAGE
        raise OSError("the input went away")

    stage = StripHtml(HtmlConfig(timeout_s=30))
    try:
        stage.prefetch(failing())
        assert (
            stage(_html_batch([NORMAL_PAGE, NORMAL_PAGE])).kept["text"].to_list()
            == ["Title\n\nA real paragraph of article text to keep."] * 2
        )
        assert stage.ahead is None
    finally:
        stage.close()


def test_a_cancelled_extraction_stops_the_workers_still_on_a_page():
    """Closing a stage whose prefetch is mid-chunk must not wait for the chunk: the pool stops its busy workers."""
    from cleaners.html import ExtractionCancelled, PagePool

    pool = PagePool(HtmlConfig(), 30, workers=2)
    try:
        busy: list = []

        def cancelled():  # true once pages are out: at the next look, both workers are on one
            busy[:] = [w for w in pool.workers if w.page is not None]
            return bool(busy)

        with pytest.raises(ExtractionCancelled):
            pool.extract([NORMAL_PAGE] * 6, cancelled)
        assert busy and all(w.proc is None for w in busy)  # stopped, not left to answer later
        assert pool.extract([NORMAL_PAGE]) == [("ok", "Title\n\nA real paragraph of article text to keep.")]
    finally:
        pool.close()


def test_pages_are_extracted_in_process_when_no_worker_can_start(monkeypatch):
    import cleaners.html as html

    def cannot_start(self, pages, cancelled=None):
        raise html.WorkerUnavailable("the HTML extraction worker did not start")

    monkeypatch.setattr(html.PagePool, "extract", cannot_start)
    stage = html.StripHtml(HtmlConfig(timeout_s=30))
    out = stage(_html_batch([NORMAL_PAGE, NORMAL_PAGE]))
    assert out.kept["text"].to_list() == ["Title\n\nA real paragraph of article text to keep."] * 2
    assert "in-process" in stage.summary()["worker"] and stage.pool is None


def test_an_extractor_error_on_one_page_falls_back(monkeypatch):
    import cleaners.html as html

    real = html.strip_html

    def fragile(page, cfg=None):
        if "explode" in page:
            raise RecursionError("maximum recursion depth exceeded")
        return real(page, cfg)

    monkeypatch.setattr(html, "strip_html", fragile)
    stage = html.StripHtml(HtmlConfig(timeout_s=None))
    out = stage(_html_batch(["<p>explode this page</p>", NORMAL_PAGE]))
    assert out.kept["text"].to_list()[0] == "explode this page" and stage.summary() == {"fallback": {"error": 1}}


def _shard_texts(out: Path) -> list[str]:
    texts = []
    for split in ("train", "validation", "test"):
        ds = datasets.load_from_disk(str(out / "shards" / split))
        for text, messages in zip(ds["text"], ds["messages"], strict=True):
            texts.append(text if text is not None else "\n".join(m["content"] for m in messages))
    return texts


@pytest.mark.slow
def test_hostile_folder_end_to_end(prefect_harness, tmp_path, monkeypatch):
    """`tuneprep prepare` on the whole fixture: it completes, every bad unit is quarantined naming its file, a
    record that makes a stage raise is quarantined by that stage, every good record is in the shards, and the
    accounting balances to the line."""
    import cleaners.dedup
    import cleaners.quality
    from flows.cli import main

    h = hostile.build(tmp_path / "in")
    (h.root / "quality-boom.txt").write_text(
        "QUALITYBOOM makes the quality filter raise on this record, which must cost this record alone and nothing else."
    )
    (h.root / "dedup-boom.txt").write_text(
        "DEDUPBOOM makes the near-duplicate hasher raise on a whole batch, so the batch is retried in halves around it."
    )
    real_quality, real_hash = cleaners.quality.check_quality, cleaners.dedup.MinHasher.__call__

    def quality(text, cfg):
        if "QUALITYBOOM" in text:
            raise ValueError("quality rule crashed")
        return real_quality(text, cfg)

    def hasher(self, texts):
        if any("DEDUPBOOM" in t for t in texts):
            raise MemoryError("signature buffer")
        return real_hash(self, texts)

    monkeypatch.setattr(cleaners.quality, "check_quality", quality)
    monkeypatch.setattr(cleaners.dedup.MinHasher, "__call__", hasher)
    out = tmp_path / "out"
    assert main(["prepare", str(h.root), "--out", str(out)]) == 0

    m = json.loads((out / "manifest.json").read_text())
    assert m["accounting"]["ok"], m["accounting"]
    load_q = [json.loads(line) for line in (out / "quarantine" / "load.jsonl").read_text().splitlines()]
    assert {(q["source"].removeprefix("hostile/"), q["locator"]): q["reason"] for q in load_q} == _expected(h)
    for stage, marker, error in (
        ("quality_filter", "QUALITYBOOM", "ValueError"),
        ("near_dedup", "DEDUPBOOM", "MemoryError"),
    ):
        (q,) = [json.loads(line) for line in (out / "quarantine" / f"{stage}.jsonl").read_text().splitlines()]
        assert q["stage"] == stage and q["reason"] == "stage_error" and q["detail"].startswith(error)
        assert marker in q["record"]["text"] and q["source"].startswith("hostile/")
        assert m["quarantined_by_reason"][f"{stage}:stage_error"] == 1 and m["quarantine"][stage]["entries"] == 1

    inputs = {i["source"]: i for i in m["inputs"]}
    for src in h.bad:
        assert inputs[f"hostile/{src}"]["quarantined"] == 1, src
    assert inputs["hostile/fifo"]["unreadable"] == "not_a_regular_file"
    for src, n in h.line_files.items():
        assert inputs[f"hostile/{src}"]["lines"] == n
    jsonl = inputs["hostile/mixed.jsonl"]
    assert jsonl["records"] + jsonl["quarantined"] == jsonl["lines"] == 7

    shard_texts = _shard_texts(out)
    missing = [t for t in h.good if not any(t in s for s in shard_texts)]
    assert not missing, missing
    assert not any("BOOM" in s for s in shard_texts)

    report = (out / "report.md").read_text()
    assert "`quarantine/quality_filter.jsonl`" in report and "`quarantine/load.jsonl`" in report
    assert not [p for p in out.rglob("*") if ".tmp" in p.name] and not (out / ".tuneprep.lock").exists()


@pytest.mark.slow
def test_too_much_quarantined_stops_the_run_naming_the_worst_files(tmp_path):
    from flows.config import PipelineConfig
    from flows.steps import QuarantineLimit, prepare

    d = tmp_path / "in"
    d.mkdir()
    (d / "good.txt").write_text(hostile.GOOD_TEXTS[0])
    (d / "wrong_field.jsonl").write_text("".join(json.dumps({"body_text": t}) + "\n" for t in hostile.GOOD_TEXTS))
    cfg = PipelineConfig(inputs=[str(d)], max_quarantine_fraction=0.5)
    with pytest.raises(
        QuarantineLimit, match=r"16 of 17 input units quarantined \(94%\).*in/wrong_field.jsonl \(16, load:bad_record\)"
    ):
        prepare(cfg, tmp_path / "out", log=lambda s: None)
    assert len((tmp_path / "out" / "quarantine" / "load.jsonl").read_text().splitlines()) == 16


@pytest.mark.slow
def test_a_drop_with_nothing_new_finishes_with_empty_shards(tmp_path):
    from flows.config import PipelineConfig
    from flows.layout import RunPaths
    from flows.report import write_report
    from flows.steps import prepare

    d = tmp_path / "in"
    d.mkdir()
    (d / "tickets.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in hostile.GOOD_TEXTS))
    first = tmp_path / "first"
    common = {"inputs": [str(d)], "augment": {"enabled": False}}
    before = prepare(PipelineConfig(**common), first, log=lambda s: None)
    again = PipelineConfig(**common, dedup={"reuse_index": str(first)}, split={"previous": str(first)})
    m = prepare(again, tmp_path / "second", log=lambda s: None)
    assert m["nothing_new"] and m["accounting"]["ok"]
    assert all(s["rows"] == 0 for s in m["splits"].values())
    assert m["tokenizer"]["sha256"] == before["tokenizer"]["sha256"] and m["tokenizer"]["reused_from"] == str(first)
    for split in ("train", "validation", "test"):
        assert datasets.load_from_disk(str(tmp_path / "second" / "shards" / split)).num_rows == 0
    assert "**Nothing new**" in write_report(RunPaths(tmp_path / "second"))


@pytest.mark.slow
def test_shards_do_not_depend_on_batch_size(tmp_path):
    """Same input and seed, batch_size 7 and 2048: byte-identical shards and tokenizer (augmentation on)."""
    from flows.config import PROJECT_ROOT, PipelineConfig
    from flows.steps import prepare

    inputs = [
        str(PROJECT_ROOT / "sample_data" / "support_chats.jsonl"),
        str(PROJECT_ROOT / "sample_data" / "tickets.csv"),
    ]
    manifests = [
        prepare(PipelineConfig(inputs=inputs, batch_size=bs), tmp_path / f"b{bs}", log=lambda s: None)
        for bs in (7, 2048)
    ]
    small, large = manifests
    assert small["stages"][-2]["added"] > 0  # variants were made
    assert small["splits"] == large["splits"] and small["tokenizer"]["sha256"] == large["tokenizer"]["sha256"]

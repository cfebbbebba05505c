"""One record a stage cannot handle is quarantined with its stage and error; the rest of the run goes on."""

import json

import polars as pl
import pyarrow.parquet as pq
import pytest

from tuneprep.records import make_records
from tuneprep.runner import StopRun, run_stages, sort_parquet
from tuneprep.stage import STAGE_ERROR, RecordFilter, Stage, StageOutput, TextMap


def records(texts):
    return make_records(
        [{"id": f"{i:020x}", "source": f"s{i % 3}.txt", "format": "text", "text": t} for i, t in enumerate(texts)]
    )


class Boom(Stage):
    """Fails a whole batch whenever it holds a text with "boom"; counts what it saw, rolled back on failure."""

    name = "boom"

    def __init__(self) -> None:
        self.seen = 0
        self.calls = 0

    def process(self, batch):
        self.calls += 1
        self.seen += batch.height  # changed before the failure: rollback must undo it
        if any("boom" in t for t in batch["text"].to_list()):
            raise ValueError("cannot handle boom\nsecond line")
        return StageOutput.keep_all(batch, self.name)

    def checkpoint(self):
        return self.seen

    def rollback(self, state):
        self.seen = state


def test_a_failing_record_is_isolated_and_quarantined_in_order():
    texts = [f"text {i}" for i in range(40)]
    texts[5] = texts[31] = "boom here"
    stage = Boom()
    out = stage(records(texts))
    assert out.kept["text"].to_list() == [t for t in texts if "boom" not in t]
    assert out.quarantined.height == 2 and set(out.quarantined["reason"]) == {STAGE_ERROR}
    assert out.quarantined["detail"].to_list() == ["ValueError: cannot handle boom"] * 2
    assert set(out.quarantined["stage"]) == {"boom"}
    assert stage.seen == 38  # every record counted once: the failed attempts were rolled back
    assert stage.calls < 40  # halves, not record by record


def test_a_stage_that_cannot_retry_fails_naming_itself():
    class Stubborn(Boom):
        retry_safe = False

    with pytest.raises(RuntimeError, match="stage boom failed on a batch of 3: ValueError"):
        Stubborn()(records(["a", "boom", "c"]))


def test_text_map_and_record_filter_quarantine_per_record():
    class Upper(TextMap):
        name = "upper"

        def map_text(self, text, role):
            if "bad" in text:
                raise RecursionError("too deep")
            return text.upper()

    class Short(RecordFilter):
        name = "short"

        def judge(self, text):
            if "bad" in text:
                raise KeyError("x")
            return ("too_short", None) if len(text) < 3 else None

    batch = records(["ok one", "bad", "x", "fine"])
    out = Upper()(batch)
    assert out.kept["text"].to_list() == ["OK ONE", "X", "FINE"]
    assert out.quarantined["text"].to_list() == ["bad"] and out.quarantined["detail"][0] == "RecursionError: too deep"
    out = Short()(batch)
    assert out.kept["text"].to_list() == ["ok one", "fine"]
    assert out.dropped["reason"].to_list() == ["too_short"] and out.quarantined["text"].to_list() == ["bad"]


def test_run_stages_writes_quarantine_per_stage_and_balances(tmp_path):
    texts = [f"text number {i}" for i in range(30)]
    texts[7] = "boom"
    src = tmp_path / "in.parquet"
    records(texts).write_parquet(src)
    (tmp_path / "quarantine").mkdir()
    (tmp_path / "quarantine" / "upper.jsonl").write_text("stale\n")  # an earlier run's file

    class Upper(TextMap):
        name = "upper"

        def map_text(self, text, role):
            return text.upper()

    seen: list[pl.DataFrame] = []
    stats = run_stages(
        [Boom(), Upper()], src, tmp_path / "out.parquet", tmp_path / "dropped", batch_size=8, on_kept=seen.append
    )
    assert pl.concat(seen).equals(pl.read_parquet(tmp_path / "out.parquet"))  # on_kept sees what is written
    boom, upper = stats
    assert (boom.read, boom.kept, boom.quarantined) == (30, 29, 1) and boom.balanced
    assert boom.quarantine_reasons == {STAGE_ERROR: 1} and boom.errors == ["ValueError: cannot handle boom"]
    assert upper.read == 29 and upper.balanced
    (entry,) = [json.loads(line) for line in (tmp_path / "quarantine" / "boom.jsonl").read_text().splitlines()]
    assert entry["stage"] == "boom" and entry["source"] == "s1.txt" and entry["locator"].startswith("id ")
    assert entry["record"]["text"] == "boom" and entry["raw"] == "boom"
    assert not (tmp_path / "quarantine" / "upper.jsonl").exists()
    assert pl.read_parquet(tmp_path / "out.parquet").height == 29


def test_a_check_that_stops_the_run_keeps_the_quarantine_file(tmp_path):
    src = tmp_path / "in.parquet"
    records(["boom", "a", "b", "c"]).write_parquet(src)

    def check(stats):
        if stats[0].quarantined:
            raise StopRun("too much")

    with pytest.raises(StopRun):
        run_stages([Boom()], src, tmp_path / "out.parquet", tmp_path / "dropped", 2, check=check)
    assert (tmp_path / "quarantine" / "boom.jsonl").exists()
    assert not (tmp_path / "out.parquet").exists()
    assert not list(tmp_path.glob(".*tmp*")) and not list((tmp_path / "dropped").glob(".*"))


@pytest.mark.parametrize("bucket_bytes", [5000, None])  # many buckets on disk; one, sorted in memory
def test_sort_parquet_orders_by_id_in_bounded_buckets(tmp_path, monkeypatch, bucket_bytes):
    import tuneprep.runner as runner

    ids = [f"{(i * 7919) % 1000:020x}" for i in range(1000)]
    ids[500:510] = [ids[0]] * 10  # ties keep their file order
    df = pl.DataFrame({"id": ids, "text": [str(i) * (i % 30 + 1) for i in range(1000)]})
    df.write_parquet(tmp_path / "a.parquet")
    if bucket_bytes:
        monkeypatch.setattr(runner, "SORT_BUCKET_BYTES", bucket_bytes)
    assert sort_parquet(tmp_path / "a.parquet", tmp_path / "b.parquet", batch_size=33) == 1000
    out = pl.read_parquet(tmp_path / "b.parquet")
    assert out["id"].to_list() == sorted(ids) and out.equals(df.sort("id", maintain_order=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "b.parquet"]
    # row groups of a batch at most, so a reader never decodes a whole bucket at once (memory stays flat)
    meta = pq.ParquetFile(tmp_path / "b.parquet").metadata
    assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) <= 33


def test_tokenize_step_quarantines_a_record_it_cannot_encode(tmp_path, monkeypatch):
    import shards.encode
    from flows.config import PipelineConfig
    from flows.layout import RunPaths
    from flows.steps import tokenize_step
    from shards.config import TokenizerConfig
    from shards.tokenization import encode_records, train_sentencepiece

    paths = RunPaths(tmp_path).make()
    texts = [f"plain training sentence number {i} about shipping and refunds." for i in range(20)]
    texts[3] = "UNENCODABLE record"
    df = records(texts).with_columns(pl.lit("train").alias("split"))
    df.write_parquet(paths.stage_file("augmented"))
    train_sentencepiece(texts * 5, TokenizerConfig(vocab_size=300), paths.tokenizer)

    def fragile(batch, tok, max_length):
        if any("UNENCODABLE" in t for t in batch["text"].to_list()):
            raise ValueError("chat template renders are not prefixes of each other")
        return encode_records(batch, tok, max_length)

    monkeypatch.setattr(shards.encode, "encode_records", fragile)
    st = tokenize_step(PipelineConfig(inputs=[str(tmp_path)], batch_size=8), paths, log=lambda s: None)
    assert (st["read"], st["kept"], st["quarantined"]) == (20, 19, 1)
    (entry,) = [json.loads(line) for line in (paths.quarantine / "tokenize.jsonl").read_text().splitlines()]
    assert entry["stage"] == "tokenize" and "prefixes" in entry["detail"]
    assert pl.read_parquet(paths.stage_file("tokenized"))["id"].n_unique() == 19


def test_a_stage_that_numbers_records_stays_aligned_past_a_quarantined_one(monkeypatch):
    """The decontaminator numbers train records against a first pass; a record quarantined in between must not
    shift the records after it onto the wrong hits."""
    from cleaners.decontaminate import DecontamConfig, Decontaminator
    from cleaners.dedup import MinHasher
    from cleaners.heldout import HeldoutIndex

    held = "The replacement strap for the Ridgeline pack ships in five days and fits every model made since 2019"
    other = "Our stores open at nine on weekdays and at ten on Sundays, except on public holidays when they close"
    index = HeldoutIndex(MinHasher(128, 3, "word", 1), 0.9)
    stage = Decontaminator(DecontamConfig(heldout_ngrams="drop"), index)
    texts = [other + f" note {i}." for i in range(6)]
    texts[2] = "boom " + other
    texts[4] = "Intro words. " + held + " and more words after it."
    batch = make_records(
        [{"id": f"t{i}", "source": "s", "format": "text", "text": t, "split": "train"} for i, t in enumerate(texts)]
        + [{"id": "v1", "source": "s", "format": "text", "text": held, "split": "validation"}]
    )
    stage.fit(lambda: [batch])
    real = HeldoutIndex.best_matches

    def fragile(self, texts, sigs=None):
        if any(t.startswith("boom") for t in texts):
            raise ValueError("boom")
        return real(self, texts, sigs)

    monkeypatch.setattr(HeldoutIndex, "best_matches", fragile)
    out = stage(batch)
    assert out.quarantined["id"].to_list() == ["t2"]
    assert out.dropped["id"].to_list() == ["t4"] and "v1" in out.dropped["detail"][0]
    assert out.kept["id"].to_list() == ["t0", "t1", "t3", "t5", "v1"]

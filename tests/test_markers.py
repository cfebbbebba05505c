"""Partitions, completion markers, the precomputed-signature feed and the corpus store, without Prefect."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from builders import near_dup_corpus, text_rows, words

from flows.markers import Markers, sweep_leftovers
from flows.partitioned import merge_stage_stats, merge_summaries
from flows.store import CorpusStore, StoreBusy
from tuneprep.partitions import concat_parquet, plan_partitions
from tuneprep.runner import ParquetSink, iter_batches, iter_rows


def write_rows(path: Path, n: int, group_sizes: list[int]) -> None:
    """A Parquet file of n rows written in row groups of uneven sizes (as a filtering stage leaves them)."""
    sink = ParquetSink(path)
    start = 0
    for size in group_sizes:
        sink.write(pl.DataFrame({"i": list(range(start, min(start + size, n)))}))
        start += size
    sink.close()


def test_partitions_see_the_batches_of_a_whole_file_pass(tmp_path):
    src = tmp_path / "in.parquet"
    write_rows(src, 1000, [7, 300, 1, 250, 442])
    whole = [b["i"].to_list() for b in iter_batches(src, 64)]
    parts = plan_partitions(src, 150, 64)  # rounded up to 192: whole batches
    assert [p.start for p in parts] == list(range(0, 1000, 192)) and parts[-1].stop == 1000
    split = [b["i"].to_list() for p in parts for b in iter_rows(src, p.start, p.stop, 64)]
    assert split == whole  # the same batches, cut at the same rows

    outs = []
    for p in parts:
        sink = ParquetSink(tmp_path / f"{p.name}.parquet")
        for b in iter_rows(src, p.start, p.stop, 64):
            sink.write(b)
        sink.close(empty_like=pl.DataFrame({"i": []}, schema={"i": pl.Int64}))
        outs.append(tmp_path / f"{p.name}.parquet")
    assert concat_parquet(outs, tmp_path / "merged.parquet", 64) == 1000
    assert pl.read_parquet(tmp_path / "merged.parquet")["i"].to_list() == list(range(1000))


def test_an_empty_file_has_one_empty_partition(tmp_path):
    src = tmp_path / "empty.parquet"
    pl.DataFrame({"i": []}, schema={"i": pl.Int64}).write_parquet(src)
    (part,) = plan_partitions(src, 100, 10)
    assert part.rows == 0 and list(iter_rows(src, part.start, part.stop, 10)) == []


def test_a_marker_holds_while_inputs_config_code_and_outputs_do(tmp_path):
    out = tmp_path / "run"
    src, dst = tmp_path / "input.txt", out / "result.txt"
    out.mkdir()
    src.write_text("hello")
    dst.write_text("HELLO")
    markers = Markers(out)

    def key(config=None, code="v1"):
        return markers.key("step", config or {"upper": True}, [src, "https://example.com/page"], code)[0]

    k = key()
    markers.record("step", k, [dst], {"rows": 1})
    assert Markers(out).done("step", k)["result"] == {"rows": 1}
    assert key() == k and key({"upper": False}) != k and key(code="v2") != k
    src.write_text("HELLO")  # same size, other content
    assert key() != k
    src.write_text("hello")
    assert key() == k

    os.utime(dst, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched (or copied): content decides
    assert Markers(out).done("step", k) is not None
    dst.write_text("HELLo")
    assert Markers(out).done("step", k) is None  # an output changed
    dst.unlink()
    assert Markers(out).done("step", k) is None  # an output is gone

    dst.write_text("HELLO")
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)  # a copied run folder keeps its markers (paths inside it are relative)
    assert Markers(moved).done("step", k) is not None


def test_a_killed_runs_temporaries_are_swept(tmp_path):
    (tmp_path / "shards" / ".train.tmp-123").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / ".loaded.parquet.tmp-99").write_text("half")
    (tmp_path / "work" / "loaded.parquet").write_text("whole")
    removed = sweep_leftovers(tmp_path)
    assert len(removed) == 2 and (tmp_path / "work" / "loaded.parquet").exists()
    assert not (tmp_path / "shards" / ".train.tmp-123").exists()


def test_partition_summaries_merge_into_one_stage():
    a = {"name": "augment", "read": 10, "kept": 25, "dropped": 1, "quarantined": 0, "added": 16,
         "reasons": {"identical": 1}, "seconds": 1.0,
         "extra": {"augmenters": ["char_noise"], "sources": 10, "holdout_indexed": 7,
                   "per_kind": {"char_noise": {"made": 15}},
                   "diversity": {"char_noise": {"variants": 15, "distinct_1": 0.5}},
                   "examples": [1, 2, 3]}}  # fmt: skip
    b = {**a, "read": 30, "reasons": {"identical": 2, "near_holdout": 1},
         "extra": {**a["extra"], "sources": 30, "diversity": {"char_noise": {"variants": 45, "distinct_1": 0.1}},
                   "examples": [4, 5, 6]}}  # fmt: skip
    (merged,) = merge_stage_stats([[a], [b]])
    assert merged["read"] == 40 and merged["reasons"] == {"identical": 3, "near_holdout": 1}
    extra = merged["extra"]
    assert extra["sources"] == 40 and extra["holdout_indexed"] == 7 and extra["augmenters"] == ["char_noise"]
    assert extra["per_kind"]["char_noise"]["made"] == 30 and extra["examples"] == [1, 2, 3]
    assert extra["diversity"]["char_noise"] == {"variants": 60, "distinct_1": 0.2}
    assert merge_summaries([{"languages": {"en": 2}}, {"languages": {"en": 3, "de": 1}}]) == {
        "languages": {"en": 5, "de": 1}
    }


def test_precomputed_signatures_dedup_like_hashing_in_place(tmp_path):
    from cleaners.config import DedupConfig
    from cleaners.dedup import MinHashDeduper, SignatureFeed, write_signatures

    texts, _ = near_dup_corpus()
    texts = texts + [" ".join(words(7, 40))] * 2
    df = text_rows(texts)
    files = []
    for i, part in enumerate(df.iter_slices(5)):
        part.write_parquet(tmp_path / f"p{i}.parquet")
        write_signatures(tmp_path / f"p{i}.parquet", tmp_path / f"p{i}.npz", DedupConfig(), 3)
        files.append(tmp_path / f"p{i}.npz")
    fed, hashed = MinHashDeduper(DedupConfig()), MinHashDeduper(DedupConfig())
    fed.use_feed(SignatureFeed(files))
    subset = df.filter(pl.int_range(pl.len()) % 4 != 1)  # as if exact dedup had removed some
    for batch in subset.iter_slices(4):
        a, b = fed(batch), hashed(batch)
        assert a.kept["id"].to_list() == b.kept["id"].to_list()
        assert a.dropped["detail"].to_list() == b.dropped["detail"].to_list()
    state = fed.checkpoint()
    fed(subset.slice(0, 0))
    fed.rollback(state)  # a batch retried after a failure reads its signatures again
    stray = text_rows([texts[0], "not in the files"], "zz")
    assert fed(stray).kept["id"].to_list() == hashed(stray).kept["id"].to_list()  # hashed in place instead
    assert "out of step" in fed.summary()["signature_feed_lost"]
    with pytest.raises(ValueError, match="precomputed signatures use"):
        MinHashDeduper(DedupConfig(num_perm=64)).use_feed(SignatureFeed(files))
    assert np.load(files[0])["sigs"].dtype == np.uint32


def test_the_store_takes_each_content_once_and_commits_by_swapping_latest(tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / ".partial").mkdir(parents=True)
    (inbox / "a.txt").write_text("one")
    (inbox / "b.txt").write_text("one")  # the same content under another name
    (inbox / ".upload.txt").write_text("hidden")
    (inbox / ".partial" / "c.txt").write_text("hidden folder")
    store = CorpusStore(tmp_path / "store")
    found = store.scan([str(inbox)])
    assert [Path(f.path).name for f in found] == ["a.txt"]
    assert store.scan([str(inbox)], min_age_s=3600) == []  # too fresh: maybe still being written

    version, resumed = store.stage(found)
    assert version.name == "v0001" and not resumed and (store.inputs(version) / "inbox" / "a.txt").read_text() == "one"
    assert store.latest() is None and store.ledger_entries() == []  # staged, not applied
    again, resumed = store.stage(found)
    assert again == version and resumed  # the same drop after a failure resumes in its folder

    store.commit(version, {"files": 1}, {})
    assert store.latest() == version and (tmp_path / "store" / "latest").is_symlink()
    assert [e["sha256"] for e in store.ledger_entries()] == [found[0].sha256]
    assert store.scan([str(inbox)]) == []
    store.ledger_path.unlink()  # as if the process died between the swap of latest and the ledger
    assert len(store.reconcile()) == 1 and json.loads(store.ledger_path.read_text())["status"] == "accepted"

    with store.lock(), pytest.raises(StoreBusy), CorpusStore(tmp_path / "store").lock():
        pass


def test_cli_runner_options_reach_the_config(tmp_path):
    from flows.cli import _config, build_parser

    args = build_parser().parse_args(["prepare", "x", "--out", "o", "--workers", "3", "--partition-rows", "500"])
    cfg = _config(args)
    assert (cfg.runner.kind, cfg.runner.workers, cfg.runner.partition_rows) == ("dask", 3, 500)
    args = build_parser().parse_args(["prepare", "x", "--out", "o"])
    assert _config(args).runner.kind == "local"


def test_a_record_the_hasher_fails_on_is_hashed_again_by_near_dedup(tmp_path):
    """Signatures made ahead leave out a record the hasher fails on; near-dedup meets the failure itself, so
    the record is quarantined by near-dedup alone (as without the feed) and the others are deduplicated."""
    from cleaners.config import DedupConfig
    from cleaners.dedup import MinHashDeduper, MinHasher, SignatureFeed, write_signatures

    texts = [" ".join(words(i, 30)) for i in range(6)] + ["BOOM " + " ".join(words(99, 30))]
    df = text_rows(texts)
    df.write_parquet(tmp_path / "p.parquet")
    real = MinHasher.__call__

    def hasher(self, batch_texts):
        if any("BOOM" in t for t in batch_texts):
            raise MemoryError("signature buffer")
        return real(self, batch_texts)

    MinHasher.__call__ = hasher
    try:
        write_signatures(tmp_path / "p.parquet", tmp_path / "p.npz", DedupConfig(), 4)
        assert np.load(tmp_path / "p.npz")["ok"].tolist() == [True] * 6 + [False]
        stage = MinHashDeduper(DedupConfig())
        stage.use_feed(SignatureFeed([tmp_path / "p.npz"]))
        out = stage(df)
    finally:
        MinHasher.__call__ = real
    assert out.kept.height == 6 and out.quarantined["id"].to_list() == ["d6"]
    assert out.quarantined["detail"][0].startswith("MemoryError")


def test_a_run_freezes_what_outlives_its_steps_and_gives_it_all_back_at_the_end():
    import gc

    from tuneprep.runner import frozen_between_steps, release_memory

    assert gc.get_freeze_count() == 0
    with frozen_between_steps():
        release_memory()
        assert gc.get_freeze_count() > 0  # the next step's full collection skips these
        cycle: list = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # what a step leaves as garbage is still collected
    assert gc.get_freeze_count() == 0
    release_memory()
    assert gc.get_freeze_count() == 0

import pytest

from cleaners.decontaminate import DecontamConfig, Decontaminator, ngram_hashes
from cleaners.dedup import MinHasher
from cleaners.heldout import HeldoutIndex
from tuneprep.records import make_records

HELD = (
    "The replacement strap for the Ridgeline pack ships in five days and fits every model made since 2019 without tools"
)
OTHER = (
    "Our stores open at nine on weekdays and at ten on Sundays, except on public holidays when all of them stay closed"
)


def rows(*items):
    return make_records([{"id": i, "source": "s", "format": "text", "text": t, "split": sp} for i, t, sp in items])


def test_ngram_hashes_need_n_words_and_ignore_case_and_punctuation():
    assert ngram_hashes("too short", 13).size == 0
    assert set(ngram_hashes(HELD, 13).tolist()) == set(ngram_hashes(HELD.upper().replace(" ", ", "), 13).tolist())


def test_train_records_sharing_a_13gram_are_dropped_with_the_heldout_id():
    stage = Decontaminator(DecontamConfig(heldout_ngrams="drop"))
    stage.add_heldout(["v1"], [HELD])
    batch = rows(
        ("t1", "Intro sentence here. " + HELD[:110] + " and more words after it", "train"),
        ("t2", OTHER, "train"),
        ("v2", HELD, "validation"),
    )
    out = stage(batch)
    assert out.kept["id"].to_list() == ["t2", "v2"]
    assert out.dropped["reason"].to_list() == ["contaminated_13gram"] and "v1" in out.dropped["detail"][0]
    assert out.kept.height + out.dropped.height == batch.height


def test_near_duplicates_caught_by_minhash_and_report_mode_keeps_everything():
    reworded = HELD.replace("five", "six")
    stage = Decontaminator(DecontamConfig(ngram=25), HeldoutIndex(MinHasher(128, 3, "word", 1), 0.5))
    stage.add_heldout(["v1"], [HELD])
    out = stage(rows(("t1", reworded, "train"), ("t2", OTHER, "train")))
    assert out.dropped["reason"].to_list() == ["contaminated_near_dup"]
    report = Decontaminator(DecontamConfig(ngram=25), HeldoutIndex(MinHasher(128, 3, "word", 1), 0.5))
    report.cfg = DecontamConfig(ngram=25, action="report")
    report.add_heldout(["v1"], [HELD])
    out = report(rows(("t1", reworded, "train")))
    assert out.kept.height == 1 and out.dropped.height == 0 and report.summary()["flagged"] == 1


def test_chats_are_checked_turn_by_turn():
    stage = Decontaminator(DecontamConfig(heldout_ngrams="drop"))
    stage.add_heldout(["v1"], [HELD])
    chat = make_records(
        [
            {
                "id": "c",
                "source": "s",
                "format": "chat",
                "split": "train",
                "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": HELD}],
            }
        ]
    )
    assert stage(chat).dropped.height == 1


def test_stock_phrasing_shared_by_many_train_records_is_not_leakage():
    stage = Decontaminator(DecontamConfig(max_train_docs=2, heldout_ngrams="drop"))
    stage.add_heldout(["v1"], [HELD])
    train = [("t1", HELD + " one", "train"), ("t2", HELD + " two", "train"), ("t3", HELD + " three", "train")]
    stage.count_train([t for _, t, _ in train])
    assert stage(rows(*train)).dropped.height == 0 and stage.summary()["common_ngrams_ignored"] > 0


def _corpus(seed=7, n_held=60, n_train=300):
    """Random short docs over a small vocabulary, with held-out spans planted in train docs: some once, one
    (a stock phrase) in many train docs, and one twice inside the same few train docs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(400)]

    def doc(k):
        return [vocab[j] for j in rng.integers(0, len(vocab), k)]

    held = [doc(int(rng.integers(3, 40))) for _ in range(n_held)]
    stock, twice = held[1][:20], held[2][:12]
    train = []
    for i in range(n_train):
        words = doc(int(rng.integers(0, 40)))
        if i % 7 == 0:
            src = held[int(rng.integers(0, n_held))]
            at = int(rng.integers(0, max(1, len(src) - 8)))
            words[len(words) // 2 : len(words) // 2] = src[at : at + int(rng.integers(5, 15))]
        if i % 9 == 0:
            words += stock
        if i % 50 == 0:
            words = twice + words + twice
        train.append(words)
    return [(f"v{i}", " ".join(w)) for i, w in enumerate(held)], [(f"t{i}", " ".join(w)) for i, w in enumerate(train)]


def _reference(held, train, n, min_shared, max_train_docs):
    """The rule, in memory and one doc at a time: {train id: detail}, distinct held-out n-grams, stock n-grams."""
    owner = {}
    for i, (_, text) in enumerate(held):
        for g in ngram_hashes(text, n).tolist():
            owner.setdefault(g, i)
    train_grams = [set(ngram_hashes(t, n).tolist()) & owner.keys() for _, t in train]
    df = {}
    for grams in train_grams:
        for g in grams:
            df[g] = df.get(g, 0) + 1
    common = {g for g, c in df.items() if max_train_docs is not None and c > max_train_docs}
    out = {}
    for (tid, _), grams in zip(train, train_grams, strict=True):
        shared = grams - common
        if len(shared) >= min_shared:
            out[tid] = f"{len(shared)} shared {n}-grams with {held[min(owner[g] for g in shared)][0]}"
    return out, len(owner), len(common)


def _run(held, train, cfg, workdir=None, partitions=4, count=True, batch=64, spill_bytes=64 << 20):
    stage = Decontaminator(cfg, workdir=workdir, partitions=partitions, spill_bytes=spill_bytes)
    for i in range(0, len(held), 25):
        stage.add_heldout([h for h, _ in held[i : i + 25]], [t for _, t in held[i : i + 25]])
    if count:
        for i in range(0, len(train), batch):
            stage.count_train([t for _, t in train[i : i + batch]])
    found = {}
    for i in range(0, len(train), batch):  # held-out rows mixed in, as the pipeline's batches have them
        out = stage(rows(*[(r, t, "train") for r, t in train[i : i + batch]], *[(h, t, "test") for h, t in held[:3]]))
        found.update(zip(out.dropped["id"].to_list(), out.dropped["detail"].to_list(), strict=True))
    return stage, found


@pytest.mark.parametrize(
    "spill_bytes", [0, 1000, 64 << 20], ids=["every-batch-on-disk", "spilled-then-rest", "in-memory"]
)
def test_partitioned_join_matches_an_in_memory_reference(tmp_path, spill_bytes):
    held, train = _corpus()
    cfg = DecontamConfig(ngram=5, min_shared=2, max_train_docs=3, heldout_ngrams="drop")
    want, n_grams, n_common = _reference(held, train, 5, 2, 3)
    assert len(want) > 10 and n_common > 5  # the planted overlaps and stock phrase are there
    stage = Decontaminator(cfg, workdir=tmp_path / "w", partitions=4, spill_bytes=spill_bytes)
    stage.add_heldout([h for h, _ in held], [t for _, t in held])
    stage.count_train([t for _, t in train])
    on_disk = 0 if spill_bytes > 1 << 20 else 4  # rows wait in memory until they pass spill_bytes
    assert (
        len(list((tmp_path / "w").glob("t*.bin"))) == on_disk and len(list((tmp_path / "w").glob("h*.bin"))) == on_disk
    )
    stage.close()
    stage, found = _run(held, train, cfg, tmp_path / "w", partitions=4, spill_bytes=spill_bytes)
    assert found == want
    s = stage.summary()
    assert (s["flagged"], s["heldout_ngrams"], s["common_ngrams_ignored"]) == (len(want), n_grams, n_common)
    stage, found = _run(held, train, cfg, tmp_path / "one", partitions=1)
    assert found == want
    # without count_train each batch is joined on its own and nothing counts as stock phrasing
    stage, found = _run(held, train, cfg, tmp_path / "w", partitions=8, count=False)
    assert found == _reference(held, train, 5, 2, None)[0] and stage.summary()["heldout_ngrams"] == n_grams


def test_stock_phrase_counted_once_per_train_record_across_partitions(tmp_path):
    phrase = HELD.split()
    n_grams = len(phrase) - 13 + 1
    held = [("v1", HELD), ("v2", OTHER)]
    twice = [(f"t{i}", f"{HELD} filler {HELD}") for i in range(2)]  # 2 records: not stock phrasing
    leaked = [(f"s{i}", f"{OTHER} number {i}") for i in range(3)]  # 3 records: stock phrasing
    cfg = DecontamConfig(max_train_docs=2, heldout_ngrams="drop")
    stage, found = _run(held, twice + leaked, cfg, tmp_path / "w", partitions=16, batch=2)
    assert len({int(g) >> 60 for g in ngram_hashes(OTHER, 13)}) > 1  # the phrase's n-grams span partitions
    assert found == {"t0": f"{n_grams} shared 13-grams with v1", "t1": f"{n_grams} shared 13-grams with v1"}
    assert stage.summary()["common_ngrams_ignored"] == len(OTHER.split()) - 13 + 1


def test_work_folder_is_removed_by_close_and_after_the_step(tmp_path):
    from flows import steps as pipeline
    from flows.config import PipelineConfig
    from flows.layout import RunPaths
    from tuneprep.runner import ParquetSink

    stage = Decontaminator(DecontamConfig(heldout_ngrams="drop"), workdir=tmp_path / "w", spill_bytes=0)
    stage.add_heldout(["v1"], [HELD])
    stage.count_train([HELD, OTHER])
    assert any((tmp_path / "w").iterdir())
    assert stage(rows(("t1", HELD, "train"), ("t2", OTHER, "train"))).dropped["id"].to_list() == ["t1"]
    stage.close()
    assert not (tmp_path / "w").exists() and stage.summary()["flagged"] == 1
    temp = Decontaminator(DecontamConfig(), spill_bytes=0)
    temp.add_heldout(["v1"], [HELD])
    folder = temp._dir
    assert folder.exists()
    temp.close()
    assert not folder.exists()

    paths = RunPaths(tmp_path / "run").make()
    (paths.work / "decontaminate").mkdir()
    (paths.work / "decontaminate" / "t00000.bin").write_bytes(b"\x01" * 1200)  # left by a killed run
    sink = ParquetSink(paths.stage_file("split"))
    sink.write(rows(("v1", HELD, "validation"), ("t1", "Intro. " + HELD, "train"), ("t2", OTHER, "train")))
    sink.close()
    cfg = PipelineConfig.model_validate({"inputs": ["unused"], "decontaminate": {"heldout_ngrams": "drop"}})
    st = pipeline.decontaminate_step(cfg, paths, lambda _m: None)
    assert st["dropped"] == 1 and st["extra"]["flagged"] == 1
    assert not (paths.work / "decontaminate").exists()


def test_a_stale_work_folder_from_a_killed_run_changes_nothing(tmp_path):
    import numpy as np

    held, train = _corpus(seed=3)
    cfg = DecontamConfig(ngram=5, min_shared=1, max_train_docs=3, heldout_ngrams="drop")
    _, clean = _run(held, train, cfg, tmp_path / "clean")
    stale = tmp_path / "stale"
    stale.mkdir()
    junk = np.zeros(500, dtype=[("gram", "<u8"), ("doc", "<i4")])
    junk["gram"] = [int(g) for g in ngram_hashes(train[0][1], 5)][:1] * 500
    for side in "htu":
        for p in range(4):
            junk.tofile(stale / f"{side}{p:05d}.bin")
    _, again = _run(held, train, cfg, stale)
    assert again == clean and len(clean) > 10


# --- leakage, not phrasing ------------------------------------------------------------------------------


def _chat(rid, split, *turns):
    roles = ["user", "assistant"] * len(turns)
    return {
        "id": rid,
        "source": "s",
        "format": "chat",
        "split": split,
        "messages": [{"role": r, "content": t} for r, t in zip(roles, turns, strict=False)],
    }


def test_a_turn_spanning_stock_phrase_no_longer_drops_a_record():
    """The joiner's "assistant: … with\\nuser: no that…" made 13-grams across two turns; n-grams stay in a turn."""
    closing = "Is there anything else I can help you with"  # 9 words, then the user's answer
    held = [_chat("v1", "test", "Where is my parcel", f"It left Leeds today. {closing}", "No that is all thanks")]
    train = [_chat("t1", "train", "Can I change my address", f"Yes, it is done. {closing}", "No that is all thanks")]
    joined = "assistant: " + closing + "\nuser: No that is all thanks"
    assert ngram_hashes(joined, 13).size > 0  # the old joined text held a 13-gram across the two turns
    for heldout_ngrams in ("drop", "report"):
        stage = Decontaminator(DecontamConfig(heldout_ngrams=heldout_ngrams))
        held_df = make_records(held)
        from cleaners.decontaminate import segments

        stage.add_heldout(held_df["id"].to_list(), ["x"], segments(held_df))
        out = stage(make_records(train))
        assert out.dropped.height == 0 and stage.summary()["flagged"] == 0


def test_by_default_shared_ngrams_are_reported_and_near_duplicates_dropped():
    near = HELD.replace("without tools", "without any tools")
    shares = f"{OTHER}. As our guide says, {' '.join(HELD.split()[:15])}, which is good to know for a trip"
    batch = rows(("t1", shares, "train"), ("t2", near, "train"))
    stage = Decontaminator(DecontamConfig(), HeldoutIndex(MinHasher(128, 3, "word", 1), 0.7))
    stage.add_heldout(["v1"], [HELD])
    out = stage(batch)
    assert out.dropped["id"].to_list() == ["t2"] and out.dropped["reason"].to_list() == ["contaminated_near_dup"]
    s = stage.summary()
    assert (
        s["flagged"] == 2
        and s["removed"] == 1
        and s["by_reason"] == {"contaminated_13gram": 1, "contaminated_near_dup": 1}
    )
    assert (
        s["top_ngrams"] and s["top_ngrams"][0]["train_records"] >= 1 and len(s["top_ngrams"][0]["ngram"].split()) == 13
    )


def test_stock_phrase_cut_off_scales_with_the_corpus():
    stage = Decontaminator(DecontamConfig(stock_share=0.01, stock_min_records=10))
    stage.count_train(["x"] * 500)
    assert stage.cutoff() == 10  # the floor
    stage = Decontaminator(DecontamConfig(stock_share=0.01, stock_min_records=10))
    stage.count_train(["x"] * 3000)
    assert stage.cutoff() == 30  # a share of the records
    assert Decontaminator(DecontamConfig(max_train_docs=4)).cutoff() is None  # not counted: no cut-off yet


def test_top_shared_ngrams_are_listed_with_counts_and_words(tmp_path):
    held = [("v1", HELD), ("v2", OTHER)]
    train = [(f"s{i}", f"{OTHER} number {i}") for i in range(12)] + [("t0", f"{HELD} filler")]
    stage = Decontaminator(DecontamConfig(stock_min_records=10, top_ngrams=40), partitions=4)

    def batches():
        yield rows(*[(h, t, "test") for h, t in held], *[(r, t, "train") for r, t in train])

    stage.fit(batches)
    out = stage(rows(*[(r, t, "train") for r, t in train]))
    assert out.dropped.height == 0  # shared n-grams in the corpus are reported, not dropped
    top = stage.summary()["top_ngrams"]
    assert top[0]["train_records"] == 12 and top[0]["stock"] and top[0]["ngram"] in OTHER.lower().replace(",", "")
    assert any(t["train_records"] == 1 and not t["stock"] for t in top)


def test_an_ngram_shared_with_an_against_file_removes_its_train_record(tmp_path):
    from flows import steps as pipeline
    from flows.config import PipelineConfig
    from flows.layout import RunPaths
    from tuneprep.runner import ParquetSink

    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "eval.jsonl").write_text('{"text": "' + HELD + '"}\n{"text": "something else entirely here"}\n')
    paths = RunPaths(tmp_path / "run").make()
    sink = ParquetSink(paths.stage_file("split"))
    sink.write(
        rows(
            ("t1", "We wrote: " + HELD[:120] + " and then some more words", "train"),
            ("t2", OTHER, "train"),
            ("v1", "An unrelated validation record about opening hours on weekdays", "validation"),
        )
    )
    sink.close()
    cfg = PipelineConfig.model_validate({"inputs": ["unused"], "decontaminate": {"against": [str(bench)]}})
    logs: list[str] = []
    st = pipeline.decontaminate_step(cfg, paths, logs.append)
    assert st["dropped"] == 1 and st["reasons"] == {"contaminated_external_13gram": 1}
    assert st["extra"]["against"]["records"] == 2 and st["extra"]["against"]["files"] == 1
    import polars as pl

    dropped = pl.read_parquet(paths.dropped / "decontaminate.parquet")
    assert dropped["id"].to_list() == ["t1"] and "eval.jsonl" in dropped["detail"][0]


def test_the_step_warns_loudly_when_decontamination_moves_the_split():
    from flows.steps import split_shift

    ratios = {"train": 0.8, "validation": 0.1, "test": 0.1}
    fine = split_shift(
        {"train": 80, "validation": 10, "test": 10}, {"train": 79, "validation": 10, "test": 10}, ratios, 0.02
    )
    assert "warning" not in fine
    bad = split_shift(
        {"train": 80, "validation": 10, "test": 10}, {"train": 50, "validation": 10, "test": 10}, ratios, 0.02
    )
    assert "train" in bad["warning"] and bad["shares"]["train"]["after"] < 0.75


def test_the_clean_steps_signatures_are_read_not_hashed_again(tmp_path, monkeypatch):
    """With the clean step's MinHash files, the held-out and train records are not hashed again, and the
    verdicts are those of hashing them here; a record not in the files is hashed, and the summary says so."""
    import numpy as np
    import polars as pl

    from cleaners.config import DedupConfig, HeldoutConfig
    from cleaners.dedup import SignatureFeed, write_signatures

    reworded = HELD + " today"
    batch = rows(
        ("v1", HELD, "validation"),
        ("t1", reworded, "train"),
        ("t2", OTHER, "train"),
        ("t3", OTHER.replace("nine", "eight"), "train"),
        ("x1", "A test record about something else entirely, with enough words to shingle.", "test"),
    )
    batch.write_parquet(tmp_path / "part.parquet")
    write_signatures(tmp_path / "part.parquet", tmp_path / "part.npz", DedupConfig(), 2)

    def stage(feed: bool, records: pl.DataFrame = batch) -> Decontaminator:
        d = Decontaminator(DecontamConfig(), HeldoutIndex.from_config(HeldoutConfig(), DedupConfig()))
        if feed:
            d.use_feed(lambda: SignatureFeed([tmp_path / "part.npz"]))
        d.fit(lambda: [records])
        return d

    hashed = stage(False)
    expected = hashed(batch)
    real, hashes = MinHasher.signatures, []

    def counted(self, texts):
        hashes.append(len(texts))
        return real(self, texts)

    monkeypatch.setattr(MinHasher, "signatures", counted)
    monkeypatch.setattr(MinHasher, "__call__", counted)
    fed = stage(True)
    state = fed.checkpoint()
    fed(batch)
    fed.rollback(state)  # a batch retried after a failure reads its signatures again
    got = fed(batch)
    assert not sum(hashes)  # every signature came from the file
    assert got.dropped["id"].to_list() == expected.dropped["id"].to_list() == ["t1"]
    assert got.dropped["detail"].to_list() == expected.dropped["detail"].to_list()
    assert "signature_feed_lost" not in fed.summary()
    more = pl.concat([batch, rows(("zz", reworded, "train"))])  # zz is not in the files: hashed here
    monkeypatch.undo()
    fed, hashed = stage(True, more), stage(False, more)
    assert fed(more).dropped["id"].to_list() == hashed(more).dropped["id"].to_list() == ["t1", "zz"]
    assert "out of step" in fed.summary()["signature_feed_lost"]
    other = Decontaminator(DecontamConfig(), HeldoutIndex.from_config(HeldoutConfig(), DedupConfig(num_perm=64)))
    other.use_feed(lambda: SignatureFeed([tmp_path / "part.npz"]))  # other MinHash settings: hashed, not refused
    assert "precomputed signatures use" in other.summary()["signature_feed_lost"]
    assert np.load(tmp_path / "part.npz")["ids"].tolist() == batch["id"].to_list()

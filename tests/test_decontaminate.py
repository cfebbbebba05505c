from cleaners.decontaminate import DecontamConfig, Decontaminator, ngram_hashes
from cleaners.dedup import MinHasher
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
    stage = Decontaminator(DecontamConfig(near_threshold=None))
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
    stage = Decontaminator(DecontamConfig(ngram=25, near_threshold=0.5), minhash=MinHasher(128, 3, "word", 1))
    stage.add_heldout(["v1"], [HELD])
    out = stage(rows(("t1", reworded, "train"), ("t2", OTHER, "train")))
    assert out.dropped["reason"].to_list() == ["contaminated_near_dup"]
    report = Decontaminator(DecontamConfig(action="report", near_threshold=None))
    report.add_heldout(["v1"], [HELD])
    out = report(rows(("t1", HELD, "train")))
    assert out.kept.height == 1 and out.dropped.height == 0 and report.summary()["flagged"] == 1


def test_chats_are_checked_on_their_joined_text():
    stage = Decontaminator(DecontamConfig(near_threshold=None))
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
    stage = Decontaminator(DecontamConfig(near_threshold=None, max_train_docs=2))
    stage.add_heldout(["v1"], [HELD])
    train = [("t1", HELD + " one", "train"), ("t2", HELD + " two", "train"), ("t3", HELD + " three", "train")]
    stage.count_train([t for _, t, _ in train])
    assert stage(rows(*train)).dropped.height == 0 and stage.summary()["common_ngrams_ignored"] > 0

"""Tests for augment's batch analysis, quality gates, held-out leakage, rates, provenance and accounting."""

from __future__ import annotations

import json
import multiprocessing
import random
import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from augment import (
    Augment,
    AugmentConfig,
    Augmenter,
    CaseNoise,
    CharNoise,
    PunctNoise,
    TextBatch,
    WordNoise,
    edit_count,
    seed_for,
)
from augment.gates import Diversity, edit_rate
from augment.text import FORMAT_ONLY, reference_spans
from cleaners.heldout import HeldoutIndex
from tuneprep.records import make_records
from tuneprep.runner import run_stages

NAMES = ["Rosalind", "Northwind Pro"]
PEOPLE = ["Marcus", "Priya", "Tomasz", "Aiko"]
NOUNS = ["package", "parcel", "kettle", "jacket", "lamp", "invoice", "order", "filter"]
VERBS = ["arrived", "broke", "shipped", "stopped", "failed", "returned"]
ADJ = ["large", "small", "quick", "heavy", "cheap", "bright", "quiet"]


def corpus(n: int = 120, seed: int = 0) -> list[str]:
    """Sentences of 14-20 words with a price, a date, an e-mail or a name in each."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        p, noun, verb, adj = rng.choice(PEOPLE), rng.choice(NOUNS), rng.choice(VERBS), rng.choice(ADJ)
        out.append(
            f"The {adj} {noun} that {p} ordered for ${rng.randint(5, 500)}.{rng.randint(10, 99)} {verb} "
            f"on March {rng.randint(1, 28)}, 2024, so she wrote to help{i}@northwind.example about the {noun} again."
        )
    return out


def long_corpus(n: int, seed: int = 0) -> list[str]:
    """Documents of ~55 words: near-duplicate checks need more than a sentence of shingles."""
    sentences = corpus(3 * n, seed)
    return [" ".join(sentences[3 * i : 3 * i + 3]) for i in range(n)]


def _seeds(n: int, base: int = 0) -> list[int]:
    return [seed_for(f"rec{i}", base, "test") for i in range(n)]


@pytest.fixture(scope="module")
def synonym_cls():
    from augment.resources import WordNetUnavailable, ensure_wordnet

    try:
        ensure_wordnet(try_download=False)
    except WordNetUnavailable as e:
        pytest.skip(f"WordNet unavailable: {e}")
    from augment import SynonymSwap

    return SynonymSwap


# --- batch analysis -------------------------------------------------------------------------------


def test_batch_spans_match_the_reference_regex() -> None:
    texts = [
        *corpus(40),
        "Save 15 % now, or 20% later; the 5th of March, 2024 at 10:30 costs € 5,000.50 — see www.example.com/x.",
        "<b>bold</b> %(name)s ${var} [[link]] {{ slot }} v1.2-beta abc-123 COVID-19 NW-BROOKSIDE-FILTER PFC-free",
        "Order #NW-48213 for $75, ship by 2024-03-12 to rosalind.o+tag@mail.example (https://x.example/a?b=1).",
        "",
        "Ask ROSALIND or rosalind's team about the northwind pro; Northwind Professional is another thing.",
        "İstanbul office: call Rosalind at 555-0100.",  # lowering İ changes the length: regex path for names
        "nul\x00inside 42",
    ]
    batch = TextBatch(texts, NAMES, rules=FORMAT_ONLY)
    for i, text in enumerate(texts):
        if "\x00" in text:
            assert not batch.usable[i] and batch.spans(i) == []
            continue
        assert batch.spans(i) == reference_spans(text, NAMES), text
    covered = [texts[-3][s:e] for s, e in batch.spans(len(texts) - 3)]
    assert "ROSALIND" in covered and "northwind pro" in covered and "Northwind Professional" not in " ".join(covered)
    many = ["Rosalind", "Marcus", "Priya", "Tomasz", "Aiko", "Fatima", "Jonas", "Lucia", "Kwame", "Ingrid"]
    many += ["Northwind Pro", "Cedar Hollow", "Glowworm 300", "Brookside Filter", "Summit Lite", "Ember Stove"]
    many += ["#1 Choice", "O'Neil"]
    texts = [t for t in texts if "İ" not in t]  # the numpy path, not the regex one
    texts += [
        f"{p} met {q} at the {r} stand, not the Summit Lite."
        for p, q, r in zip(many, many[::-1], many[9:], strict=False)
    ]
    texts += ["The strong jacket from Brookside Filter costs $46.33, but Jonas says the new orders arrived."]
    texts += ["O'Neil bought a Glowworm 300 and the #1 Choice kit; glowworm 3000 is not one.", "Rosalind"]
    batch = TextBatch(texts, many, rules=FORMAT_ONLY)
    for i, text in enumerate(texts):
        if batch.usable[i]:
            assert batch.spans(i) == reference_spans(text, many), text


def test_urls_and_dollar_placeholders_match_the_reference_regex() -> None:
    """URLs are found from the colons and the dots, "${" from its brace: wherever they sit in a text."""
    texts = [
        "http://a.b/c",
        "see https://x.org/p?q=1. now",
        "ftp://f.g and www.h.i, then http://www.j.k/l",
        "HTTP://UP.PER",
        "wwww.four.dots awww.x.y www.",
        "a${b} $${c} ${d ${e}",
        "://",
        "mailto:x@y.z at 10:30, a:b//c",
        "www.x.com",
    ]
    batch = TextBatch(texts, rules=FORMAT_ONLY)
    for i, text in enumerate(texts):
        assert batch.spans(i) == reference_spans(text), text


def test_edit_count_clamps() -> None:
    assert edit_count(20, 0.1) == 2 and edit_count(3, 0.1) == 1 and edit_count(3, 0.1, minimum=0) == 0
    assert edit_count(100, 0.5, maximum=7) == 7 and edit_count(2, 0.9, minimum=5) == 2


# --- determinism across batch sizes and worker processes -------------------------------------------


def _noise() -> list[Augmenter]:
    return [
        CharNoise(rate=0.05, protect_names=NAMES),
        WordNoise(rate=0.2, protect_names=NAMES),
        CaseNoise(rate=0.2, protect_names=NAMES),
        PunctNoise(rate=0.2, protect_names=NAMES),
    ]


def _run_half(texts: list[str], seeds: list[int]) -> list[list[str | None]]:
    return [aug(texts, seeds) for aug in _noise()]


def test_same_variants_for_any_batch_size_and_worker_count() -> None:
    texts = corpus(60)
    seeds = _seeds(len(texts))
    whole = _run_half(texts, seeds)
    for size in (1, 7, 33):
        parts = [_run_half(texts[i : i + size], seeds[i : i + size]) for i in range(0, len(texts), size)]
        assert [sum((p[k] for p in parts), []) for k in range(len(whole))] == whole
    half = len(texts) // 2
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        a, b = pool.map(_run_half, [texts[:half], texts[half:]], [seeds[:half], seeds[half:]])
    assert [x + y for x, y in zip(a, b, strict=True)] == whole


def test_generate_gives_n_distinct_variants() -> None:
    texts = corpus(5)
    aug = WordNoise(rate=0.2, protect_names=NAMES)
    out = aug.generate(texts, [f"id{i}" for i in range(5)], run_seed=3, n=4)
    assert all(len(v) >= 3 and len(set(v)) == len(v) and texts[i] not in v for i, v in enumerate(out))
    assert aug.generate(texts[:2], ["id0", "id1"], run_seed=3, n=4) == out[:2]


# --- rates -----------------------------------------------------------------------------------------


def _changed_words(a: str, b: str) -> int:
    return round(edit_rate(a, b) * len(a.split()))


def test_word_level_augmenters_change_about_their_rate(synonym_cls) -> None:
    texts = corpus(80)
    seeds = _seeds(len(texts))
    batch = TextBatch(texts, NAMES)
    ws, we, _ = batch.free_words()
    free_words = ws.size
    augs = {
        "word swap": WordNoise(rate=0.2, ops=["swap"], protect_names=NAMES),
        "word delete": WordNoise(rate=0.2, ops=["delete"], protect_names=NAMES),
        "case": CaseNoise(rate=0.2, protect_names=NAMES),
        "synonym": synonym_cls(rate=0.2, max_words=100, protect_names=NAMES),
    }
    for name, aug in augs.items():
        outs = aug(texts, seeds)
        changed = sum(_changed_words(t, o or t) for t, o in zip(texts, outs, strict=True))
        share = changed / free_words
        low = 0.05 if name == "synonym" else 0.1  # synonyms: only words WordNet is sure about
        assert low <= share <= 0.45, (name, share)  # a swap moves two words: up to 2x the rate
        if name in ("word delete", "case"):
            assert 0.1 <= share <= 0.3, (name, share)


def test_char_and_punct_noise_rates() -> None:
    texts = corpus(80)
    seeds = _seeds(len(texts))
    batch = TextBatch(texts, NAMES)
    ws, we, _ = batch.free_words()
    letters = int(((we - ws)[(we - ws) >= 3]).sum())
    outs = CharNoise(rate=0.2, ops=["substitute"], protect_names=NAMES)(texts, seeds)
    diffs = sum(sum(x != y for x, y in zip(t, o, strict=True)) for t, o in zip(texts, outs, strict=True))
    assert 0.15 <= diffs / letters <= 0.25
    per_op = CharNoise(ops={"delete": 0.05, "insert": 0.05}, protect_names=NAMES)
    assert per_op.rate == pytest.approx(0.1) and per_op.params()["ops"] == {"delete": 0.05, "insert": 0.05}
    gaps = sum(len(t.split()) - 1 for t in texts)
    outs = PunctNoise(rate=0.2, ops=["insert"], protect_names=NAMES)(texts, seeds)
    added = sum(
        len(re.findall(r"[.,;:!?]", o)) - len(re.findall(r"[.,;:!?]", t)) for t, o in zip(texts, outs, strict=True)
    )
    assert 0.1 <= added / gaps <= 0.3


def test_case_and_punct_noise_keep_protected_spans() -> None:
    texts = corpus(30)
    batch = TextBatch(texts, NAMES)
    for aug in (CaseNoise(rate=0.5, protect_names=NAMES), PunctNoise(rate=0.5, protect_names=NAMES)):
        for i, out in enumerate(aug(texts, _seeds(len(texts)))):
            assert out is not None and out != texts[i]
            for s, e in batch.spans(i):
                assert texts[i][s:e] in out, (aug.kind, texts[i][s:e], out)


# --- the stage: gates, leakage, accounting ---------------------------------------------------------


def _frame(texts: Sequence[str], split: str = "train", prefix: str = "t") -> pl.DataFrame:
    return make_records(
        {
            "id": f"{prefix}{i}",
            "source": "a.txt",
            "format": "text",
            "text": t,
            "group_id": f"g{prefix}{i}",
            "split": split,
        }
        for i, t in enumerate(texts)
    )


class _Fixed(Augmenter):
    """Returns a fixed rewrite per text, to drive each gate."""

    kind = "fixed"

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def augment(self, texts: Sequence[str], seeds: Sequence[int], spans=None) -> list[str | None]:
        return [self.fn(t) for t in texts]


def test_fidelity_gate_rejects_with_reasons() -> None:
    texts = [
        "Your order of $129.99 arrived on March 5, 2024 in good shape.",
        "The small kettle arrived late but works well.",
        "Please send the invoice again to help@northwind.example today.",
        "We like the quiet lamp a lot.",
    ]

    def rewrite(t: str) -> str:
        if "$" in t:
            return t.replace("$129.99", "$130")  # a price changed
        if "kettle" in t:
            return t + " " + t + " " + t  # three times as long
        if "invoice" in t:
            return t.replace("send", "mail")  # fine by length and spans; the embedder rejects it
        return t.replace("quiet", "silent")

    def embed(batch: Sequence[str]) -> np.ndarray:
        return np.array([[1.0, 0.0] if "mail the" not in t else [0.0, 1.0] for t in batch])

    stage = Augment(AugmentConfig(), augmenters=[_Fixed(rewrite)], embedder=embed)
    out = stage(_frame(texts))
    reasons = dict(zip(out.dropped["aug_of"], out.dropped["reason"], strict=True))
    assert reasons == {"t0": "aug_protected_lost", "t1": "aug_length_ratio", "t2": "aug_low_similarity"}
    details = dict(zip(out.dropped["aug_of"], out.dropped["detail"], strict=True))
    assert "$129.99" in details["t0"] and "3." in details["t1"] and "cosine" in details["t2"]
    assert out.kept.filter(pl.col("aug_of").is_not_null())["text"].to_list() == ["We like the silent lamp a lot."]
    assert stage.stats["fixed"]["made"] == 1 and stage.stats["fixed"]["aug_protected_lost"] == 1


def test_variants_near_a_holdout_text_are_dropped() -> None:
    train = long_corpus(20, seed=1)
    leaked = train[3] + " Thanks!"  # a validation record that near-copies train[3]
    other = "A completely different validation sentence about tents and stoves in the mountains."
    stage = Augment(
        AugmentConfig(variants_per_record=2),
        augmenters=[CharNoise(rate=0.01, protect_names=NAMES)],
        holdout_texts=[leaked, other],
        holdout_ids=["v_leak", "v_other"],
    )
    assert stage.summary()["holdout_indexed"] == 2
    out = stage(_frame(train))
    near = out.dropped.filter(pl.col("reason") == "aug_near_holdout")
    assert set(near["aug_of"]) == {"t3"} and near["detail"].str.contains("v_leak").all()
    index = HeldoutIndex()
    index.add([leaked])
    variants = out.kept.filter(pl.col("aug_of").is_not_null())["text"].to_list()
    assert variants and all(m is None for m in index.match(variants))
    assert stage.set_holdout([]) == 0


def test_no_variant_crosses_splits_and_accounting_balances(tmp_path: Path) -> None:
    train = long_corpus(30, seed=2)
    df = pl.concat(
        [_frame(train), _frame(long_corpus(5, seed=3), "validation", "v"), _frame(long_corpus(5, seed=4), "test", "x")]
    )
    src = tmp_path / "split.parquet"
    df.write_parquet(src)
    holdout = df.filter(pl.col("split") != "train")["text"].to_list()
    holdout.append(train[0] + " Thanks!")  # makes one train record's variants leak
    stage = Augment(
        AugmentConfig(variants_per_record=2),
        augmenters=[_Fixed(lambda t: t + " Indeed."), WordNoise(rate=0.02, ops=["swap"], protect_names=NAMES)],
        holdout_texts=holdout,
    )
    (st,) = run_stages([stage], src, tmp_path / "out.parquet", tmp_path / "dropped", batch_size=16)
    out = pl.read_parquet(tmp_path / "out.parquet")
    dropped = pl.read_parquet(tmp_path / "dropped" / "augment.parquet")
    variants = out.filter(pl.col("aug_of").is_not_null())
    assert variants.height > 0 and (variants["split"] == "train").all()
    src_split = dict(zip(df["id"], df["split"], strict=True))
    assert all(src_split[a] == "train" for a in variants["aug_of"])
    assert st.read == df.height and st.kept == out.height and st.dropped == dropped.height
    assert st.added == variants.height + dropped.height and st.balanced
    assert {"aug_identical", "aug_near_holdout"} <= set(dropped["reason"])
    assert {json.loads(p)["kind"] for p in variants["aug_params"]} == {"fixed", "word_noise"}
    summary = st.extra
    assert summary["per_kind"]["word_noise"]["made"] + summary["per_kind"]["fixed"]["made"] == variants.height
    assert 0 < summary["diversity"]["word_noise"]["edit_rate"] < 1


def test_stage_is_deterministic_with_gates_across_batch_sizes() -> None:
    df = _frame(corpus(24, seed=5))
    holdout = [corpus(24, seed=5)[2].replace("again", "once more")]

    def run(size: int) -> list[tuple]:
        stage = Augment(
            AugmentConfig(variants_per_record=2),
            seed=9,
            augmenters=[CharNoise(rate=0.05), WordNoise(rate=0.2)],
            holdout_texts=holdout,
        )
        kept, dropped = [], []
        for i in range(0, df.height, size):
            out = stage(df.slice(i, size))
            kept += out.kept.select("id", "text", "aug_params").rows()
            dropped += out.dropped.select("id", "reason").rows()
        return sorted(kept, key=str) + sorted(dropped, key=str)

    assert run(24) == run(5) == run(1)


def test_summary_examples_are_short_and_diverse() -> None:
    long_text = " ".join(["word"] * 80) + " end."
    texts = [long_text, *corpus(6, seed=6)]
    stage = Augment(AugmentConfig(examples_per_kind=2), augmenters=[WordNoise(rate=0.2)])
    stage(_frame(texts))
    examples = stage.summary()["examples"]
    assert len(examples) == 2 and all(8 <= len(e["source"].split()) <= 60 for e in examples)


def test_diversity_figures() -> None:
    d = Diversity()
    d.add("a b c d", "a b c d")
    d.add("a b c d", "d c b a")
    s = d.summary()
    assert s["distinct_1"] == 0.5 and s["distinct_2"] == pytest.approx(6 / 6) and s["edit_rate"] == pytest.approx(0.5)


def test_report_renders_augmentation_figures() -> None:
    from flows.report import render

    aug = {
        "name": "augment",
        "read": 4,
        "kept": 6,
        "dropped": 1,
        "quarantined": 0,
        "added": 3,
        "reasons": {"aug_near_holdout": 1},
        "seconds": 0.1,
        "extra": {
            "per_kind": {"synonym": {"made": 2, "failed": 1, "aug_identical": 0, "aug_near_holdout": 1}},
            "diversity": {"synonym": {"variants": 2, "distinct_1": 0.8, "distinct_2": 0.9, "edit_rate": 0.12}},
            "examples": [{"kind": "synonym", "source": "the big dog ran", "variant": "the large dog ran"}],
            "skipped": {"backtranslation": "no backend"},
        },
    }
    manifest = {"stages": [aug], "accounting": {"ok": True}, "inputs": [], "tokenizer": {}}
    text = render(manifest, None)
    section = text[text.index("## Augmentation") :]
    assert "| synonym | 2 | 1 | 1 |" in section and "near_holdout 1" in section
    assert "0.800" in section and "0.120" in section
    assert "<del>big</del>" in section and "backtranslation skipped" in section


def test_many_addresses_take_the_numpy_domain_rule_and_match_the_regex_one() -> None:
    """A batch with many @ finds e-mail domains in numpy; one text at a time, a regex per @: the same spans."""
    rng = random.Random(0)
    parts = ["a@b.c", "x.y+z@mail.example.", "a@b..c", "a@.b.c", "me@host", "u@-x.y", "u@x-.y", "u@x.y."]
    parts += ["u@x_y.z-w", "q@@a.b", "@a.b", "a@b.c@d.e", "é@ü.de", "1@2.3", "a@b.c.d..e", "x@y.z,", "m@n.o\n"]
    texts = [" ".join(rng.choice(parts) for _ in range(4)) + " end." for _ in range(100)]
    batch = TextBatch(texts, rules=FORMAT_ONLY)
    assert all(batch.spans(i) == TextBatch([t], rules=FORMAT_ONLY).spans(0) for i, t in enumerate(texts))

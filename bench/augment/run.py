"""tuneprep's augmenters vs nlpaug 1.1.11 on real text: speed, facts kept and records edited.

    .venv/bin/python -m bench.augment.run [--corpora banking77,bitext,generated] [--repeats 3] [--quick]

The headline corpus is banking77's 13,083 customer queries (``bench.realdata``); Bitext's 4,514 support
requests and 5,000 generated template sentences (``bench/augment/corpus.py``) are further rows. Caches are
cold: every timed pass builds fresh augmenters on both sides (tuneprep's per-word look-ups start empty;
the process-wide tables, such as the character classes and the WordNet index, are built by a warm-up call
first, and nlpaug's nltk WordNet keeps the synsets it parsed in the warm-up, which favours nlpaug). Each
pair alternates chunk by chunk (1,000 texts through tuneprep with every fact rule on, as the pipeline runs
it; the same 1,000 through nlpaug; then tuneprep with the format rules only, to show what protection
costs) over ``--repeats`` passes, so a busy machine slows all sides alike; compare the ratios, not the
absolute rates. Our side includes deriving each text's seed from its id (the stage's real call).
On real text the facts are the spans tuneprep's rules protect (found on the source); on the generated
corpus, the grammar's own facts and names. nlpaug's SynonymAug needs NLTK's POS tagger, which cannot be
downloaded here: a PerceptronTagger is trained on the bench grammar's own tagged tokens and saved where
``nltk.pos_tag`` loads it (see bench/README.md, "## augment").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench.augment.backtranslation import run as backtranslation_vs_raw
from bench.augment.corpus import PEOPLE, PRODUCTS, Sentence, make_corpus
from bench.common import headline, require_modules

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"
NLTK_DIR = OUT / "nltk_data"
TAGGER = "averaged_perceptron_tagger_eng"
NAMES = PEOPLE + PRODUCTS
WORD_P = 0.1  # nlpaug: share of words touched by the char/word augmenters
SYN_P = 0.15
CORPORA = ("banking77", "bitext", "generated")
Side = Callable[[list[str], list[str]], list]
Factory = Callable[..., Side]


def train_tagger(corpus: Sequence[Sentence], target: Path = NLTK_DIR) -> Path:
    """Train nltk's PerceptronTagger on the grammar's tagged sentences; save it as nltk's English tagger."""
    from nltk.tag.perceptron import PerceptronTagger

    folder = target / "taggers" / TAGGER
    folder.mkdir(parents=True, exist_ok=True)
    tagger = PerceptronTagger(load=False)
    random.seed(0)
    tagger.train([s.tagged for s in corpus], nr_iter=5)
    for obj, suffix in zip(tagger.encode_json_obj(), ("weights", "tagdict", "classes"), strict=True):
        (folder / f"{TAGGER}.{suffix}.json").write_text(json.dumps(obj), encoding="utf-8")
    return folder


def use_tagger(target: Path = NLTK_DIR) -> None:
    import nltk

    if str(target) not in nltk.data.path:
        nltk.data.path.insert(0, str(target))


def kept_share(sources: Sequence[Sentence], outputs: Sequence[str | None], attr: str) -> float:
    """Share of the facts (``protected``) or names (``names``) that come through verbatim: an item is kept
    when the output holds it, as a whole word, at least as often as the source ("not" is not kept in
    "noticed")."""
    total = kept = 0
    for s, out in zip(sources, outputs, strict=True):
        out = s.text if out is None else out
        for item in getattr(s, attr):
            total += 1
            whole = re.compile(rf"(?<!\w){re.escape(item)}(?!\w)")
            kept += len(whole.findall(out)) >= len(whole.findall(s.text))
    return kept / max(1, total)


def changed_share(sources: Sequence[Sentence], outputs: Sequence[str | None]) -> float:
    return sum(o is not None and o != s.text for s, o in zip(sources, outputs, strict=True)) / max(1, len(sources))


def timed(fn: Callable[[], list], repeats: int) -> tuple[float, list]:
    """Median seconds over ``repeats`` runs, and the last run's output."""
    times, out = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def pairs(texts: Sequence[str], names: Sequence[str] = ()) -> list[tuple[str, Factory, Factory, str, str]]:
    """(name, ours, nlpaug, our settings, nlpaug settings); ``ours(rules)`` and ``nlpaug()`` build a fresh
    augmenter and return a callable over (texts, ids). ``rules`` are our fact rules (None: all of them,
    as the pipeline runs them; ``augment.text.FORMAT_ONLY``: the format rules alone)."""
    import nlpaug.augmenter.char as nac
    import nlpaug.augmenter.word as naw

    from augment import CharNoise, SynonymSwap, WordNoise
    from augment.base import seeds_for
    from augment.text import TextBatch

    # Match nlpaug's "10% of words, one letter each" with a letter rate giving the same edits per text.
    batch = TextBatch(texts, names)
    ws, we, _ = batch.free_words()
    words_per_text = sum(len(t.split()) for t in texts) / len(texts)
    letters_per_text = float(((we - ws)[(we - ws) >= 3]).sum()) / len(texts)
    char_rate = round(WORD_P * words_per_text / letters_per_text, 4)

    def ours(cls, **kw) -> Factory:
        def make(rules=None) -> Side:
            aug = cls(protect_names=names, rules=rules, **kw)
            return lambda chunk, ids: aug(chunk, seeds_for(ids, 0, aug.kind))

        return make

    def theirs(cls, **kw) -> Factory:
        def make() -> Side:
            aug = cls(**kw)
            return lambda chunk, ids: aug.augment(chunk)

        return make

    char_kw = {"aug_word_p": WORD_P, "aug_char_min": 1, "aug_char_max": 1, "aug_word_max": 100}
    return [
        (
            "synonym (WordNet)",
            ours(SynonymSwap, rate=SYN_P, max_words=10),
            theirs(naw.SynonymAug, aug_src="wordnet", aug_p=SYN_P, aug_max=10),
            f"SynonymSwap(rate={SYN_P}, max_words=10)",
            f"SynonymAug(aug_src='wordnet', aug_p={SYN_P}, aug_max=10)",
        ),
        (
            "word swap",
            ours(WordNoise, rate=WORD_P, ops=["swap"]),
            theirs(naw.RandomWordAug, action="swap", aug_p=WORD_P, aug_max=100),
            f"WordNoise(rate={WORD_P}, ops=['swap'])",
            f"RandomWordAug(action='swap', aug_p={WORD_P})",
        ),
        (
            "word delete",
            ours(WordNoise, rate=WORD_P, ops=["delete"]),
            theirs(naw.RandomWordAug, action="delete", aug_p=WORD_P, aug_max=100),
            f"WordNoise(rate={WORD_P}, ops=['delete'])",
            f"RandomWordAug(action='delete', aug_p={WORD_P})",
        ),
        (
            "keyboard typos",
            ours(CharNoise, rate=char_rate, ops=["keyboard"]),
            theirs(nac.KeyboardAug, **char_kw),
            f"CharNoise(rate={char_rate}, ops=['keyboard'])",
            f"KeyboardAug(aug_word_p={WORD_P}, aug_char_max=1)",
        ),
        (
            "random char substitute",
            ours(CharNoise, rate=char_rate, ops=["substitute"]),
            theirs(nac.RandomCharAug, action="substitute", **char_kw),
            f"CharNoise(rate={char_rate}, ops=['substitute'])",
            f"RandomCharAug(action='substitute', aug_word_p={WORD_P}, aug_char_max=1)",
        ),
        (
            "random char insert",
            ours(CharNoise, rate=char_rate, ops=["insert"]),
            theirs(nac.RandomCharAug, action="insert", **char_kw),
            f"CharNoise(rate={char_rate}, ops=['insert'])",
            f"RandomCharAug(action='insert', aug_word_p={WORD_P}, aug_char_max=1)",
        ),
    ]


def real_corpus(name: str) -> list[Sentence]:
    """A real corpus as sentences whose facts are the spans tuneprep's fact rules protect in them."""
    from augment.text import TextBatch
    from bench.realdata import banking77, bitext

    texts = [r.text for r in banking77()] if name == "banking77" else [e.instruction for e in bitext()]
    batch = TextBatch(texts)
    return [Sentence(t, [t[s:e] for s, e in batch.spans(i)]) for i, t in enumerate(texts)]


def compare(corpus: list[Sentence], names: Sequence[str], repeats: int, chunk: int, only: str = "") -> list[dict]:
    """Every pair on one corpus: fresh augmenters per pass, the three sides alternating chunk by chunk."""
    from augment.text import FORMAT_ONLY

    texts = [s.text for s in corpus]
    ids = [f"s{i}" for i in range(len(texts))]
    chunks = [(texts[i : i + chunk], ids[i : i + chunk]) for i in range(0, len(texts), chunk)]
    results = []
    for name, ours, theirs, our_cfg, their_cfg in pairs(texts, names):
        if only and only not in name:
            continue
        # Process-wide tables (character classes, word-class keys, the WordNet index) on our side and
        # nltk's WordNet on nlpaug's are built here, on throwaway augmenters; each pass below starts fresh.
        ours()(texts[:chunk], ids[:chunk])
        ours(FORMAT_ONLY)(texts[:chunk], ids[:chunk])
        theirs()(texts, ids)
        wall = np.zeros(3)  # seconds of ours, nlpaug, ours with the format rules only
        cpu = np.zeros(3)  # the same in this process's CPU time: what a busy machine's scheduler does not add
        out_ours: list = []
        out_theirs: list = []

        def clock() -> np.ndarray:
            return np.array([time.perf_counter(), time.process_time()])

        for _ in range(repeats):  # alternate chunk by chunk: every side sees the same machine load
            out_ours, out_theirs = [], []
            marks = [clock()]
            side_ours = ours()
            marks.append(clock())
            side_theirs = theirs()
            marks.append(clock())
            side_formats = ours(FORMAT_ONLY)
            marks.append(clock())
            for part, part_ids in chunks:
                out_ours += side_ours(part, part_ids)
                marks.append(clock())
                out_theirs += side_theirs(part, part_ids)
                marks.append(clock())
                side_formats(part, part_ids)
                marks.append(clock())
            spent = np.diff(np.array(marks), axis=0).reshape(-1, 3, 2).sum(axis=0)
            wall += spent[:, 0]
            cpu += spent[:, 1]
        ours_rate, theirs_rate, formats_rate = len(corpus) * repeats / wall
        ours_cpu, theirs_cpu, _ = len(corpus) * repeats / cpu
        row = {
            "augmenter": name,
            "tuneprep": our_cfg,
            "nlpaug": their_cfg,
            "tuneprep_sentences_per_s": round(ours_rate, 1),
            "nlpaug_sentences_per_s": round(theirs_rate, 1),
            "speedup": round(ours_rate / theirs_rate, 1),
            "speedup_cpu_time": round(ours_cpu / theirs_cpu, 1),
            "tuneprep_format_rules_only_sentences_per_s": round(formats_rate, 1),
            "speedup_format_rules_only": round(formats_rate / theirs_rate, 1),
            "protection_cost": round(1 - ours_rate / formats_rate, 3),
            "tuneprep_facts_kept": round(kept_share(corpus, out_ours, "protected"), 4),
            "nlpaug_facts_kept": round(kept_share(corpus, out_theirs, "protected"), 4),
            "tuneprep_edited": round(changed_share(corpus, out_ours), 4),
            "nlpaug_edited": round(changed_share(corpus, out_theirs), 4),
        }
        if names:
            row["tuneprep_names_kept"] = round(kept_share(corpus, out_ours, "names"), 4)
            row["nlpaug_names_kept"] = round(kept_share(corpus, out_theirs, "names"), 4)
        results.append(row)
        print(f"{name}: ours {ours_rate:,.0f}/s, nlpaug {theirs_rate:,.0f}/s", file=sys.stderr)
    return results


def backtranslation(corpus: list[Sentence], repeats: int) -> list[dict]:
    """Sentences/s of the back-translation backends (no nlpaug counterpart offline)."""
    from augment import ApertiumBackend, BackTranslator, TransformersBackend, apertium_available, seed_for

    rows = []
    texts = [s.text for s in corpus]
    seeds = [seed_for(f"s{i}", 0, "backtranslation") for i in range(len(texts))]
    if apertium_available("eng-spa") and apertium_available("spa-eng"):
        bt = BackTranslator(ApertiumBackend(), protect_names=NAMES)
        sub = texts[:1000]
        secs, out = timed(lambda: bt(sub, seeds[: len(sub)]), repeats)
        rows.append(
            {
                "backend": "apertium eng-spa-eng (persistent pipelines, 2 workers)",
                "sentences": len(sub),
                "sentences_per_s": round(len(sub) / secs, 1),
                "facts_kept": round(kept_share(corpus[: len(sub)], out, "protected"), 4),
                "names_kept": round(kept_share(corpus[: len(sub)], out, "names"), 4),
                "changed": round(changed_share(corpus[: len(sub)], out), 4),
            }
        )
    try:
        import torch

        sys.path.insert(0, str(ROOT / "tests"))
        from tiny_marian import build_tiny_marian

        words_en = sorted({w for s in corpus[:200] for w in s.text.split()})
        rng = random.Random(0)
        src = [" ".join(rng.choices(words_en, k=12)) for _ in range(300)]
        tgt = [" ".join(reversed(s.split())) for s in src]
        folder = OUT / "tiny_marian"
        fwd = build_tiny_marian(folder / "fwd", src, tgt)
        bwd = build_tiny_marian(folder / "bwd", tgt, src, seed=1)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        backend = TransformersBackend(str(fwd), str(bwd), temperature=0.8, max_length=48, batch_size=32, device="cpu")
        bt = BackTranslator(backend, protect_names=NAMES)
        sub = texts[:200]
        secs, _ = timed(lambda: bt(sub, seeds[: len(sub)]), 1)
        torch.set_num_threads(threads)
        rows.append(
            {
                "backend": "transformers, tiny random MarianMT (d_model<=32), CPU, 1 thread: code path only",
                "sentences": len(sub),
                "sentences_per_s": round(len(sub) / secs, 1),
            }
        )
    except Exception as e:  # the bench reports what it could not measure
        rows.append({"backend": "transformers (tiny Marian)", "error": f"{type(e).__name__}: {e}"})
    return rows


def main(argv: Sequence[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", default=",".join(CORPORA), help="comma-separated, of " + ", ".join(CORPORA))
    ap.add_argument("--n", type=int, default=5000, help="sentences of the generated corpus")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="banking77's first 2,000 queries, 1 pass, no other corpus")
    ap.add_argument("--only", default="", help="run only the pairs whose name contains this")
    ap.add_argument(
        "--chunk",
        type=int,
        default=1000,
        help="texts per call (the pipeline batches 2,048); sides alternate per chunk",
    )
    args = ap.parse_args(argv)
    corpora = [c for c in args.corpora.split(",") if c]
    unknown = set(corpora) - set(CORPORA)
    if unknown:
        ap.error(f"unknown corpora {sorted(unknown)}; choose from {CORPORA}")
    if args.quick:
        corpora, args.repeats = ["banking77"], 1
    require_modules("nlpaug")
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tagger_dir = train_tagger(make_corpus(2000, seed=1))
    use_tagger()
    from augment.resources import ensure_wordnet

    ensure_wordnet(try_download=False)
    report: dict = {
        "repeats": args.repeats,
        "chunk": args.chunk,
        "tagger": str(tagger_dir.relative_to(ROOT)),
        "cpu_count": os.cpu_count(),
        "corpora": {},
    }
    generated = make_corpus(args.n, seed=0)
    for name in corpora:
        if name == "generated":
            corpus, names = generated, NAMES
        else:
            corpus, names = real_corpus(name), []
            if args.quick:
                corpus = corpus[:2000]
        print(f"== {name}: {len(corpus):,} texts", file=sys.stderr)
        report["corpora"][name] = {
            "sentences": len(corpus),
            "mean_words": round(sum(len(s.text.split()) for s in corpus) / len(corpus), 1),
            "facts": sum(len(s.protected) for s in corpus),
            "pairs": compare(corpus, names, args.repeats, args.chunk, args.only),
        }
    report["backtranslation"] = [] if args.quick or args.only else backtranslation(generated, 1)
    report["backtranslation_real"] = None if args.only else backtranslation_vs_raw(quick=args.quick)  # vs the raw pipe
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "augment.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(render(report))
    head = report["corpora"].get("banking77") or next(iter(report["corpora"].values()), None)
    if head and head["pairs"]:
        what = "banking77" if "banking77" in report["corpora"] else next(iter(report["corpora"]))
        for r in head["pairs"]:
            headline(r["speedup"], "x", f"{r['augmenter']}: tuneprep / nlpaug sentences/s, {what}, cold", ">=", 10)
        facts = min(r["tuneprep_facts_kept"] for r in head["pairs"])
        headline(100 * facts, "%", f"protected spans kept by tuneprep's augmenters (the lowest), {what}", ">=", 100)
        edited = min(r["tuneprep_edited"] for r in head["pairs"])
        headline(100 * edited, "%", f"records edited by tuneprep's augmenters (the lowest), {what}")
    return report


def render(report: dict) -> str:
    head = (
        "| corpus | augmenter | tuneprep sent/s | nlpaug sent/s | speedup | in CPU time | format rules only | "
        "facts kept (ours / nlpaug) | edited (ours / nlpaug) | names kept (ours / nlpaug) |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---|---|---|"]
    for corpus, c in report["corpora"].items():
        for r in c["pairs"]:
            names = (
                f"{r['tuneprep_names_kept']:.1%} / {r['nlpaug_names_kept']:.1%}" if "tuneprep_names_kept" in r else ""
            )
            lines.append(
                f"| {corpus} | {r['augmenter']} | {r['tuneprep_sentences_per_s']:,.0f} | "
                f"{r['nlpaug_sentences_per_s']:,.0f} | {r['speedup']:.1f}x | {r['speedup_cpu_time']:.1f}x | "
                f"{r['speedup_format_rules_only']:.1f}x | "
                f"{r['tuneprep_facts_kept']:.1%} / {r['nlpaug_facts_kept']:.1%} | "
                f"{r['tuneprep_edited']:.1%} / {r['nlpaug_edited']:.1%} | {names} |"
            )
    for b in report["backtranslation"]:
        if "error" in b:
            lines.append(f"\nback-translation, {b['backend']}: not measured ({b['error']})")
        else:
            extra = f", facts kept {b['facts_kept']:.1%}, names kept {b['names_kept']:.1%}" if "facts_kept" in b else ""
            lines.append(f"\nback-translation, {b['backend']}: {b['sentences_per_s']:,.1f} sentences/s{extra}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

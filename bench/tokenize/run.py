"""Tokenization throughput: tuneprep's ``encode_records`` against the raw ``tokenizers`` batch rate.

Both sides use the same SentencePiece tokenizer (trained by tuneprep on the
texts) and the same texts; the baseline is ``Tokenizer.encode_batch`` plus
reading the ids, the fastest a Python caller gets from the Rust library.
tuneprep does that and more: windows at sentence boundaries for long texts,
EOS, loss masks and Arrow columns. Runs alternate so machine noise hits both.

    python -m bench.tokenize.run [--docs 50000] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[2]


def load_texts(data: Path, n: int) -> tuple[list[str], str]:
    texts: list[str] = []
    bitext = data / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    banking = data / "banking77" / "train.csv"
    if bitext.exists() and banking.exists():
        with open(bitext, newline="", encoding="utf-8") as f:
            texts += [r["response"] for r in csv.DictReader(f)]
        with open(banking, newline="", encoding="utf-8") as f:
            texts += [r["text"] for r in csv.DictReader(f)]
        source = "bitext_customer_support responses + banking77 queries (shared/data)"
    else:
        for p in sorted((ROOT / "sample_data" / "docs").glob("*.*")):
            try:
                texts.append(p.read_text(encoding="utf-8"))
            except UnicodeDecodeError:
                continue
        source = "sample_data/docs (shared/data not found)"
    texts = [t for t in texts if t.strip()]
    reps = -(-n // len(texts))
    return (texts * reps)[:n], source


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=50_000)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from shards.config import TokenizerConfig
    from shards.tokenization import encode_records, train_sentencepiece

    texts, source = load_texts(args.data, args.docs)
    with tempfile.TemporaryDirectory() as tmp:
        train_sentencepiece(texts[:20_000], TokenizerConfig(vocab_size=8000), Path(tmp))
        raw = Tokenizer.from_file(str(Path(tmp) / "tokenizer.json"))
        tok = AutoTokenizer.from_pretrained(tmp)
    df = pl.DataFrame(
        {"format": ["text"] * len(texts), "text": texts, "messages": [None] * len(texts)},
        schema={
            "format": pl.Utf8,
            "text": pl.Utf8,
            "messages": pl.List(pl.Struct({"role": pl.Utf8, "content": pl.Utf8})),
        },
    )
    n_chars = sum(map(len, texts))

    def baseline() -> int:
        return sum(len(e.ids) for e in raw.encode_batch(texts, add_special_tokens=False))

    def ours() -> int:
        return int(encode_records(df, tok, args.max_length).kept["n_tokens"].sum())

    times: dict[str, list[float]] = {"tokenizers.encode_batch": [], "tuneprep.encode_records": []}
    tokens = {}
    for _ in range(args.rounds):
        for name, fn in (("tokenizers.encode_batch", baseline), ("tuneprep.encode_records", ours)):
            t0 = time.perf_counter()
            tokens[name] = fn()
            times[name].append(time.perf_counter() - t0)
    rows = []
    for name, ts in times.items():
        best = min(ts)
        rows.append(
            {
                "impl": name,
                "docs_per_s": len(texts) / best,
                "mchars_per_s": n_chars / best / 1e6,
                "seconds_best": best,
                "seconds_median": statistics.median(ts),
                "tokens": tokens[name],
            }
        )
    ratio = rows[1]["docs_per_s"] / rows[0]["docs_per_s"]
    print(f"corpus: {len(texts):,} docs, {n_chars / 1e6:.1f} M chars from {source}; {os.cpu_count()} cores")
    print(f"{'impl':<26}{'docs/s':>12}{'Mchars/s':>10}{'best s':>9}{'median s':>10}{'tokens':>12}")
    for r in rows:
        print(
            f"{r['impl']:<26}{r['docs_per_s']:>12,.0f}{r['mchars_per_s']:>10.2f}{r['seconds_best']:>9.2f}"
            f"{r['seconds_median']:>10.2f}{r['tokens']:>12,}"
        )
    print(f"ratio tuneprep / raw tokenizers batch: {ratio:.2f}x (target >= 0.8x)")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenize.json").write_text(json.dumps({"source": source, "rows": rows, "ratio": ratio}, indent=2))


if __name__ == "__main__":
    main()

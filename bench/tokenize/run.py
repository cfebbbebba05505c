"""Tokenization throughput: tuneprep's ``encode_records`` against the raw ``tokenizers`` batch rate.

Both sides use the same SentencePiece tokenizer (trained by tuneprep on the texts) and the same records.

- text: the baseline is ``Tokenizer.encode_batch`` over all texts in one call plus reading the ids (the
  issue's target: tuneprep >= 0.8x its records/s); ``encode_batch_fast`` (the same without offsets) is shown
  beside it. tuneprep does more: windows at sentence boundaries for long texts (offsets for those only), EOS,
  loss masks and Arrow columns, in batches of ``--batch`` records as the pipeline's Tokenize stage gets them.
- conversations: the baseline renders every conversation once with the tokenizer's chat template (one
  batched ``apply_chat_template(tokenize=False)``) and encodes all renders in one ``encode_batch``, the least
  work that yields the ids; tuneprep also places the turns (assistant spans for the loss mask, turn starts
  for windows) and cuts long conversations at turns.

Rounds alternate the sides (forward, then backward) so machine noise hits every side alike. A ratio is the
median over rounds of that round's ratio (both sides timed next to each other); best-of-rounds is shown too.

    python -m bench.tokenize.run [--docs 50000] [--conversations 5000] [--rounds 5] [--batch 2048] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from bench import realdata
from bench.common import DATA, OUT, headline

MESSAGES = pl.List(pl.Struct({"role": pl.Utf8, "content": pl.Utf8}))


def repeat_to(items: list, n: int) -> list:
    return (items * -(-n // len(items)))[:n]


def load_texts(data: Path, n: int) -> tuple[list[str], str]:
    texts = [e.response for e in realdata.bitext(data)] + [r.text for r in realdata.banking77(data, ("train",))]
    texts = [t for t in texts if t.strip()]
    return repeat_to(texts, n), "bitext_customer_support responses + banking77 train queries"


def load_conversations(data: Path, n: int) -> tuple[list[list[dict]], str]:
    convs = [e.messages for e in realdata.bitext(data)] + [d.messages for d in realdata.taskmaster(data)]
    source = "bitext_customer_support instruction/response pairs + taskmaster4_coffee dialogues"
    return repeat_to(convs, n), source


def records(texts: list[str] | None = None, convs: list[list[dict]] | None = None) -> pl.DataFrame:
    n = len(texts) if texts is not None else len(convs or [])
    return pl.DataFrame(
        {
            "format": ["text" if texts is not None else "chat"] * n,
            "text": texts if texts is not None else [None] * n,
            "messages": convs if convs is not None else [None] * n,
        },
        schema={"format": pl.Utf8, "text": pl.Utf8, "messages": MESSAGES},
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=50_000)
    ap.add_argument("--conversations", type=int, default=5_000)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--batch", type=int, default=2048, help="records per encode_records call (the pipeline's batch_size)"
    )
    ap.add_argument("--quick", action="store_true", help="5,000 docs, 1,000 conversations, 1 round")
    args = ap.parse_args(argv)
    if args.quick:
        args.docs, args.conversations, args.rounds = 5_000, 1_000, 1
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

    texts, text_source = load_texts(args.data, args.docs)
    convs, conv_source = load_conversations(args.data, args.conversations)

    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from shards.config import TokenizerConfig
    from shards.tokenization import encode_records, train_sentencepiece

    with tempfile.TemporaryDirectory() as tmp:
        train_sentencepiece(texts[:20_000], TokenizerConfig(vocab_size=8000), Path(tmp))
        raw = Tokenizer.from_file(str(Path(tmp) / "tokenizer.json"))
        tok = AutoTokenizer.from_pretrained(tmp)
    text_df, conv_df = records(texts=texts), records(convs=convs)

    def raw_text() -> int:
        return sum(len(e.ids) for e in raw.encode_batch(texts, add_special_tokens=False))

    def raw_text_fast() -> int:
        return sum(len(e.ids) for e in raw.encode_batch_fast(texts, add_special_tokens=False))

    def raw_chat() -> int:
        rendered = tok.apply_chat_template(convs, tokenize=False)
        return sum(len(e.ids) for e in raw.encode_batch(rendered, add_special_tokens=False))

    def ours(df: pl.DataFrame) -> Callable[[], int]:
        def run() -> int:
            batches = (df.slice(lo, args.batch) for lo in range(0, df.height, args.batch))
            return sum(int(encode_records(b, tok, args.max_length).kept["n_tokens"].sum()) for b in batches)

        return run

    text_chars, chat_chars = sum(map(len, texts)), _chat_chars(convs)
    sides: dict[str, tuple[str, int, int, Callable[[], int]]] = {  # name -> (path, records, chars, run)
        "tokenizers.encode_batch": ("text", len(texts), text_chars, raw_text),
        "tuneprep.encode_records": ("text", len(texts), text_chars, ours(text_df)),
        "tokenizers.encode_batch_fast": ("text", len(texts), text_chars, raw_text_fast),
        "render once + encode_batch": ("chat", len(convs), chat_chars, raw_chat),
        "tuneprep.encode_records (chat)": ("chat", len(convs), chat_chars, ours(conv_df)),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    tokens: dict[str, int] = {}
    for r in range(args.rounds):
        for name in list(sides) if r % 2 == 0 else list(sides)[::-1]:
            t0 = time.perf_counter()
            tokens[name] = sides[name][3]()
            times[name].append(time.perf_counter() - t0)
    rows = []
    for name, ts in times.items():
        path, n, chars, _ = sides[name]
        best = min(ts)
        rows.append(
            {
                "impl": name,
                "path": path,
                "records": n,
                "records_per_s": n / best,
                "mchars_per_s": chars / best / 1e6,
                "seconds_best": best,
                "seconds_median": statistics.median(ts),
                "tokens": tokens[name],
            }
        )

    def ratio(ours: str, base: str) -> dict[str, float]:
        per_round = [b / o for o, b in zip(times[ours], times[base], strict=True)]
        return {"median": statistics.median(per_round), "best": min(times[base]) / min(times[ours])}

    text_ratio = ratio("tuneprep.encode_records", "tokenizers.encode_batch")
    fast_ratio = ratio("tuneprep.encode_records", "tokenizers.encode_batch_fast")
    chat_ratio = ratio("tuneprep.encode_records (chat)", "render once + encode_batch")
    print(f"text: {len(texts):,} docs from {text_source}")
    print(f"chat: {len(convs):,} conversations from {conv_source}")
    print(
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, {args.rounds} rounds, tuneprep in batches of {args.batch:,}"
    )
    print(f"{'impl':<32}{'path':>5}{'records/s':>12}{'Mchars/s':>10}{'best s':>9}{'median s':>10}{'tokens':>12}")
    for r in rows:
        print(
            f"{r['impl']:<32}{r['path']:>5}{r['records_per_s']:>12,.0f}{r['mchars_per_s']:>10.2f}"
            f"{r['seconds_best']:>9.2f}{r['seconds_median']:>10.2f}{r['tokens']:>12,}"
        )
    for what, r in (
        ("text / encode_batch", text_ratio),
        ("text / encode_batch_fast", fast_ratio),
        ("chat / render once + encode_batch", chat_ratio),
    ):
        print(f"ratio {what}: median of rounds {r['median']:.2f}x, best of rounds {r['best']:.2f}x")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "tokenize.json").write_text(
        json.dumps(
            {
                "text_source": text_source,
                "chat_source": conv_source,
                "rounds": args.rounds,
                "batch": args.batch,
                "rows": rows,
                "ratio": text_ratio["median"],
                "ratio_vs_encode_batch_fast": fast_ratio["median"],
                "chat_ratio": chat_ratio["median"],
                "ratios_best_of_rounds": {"text": text_ratio["best"], "chat": chat_ratio["best"]},
            },
            indent=2,
        )
    )
    headline(text_ratio["median"], "x", "tuneprep / raw encode_batch, text records/s (median of rounds)", ">=", 0.8)
    headline(chat_ratio["median"], "x", "tuneprep / (render once + encode_batch), conversations/s (median of rounds)")


def _chat_chars(convs: list[list[dict]]) -> int:
    return sum(len(m["content"]) for c in convs for m in c)


if __name__ == "__main__":
    main()

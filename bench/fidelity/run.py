"""Do augmented conversations keep their facts? Measured on annotated dialogues.

    .venv/bin/python -m bench.fidelity.run [--data ../shared/data] [--sets taskmaster,bitext,fixtures]

Facts per set, located in the user turns where they are written (case-insensitive, plural allowed; the
fact is the text as written there):
- ``taskmaster``: Taskmaster-4 coffee orders (``taskmaster4_coffee/data_07.json``): the request values of
  each order's API calls (``annotations`` named ``request``, JSON): drinks and what was asked for
  (``query``, split on " OR "), milk, shots, temperature, size and order-type options (``attributes[].option``),
  ``notes``, quantities above one (as digits or words) and add-ons (``addon_id`` without its number).
- ``bitext``: Bitext customer support: the annotated entity of each request (``entity_value`` at
  ``start_offset:end_offset`` of ``instruction``), e.g. order numbers and account types.
- ``fixtures``: generated bookings (``bench/fidelity/fixtures.py``): cities, venues, times, party sizes, days.

The records go through the augment stage as the pipeline runs it (defaults: synonym, word noise, char noise,
back-translation when apertium is installed; ``fit`` on the records, then ``process``; every gate on), once
with the fact rules and once with them off (the format rules alone, as before this bench). Figures over the
accepted variants (the ones that reach training):
- ``kept``: share of (variant, fact) pairs whose rewritten turn still holds the fact verbatim, as often;
- ``echo_changed``: variants where a fact, or a word, that a later assistant turn repeats was changed in
  a user turn (the conversation then contradicts itself);
- ``variants_per_record``: accepted variants per source record.
Writes ``bench/out/fidelity.json``. Attribution: Taskmaster-4 (Google, CC-BY-4.0), Bitext (CDLA-Sharing-1.0).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from bench.common import headline

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"
DEFAULT_DATA = ROOT.parent / "shared" / "data"
_NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]


# --- data sets: (messages, facts per turn) ------------------------------------------------------------


def _walk_requests(obj, out: list[str]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "query" and isinstance(v, str):
                out.extend(p.strip() for p in re.split(r"\s+OR\s+", v))
            elif k in ("option", "notes") and isinstance(v, str) and v.upper() != "ADD":
                out.append(v.strip())
            elif k == "quantity" and str(v).strip().isdigit() and int(v) > 1:
                n = int(v)
                out += [str(n)] + ([_NUMBER_WORDS[n]] if n < len(_NUMBER_WORDS) else [])
            elif k == "addon_id" and isinstance(v, str):
                out.append(re.sub(r"-?\d+$", "", v).replace("-", " ").strip())
            else:
                _walk_requests(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _walk_requests(v, out)


def _locate(text: str, values: Sequence[str]) -> list[str]:
    """The facts as written in ``text``: each value found case-insensitively on word boundaries (plural allowed)."""
    found = []
    for v in sorted({v for v in values if v}, key=len, reverse=True):
        for m in re.finditer(rf"(?<![\w%]){re.escape(v)}(?:e?s)?(?![\w%])", text, re.IGNORECASE):
            if not any(m.group() in f for f in found):
                found.append(m.group())
    return found


def taskmaster(data: Path) -> list[tuple[list[dict], list[list[str]]]]:
    path = data / "taskmaster4_coffee" / "data_07.json"
    convs = []
    for conv in json.loads(path.read_text(encoding="utf-8")):
        values: list[str] = []
        for u in conv["utterances"]:
            for a in u.get("annotations", []):
                if a.get("name") == "request":
                    try:
                        _walk_requests(json.loads(a["value"]), values)
                    except (json.JSONDecodeError, TypeError):
                        continue
        messages = [{"role": u["speaker"], "content": u["text"]} for u in conv["utterances"]]
        facts = [_locate(m["content"], values) if m["role"] == "user" else [] for m in messages]
        convs.append((messages, facts))
    return convs


def bitext(data: Path) -> list[tuple[list[dict], list[list[str]]]]:
    path = data / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    df = pl.read_csv(path, infer_schema=False)
    convs = []
    for row in df.iter_rows(named=True):
        text = row["instruction"] or ""
        facts: list[str] = []
        try:
            start, end = int(row["start_offset"]), int(row["end_offset"])
        except (TypeError, ValueError):
            start = end = -1
        if 0 <= start < end <= len(text) and text[start:end].strip():
            facts.append(text[start:end].strip())
        messages = [{"role": "user", "content": text}, {"role": "assistant", "content": row["response"] or ""}]
        convs.append((messages, [facts, []]))
    return convs


def fixtures(n: int = 600) -> list[tuple[list[dict], list[list[str]]]]:
    from bench.fidelity.fixtures import make_dialogues

    return [(d.messages, d.facts) for d in make_dialogues(n, seed=0)]


# --- measuring ----------------------------------------------------------------------------------------


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[^\W\d_]{3,}", text)}


def echoed(messages: list[dict], facts: list[list[str]], stop: frozenset[str]) -> list[set[str]]:
    """Per user turn: its facts and content words that a later assistant turn repeats (lower-cased)."""
    out: list[set[str]] = []
    for t, m in enumerate(messages):
        later = " ".join(x["content"].lower() for x in messages[t + 1 :] if x["role"] == "assistant")
        if m["role"] != "user" or not later:
            out.append(set())
            continue
        items = {f.lower() for f in facts[t] if _has(later, f)}
        items |= {w for w in _words(m["content"]) - stop if _has(later, w)}
        out.append({i for i in items if _has(m["content"], i)})  # as a word in this turn too
    return out


def _has(text: str, item: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(item)}(?!\w)", text, re.IGNORECASE) is not None


def measure(convs, protect: bool, seed: int = 0) -> dict:
    from augment import Augment, AugmentConfig
    from augment.config import ProtectConfig
    from augment.vocab import stop_words
    from tuneprep.records import make_records

    off = ProtectConfig(numbers=False, times=False, names=False, echoes=False, corpus_terms=False)
    cfg = AugmentConfig() if protect else AugmentConfig(protect=off)
    rows = [
        {"id": f"c{i}", "source": "bench", "format": "chat", "messages": m, "split": "train"}
        for i, (m, _) in enumerate(convs)
    ]
    df = make_records(rows)
    stage = Augment(cfg, seed=seed)
    t0 = time.perf_counter()
    stage.fit(lambda: [df])
    out = stage(df)
    seconds = time.perf_counter() - t0
    stage.close()
    stop = stop_words()
    by_id = {f"c{i}": c for i, c in enumerate(convs)}
    variants = out.kept.filter(pl.col("aug_of").is_not_null())
    pairs = kept = 0
    per_kind: dict[str, Counter] = {}
    lost_examples: list[dict] = []
    echo_examples: list[dict] = []
    echo_changed = 0
    for row in variants.select("aug_of", "aug_kind", "messages").iter_rows(named=True):
        messages, facts = by_id[row["aug_of"]]
        echoes = echoed(messages, facts, stop)
        counts = per_kind.setdefault(row["aug_kind"], Counter())
        counts["variants"] += 1
        contradicts = False
        for t, (src, var) in enumerate(zip(messages, row["messages"], strict=True)):
            if src["content"] == var["content"]:
                continue
            for fact in facts[t]:
                ok = var["content"].count(fact) >= src["content"].count(fact)
                pairs += 1
                kept += ok
                counts["pairs"] += 1
                counts["kept"] += ok
                if not ok and len(lost_examples) < 200:
                    lost_examples.append(
                        {"kind": row["aug_kind"], "fact": fact, "source": src["content"], "variant": var["content"]}
                    )
            changed = [item for item in echoes[t] if not _has(var["content"], item)]
            if changed:
                contradicts = True
                if len(echo_examples) < 50:
                    echo_examples.append(
                        {
                            "kind": row["aug_kind"],
                            "changed": changed,
                            "source": src["content"],
                            "variant": var["content"],
                        }
                    )
        echo_changed += contradicts
        counts["echo_changed"] += contradicts
    reasons = Counter(out.dropped["reason"].to_list()) if out.dropped.height else Counter()
    return {
        "protect": protect,
        "records": len(convs),
        "variants": variants.height,
        "variants_per_record": round(variants.height / max(1, len(convs)), 3),
        "pairs": pairs,
        "kept": round(kept / max(1, pairs), 4),
        "echo_changed": echo_changed,
        "per_kind": {
            k: {
                "variants": c["variants"],
                "kept": round(c["kept"] / max(1, c["pairs"]), 4),
                "pairs": c["pairs"],
                "echo_changed": c["echo_changed"],
            }
            for k, c in sorted(per_kind.items())
        },
        "rejected": dict(reasons.most_common()),
        "augmenters": stage.summary()["augmenters"],
        "skipped": stage.summary()["skipped"],
        "corpus_terms": stage.summary()["protect"]["corpus_terms_found"],
        "seconds": round(seconds, 1),
        "lost_examples": lost_examples,
        "echo_examples": echo_examples,
    }


def main(argv: Sequence[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sets", default="taskmaster,bitext,fixtures")
    ap.add_argument("--no-baseline", action="store_true", help="skip the run with the fact rules off")
    ap.add_argument(
        "--seeds", default="0", help="run seeds, comma-separated (the rules on; the baseline uses the first)"
    )
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    loaders = {"taskmaster": lambda: taskmaster(args.data), "bitext": lambda: bitext(args.data), "fixtures": fixtures}
    report = {}
    for name in args.sets.split(","):
        if name != "fixtures" and not args.data.exists():
            print(f"{name}: no data at {args.data} (see ../shared/data/README.md)", file=sys.stderr)
            continue
        convs = loaders[name]()
        n_facts = sum(len(f) for _, facts in convs for f in facts)
        report[name] = {"conversations": len(convs), "facts": n_facts, "runs": []}
        seeds = [int(x) for x in args.seeds.split(",")]
        plan = [(True, seed) for seed in seeds] + ([] if args.no_baseline else [(False, seeds[0])])
        for protect, seed in plan:
            r = measure(convs, protect, seed)
            r["seed"] = seed
            report[name]["runs"].append(r)
            print(
                f"{name} protect={protect}: {r['kept']:.2%} kept of {r['pairs']} pairs; "
                f"{r['echo_changed']} echo-changed; {r['variants_per_record']} variants/record",
                file=sys.stderr,
            )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "fidelity.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(render(report))
    for name, measured in report.items():
        on = [r["kept"] for r in measured["runs"] if r["protect"]]
        off = [r["kept"] for r in measured["runs"] if not r["protect"]]
        without = f", {off[0]:.1%} without them" if off else ""
        headline(
            100 * sum(on) / len(on), "%", f"{name}: facts kept by augmentation with the fact rules{without}", ">=", 99.5
        )
    return report


def render(report: dict) -> str:
    lines = [
        "| set | fact rules | seed | facts kept (pairs) | variants changing an echoed value | variants / record | per augmenter kept |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    for name, r in report.items():
        for run in r["runs"]:
            kinds = ", ".join(f"{k} {v['kept']:.1%}" for k, v in run["per_kind"].items())
            lines.append(
                f"| {name} ({r['conversations']} conversations) | {'on' if run['protect'] else 'off'} | {run['seed']} | "
                f"{run['kept']:.2%} ({run['pairs']:,}) | {run['echo_changed']} of {run['variants']:,} | "
                f"{run['variants_per_record']} | {kinds} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

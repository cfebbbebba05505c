"""`tuneprep ablate` on real data: does augmentation help on Bitext customer support at a fixed token budget?

Takes every `--every`-th row of the Bitext CSV (all 27 intents stay), prepares it with the default config (so the
shards are what a user gets: every stock augmenter), then runs the ablation (without, with, and each augmenter
alone; `--seeds` seeds each; `--tokens` loss tokens a run) with a small GPT-2-shaped model from scratch. Prints the
table and the verdict; the run folder keeps ablation.json and the reports. Not a speed benchmark: the answer is a
finding either way. Figures: bench/README.md#finetune.

    .venv/bin/python -m bench.finetune.ablate_bitext [--every 4] [--tokens 380000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BITEXT = (
    ROOT.parent / "shared" / "data" / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
)
OUT = ROOT / "bench" / "out" / "finetune" / "ablate-bitext"
MODEL = {  # ~0.24M parameters: 18 runs fit half an hour on a busy 2-core machine
    "n_layer": 2,
    "n_head": 2,
    "n_embd": 64,
    "batch_size": 8,
    "block_size": 256,
    "eval_every": 1000,
    "eval_max_batches": 20,
    "generate_n": 16,
    "generate_max_new_tokens": 48,
}


def subsample(source: Path, target: Path, every: int) -> int:
    with source.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header, rows = next(reader), list(reader)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows[::every])
    return len(rows[::every])


def tuneprep(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=BITEXT)
    parser.add_argument("--every", type=int, default=4, help="keep every N-th row (1 = the whole set)")
    parser.add_argument("--tokens", type=int, default=380_000, help="loss tokens per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"no data at {args.data}")
    run_dir = args.out / "run"
    records = subsample(args.data, args.out / "input" / "bitext.csv", args.every)
    print(f"{records} records (every {args.every}th row of {args.data.name})")
    if not (run_dir / "manifest.json").exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        tuneprep("prepare", str(args.out / "input" / "bitext.csv"), "--out", str(run_dir))
    config = args.out / "ablate.yaml"
    config.write_text(yaml.safe_dump({"finetune": MODEL}))
    tuneprep("ablate", str(run_dir), "--config", str(config), "--tokens", str(args.tokens), "--seeds", str(args.seeds))


if __name__ == "__main__":
    main()

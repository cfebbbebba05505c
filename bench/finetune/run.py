"""CPU training throughput: tuneprep's loop against a plain `transformers.Trainer`, side by side in one run.

    .venv/bin/pip install -e '.[bench]'          # accelerate, which Trainer needs
    .venv/bin/python -m bench.finetune.run [--data bitext|banking77] [--examples 600] [--steps 15] [--repeats 3]

Both train the same GPT-2-shaped model from the same initial weights on the same tokenized examples (the
shards `tuneprep prepare` makes from the data), for the same number of optimizer steps with the same
optimizer, schedule and clipping, one pass over the examples. The baseline is what a plain Trainer run does:
`per_device_train_batch_size` examples a step, each batch padded to its longest example
(`DataCollatorForSeq2Seq`, labels -100 where `loss_mask` is 0), and the model's own loss over full logits.
tuneprep packs the same examples into rows of `block_size` (about the same number of examples a step, on
average: rows a step = rows / steps) and applies the output head to loss tokens only.

Measured: loss tokens (targets that count in the loss) per second of training, best of `--repeats` runs
each, the two alternating so a busy machine slows both alike; per wall-clock second (tuneprep: its training
loop; Trainer: `trainer.train()`) and per CPU second of the process (one torch thread each, so CPU time is the
work done whatever else the machine runs; tuneprep's CPU time is its whole `train()` call, evaluation and
export included, on 16-example validation/test splits). The ratios (tuneprep / Trainer) are printed last.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.common import headline

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "bench" / "out" / "finetune"
DATA = {
    "bitext": SHARED / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv",
    "banking77": SHARED / "banking77" / "train.csv",
}
MODEL = {"n_layer": 4, "n_head": 4, "n_embd": 128, "dropout": 0.0}


def prepared(name: str, examples: int) -> Path:
    """Shards for the data set, made once by `tuneprep prepare` (no augmentation) and cached under bench/out/."""
    from flows.config import PipelineConfig
    from flows.steps import prepare

    folder = OUT / f"data-{name}"
    if (folder / "manifest.json").exists():
        return folder
    src = DATA[name]
    if not src.exists():
        sys.exit(f"{src} not found: this benchmark reads the shared real data (see bench/README.md)")
    cfg = PipelineConfig.model_validate(
        {
            "inputs": [str(src)],
            "augment": {"enabled": False},
            "split": {"ratios": {"train": 0.9, "validation": 0.05, "test": 0.05}},
            "tokenizer": {"vocab_size": 8000, "max_length": 256},
        }
    )
    shutil.rmtree(folder, ignore_errors=True)
    prepare(cfg, folder, log=lambda _: None)
    return folder


def subset(data: Path, examples: int, work: Path) -> Path:
    """A copy of the prepared folder: the first `examples` rows of train, 16 of validation and test."""
    from datasets import load_from_disk

    out = work / "data"
    if out.exists():
        return out
    shutil.copytree(data / "tokenizer", out / "tokenizer")
    shutil.copy(data / "manifest.json", out / "manifest.json")
    for split in ("train", "validation", "test"):
        ds = load_from_disk(str(data / "shards" / split))
        ds = ds.select(range(min(examples if split == "train" else 16, len(ds))))
        ds.save_to_disk(str(out / "shards" / split))
    return out


def loss_tokens(data: Path) -> int:
    from datasets import load_from_disk

    masks = load_from_disk(str(data / "shards" / "train"))["loss_mask"]
    return sum(sum(m[1:]) for m in masks)


def run_tuneprep(data: Path, steps: int, work: Path, lr: float) -> tuple[float, float]:
    """Loss tokens per wall second of the training loop, and per CPU second of the whole `train()` call."""
    from finetune import FinetuneConfig, train
    from finetune.data import load_split, pack_rows

    split = load_split(data, "train")
    rows = len(pack_rows(split.lengths, 256))
    cfg = FinetuneConfig(
        **MODEL,
        block_size=256,
        batch_size=math.ceil(rows / steps),
        max_steps=steps,
        lr=lr,
        warmup_steps=2,
        eval_every=0,
        generate_n=0,
        patience=None,
        num_threads=1,
        device="cpu",
        seed=0,
    )
    out = work / "tuneprep"
    shutil.rmtree(out, ignore_errors=True)
    cpu = time.process_time()
    metrics = train(data, out, cfg, log=lambda _: None)
    cpu = time.process_time() - cpu
    return metrics["tokens_per_s"], metrics["train_tokens"] / cpu


def run_trainer(data: Path, steps: int, work: Path, lr: float, tokens: int) -> tuple[float, float]:
    """A plain Trainer: batches padded to their longest example, the model's loss over full logits."""
    import torch
    from datasets import load_from_disk
    from transformers import AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from finetune import FinetuneConfig
    from finetune.model import scratch_model

    tok = AutoTokenizer.from_pretrained(str(data / "tokenizer"))
    train = load_from_disk(str(data / "shards" / "train"))
    train = train.map(
        lambda r: {"labels": [t if m else -100 for t, m in zip(r["input_ids"], r["loss_mask"], strict=True)]},
        remove_columns=[c for c in train.column_names if c != "input_ids"],
    )
    model = scratch_model(FinetuneConfig(**MODEL, seed=0), tok, 256)
    args = TrainingArguments(
        output_dir=str(work / "trainer"),
        per_device_train_batch_size=math.ceil(len(train) / steps),
        max_steps=steps,
        learning_rate=lr,
        lr_scheduler_type="cosine",
        warmup_steps=2,
        weight_decay=0.1,
        adam_beta2=0.99,
        max_grad_norm=1.0,
        logging_steps=10_000,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    collator = DataCollatorForSeq2Seq(tok, padding="longest", label_pad_token_id=-100)
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collator)
    torch.set_num_threads(1)
    start, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    return tokens / (time.perf_counter() - start), tokens / (time.process_time() - cpu)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=sorted(DATA), default="bitext")
    p.add_argument("--examples", type=int, default=600, help="train examples (the first n of the train split)")
    p.add_argument("--steps", type=int, default=15, help="optimizer steps: one pass, examples / steps a batch")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-3)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench-finetune-"))
    data = subset(prepared(args.data, args.examples), args.examples, work)
    tokens = loss_tokens(data)
    print(f"data: {args.data}, {args.examples} train examples, {tokens:,} loss tokens; {args.steps} steps each")
    ours, theirs = [], []
    for i in range(args.repeats):
        theirs.append(run_trainer(data, args.steps, work, args.lr, tokens))
        ours.append(run_tuneprep(data, args.steps, work, args.lr))
        print(
            f"run {i + 1}: Trainer (padded) {theirs[-1][0]:,.0f} loss tokens/s ({theirs[-1][1]:,.0f} per CPU s), "
            f"tuneprep (packed) {ours[-1][0]:,.0f} ({ours[-1][1]:,.0f} per CPU s)",
            flush=True,
        )
    wall = max(o[0] for o in ours) / max(t[0] for t in theirs)
    cpu = max(o[1] for o in ours) / max(t[1] for t in theirs)
    result = {
        "data": args.data,
        "examples": args.examples,
        "loss_tokens": tokens,
        "steps": args.steps,
        "model": MODEL,
        "trainer": [{"wall": w, "cpu": c} for w, c in theirs],
        "tuneprep": [{"wall": w, "cpu": c} for w, c in ours],
        "ratio_wall": wall,
        "ratio_cpu": cpu,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"cpu-{args.data}.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(
        f"best: Trainer {max(t[0] for t in theirs):,.0f}, tuneprep {max(o[0] for o in ours):,.0f} loss tokens/s "
        f"(per CPU s: {max(t[1] for t in theirs):,.0f}, {max(o[1] for o in ours):,.0f})"
    )
    print(f"ratio tuneprep / Trainer: {wall:.2f}x wall clock, {cpu:.2f}x CPU time")
    headline(cpu, "x", f"tuneprep / Trainer loss tokens per CPU second, {args.data}", ">=", 1.3)
    headline(wall, "x", f"tuneprep / Trainer loss tokens per second, {args.data}", ">=", 1.3)


if __name__ == "__main__":
    main()

"""GPU training throughput and MFU of tuneprep's loop: a GPT-2-124M-shaped model from scratch at 1,024 tokens.

    .venv/bin/python -m bench.finetune.gpu_mfu [--steps 60] [--batch 16] [--peak-tflops 989] [--compile]

Needs a CUDA GPU (exits with a message otherwise). The data is synthetic: rows of 1,024 random token ids over
GPT-2's vocabulary (50,257), one example per row, so the loop takes its no-mask path (causal sdpa, flash
kernels) as it does for long packed-full rows; content does not change the arithmetic. Training is the same
`finetune.train` as every run: bf16 autocast with fp32 master weights, fused AdamW, gradient clipping.

MFU = 6 · N · tokens/s / peak, with N the model's parameters (124M, embeddings included, as nanoGPT counts
them; the attention score FLOPs are left out, so this is the conservative figure) and tokens/s the input
tokens trained per second, taken as the median of 10-step windows after the first (warm-up) window. The peak is
the GPU's dense bf16 tensor-core figure: H100/H200 SXM 989 TFLOPS, H100 PCIe 756, A100 312, L40S 362, A10 125
(`--peak-tflops` for anything else).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out" / "finetune"
VOCAB = 50257
BLOCK = 1024
PEAKS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def peak_tflops(name: str) -> float | None:
    for key, value in PEAKS.items():  # most specific first ("H100 PCIe" before "H100")
        if key.lower() in name.lower():
            return value
    return None


def synthetic_data(root: Path, rows: int, seed: int = 0) -> Path:
    """A prepared-data folder: a word-level tokenizer of VOCAB tokens and a train split of random rows."""
    import numpy as np
    from datasets import Dataset, Features, List, Value
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab = {t: i for i, t in enumerate(specials + [f"t{i}" for i in range(VOCAB - len(specials))])}
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
    )
    tok.save_pretrained(str(root / "tokenizer"))
    rng = np.random.default_rng(seed)
    features = Features({"input_ids": List(Value("int32")), "loss_mask": List(Value("int8"))})
    for split, n in (("train", rows), ("validation", 8)):
        ids = rng.integers(4, VOCAB, size=(n, BLOCK), dtype=np.int32)
        ids[:, -1] = tok.eos_token_id
        Dataset.from_dict(
            {"input_ids": ids.tolist(), "loss_mask": np.ones_like(ids, dtype=np.int8).tolist()}, features=features
        ).save_to_disk(str(root / "shards" / split))
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=16, help="rows of 1,024 tokens per optimizer step")
    p.add_argument("--compile", action="store_true", help="train with `compile: true` (torch.compile)")
    p.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak (default: looked up by name)")
    args = p.parse_args()

    import torch

    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU here: this benchmark measures GPU throughput (see bench/README.md)")
    name = torch.cuda.get_device_name()
    peak = args.peak_tflops or peak_tflops(name)
    if peak is None:
        sys.exit(f"unknown dense bf16 peak for {name!r}: pass --peak-tflops")

    from finetune import FinetuneConfig, train

    work = Path(tempfile.mkdtemp(prefix="bench-mfu-"))
    data = synthetic_data(work / "data", rows=args.batch * args.steps)
    cfg = FinetuneConfig(
        n_layer=12,
        n_head=12,
        n_embd=768,
        dropout=0.0,
        block_size=BLOCK,
        batch_size=args.batch,
        max_steps=args.steps,
        lr=6e-4,
        warmup_steps=5,
        eval_every=0,
        generate_n=0,
        patience=None,
        log_every=10,
        device="cuda",
        precision="bf16",
        seed=0,
        compile=args.compile,
    )
    windows: list[float] = []
    pattern = re.compile(r"step \d+/\d+: .* ([\d,]+) loss tokens/s")

    def log(line: str) -> None:
        print(line, flush=True)
        if m := pattern.search(line):
            windows.append(float(m.group(1).replace(",", "")))

    metrics = train(data, work / "model", cfg, log=log)
    n_params = json.loads((work / "model" / "training.json").read_text())["model"]["parameters"]
    # logged rates count loss tokens: 1,023 of each row's 1,024 (the last position predicts nothing)
    tokens_per_s = statistics.median(windows[1:] or windows) * BLOCK / (BLOCK - 1)
    mfu = 6 * n_params * tokens_per_s / (peak * 1e12)
    result = {
        "gpu": name,
        "peak_tflops_bf16_dense": peak,
        "parameters": n_params,
        "block": BLOCK,
        "batch_rows": args.batch,
        "steps": args.steps,
        "compile": args.compile,
        "tokens_per_s": tokens_per_s,
        "mfu": mfu,
        "loss_tokens_per_s_whole_run": metrics["tokens_per_s"],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"gpu-mfu{'-compiled' if args.compile else ''}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{name}: {n_params / 1e6:.1f}M parameters, {tokens_per_s:,.0f} tokens/s at {BLOCK} tokens")
    print(f"MFU {mfu:.1%} of {peak:g} TFLOPS dense bf16 (target >= 40%)")


if __name__ == "__main__":
    main()

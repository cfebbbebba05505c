"""Peak memory and time of the distillation loss term: `finetune.distill.distill_losses` (loss positions only,
chunks recomputed in backward) against the usual full-logits KL (both models' logits for every loss token at
once, as `F.kl_div(log_softmax(student / T), log_softmax(teacher / T), log_target=True)` in TRL's GKD and most
distillation examples), forward and backward, on the same random hidden states and heads.

Each variant runs in a fresh process; its peak is the process's max RSS after the run minus before it (the
inputs already made), so the figure is what the loss term itself adds. CPU, one thread. No data needed.

    .venv/bin/python -m bench.finetune.distill_memory [--tokens 4096] [--vocab 32000] [--hidden 256]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

OUT = Path("bench/out/finetune")


def child(variant: str, tokens: int, vocab: int, hidden: int) -> dict:
    import torch
    import torch.nn.functional as F

    from finetune.distill import distill_losses

    torch.set_num_threads(1)
    torch.manual_seed(0)
    student, teacher = torch.nn.Linear(hidden, vocab, bias=False), torch.nn.Linear(hidden, vocab, bias=False)
    teacher.requires_grad_(False)
    h = torch.randn(tokens, hidden, requires_grad=True)
    th = torch.randn(tokens, hidden)
    targets = torch.randint(0, vocab, (tokens,))
    temperature, alpha = 2.0, 0.5
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if variant == "tuneprep":
        loss = distill_losses(h, th, targets, student, teacher, vocab, temperature, alpha).sum()
    else:
        logits = student(h)
        with torch.no_grad():
            teacher_logits = teacher(th)
        ce = F.cross_entropy(logits, targets, reduction="none")
        kl = F.kl_div(
            F.log_softmax(logits / temperature, -1),
            F.log_softmax(teacher_logits / temperature, -1),
            log_target=True,
            reduction="none",
        ).sum(-1)
        loss = ((1 - alpha) * ce + alpha * temperature**2 * kl).sum()
    loss.backward()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "variant": variant,
        "peak_mb": (peak - before) / 1024,
        "seconds": seconds,
        "loss": loss.item(),
        "grad_norm": h.grad.norm().item(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=4096, help="loss tokens in the batch")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.tokens, args.vocab, args.hidden)))
        return
    results = {}
    for variant in ("full-logits", "tuneprep"):
        cmd = [sys.executable, "-m", "bench.finetune.distill_memory", "--child", variant]
        cmd += ["--tokens", str(args.tokens), "--vocab", str(args.vocab), "--hidden", str(args.hidden)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[variant] = json.loads(out.strip().splitlines()[-1])
    base, ours = results["full-logits"], results["tuneprep"]
    summary = {
        "tokens": args.tokens,
        "vocab": args.vocab,
        "hidden": args.hidden,
        "results": results,
        "memory_ratio": base["peak_mb"] / max(ours["peak_mb"], 1e-9),
        "time_ratio": base["seconds"] / ours["seconds"],
        "same_loss": abs(base["loss"] - ours["loss"]) <= 1e-4 * abs(base["loss"]),
        "same_grad_norm": abs(base["grad_norm"] - ours["grad_norm"]) <= 1e-4 * abs(base["grad_norm"]),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "distill-memory.json").write_text(json.dumps(summary, indent=2))
    for name, r in results.items():
        print(f"{name:12s} peak +{r['peak_mb']:8.1f} MB  {r['seconds']:6.2f} s  loss {r['loss']:.4f}")
    print(
        f"memory: full logits / tuneprep = {summary['memory_ratio']:.2f}x; time ratio {summary['time_ratio']:.2f}x; "
        f"same loss {summary['same_loss']}, same gradient {summary['same_grad_norm']}"
    )


if __name__ == "__main__":
    main()

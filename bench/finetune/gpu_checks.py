"""The GPU paths, checked and measured on a CUDA machine: packing isolation, bf16 training, LoRA, distillation and
back-translation batching.

    .venv/bin/python -m bench.finetune.gpu_checks                      # builds its fixtures, then checks
    .venv/bin/python -m bench.finetune.gpu_checks --build DIR          # only build the fixtures (any machine)
    .venv/bin/python -m bench.finetune.gpu_checks --fixtures DIR       # check with fixtures built elsewhere

The CPU suite proves these paths on CPU; this runs them where kernels differ (cuDNN/flash sdpa, bf16 autocast,
CUDA generators). Fixtures are the test suite's tiny models and data (tests/ft_builders.py, tests/tiny_marian.py),
prepared shards (`--prepared DIR`: the output of `tuneprep prepare`, default the bundled demo's `runs/demo`) and
real sentences to translate (banking77 from ../shared/data when present, else the sample data). Building them needs
the whole install; the checks need only torch, transformers, peft and datasets, so fixtures can be built on one
machine and carried to a bare GPU box.

1. Packing isolation: each example's summed loss in packed rows against the example alone, per mask mode (bool
   for sdpa, additive for eager, restarting positions for flash/sliding-window models), fp32 and bf16 autocast.
2. Training on prepared shards in bf16: validation loss before/after, tokens/s, and whether a second run with the
   same seed ends with the same metrics.
3. LoRA and distillation runs on a small pretrained model with the shards' tokenizer: they finish and learn.
4. Back-translation (`TransformersBackend`, a Marian-shaped model with random weights): sentences/s with
   length-sorted batches against one sentence at a time, and whether the output depends on the batch size.

Writes bench/out/finetune/gpu-checks.json and prints one line per check.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out" / "finetune"
MODES = {"gpt2-sdpa": ("gpt2", "sdpa"), "gpt2-eager": ("gpt2", "eager"), "llama-sdpa": ("llama", "sdpa")}


# ---- fixtures ---------------------------------------------------------------------------------------------------


def _sentences(n: int = 2000) -> list[str]:
    """Real sentences: banking77 queries when ../shared is beside the checkout, else the bundled sample data."""
    from bench.realdata import BANKING77, DATA, banking77

    if (DATA / BANKING77 / "train.csv").exists():
        found = [q.text for q in banking77(splits=("test", "train")) if q.text]
    else:
        found = []
        for path in sorted((ROOT / "sample_data").rglob("*.txt")):
            found += [s for s in re.split(r"(?<=[.!?])\s+", path.read_text(encoding="utf-8")) if 3 < len(s) < 300]
    random.Random(0).shuffle(found)
    return found[:n]


def build_fixtures(root: Path, prepared: Path) -> Path:
    """Tiny models and data from the test builders, a copy of prepared shards, a Marian pair, sentences."""
    sys.path.insert(0, str(ROOT / "tests"))
    from ft_builders import chat_tokenizer, make_data_dir, save_pretrained_gpt2, tiny_gpt2, tiny_llama
    from transformers import AutoTokenizer

    root.mkdir(parents=True, exist_ok=True)
    make_data_dir(root / "tiny-data")
    vocab = len(chat_tokenizer())
    tiny_gpt2(vocab).save_pretrained(root / "models" / "gpt2")
    tiny_llama(vocab).save_pretrained(root / "models" / "llama")

    if not (prepared / "manifest.json").exists():
        raise SystemExit(f"no prepared shards at {prepared}: run `tuneprep prepare` or pass --prepared")
    for part in ("manifest.json", "tokenizer", "shards"):
        src, dst = prepared / part, root / "prepared" / part
        shutil.copytree(src, dst) if src.is_dir() else (
            dst.parent.mkdir(parents=True, exist_ok=True),
            shutil.copy(src, dst),
        )
    tokenizer = AutoTokenizer.from_pretrained(str(prepared / "tokenizer"))
    save_pretrained_gpt2(
        tokenizer, root / "models" / "pretrained", n_positions=1024
    )  # LoRA base and distillation teacher

    (root / "sentences.json").write_text(json.dumps(_sentences()), encoding="utf-8")
    return root


def marian_pair(fixtures: Path) -> tuple[str, str]:
    """A Marian-shaped pair (6 layers, d_model 512, random weights) over the sentences' words, built on first use:
    at 120 MB each they are cheaper to build where they run than to carry."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_marian import build_tiny_marian

    fwd, bwd = fixtures / "marian-fwd", fixtures / "marian-bwd"
    if not (bwd / "config.json").exists():
        sentences = json.loads((fixtures / "sentences.json").read_text(encoding="utf-8"))[:400]
        words = sorted({w for s in sentences for w in re.findall(r"\w+", s.lower())})
        rng = random.Random(1)
        pivot = [" ".join(rng.choices(words, k=len(s.split()))) for s in sentences]
        build_tiny_marian(fwd, sentences, pivot, vocab_size=400, d_model=512, layers=6, seed=0)
        build_tiny_marian(bwd, pivot, sentences, vocab_size=400, d_model=512, layers=6, seed=1)
    return str(fwd), str(bwd)


# ---- checks -----------------------------------------------------------------------------------------------------


def _summed_losses(head, batcher, rows: int, device, precision: str) -> dict[int, float]:
    """Each example's loss summed over its tokens, by its index in the split."""
    import torch

    from finetune.data import to_device

    sums: dict[int, float] = {}
    with torch.no_grad(), torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16"):
        for batch in batcher.sequential(rows):
            scores = head.scores(to_device(batch, device))
            examples = batch["example"].to(device)[scores.keep].tolist()
            for ex, loss in zip(examples, scores.losses.float().tolist(), strict=True):
                sums[ex] = sums.get(ex, 0.0) + loss
    return sums


def packing_isolation(fixtures: Path, device) -> dict:
    """Worst |packed - alone| of an example's summed loss, per model and mask mode, fp32 and bf16 autocast."""
    from transformers import AutoModelForCausalLM

    from finetune.data import Batcher, load_split, pack_rows, single_rows
    from finetune.model import LossHead, mask_mode

    split = load_split(fixtures / "tiny-data", "train")
    rows = pack_rows(split.lengths, 64)
    out: dict[str, dict] = {}
    for name, (arch, attn) in MODES.items():
        model = AutoModelForCausalLM.from_pretrained(fixtures / "models" / arch, attn_implementation=attn)
        model = model.to(device).eval()
        head = LossHead(model)
        modes = [mask_mode(model)] + (["positions"] if arch == "llama" else [])
        for mode in modes:
            for precision in ("fp32", "bf16"):
                packed = _summed_losses(head, Batcher(split, rows, 0, mode), 4, device, precision)
                single = Batcher(split, single_rows(len(split)), 0, "bool" if mode == "positions" else mode)
                alone = _summed_losses(head, single, 1, device, precision)
                worst = max(abs(packed[k] - alone[k]) for k in alone)
                scale = max(abs(v) for v in alone.values())
                out[f"{name}/{mode}/{precision}"] = {"worst_abs": worst, "relative": worst / scale}
    return out


def _train(data: Path, out: Path, device: str, **overrides) -> tuple[dict, dict, float]:
    from finetune import FinetuneConfig, train

    cfg = FinetuneConfig(
        **{
            "n_layer": 4,
            "n_head": 4,
            "n_embd": 256,
            "batch_size": 16,
            "max_steps": 300,
            "eval_every": 100,
            "generate_n": 8,
            "log_every": 100,
            "patience": None,
            "device": device,
            "precision": "bf16",
            "seed": 0,
            **overrides,
        }
    )
    start = time.perf_counter()
    metrics = train(data, out, cfg, log=lambda line: print("   ", line, flush=True))
    training = json.loads((out / "training.json").read_text())
    return metrics, training, time.perf_counter() - start


def training_runs(fixtures: Path, work: Path, device: str, steps: int) -> dict:
    data = fixtures / "prepared"
    first, training, seconds = _train(data, work / "scratch-a", device, max_steps=steps, eval_every=steps // 3)
    second, _, _ = _train(data, work / "scratch-b", device, max_steps=steps, eval_every=steps // 3)
    pretrained = str(fixtures / "models" / "pretrained")
    lora, lora_training, _ = _train(
        data, work / "lora", device, model=pretrained, lora={"r": 8}, max_steps=100, eval_every=50, generate_n=4
    )
    distill, _, _ = _train(
        data, work / "distill", device, distill={"teacher": pretrained}, max_steps=100, eval_every=50, generate_n=4
    )

    def val(m: dict, when: str) -> float:
        return m[when]["validation"]["loss"]

    return {
        "scratch": {
            "precision": training["precision"],
            "device": training["device"],
            "parameters": training["model"]["parameters"],
            "validation_loss": [val(first, "base"), val(first, "final")],
            "validation_perplexity": first["final"]["validation"]["perplexity"],
            "tokens_per_s": first["tokens_per_s"],
            "seconds": seconds,
            "same_seed_same_final_loss": val(first, "final") == val(second, "final"),
            "same_seed_final_loss_diff": abs(val(first, "final") - val(second, "final")),
            "generation": first["final"]["validation"].get("generation"),
        },
        "lora": {
            "trained_parameters": lora_training["model"]["trained"],
            "validation_loss": [val(lora, "base"), val(lora, "final")],
        },
        "distill": {"validation_loss": [val(distill, "base"), val(distill, "final")]},
    }


def back_translation(fixtures: Path, device: str) -> dict:
    import torch

    from augment.backtranslate import TransformersBackend

    sentences = json.loads((fixtures / "sentences.json").read_text(encoding="utf-8"))
    seeds = list(range(len(sentences)))
    fwd, bwd = marian_pair(fixtures)
    result: dict[str, dict] = {}
    outputs: dict[int, list] = {}
    for batch_size, n in ((64, min(len(sentences), 1024)), (1, 32), (64, 32)):
        n = min(n, len(sentences))
        backend = TransformersBackend(fwd, bwd, max_length=64, batch_size=batch_size, device=device)
        backend.round_trip(sentences[:8], seeds[:8])  # load and warm up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = backend.round_trip(sentences[:n], seeds[:n])
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        result[f"batch {batch_size}, {n} sentences"] = {"sentences_per_s": n / seconds, "seconds": seconds}
        outputs.setdefault(batch_size, out[:32])
    same = sum(a == b for a, b in zip(outputs[64], outputs[1], strict=True))
    result["same_output_batch_64_vs_1"] = {"identical": same, "of": len(outputs[1])}
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", type=Path, help="only build the fixtures in this folder")
    p.add_argument("--fixtures", type=Path, help="fixtures built by --build (default: built in a temp folder)")
    p.add_argument("--prepared", type=Path, default=ROOT / "runs" / "demo", help="`tuneprep prepare` output")
    p.add_argument("--device", default="cuda", help="cpu runs the same checks slowly (to try the script)")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps of the scratch training runs")
    p.add_argument("--skip", nargs="*", default=[], choices=["packing", "training", "backtranslation"])
    args = p.parse_args()
    if args.build:
        print(f"fixtures in {build_fixtures(args.build, args.prepared)}")
        return

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA GPU here: these checks exercise the GPU paths (see bench/README.md)")
    torch.backends.cuda.matmul.allow_tf32 = False  # isolation is compared in true fp32
    work = Path(tempfile.mkdtemp(prefix="gpu-checks-"))
    fixtures = args.fixtures or build_fixtures(work / "fixtures", args.prepared)
    device = torch.device(args.device)
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else None
    result: dict = {"gpu": gpu, "torch": torch.__version__}
    import transformers

    result["transformers"] = transformers.__version__
    checks = {
        "packing": lambda: packing_isolation(fixtures, device),
        "training": lambda: training_runs(fixtures, work, args.device, args.steps),
    }
    checks["backtranslation"] = lambda: back_translation(fixtures, args.device)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, check in checks.items():
        if name in args.skip:
            continue
        start = time.perf_counter()
        try:
            result[name] = check()
        except Exception as exc:  # one failing check must not hide the others' figures
            import traceback

            traceback.print_exc()
            result[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"== {name} ({time.perf_counter() - start:.0f} s): {json.dumps(result[name], default=str)}", flush=True)
        (OUT / "gpu-checks.json").write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()

"""Run prepare + fine-tune into OUT, and SIGKILL this process at a named point (for tests/test_resume.py).

    python tests/crash_run.py OUT CONFIG_JSON [--kill-at load|dedup|augment|shards|training]

Each kill point wraps a function the pipeline calls repeatedly and kills the process, as abruptly as a
power cut, on a call in the middle of the work: no handler, no flush, no cleanup. The pipeline runs with
no Prefect at all (``flows.steps``), as the completion markers must work without a server.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def kill_on_call(owner, name: str, n: int) -> None:
    """Replace ``owner.name`` so that its ``n``-th call kills the process before it runs."""
    original = getattr(owner, name)
    calls = [0]

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def kill_after_batches(module, name: str, n: int) -> None:
    """Wrap a generator function so the process dies after it yielded ``n`` items (mid-stream)."""
    original = getattr(module, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        for i, item in enumerate(original(*args, **kwargs)):
            if i == n:
                os.kill(os.getpid(), signal.SIGKILL)
            yield item

    setattr(module, name, wrapper)


def arm(point: str) -> None:
    if point == "load":
        import ingest.sources

        kill_after_batches(ingest.sources, "iter_record_batches", 3)
    elif point == "dedup":
        from cleaners.dedup import MinHashDeduper

        kill_on_call(MinHashDeduper, "process", 3)
    elif point == "augment":
        from augment.stage import Augment

        kill_on_call(Augment, "process", 2)  # the first chunk of the second partition
    elif point == "shards":
        from shards.writer import SplitWriter

        kill_on_call(SplitWriter, "close", 2)  # train is in place, validation and test are not
    elif point == "training":
        import torch

        kill_on_call(torch.optim.AdamW, "step", 3)  # any trainer steps an optimizer
    else:
        raise SystemExit(f"unknown kill point {point!r}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("config")
    p.add_argument("--kill-at")
    args = p.parse_args()
    from flows.config import PipelineConfig
    from flows.steps import finetune_step, prepare

    cfg = PipelineConfig.model_validate(json.loads(args.config))
    if args.kill_at:
        arm(args.kill_at)
    prepare(cfg, args.out, log=lambda m: None)
    finetune_step(args.out, str(Path(args.out) / "model"), cfg.finetune, log=lambda m: None)


if __name__ == "__main__":
    main()

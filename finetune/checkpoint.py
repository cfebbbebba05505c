"""Resumable training state under OUT/checkpoints/: a killed run continues exactly where it stopped.

A checkpoint holds the trained weights (only parameters that train: LoRA adapters are all a LoRA run needs,
the frozen rest is rebuilt from the same source and seed), the optimizer and LR scheduler, every RNG, and the
loop state: step, data position (epoch and micro-batch within it; the order itself is a function of the seed
and epoch), early-stopping state, the base model's metrics. Each is written to a hidden folder and renamed
into place, so a kill at any moment leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from finetune.model import trainable_parameters
from tuneprep.files import atomic_replace_dir, atomic_write_json, tmp_name

CHECKPOINTS = "checkpoints"


@dataclass
class LoopState:
    """Everything about the loop's progress that is not a tensor."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # data position: the next micro-batch is batch `cursor` of epoch `epoch`
    cursor: int = 0
    train_tokens: int = 0  # loss tokens trained on
    train_seconds: float = 0.0  # time in training steps (evaluations excluded), summed over resumes
    best_loss: float | None = None
    best_step: int | None = None
    bad_evals: int = 0  # evaluations since the last improvement
    stopped_early: bool = False
    base: dict[str, Any] | None = None  # the model's metrics before training
    base_outputs: dict[str, list[str]] = field(default_factory=dict)  # base generations per split, for the report
    history: list[dict[str, Any]] = field(default_factory=list)  # {"step", "loss"} of every validation eval


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().to("cpu").contiguous() for n, p in trainable_parameters(model).items()}


def _load_weights(model: nn.Module, path: Path) -> None:
    saved = load_file(str(path))
    params = trainable_parameters(model)
    if set(saved) != set(params):
        raise ValueError(f"{path}: saved weights do not match the model's trainable parameters")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(saved[name].to(p.device))


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Checkpoints:
    """The checkpoint folder of one run; `fingerprint` says which settings a checkpoint must share to resume."""

    def __init__(self, out_dir: Path, fingerprint: dict[str, Any]) -> None:
        self.root = Path(out_dir) / CHECKPOINTS
        self.fingerprint = fingerprint

    def latest(self) -> Path | None:
        done = sorted(p for p in self.root.glob("step-*") if p.is_dir()) if self.root.exists() else []
        return done[-1] if done else None

    def save(self, state: LoopState, model: nn.Module, optimizer, scheduler) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"step-{state.step:08d}"
        tmp = tmp_name(final)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_file(_weights(model), str(tmp / "weights.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(rng_state(), tmp / "rng.pt")
        atomic_write_json(tmp / "state.json", {"fingerprint": self.fingerprint, "loop": asdict(state)})
        atomic_replace_dir(tmp, final)
        for old in self.root.glob("step-*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
        keep = None if state.best_step is None else self.best_path(state.best_step)
        for best in self.root.glob("best-*.safetensors"):
            if best != keep:
                best.unlink(missing_ok=True)
        return final

    def resume(self, model: nn.Module, optimizer, scheduler) -> LoopState | None:
        """Load the latest checkpoint into model, optimizer and scheduler, restore the RNGs; None if none."""
        path = self.latest()
        if path is None:
            return None
        saved = json.loads((path / "state.json").read_text())
        if saved["fingerprint"] != self.fingerprint:
            changed = sorted(
                k
                for k in set(saved["fingerprint"]) | set(self.fingerprint)
                if saved["fingerprint"].get(k) != self.fingerprint.get(k)
            )
            raise ValueError(
                f"{self.root} holds a run with other settings ({', '.join(changed)} differ): rerun with the same "
                f"settings to resume it, or delete {self.root} to start over"
            )
        _load_weights(model, path / "weights.safetensors")
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
        set_rng_state(torch.load(path / "rng.pt", weights_only=False))
        return LoopState(**saved["loop"])

    def best_path(self, step: int) -> Path:
        return self.root / f"best-{step:08d}.safetensors"

    def save_best(self, model: nn.Module, step: int) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.best_path(step)
        tmp = tmp_name(path)
        save_file(_weights(model), str(tmp))
        tmp.replace(path)

    def load_best(self, model: nn.Module, step: int) -> None:
        _load_weights(model, self.best_path(step))

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

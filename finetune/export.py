"""The exported model folder: `from_pretrained`-ready weights (LoRA merged), tokenizer with its chat template,
and a model card naming the data, the config and the metrics."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tuneprep.files import atomic_write_text

if TYPE_CHECKING:
    from transformers import PreTrainedModel

MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json")


def save_model(model: PreTrainedModel, tokenizer, out_dir: Path, card: str) -> None:
    """Save into a hidden sibling, then move the files in: a crash never leaves half a model under real names."""
    tmp = out_dir / ".export"
    shutil.rmtree(tmp, ignore_errors=True)
    for name in MODEL_FILES:  # a previous export may have been sharded differently
        (out_dir / name).unlink(missing_ok=True)
    for old in out_dir.glob("model-*-of-*.safetensors"):
        old.unlink()
    gen = model.generation_config
    gen.eos_token_id, gen.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    if tokenizer.bos_token_id is not None:
        gen.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(tmp)  # safetensors
    tokenizer.save_pretrained(tmp)  # with the chat template the conversations were rendered with
    (tmp / "README.md").write_text(card, encoding="utf-8")
    for f in sorted(tmp.iterdir()):
        os.replace(f, out_dir / f.name)
    tmp.rmdir()


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    return f"{x:,.{digits}f}" if isinstance(x, float) else str(x)


def metrics_table(metrics: dict[str, Any]) -> str:
    rows = [
        "| split | | loss | perplexity | token accuracy | BLEU | ROUGE-L | F1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for split in ("validation", "test"):
        for when in ("base", "final"):
            m = (metrics.get(when) or {}).get(split)
            if not m:
                continue
            g = m.get("generation") or {}
            rows.append(
                f"| {split} | {when} | {_fmt(m['loss'])} | {_fmt(m['perplexity'], 2)} | {_fmt(m['token_accuracy'])} "
                f"| {_fmt(g.get('bleu'), 2)} | {_fmt(g.get('rouge_l'))} | {_fmt(g.get('f1'))} |"
            )
    return "\n".join(rows)


def model_card(
    *,
    name: str,
    source: str | None,
    mode: str,
    data: dict[str, Any],
    config: dict[str, Any],
    metrics: dict[str, Any],
    training: dict[str, Any],
) -> str:
    """README.md for the model folder (Hugging Face model card layout: YAML front matter, then Markdown)."""
    front: dict[str, Any] = {"library_name": "transformers", "pipeline_tag": "text-generation", "tags": ["tuneprep"]}
    if source:
        front["base_model"] = source
    trained = (
        f"{training['steps']} steps, {training['train_tokens']:,} loss tokens; exported weights from step "
        f"{metrics.get('best_step')}" + (" (stopped early)" if metrics.get("stopped_early") else "")
    )
    return "\n".join(
        [
            "---",
            yaml.safe_dump(front, sort_keys=False).strip(),
            "---",
            "",
            f"# {name}",
            "",
            f"A causal language model {'fine-tuned from `' + source + '` (' + mode + ')' if source else 'trained from scratch'}"
            " by tuneprep on prepared shards.",
            "",
            "## Data",
            "",
            f"- data manifest sha256: `{data.get('manifest_sha256')}` (`{data.get('dir')}/manifest.json`)",
            f"- tokenizer sha256: `{data.get('tokenizer_sha256')}`",
            f"- training: {trained}",
            "",
            "## Metrics",
            "",
            "Loss, perplexity and token accuracy on loss tokens (assistant turns of conversations, every token of "
            "documents); BLEU (sacrebleu, 0–100), ROUGE-L F and token F1 (0–1) of the last assistant turn "
            "generated greedily from the turns before it.",
            "",
            metrics_table(metrics),
            "",
            "## Use",
            "",
            "```python",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            'model = AutoModelForCausalLM.from_pretrained("THIS_FOLDER")',
            'tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER")  # apply_chat_template for conversations',
            "```",
            "",
            '`tuneprep generate THIS_FOLDER "prompt" [--chat]`, `tuneprep serve THIS_FOLDER` (OpenAI-style API).',
            "",
            "## Config",
            "",
            "```json",
            json.dumps(config, indent=2),
            "```",
            "",
        ]
    )


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")

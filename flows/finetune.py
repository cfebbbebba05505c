"""The training flow: Arrow shards -> a fine-tuned causal LM with validation and test metrics.

Run it with ``tuneprep finetune DATA_DIR --out DIR`` or ``python -m flows.finetune DATA_DIR DIR``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from finetune import FinetuneConfig, train
from shards.tokenization import tokenizer_identity


def resolve_data_dir(path: str | Path) -> Path:
    """Accept the prepare output folder or its ``shards/`` folder."""
    p = Path(path)
    if p.name == "shards" and (p.parent / "manifest.json").exists():
        p = p.parent
    if not (p / "shards").is_dir() or not (p / "tokenizer").is_dir():
        raise FileNotFoundError(
            f"{path}: expected a prepared run folder with shards/ and tokenizer/ (from `tuneprep prepare`)"
        )
    return p


def check_tokenizer(data_dir: Path) -> None:
    """Refuse shards whose tokenizer is not the one saved beside them."""
    manifest = data_dir / "manifest.json"
    if not manifest.exists():
        return
    expected = json.loads(manifest.read_text()).get("tokenizer", {}).get("sha256")
    actual = tokenizer_identity(data_dir / "tokenizer")["sha256"]
    if expected and expected != actual:
        raise ValueError(
            f"tokenizer in {data_dir / 'tokenizer'} (sha256 {actual[:12]}) is not the one the shards "
            f"were made with ({expected[:12]}): re-run `tuneprep prepare`"
        )


@task(name="finetune", cache_policy=NO_CACHE)
def finetune_task(data_dir: str, model_dir: str, config: FinetuneConfig) -> str:
    data = resolve_data_dir(data_dir)
    check_tokenizer(data)
    train(data, Path(model_dir), config, log=get_run_logger().info, progress=sys.stderr.isatty())
    return str(Path(model_dir) / "metrics.json")


@flow(name="tuneprep-finetune", log_prints=True)
def finetune_flow(data_dir: str, out: str, config: FinetuneConfig = FinetuneConfig()) -> str:
    """Train on ``data_dir``'s shards; the model, metrics.json and TensorBoard logs go to ``out``."""
    return finetune_task(data_dir, out, config)


if __name__ == "__main__":
    finetune_flow(sys.argv[1], sys.argv[2])

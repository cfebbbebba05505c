"""Loading a saved tokenizer cheaply, and its identity: what a fine-tune compares to refuse shards made with
another one.

Kept here, below the stage packages, so that the fine-tune reads it without importing polars or the
tokenization stage.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tuneprep.files import tree_sha256

# Saved tokenizer classes that are the plain ``tokenizers``-backed fast tokenizer (what tuneprep trains and saves).
_PLAIN_FAST = frozenset({"TokenizersBackend", "PreTrainedTokenizerFast"})


def load_tokenizer(name_or_path: str | Path):
    """``AutoTokenizer.from_pretrained``, but a folder saved as a plain fast tokenizer is loaded by that class
    directly: the same object, without ``AutoTokenizer``'s import of the model side of transformers (torch, a
    few seconds per process)."""
    folder = Path(name_or_path)
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    if (
        config.get("tokenizer_class") in _PLAIN_FAST
        and "auto_map" not in config
        and (folder / "tokenizer.json").is_file()
    ):
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(str(folder))
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(name_or_path))


def tokenizer_identity(tok_dir: Path, name: str | None = None) -> dict:
    """Name, content hash (the SentencePiece model aside: its tokenizer.json twin is hashed), size, EOS, template."""
    tok = load_tokenizer(tok_dir)
    template = tok.chat_template or ""
    return {
        "name": name or "sentencepiece (trained on the train split)",
        "sha256": tree_sha256(tok_dir, skip=("sentencepiece.model",)),
        "vocab_size": len(tok),
        "eos_token": tok.eos_token,
        "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest(),
    }

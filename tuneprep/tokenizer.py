"""The identity of a saved tokenizer: what a fine-tune compares to refuse shards made with another one.

Kept here, below the stage packages, so that reading it imports neither polars nor the tokenization stage.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tuneprep.files import tree_sha256


def tokenizer_identity(tok_dir: Path, name: str | None = None) -> dict:
    """Name, content hash (the SentencePiece model aside: its tokenizer.json twin is hashed), size, EOS, template."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    template = tok.chat_template or ""
    return {
        "name": name or "sentencepiece (trained on the train split)",
        "sha256": tree_sha256(tok_dir, skip=("sentencepiece.model",)),
        "vocab_size": len(tok),
        "eos_token": tok.eos_token,
        "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest(),
    }

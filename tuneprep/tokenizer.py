"""Loading a saved tokenizer cheaply, and its identity: what a fine-tune compares to refuse shards made with
another one.

Kept here, below the stage packages, so that the fine-tune reads it without importing polars or the
tokenization stage.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path

from tuneprep.files import tree_sha256

# Saved tokenizer classes that are the plain ``tokenizers``-backed fast tokenizer (what tuneprep trains and saves).
_PLAIN_FAST = frozenset({"TokenizersBackend", "PreTrainedTokenizerFast"})
# transformers' named special tokens (``SPECIAL_TOKENS_ATTRIBUTES``), in its order
_NAMED = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# Files ``save_pretrained`` writes for a plain fast tokenizer (transformers 5)
SAVED_FILES = ("tokenizer_config.json", "tokenizer.json", "chat_template.jinja")
# Above this vocabulary size transformers may patch a (Mistral) pre-tokenizer's regex on load
_PATCHED_VOCAB = 100_000


class SavedTokenizer:
    """A folder transformers 5 saved as its plain fast tokenizer, read with the ``tokenizers`` library alone.

    Making shards needs the Rust tokenizer, the special tokens and the chat template; importing transformers
    for them costs 0.6 s or more a process (transformers 5 scans its model folders at import), a tenth of a
    small ``prepare``. ``read`` returns None for any folder where transformers' loader would build something
    other than the file's tokenizer (special tokens it would add, a post-processor it would rebuild, an older
    save format), so those load through transformers. Anything else asked of this object (applying the chat
    template, ``decode``, saving) goes to the transformers tokenizer, loaded on first use.
    """

    def __init__(self, folder: Path, backend, config: dict, chat_template: str | None) -> None:
        self.folder = folder
        self.backend_tokenizer = backend
        self.chat_template = chat_template
        self.special_tokens_map = {k: config[k] for k in _NAMED if config.get(k) is not None}
        for key in _NAMED:
            token = config.get(key)
            setattr(self, key, token)
            setattr(self, f"{key}_id", None if token is None else backend.token_to_id(token))

    @classmethod
    def read(cls, folder: str | Path) -> SavedTokenizer | None:
        """The folder's tokenizer, or None where only transformers can load it as transformers would."""
        folder = Path(folder)
        try:
            config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if (
            not isinstance(config, dict)
            or config.get("tokenizer_class") not in _PLAIN_FAST
            or any(k in config for k in ("auto_map", "added_tokens_decoder", "add_bos_token", "add_eos_token"))
            or any(k in config for k in ("additional_special_tokens", "tokenizer_file"))
            or (folder / "special_tokens_map.json").exists()  # an older save format
            or (folder / "additional_chat_templates").exists()
            or not (folder / "tokenizer.json").is_file()
        ):
            return None
        specials = [config.get(k) for k in _NAMED if config.get(k) is not None]
        extra = config.get("extra_special_tokens") or []
        if not all(isinstance(t, str) for t in [*specials, *extra]):
            return None
        template = config.get("chat_template")
        jinja = folder / "chat_template.jinja"
        if jinja.is_file():
            template = jinja.read_text(encoding="utf-8")
        if template is not None and not isinstance(template, str):
            return None  # named templates: transformers picks one
        from tokenizers import Tokenizer

        try:
            backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception:  # noqa: BLE001 - transformers reports a broken file better
            return None
        added = {t.content for t in backend.get_added_tokens_decoder().values()}
        if (
            not set(specials) | set(extra) <= added  # transformers would add the missing ones
            or backend.post_processor is None  # transformers would build one
            or (backend.get_vocab_size() > _PATCHED_VOCAB and backend.pre_tokenizer is not None)
        ):
            return None
        backend.encode_special_tokens = bool(config.get("split_special_tokens", False))
        return cls(folder, backend, config, template)

    def __len__(self) -> int:
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=True)

    @cached_property
    def transformers_tokenizer(self):
        """The same folder loaded by transformers, for what is not read here."""
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(str(self.folder))

    def __call__(self, *args, **kwargs):
        return self.transformers_tokenizer(*args, **kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "transformers_tokenizer":
            raise AttributeError(name)
        return getattr(self.transformers_tokenizer, name)


def read_tokenizer(path: str | Path):
    """A saved tokenizer to encode with and read: ``SavedTokenizer`` where the folder allows, else
    ``load_tokenizer``. Not for changing and saving again (``load_tokenizer`` is)."""
    saved = SavedTokenizer.read(path)
    return load_tokenizer(path) if saved is None else saved


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
    tok = read_tokenizer(tok_dir)
    template = tok.chat_template or ""
    return {
        "name": name or "sentencepiece (trained on the train split)",
        "sha256": tree_sha256(tok_dir, skip=("sentencepiece.model",)),
        "vocab_size": len(tok),
        "eos_token": tok.eos_token,
        "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest(),
    }

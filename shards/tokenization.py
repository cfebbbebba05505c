"""Tokenizer training/loading and encoding of records into ``input_ids`` + ``loss_mask``.

A trained tokenizer is a real SentencePiece Unigram model (the ``sentencepiece``
trainer), carried over piece for piece into a ``tokenizers`` Unigram model so
that ``AutoTokenizer.from_pretrained(OUT/tokenizer)`` loads a fast tokenizer
that encodes exactly as SentencePiece does.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from tuneprep.files import tree_sha256

if TYPE_CHECKING:
    from shards.config import TokenizerConfig

SPECIAL_TOKENS = {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]

# One BOS per conversation, a role marker per turn, EOS closing every assistant turn.
DEFAULT_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ '<|' + m['role'] + '|>' + '\\n' + m['content'] }}"
    "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' + '\\n' }}{% endif %}"
)


def train_sentencepiece(texts: Iterable[str], cfg: TokenizerConfig, out_dir: Path, seed: int = 0):
    """Train a SentencePiece Unigram/BPE model on ``texts`` and save it as a transformers tokenizer."""
    import sentencepiece as spm
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    lines: list[str] = []
    chars = 0
    for t in texts:
        for p in t.split("\n"):
            if p.strip():
                lines.append(p)
                chars += len(p)
        if len(lines) >= cfg.input_sentence_size or chars >= cfg.max_train_chars:
            break
    if not lines:
        raise ValueError("no training text to train a tokenizer on: the train split is empty")
    # Byte fallback needs 256 byte pieces beside every character kept whole; small corpora can ask for less.
    alphabet = len(set().union(*map(set, lines)))
    vocab_size = max(cfg.vocab_size, 256 + 8 + len(cfg.extra_special_tokens) + alphabet + 1)

    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=proto,
        vocab_size=vocab_size,
        model_type="unigram",
        byte_fallback=True,
        pad_id=0,
        unk_id=1,
        bos_id=2,
        eos_id=3,
        user_defined_symbols=["\n", *ROLE_TOKENS, *cfg.extra_special_tokens],
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        hard_vocab_limit=False,
        character_coverage=cfg.character_coverage,
        input_sentence_size=cfg.input_sentence_size,
        shuffle_input_sentence=False,
        num_threads=1,  # one thread: the same text gives the same model
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    tk = Tokenizer(models.Unigram(vocab, unk_id=sp.unk_id(), byte_fallback=True))
    tk.normalizer = normalizers.Replace(" ", "▁")
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tk.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tk.add_special_tokens(
        [
            AddedToken(t, special=True, normalized=False)
            for t in [*SPECIAL_TOKENS.values(), *ROLE_TOKENS, *cfg.extra_special_tokens]
        ]
    )
    tk.add_tokens([AddedToken("\n", normalized=False)])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, **SPECIAL_TOKENS, additional_special_tokens=[*ROLE_TOKENS, *cfg.extra_special_tokens]
    )
    tok.chat_template = DEFAULT_CHAT_TEMPLATE
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out_dir))
    (out_dir / "sentencepiece.model").write_bytes(proto.getvalue())
    return tok


def load_pretrained(name_or_path: str, out_dir: Path, extra_special_tokens: list[str] | None = None):
    """Load a tokenizer by hub name or path and save a copy beside the shards."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(name_or_path)
    if extra_special_tokens:
        tok.add_special_tokens({"additional_special_tokens": list(extra_special_tokens)})
    if tok.eos_token is None:
        raise ValueError(f"tokenizer {name_or_path!r} has no EOS token")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not tok.chat_template:
        tok.add_tokens(ROLE_TOKENS, special_tokens=True)
        tok.chat_template = DEFAULT_CHAT_TEMPLATE
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out_dir))
    return tok


def tokenizer_identity(tok_dir: Path, name: str | None = None) -> dict:
    """What the fine-tune checks to refuse shards made with another tokenizer."""
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


def _windows(n_tokens: int, cuts: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Greedy [start, end) windows of at most ``limit`` tokens, ending at allowed cut points where possible."""
    out, start = [], 0
    while n_tokens - start > limit:
        ok = cuts[(cuts > start) & (cuts <= start + limit)]
        end = int(ok[-1]) if ok.size else start + limit
        out.append((start, end))
        start = end
    out.append((start, n_tokens))
    return out


def _token_index(offsets: list[tuple[int, int]], chars: list[int]) -> np.ndarray:
    starts = np.array([o[0] for o in offsets], dtype=np.int64)
    return np.unique(np.searchsorted(starts, np.asarray(chars, dtype=np.int64), side="left"))


def boundary_tokens(tok) -> np.ndarray:
    """Per token id: may a window end after it (it closes a sentence or a line)? Computed once per tokenizer.

    Cutting on token ids rather than on character offsets keeps windowing in numpy and
    guarantees a cut never falls inside a token.
    """
    table = getattr(tok, "_tuneprep_boundary", None)
    if table is None or len(table) != len(tok):
        pieces = tok.batch_decode([[i] for i in range(len(tok))], skip_special_tokens=False)
        table = np.array(
            ["\n" in p or p.rstrip().endswith((".", "!", "?", '."', '?"', '!"')) for p in pieces], dtype=bool
        )
        tok._tuneprep_boundary = table
    return table


_ENCODE_CHUNK = 256  # texts per Rust call: its Encodings (ids, offsets, token strings) cost ~100 bytes a token


def _encode_batch(tok, texts: list[str]) -> list[np.ndarray]:
    """Token ids per text (int32 arrays: a list of Python ints costs 4x more) through the Rust tokenizer's
    parallel batch path when there is one."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        return [np.asarray(ids, np.int32) for ids in tok(texts, add_special_tokens=False)["input_ids"]]
    out: list[np.ndarray] = []
    for lo in range(0, len(texts), _ENCODE_CHUNK):
        chunk = backend.encode_batch(texts[lo : lo + _ENCODE_CHUNK], add_special_tokens=False)
        out.extend(np.asarray(e.ids, np.int32) for e in chunk)
    return out


def _text_windows(ids: np.ndarray, boundary: np.ndarray, eos: int, max_length: int) -> list[tuple[np.ndarray, None]]:
    if len(ids) < max_length:  # the common case: one window, no boundary search
        return [(np.append(ids, np.int32(eos)), None)]
    cuts = np.flatnonzero(boundary[ids.clip(max=len(boundary) - 1)]) + 1
    return [(np.append(ids[s:e], np.int32(eos)), None) for s, e in _windows(len(ids), cuts, max_length - 1)]


def encode_text(text: str, tok, max_length: int) -> list[tuple[list[int], list[int]]]:
    """Plain document -> windows of ``text + EOS`` cut after sentence or line ends; every token in the loss."""
    (ids,) = _encode_batch(tok, [text])
    windows = _text_windows(ids, boundary_tokens(tok), tok.eos_token_id, max_length)
    return [(w.tolist(), [1] * len(w)) for w, _ in windows]


def encode_chat(messages: list[dict], tok, max_length: int) -> list[tuple[list[int], list[int]]]:
    """Conversation -> chat-template tokens with a mask over assistant turns (content and EOS).

    The assistant spans are found on the rendered string (prefix renders with and
    without the generation prompt), then mapped to tokens through offsets, so the
    mask is right for any template whose renders are prefixes of each other.
    """
    full = tok.apply_chat_template(messages, tokenize=False).rstrip("\n")
    spans, turn_starts = [], []
    for i, m in enumerate(messages):
        before = tok.apply_chat_template(messages[:i], tokenize=False) if i else ""
        turn_starts.append(len(before))
        if m["role"] == "assistant":
            prompt = tok.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
            upto = tok.apply_chat_template(messages[: i + 1], tokenize=False)
            if not full.startswith(upto.rstrip("\n")) or not upto.startswith(prompt):
                raise ValueError("chat template renders are not prefixes of each other; cannot place the loss mask")
            spans.append((len(prompt), len(upto.rstrip())))  # the turn's text and EOS, not the newline after
    enc = tok(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    starts = np.array([o[0] for o in offsets], dtype=np.int64)
    mask = np.zeros(len(ids), dtype=np.int8)
    for a, b in spans:
        mask[(starts >= a) & (starts < b)] = 1
    cuts = _token_index(offsets, turn_starts[1:])
    bos = [tok.bos_token_id] if tok.bos_token_id is not None and ids and ids[0] == tok.bos_token_id else []
    out = []
    eos = tok.eos_token_id
    for s, e in _windows(len(ids), cuts, max_length - len(bos) - 1):
        prefix = bos if s > 0 else []
        window, wmask = prefix + ids[s:e], [0] * len(prefix) + mask[s:e].tolist()
        if window[-1] != eos:  # every example ends with EOS; one added here is not an assistant token
            window, wmask = window + [eos], wmask + [0]
        out.append((window, wmask))
    return out


def _list_column(values: np.ndarray, lengths: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values))


def encode_records(df: pl.DataFrame, tok, max_length: int) -> pl.DataFrame:
    """One row per window: record columns repeated, plus window index, ids, mask and token count.

    Documents go through the tokenizer in one parallel batch; the columns are
    built as flat Arrow arrays rather than Python lists of lists.
    """
    fmt = df["format"].to_list()
    pieces: list[list[tuple[list[int], list[int] | None]]] = [[] for _ in fmt]
    text_rows = [i for i, f in enumerate(fmt) if f != "chat"]
    if text_rows:
        texts = [t or "" for t in df["text"].gather(text_rows).to_list()]
        eos, boundary = tok.eos_token_id, boundary_tokens(tok)
        for i, ids in zip(text_rows, _encode_batch(tok, texts), strict=True):
            pieces[i] = _text_windows(ids, boundary, eos, max_length)
    for i in (i for i, f in enumerate(fmt) if f == "chat"):
        pieces[i] = encode_chat(df["messages"][i].to_list(), tok, max_length)
    rows_idx = [i for i, p in enumerate(pieces) for _ in p]
    windows = np.array([w for p in pieces for w in range(len(p))], dtype=np.int32)
    flat = [piece for p in pieces for piece in p]
    lengths = np.array([len(ids) for ids, _ in flat], dtype=np.int64)
    ids_flat = np.concatenate([np.asarray(ids, dtype=np.int32) for ids, _ in flat]) if flat else np.empty(0, np.int32)
    mask_flat = np.ones(len(ids_flat), dtype=np.int8)
    pos = 0
    for (_, mask), n in zip(flat, lengths.tolist(), strict=True):
        if mask is not None:
            mask_flat[pos : pos + n] = mask
        pos += n
    out = df[rows_idx] if rows_idx else df.clear()
    return out.with_columns(
        pl.Series("window", windows, dtype=pl.Int32),
        pl.from_arrow(_list_column(ids_flat, lengths)).alias("input_ids"),
        pl.from_arrow(_list_column(mask_flat, lengths)).alias("loss_mask"),
        pl.Series("n_tokens", lengths.astype(np.int32), dtype=pl.Int32),
    )


def train_chars(path: Path) -> int:
    """Characters of train-split text (plain text and chat turns), by a lazy scan."""
    turns = pl.col("messages").list.eval(pl.element().struct.field("content").str.len_chars()).list.sum()
    query = pl.scan_parquet(path).filter(pl.col("split") == "train")
    total = query.select(pl.col("text").str.len_chars().fill_null(0).sum() + turns.fill_null(0).sum()).collect()
    return int(total.item())

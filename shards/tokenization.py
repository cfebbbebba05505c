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
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa

from tuneprep.files import tree_sha256
from tuneprep.records import with_drop_reason

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


# --- windows -------------------------------------------------------------------------------------------

NO_LOSS = "no_loss_tokens"
_WHITESPACE = np.array(
    sorted(
        {ord(c) for c in " \t\n\r\x0b\x0c\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"} | set(range(0x2000, 0x200B))
    ),
    np.uint32,
)
_SENTENCE_END = np.array([ord(c) for c in ".!?…"], np.uint32)
_CLOSERS = np.array([ord(c) for c in "\"')]}”’»"], np.uint32)


class Window(NamedTuple):
    """One training example: token ids, loss mask (None: every token), and the text or turns those ids encode."""

    ids: list[int] | np.ndarray
    mask: list[int] | np.ndarray | None
    text: str | None = None
    messages: list[dict] | None = None


def cut_points(text: str, starts: np.ndarray, lo: int = 0, hi: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Token indices where a window may start: (sentence starts, word starts) among tokens starting in [lo, hi).

    A word start is a token whose first character changes between space and non-space (the start of a
    word, or of the space before it); never between two tokens of one character (byte pieces). A sentence
    start is a word start after . ! ? … (and closing quotes or brackets), or after a line break.
    """
    if starts.size < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
    ws = np.isin(cps, _WHITESPACE)
    n = cps.size
    at = np.clip(starts, 0, max(n - 1, 0))
    prev = np.where(starts > 0, ws[np.clip(starts - 1, 0, max(n - 1, 0))], True)
    distinct = np.r_[True, starts[1:] > starts[:-1]]
    hi = n if hi is None else hi
    word = (ws[at] != prev) & distinct & (starts > lo) & (starts < hi)
    # the last character before the token that is neither a space nor a closer
    solid = np.flatnonzero(~ws & ~np.isin(cps, _CLOSERS))
    k = np.searchsorted(solid, starts) - 1
    last = np.where(k >= 0, cps[solid[np.maximum(k, 0)]], 0)
    newlines = np.concatenate(([0], np.cumsum((cps == 10).view(np.int8), dtype=np.int32)))
    since = np.where(k >= 0, solid[np.maximum(k, 0)] + 1, 0)
    broke = newlines[np.minimum(starts, n)] > newlines[np.minimum(since, n)]
    sentence = word & (np.isin(last, _SENTENCE_END) | broke)
    return np.flatnonzero(sentence), np.flatnonzero(word)


def _choose_end(
    start: int, capacity: int, tiers: list[tuple[np.ndarray, float]], loss: np.ndarray | None = None
) -> int:
    """The latest cut in (start, start + capacity] of the first tier that fills at least its share of the window.

    With ``loss`` (cumulative loss tokens before each position), cuts that would leave the window without a
    loss token are passed over while another cut gives it one."""
    top = start + capacity
    for useful in (True, False) if loss is not None else (False,):
        for cuts, fill in tiers:
            ok = cuts[(cuts > start) & (cuts <= top)]
            if useful:
                ok = ok[loss[ok] > loss[start]]  # type: ignore[index]
            if ok.size and ok[-1] - start >= fill * capacity:
                return int(ok[-1])
    return top  # one word longer than a window: the only place left is between two of its tokens


def _decode(tok, ids) -> str:
    return tok.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)


def encode_text(text: str, tok, max_length: int) -> list[Window]:
    """Plain document -> windows of at most ``max_length`` tokens, each ending with EOS; every token in the loss
    but the EOS of a window the document goes on after. Long documents are cut at sentence starts, then word
    starts, never inside a word; each window's ``text`` is the decoded window."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        enc = backend.encode(text, add_special_tokens=False)
        ids, offsets = np.asarray(enc.ids, np.int32), enc.offsets
    else:
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = np.asarray(enc["input_ids"], np.int32), enc["offset_mapping"]
    return [
        Window(np.asarray(w.ids).tolist(), [1] * len(w.ids) if w.mask is None else np.asarray(w.mask).tolist(), w.text)
        for w in _text_windows(text, ids, offsets, tok, max_length)
    ]


def _text_windows(text: str, ids: np.ndarray, offsets, tok, max_length: int) -> list[Window]:
    eos = np.int32(tok.eos_token_id)
    if len(ids) < max_length:  # the common case: one window, the text as it is, every token in the loss
        return [Window(np.append(ids, eos), None, text)]
    starts = np.fromiter((o[0] for o in offsets), np.int64, len(offsets))
    sentences, words = cut_points(text, starts)
    capacity = max_length - 1
    out: list[Window] = []
    start = 0
    while start < len(ids):
        end = (
            len(ids) if len(ids) - start <= capacity else _choose_end(start, capacity, [(sentences, 0.5), (words, 0.0)])
        )
        piece = ids[start:end]
        mask = np.ones(len(piece) + 1, np.int8)
        mask[-1] = end == len(ids)
        out.append(Window(np.append(piece, eos), mask, _decode(tok, piece.tolist())))
        start = end
    return out


def _render_turns(messages: list[dict], tok) -> tuple[str, list[int], list[tuple[int, int]], list[tuple[int, int]]]:
    """The rendered conversation, each turn's start, each turn's content span and the assistant spans (content
    and EOS), all in characters; found on prefix renders, so right for any template whose renders nest."""
    full = tok.apply_chat_template(messages, tokenize=False).rstrip("\n")
    turn_starts, contents, assistant = [], [], []
    for i, m in enumerate(messages):
        before = tok.apply_chat_template(messages[:i], tokenize=False) if i else ""
        turn_starts.append(len(before))
        upto = tok.apply_chat_template(messages[: i + 1], tokenize=False)
        if not full.startswith(upto.rstrip("\n")):
            raise ValueError("chat template renders are not prefixes of each other; cannot place the loss mask")
        content = m.get("content") or ""
        at = upto.rfind(content) if content else -1
        if at < len(before):  # a template that rewrites the content: the whole turn counts as its body
            at, content = len(before), upto[len(before) :].rstrip("\n")
        contents.append((at, at + len(content)))
        if m["role"] == "assistant":
            prompt = tok.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
            if not upto.startswith(prompt):
                raise ValueError("chat template renders are not prefixes of each other; cannot place the loss mask")
            assistant.append((len(prompt), len(upto.rstrip())))  # the turn's text and EOS, not the newline after
    return full, turn_starts, contents, assistant


def encode_chat(messages: list[dict], tok, max_length: int) -> list[Window]:
    """Conversation -> chat-template windows with a mask over assistant turns (content and EOS).

    Short conversations are one window. A longer one is cut before a user or system turn where that fills
    a quarter of the window, else at a sentence start inside a turn (half a window), else before an
    assistant turn, else at a word start inside a turn, passing over cuts that would leave the window
    without a loss token while there is another; a window that starts inside a turn begins with BOS and that turn's role marker, and
    a short opening system turn (a quarter of the window at most) is repeated at the start of every window.
    Each window ends with EOS (outside the loss when the template did not put one there) and its
    ``messages`` are the turns, or parts of turns, its ids encode.
    """
    full, turn_starts, contents, assistant = _render_turns(messages, tok)
    enc = tok(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = np.asarray(enc["input_ids"], np.int64)
    offsets = enc["offset_mapping"]
    starts = np.fromiter((o[0] for o in offsets), np.int64, len(offsets))
    mask = np.zeros(len(ids), dtype=np.int8)
    for a, b in assistant:
        mask[(starts >= a) & (starts < b)] = 1
    eos = tok.eos_token_id
    if len(ids) + (0 if len(ids) and ids[-1] == eos else 1) <= max_length:
        window, wmask = ids.tolist(), mask.tolist()
        if not window or window[-1] != eos:
            window, wmask = window + [eos], wmask + [0]
        return [Window(window, wmask, None, [dict(m) for m in messages])]
    n_turns = len(messages)
    turn_tok = np.searchsorted(starts, np.asarray(turn_starts, np.int64))  # first token of each turn
    body_tok = np.searchsorted(starts, np.asarray([c[0] for c in contents], np.int64))  # first content token
    body_end = np.searchsorted(starts, np.asarray([c[1] for c in contents], np.int64))  # past the last one
    turn_of = np.searchsorted(np.asarray(turn_starts, np.int64), starts, side="right") - 1
    prompt_turns = turn_tok[[m["role"] != "assistant" for m in messages]]
    answer_turns = turn_tok[[m["role"] == "assistant" for m in messages]]
    loss = np.concatenate(([0], np.cumsum(mask)))
    sentences, words = [], []
    for t in range(n_turns):
        s, w = cut_points(full, starts, contents[t][0], contents[t][1])
        sentences.append(s)
        words.append(w)
    sentence_cuts = np.concatenate(sentences) if sentences else np.empty(0, np.int64)
    word_cuts = np.concatenate(words) if words else np.empty(0, np.int64)
    bos = [int(ids[0])] if tok.bos_token_id is not None and len(ids) and ids[0] == tok.bos_token_id else []
    turn_tok[0] = max(int(turn_tok[0]), len(bos))  # the first turn's own tokens: after the BOS, never a second one
    system: list[int] = []
    if messages[0]["role"] == "system" and n_turns > 1:
        sys_ids = ids[turn_tok[0] : turn_tok[1]].tolist()
        if len(bos) + len(sys_ids) <= max_length // 4:
            system = sys_ids
    out: list[Window] = []
    start = 0
    while start < len(ids):
        t = int(turn_of[start])
        prefix: list[int] = []
        if start > 0:
            prefix = bos + (system if t > 0 else [])
            if start != turn_tok[t]:  # inside a turn: carry its role marker
                prefix += ids[turn_tok[t] : body_tok[t]].tolist()
        capacity = max_length - len(prefix) - 1
        if capacity < 8:
            raise ValueError(f"max_length {max_length} leaves no room for a turn after its context")
        if len(ids) - start <= capacity:
            end = len(ids)
        else:
            end = _choose_end(
                start,
                capacity,
                [(prompt_turns, 0.25), (sentence_cuts, 0.5), (answer_turns, 0.25), (word_cuts, 0.0)],
                loss,
            )
        piece = ids[start:end]
        pmask = mask[start:end]
        while len(piece) > 1 and piece[-1] != eos and _decode(tok, piece[-1:]).strip() == "" and piece[-2] == eos:
            piece, pmask = piece[:-1], pmask[:-1]  # the newline after an assistant's EOS: end on the EOS
        window = prefix + piece.tolist()
        wmask = [0] * len(prefix) + pmask.tolist()
        if window[-1] != eos:  # every example ends with EOS; one added here is not an assistant token
            window, wmask = window + [eos], wmask + [0]
        turns = []
        if system and start > 0 and t > 0:
            turns.append(dict(messages[0]))
        for u in range(t, int(turn_of[end - 1]) + 1):
            a, b = max(start, int(body_tok[u])), min(end, int(body_end[u]))
            whole = a == body_tok[u] and b == body_end[u]
            content = (messages[u].get("content") or "") if whole else _decode(tok, ids[a:b]) if b > a else ""
            if b > a or whole:
                turns.append({**messages[u], "content": content})
        out.append(Window(window, wmask, None, turns))
        start = end
    return out


_ENCODE_CHUNK = 256  # texts per Rust call: its Encodings (ids, offsets, token strings) cost ~100 bytes a token


def _encode_batch(tok, texts: list[str], long_from: int | None = None) -> list[tuple[np.ndarray, list | None]]:
    """Token ids per text (int32 arrays: a list of Python ints costs 4x more) through the Rust tokenizer's
    parallel batch path when there is one, with the offsets of the texts of ``long_from`` tokens or more
    (those that will be cut; reading every text's offsets would cost a Python tuple per token)."""
    backend = getattr(tok, "backend_tokenizer", None)
    limit = long_from if long_from is not None else 1 << 62
    if backend is None:
        enc = tok(texts, add_special_tokens=False, return_offsets_mapping=True)
        return [
            (np.asarray(i, np.int32), o if len(i) >= limit else None)
            for i, o in zip(enc["input_ids"], enc["offset_mapping"], strict=True)
        ]
    out: list[tuple[np.ndarray, list | None]] = []
    for lo in range(0, len(texts), _ENCODE_CHUNK):
        chunk = backend.encode_batch(texts[lo : lo + _ENCODE_CHUNK], add_special_tokens=False)
        out.extend((np.asarray(e.ids, np.int32), e.offsets if len(e.ids) >= limit else None) for e in chunk)
    return out


class Encoded(NamedTuple):
    """Window rows to keep, and window rows dropped (no loss token) with stage, reason and detail."""

    kept: pl.DataFrame
    dropped: pl.DataFrame


def _list_column(values: np.ndarray, lengths: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values))


def encode_records(df: pl.DataFrame, tok, max_length: int) -> Encoded:
    """One row per window: the record's columns, its ``text`` or ``messages`` as that window encodes them,
    window number, ids, mask and token count; windows without a loss token are dropped (``no_loss_tokens``).

    Documents go through the tokenizer in one parallel batch; only those longer than a window are
    encoded again with offsets and cut. The columns are built as flat Arrow arrays.
    """
    fmt = df["format"].to_list()
    pieces: list[list[Window]] = [[] for _ in fmt]
    text_rows = [i for i, f in enumerate(fmt) if f != "chat"]
    if text_rows:
        texts = [t or "" for t in df["text"].gather(text_rows).to_list()]
        eos = np.int32(tok.eos_token_id)
        for i, text, (ids, offsets) in zip(text_rows, texts, _encode_batch(tok, texts, max_length), strict=True):
            if len(ids) < max_length:
                pieces[i] = [Window(np.append(ids, eos), None, None)]
            else:
                pieces[i] = _text_windows(text, ids, offsets, tok, max_length)
    for i in (i for i, f in enumerate(fmt) if f == "chat"):
        pieces[i] = encode_chat(df["messages"][i].to_list(), tok, max_length)
    rows_idx = [i for i, p in enumerate(pieces) for _ in p]
    windows = np.array([w for p in pieces for w in range(len(p))], dtype=np.int32)
    flat = [w for p in pieces for w in p]
    multi = np.array([len(p) > 1 for p in pieces for _ in p], dtype=bool)
    lengths = np.array([len(w.ids) for w in flat], dtype=np.int64)
    ids_flat = np.concatenate([np.asarray(w.ids, dtype=np.int32) for w in flat]) if flat else np.empty(0, np.int32)
    mask_flat = np.ones(len(ids_flat), dtype=np.int8)
    pos = 0
    for w, n in zip(flat, lengths.tolist(), strict=True):
        if w.mask is not None:
            mask_flat[pos : pos + n] = w.mask
        pos += n
    out = df[rows_idx] if rows_idx else df.clear()
    columns = [
        pl.Series("window", windows, dtype=pl.Int32),
        pl.from_arrow(_list_column(ids_flat, lengths)).alias("input_ids"),
        pl.from_arrow(_list_column(mask_flat, lengths)).alias("loss_mask"),
        pl.Series("n_tokens", lengths.astype(np.int32), dtype=pl.Int32),
    ]
    if multi.any():  # a cut record: each window row holds only what its ids encode
        text_col = out["text"].to_list()
        msg_col = out["messages"].to_list()
        for k in np.flatnonzero(multi).tolist():
            w = flat[k]
            if w.messages is not None:
                msg_col[k] = w.messages
            else:
                text_col[k] = w.text
        columns += [
            pl.Series("text", text_col, dtype=pl.Utf8),
            pl.Series("messages", msg_col, dtype=df.schema["messages"]),
        ]
    out = out.with_columns(columns)
    lossless = pl.Series((np.add.reduceat(mask_flat, np.r_[0, np.cumsum(lengths)[:-1]]) == 0) if flat else [])
    if not flat or not lossless.any():
        return Encoded(out, with_drop_reason(out.clear(), "tokenize", NO_LOSS))
    dropped = with_drop_reason(
        out.filter(lossless),
        "tokenize",
        NO_LOSS,
        "a window with no token in the loss (a prompt cut away from its answer)",
    )
    return Encoded(out.filter(~lossless), dropped)


def train_chars(path: Path) -> int:
    """Characters of train-split text (plain text and chat turns), by a lazy scan."""
    turns = pl.col("messages").list.eval(pl.element().struct.field("content").str.len_chars()).list.sum()
    query = pl.scan_parquet(path).filter(pl.col("split") == "train")
    total = query.select(pl.col("text").str.len_chars().fill_null(0).sum() + turns.fill_null(0).sum()).collect()
    return int(total.item())

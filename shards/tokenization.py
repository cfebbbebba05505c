"""Tokenizer training/loading and encoding of records into ``input_ids`` + ``loss_mask``.

A trained tokenizer is a real SentencePiece Unigram model (the ``sentencepiece``
trainer), carried over piece for piece into a ``tokenizers`` Unigram model so
that ``AutoTokenizer.from_pretrained(OUT/tokenizer)`` loads a fast tokenizer
that encodes exactly as SentencePiece does.
"""

from __future__ import annotations

import io
import re
import shutil
import weakref
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from itertools import accumulate, chain
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa

from tuneprep.arrow import numeric_array
from tuneprep.records import with_drop_reason
from tuneprep.tokenizer import (  # noqa: F401 - re-exported: flows and tests read them here
    SAVED_FILES,
    SavedTokenizer,
    load_tokenizer,
    read_tokenizer,
    tokenizer_identity,
)

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
    """Load a tokenizer by hub name or path and save a copy beside the shards.

    A folder transformers saved as a plain fast tokenizer that already has what the shards need (EOS, pad and
    a chat template) is copied file for file instead: the same tokenizer, read without importing transformers.
    """
    saved = None if extra_special_tokens else SavedTokenizer.read(name_or_path)
    if saved is not None and saved.eos_token and saved.pad_token and saved.chat_template:
        out_dir.mkdir(parents=True, exist_ok=True)
        if out_dir.resolve() == saved.folder.resolve():  # a rerun naming its own copy: nothing to do
            return saved
        for name in SAVED_FILES:
            src = Path(name_or_path) / name
            if src.is_file():
                shutil.copyfile(src, out_dir / name)
            else:  # e.g. an earlier run's template file, which would outrank the config's
                (out_dir / name).unlink(missing_ok=True)
        return saved
    tok = load_tokenizer(name_or_path)
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


def _table(codes: np.ndarray) -> np.ndarray:
    """A lookup table for ``_member``: one flag per code point up to the set's largest, then one that is off."""
    table = np.zeros(int(codes.max()) + 2, bool)
    table[codes] = True
    return table


def _member(cps: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``np.isin(cps, codes)`` by table lookup (5x faster on a document): code points past the set read the last,
    unset slot."""
    return table[np.minimum(cps, table.size - 1)]


_WHITESPACE_T, _SENTENCE_END_T, _CLOSERS_T = _table(_WHITESPACE), _table(_SENTENCE_END), _table(_CLOSERS)


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
    ws = _member(cps, _WHITESPACE_T)
    n = cps.size
    at = np.clip(starts, 0, max(n - 1, 0))
    prev = np.where(starts > 0, ws[np.clip(starts - 1, 0, max(n - 1, 0))], True)
    distinct = np.r_[True, starts[1:] > starts[:-1]]
    hi = n if hi is None else hi
    word = (ws[at] != prev) & distinct & (starts > lo) & (starts < hi)
    # the last character before the token that is neither a space nor a closer
    solid = np.flatnonzero(~ws & ~_member(cps, _CLOSERS_T))
    k = np.searchsorted(solid, starts) - 1
    last = np.where(k >= 0, cps[solid[np.maximum(k, 0)]], 0)
    newlines = np.concatenate(([0], np.cumsum((cps == 10).view(np.int8), dtype=np.int32)))
    since = np.where(k >= 0, solid[np.maximum(k, 0)] + 1, 0)
    broke = newlines[np.minimum(starts, n)] > newlines[np.minimum(since, n)]
    sentence = word & (_member(last, _SENTENCE_END_T) | broke)
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


@cache
def _plain_decode(cls: type) -> bool:
    """Whether ``cls.decode`` is the fast tokenizer's own, which without clean-up is the Rust decode alone."""
    if cls is SavedTokenizer:
        return True
    try:
        from transformers.tokenization_utils_tokenizers import TokenizersBackend
    except ImportError:
        return False
    return (
        issubclass(cls, TokenizersBackend)
        and cls.decode is TokenizersBackend.decode
        and cls._decode is TokenizersBackend._decode
    )


def _decode_all(tok, pieces: list[list[int]]) -> list[str]:
    """``_decode`` of each piece, in one batched Rust call where the tokenizer's decode is the plain one."""
    if _plain_decode(type(tok)):
        return tok.backend_tokenizer.decode_batch(pieces, skip_special_tokens=False)
    return [_decode(tok, p) for p in pieces]


def _decode(tok, ids) -> str:
    if _plain_decode(type(tok)):  # skips the per-id type checks of ``decode`` (a window is decoded per cut)
        return tok.backend_tokenizer.decode(
            ids.tolist() if isinstance(ids, np.ndarray) else list(ids), skip_special_tokens=False
        )
    return tok.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)


def encode_text(text: str, tok, max_length: int) -> list[Window]:
    """Plain document -> windows of at most ``max_length`` tokens, each ending with EOS; every token in the loss
    but the EOS of a window the document goes on after. Long documents are cut at sentence starts, then word
    starts, never inside a word; each window's ``text`` is the decoded window."""
    ((ids, starts),) = _encode_with_offsets(tok, [text])
    return [
        Window(np.asarray(w.ids).tolist(), [1] * len(w.ids) if w.mask is None else np.asarray(w.mask).tolist(), w.text)
        for w in _text_windows(text, ids, starts, tok, max_length)
    ]


def _text_windows(text: str, ids: np.ndarray, starts: np.ndarray, tok, max_length: int) -> list[Window]:
    if len(ids) < max_length:  # the common case: one window, the text as it is, every token in the loss
        return [Window(np.append(ids, np.int32(tok.eos_token_id)), None, text)]
    return _long_windows([(text, ids, starts)], tok, max_length)[0]


def _long_windows(docs: list[tuple[str, np.ndarray, np.ndarray]], tok, max_length: int) -> list[list[Window]]:
    """Each long document (text, ids, token starts) cut into windows ending with EOS, the windows' texts
    decoded in one batched call for all of them."""
    eos = np.int32(tok.eos_token_id)
    cuts = [_cuts(text, ids, starts, max_length) for text, ids, starts in docs]
    decoded = iter(_decode_all(tok, [p.tolist() for pieces in cuts for p, _ in pieces]))
    return [[Window(np.append(p, eos), m, next(decoded)) for p, m in pieces] for pieces in cuts]


def _cuts(text: str, ids: np.ndarray, starts: np.ndarray, max_length: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """A long document's windows before EOS and decoding: (ids, loss mask with the EOS slot)."""
    sentences, words = cut_points(text, starts)
    capacity = max_length - 1
    pieces: list[tuple[np.ndarray, np.ndarray]] = []
    start = 0
    while start < len(ids):
        end = (
            len(ids) if len(ids) - start <= capacity else _choose_end(start, capacity, [(sentences, 0.5), (words, 0.0)])
        )
        piece = ids[start:end]
        mask = np.ones(len(piece) + 1, np.int8)
        mask[-1] = end == len(ids)
        pieces.append((piece, mask))
        start = end
    return pieces


# --- conversations -----------------------------------------------------------------------------------------

NOT_NESTED = "chat template renders are not prefixes of each other; cannot place the loss mask"
Render = Callable[[int, bool], str]  # (the first k turns, with a generation prompt) -> the template's render


class Turns(NamedTuple):
    """A rendered conversation and where its turns lie in it, in characters."""

    full: str  # the render without its closing newlines
    starts: list[int]  # each turn's first character
    contents: list[tuple[int, int]]  # each turn's content
    assistant: list[tuple[int, int]]  # each assistant turn's text and EOS, not the newline after


def _turns(messages: list[dict], render: Render) -> Turns:
    """Where each turn starts, its content and the assistant spans, found on prefix renders, so right for any
    template whose renders nest."""
    full = render(len(messages), False).rstrip("\n")
    turn_starts, contents, assistant = [], [], []
    for i, m in enumerate(messages):
        before = render(i, False) if i else ""
        turn_starts.append(len(before))
        upto = render(i + 1, False)
        if not full.startswith(upto.rstrip("\n")):
            raise ValueError(NOT_NESTED)
        content = m.get("content") or ""
        at = upto.rfind(content) if content else -1
        if at < len(before):  # a template that rewrites the content: the whole turn counts as its body
            at, content = len(before), upto[len(before) :].rstrip("\n")
        contents.append((at, at + len(content)))
        if m["role"] == "assistant":
            prompt = render(i, True)
            if not upto.startswith(prompt):
                raise ValueError(NOT_NESTED)
            assistant.append((len(prompt), len(upto.rstrip())))
    return Turns(full, turn_starts, contents, assistant)


def _template_render(messages: list[dict], tok, full: str | None = None) -> Render:
    """The template's own prefix renders of ``messages`` (each made once; ``full`` is the whole render if known)."""
    made: dict[tuple[int, bool], str] = {} if full is None else {(len(messages), False): full}

    def render(k: int, prompt: bool) -> str:
        if (k, prompt) not in made:
            made[k, prompt] = tok.apply_chat_template(messages[:k], tokenize=False, add_generation_prompt=prompt)
        return made[k, prompt]

    return render


_SLOT = "\ue000{}\ue001"  # a placeholder for turn {}'s content (private-use characters no template writes)
_SLOTS = re.compile("\ue000(\\d+)\ue001")


class _Skeleton(NamedTuple):
    """A render with placeholders: the literal text around each content slot, and the turn of each slot."""

    literals: list[str]  # one more than slots
    slots: list[int]

    @classmethod
    def of(cls, text: str) -> _Skeleton:
        parts = _SLOTS.split(text)
        return cls(parts[0::2], [int(s) for s in parts[1::2]])

    def pieces(self, contents: list) -> list[str]:
        out = [self.literals[0]]
        for slot, literal in zip(self.slots, self.literals[1:], strict=True):
            out += (contents[slot], literal)
        return out


class _Shape:
    """The prefix renders a conversation of one shape needs, made once with placeholder contents; each is kept
    as the number of content slots it shares with the whole render, and its own skeleton after them."""

    def __init__(self, messages: list[dict], tok) -> None:
        placeholders = [{**m, "content": _SLOT.format(i)} if _has_text(m) else dict(m) for i, m in enumerate(messages)]
        render = _template_render(placeholders, tok)
        self.whole = _Skeleton.of(render(len(messages), False))
        needed = [(k, False) for k in range(1, len(messages) + 1)]
        needed += [(i, True) for i, m in enumerate(messages) if m["role"] == "assistant"]
        self.parts: dict[tuple[int, bool], tuple[int, _Skeleton]] = {}
        for key in needed:
            own = _Skeleton.of(render(*key))
            j = 0
            while (
                j < min(len(own.slots), len(self.whole.slots))
                and own.literals[j] == self.whole.literals[j]
                and own.slots[j] == self.whole.slots[j]
            ):
                j += 1
            self.parts[key] = (j, _Skeleton(own.literals[j:], own.slots[j:]))

    def render(self, messages: list[dict], full: str) -> Render | None:
        """The prefix renders of ``messages`` by filling in this shape, if ``full`` is this shape filled in."""
        contents = [m.get("content") for m in messages]
        pieces = self.whole.pieces(contents)
        if "".join(pieces) != full:
            return None
        ends = [0, *accumulate(map(len, pieces))]

        def render(k: int, prompt: bool) -> str:
            shared, own = self.parts[k, prompt]
            return full[: ends[2 * shared]] + "".join(own.pieces(contents))

        return render


def _has_text(message: dict) -> bool:
    return isinstance(message.get("content"), str) and bool(message["content"])


class ChatRenderer:
    """A tokenizer's chat template, rendered once per conversation (the whole batch in one call).

    Where the turns lie comes from prefix renders (``_turns``). Those are made once per shape of conversation
    (its roles and other keys, and which turns are empty) on placeholder contents; a conversation's prefix
    renders are its shape's with its contents filled in, once its one real render is checked to be its shape's
    whole render filled in. A conversation that fails that check (a template that rewrites or looks into
    contents) is rendered prefix by prefix, as it was before.
    """

    MAX_SHAPES = 4096

    def __init__(self, tok) -> None:
        self._tok = weakref.ref(tok)  # weak: the renderers are kept in a dict weakly keyed by their tokenizer
        self.template = tok.chat_template
        self.specials = dict(tok.special_tokens_map)
        self._shapes: dict[tuple, _Shape] = {}

    @property
    def tok(self):
        return self._tok()

    def fits(self, tok) -> bool:
        return tok.chat_template == self.template and tok.special_tokens_map == self.specials

    def turns(self, conversations: list[list[dict]]) -> list[Turns]:
        for messages in conversations:
            if messages is None:
                raise ValueError("a chat record without messages")
        if not conversations:
            return []
        fulls = self.tok.apply_chat_template(conversations, tokenize=False)
        return [self._place(m, full) for m, full in zip(conversations, fulls, strict=True)]

    def _place(self, messages: list[dict], full: str) -> Turns:
        key = _shape_key(messages)
        if key is not None:
            shape = self._shapes.get(key)
            if shape is None:
                if len(self._shapes) >= self.MAX_SHAPES:
                    self._shapes.clear()
                shape = self._shapes[key] = _Shape(messages, self.tok)
            render = shape.render(messages, full)
            if render is not None:
                return _turns(messages, render)
        return _turns(messages, _template_render(messages, self.tok, full))


def _shape_key(messages: list[dict]) -> tuple | None:
    """What a template may look at besides the contents: every other key, and which contents are empty."""
    key = []
    for m in messages:
        content = m.get("content")
        if content is not None and not isinstance(content, str):
            return None
        key.append((tuple((k, v) for k, v in m.items() if k != "content"), bool(content), content is None))
    try:
        hash(tuple(key))
    except TypeError:
        return None
    return tuple(key)


_RENDERERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def chat_renderer(tok) -> ChatRenderer:
    """The tokenizer's renderer, kept while its template and special tokens stay the same."""
    renderer = _RENDERERS.get(tok)
    if renderer is None or not renderer.fits(tok):
        renderer = _RENDERERS[tok] = ChatRenderer(tok)
    return renderer


def _chat_windows(
    messages: list[dict], turns: Turns, ids: np.ndarray, starts: np.ndarray, tok, max_length: int
) -> list[Window]:
    """One conversation's windows from its placed turns, ids and token starts (the rules: ``encode_chat``)."""
    full, turn_starts, contents, assistant = turns
    mask = np.zeros(len(ids), dtype=np.int8)
    for a, b in assistant:
        mask[(starts >= a) & (starts < b)] = 1
    eos = tok.eos_token_id
    if len(ids) + (0 if len(ids) and ids[-1] == eos else 1) <= max_length:
        if not len(ids) or ids[-1] != eos:
            ids, mask = np.append(ids, np.int32(eos)), np.append(mask, np.int8(0))
        return [Window(ids, mask, None, messages)]
    n_turns = len(messages)
    bos = [int(ids[0])] if tok.bos_token_id is not None and len(ids) and ids[0] == tok.bos_token_id else []
    turn_tok = np.searchsorted(starts, np.asarray(turn_starts, np.int64))  # first token of each turn
    # Some tokenizers give the template's BOS the offset of the first turn: a turn never starts before it.
    turn_tok = np.maximum(turn_tok, len(bos))
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
        turns_in = []
        if system and start > 0 and t > 0:
            turns_in.append(dict(messages[0]))
        for u in range(t, int(turn_of[end - 1]) + 1):
            a, b = max(start, int(body_tok[u])), min(end, int(body_end[u]))
            whole = a == body_tok[u] and b == body_end[u]
            content = (messages[u].get("content") or "") if whole else _decode(tok, ids[a:b]) if b > a else ""
            if b > a or whole:
                turns_in.append({**messages[u], "content": content})
        out.append(Window(window, wmask, None, turns_in))
        start = end
    return out


def _encode_chats(conversations: list[list[dict]], tok, max_length: int) -> list[list[Window]]:
    """Each conversation's windows: every template render of the batch in one call, every encode in one
    batched Rust call (``ChatRenderer``, ``_encode_with_offsets``)."""
    placed = chat_renderer(tok).turns(conversations)
    encoded = _encode_with_offsets(tok, [t.full for t in placed])
    return [
        _chat_windows(m, t, ids, starts, tok, max_length)
        for m, t, (ids, starts) in zip(conversations, placed, encoded, strict=True)
    ]


def encode_chat(messages: list[dict], tok, max_length: int) -> list[Window]:
    """Conversation -> chat-template windows with a mask over assistant turns (content and EOS).

    Short conversations are one window. A longer one is cut before a user or system turn where that fills
    a quarter of the window, else at a sentence start inside a turn (half a window), else before an
    assistant turn, else at a word start inside a turn, passing over cuts that would leave the window
    without a loss token while there is another; a window that starts inside a turn begins with BOS and that
    turn's role marker, and a short opening system turn (a quarter of the window at most) is repeated at the
    start of every window. Each window ends with EOS (outside the loss when the template did not put one
    there) and its ``messages`` are the turns, or parts of turns, its ids encode.
    """
    (windows,) = _encode_chats([messages], tok, max_length)
    return [
        Window(np.asarray(w.ids).tolist(), np.asarray(w.mask).tolist(), None, [dict(m) for m in w.messages or []])
        for w in windows
    ]


# --- batches of records ------------------------------------------------------------------------------------

_ENCODE_CHARS = 1 << 20  # characters per Rust call: its Encodings (ids, offsets, token strings) cost ~100 bytes a token


def _chunks(texts: list[str]) -> Iterator[tuple[int, int]]:
    """Row ranges of about ``_ENCODE_CHARS`` characters (at least one text each)."""
    ends = np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)))
    lo = 0
    while lo < len(texts):
        before = int(ends[lo - 1]) if lo else 0
        hi = max(lo + 1, int(np.searchsorted(ends, before + _ENCODE_CHARS, side="right")))
        yield lo, hi
        lo = hi


def _encode_ids(tok, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every text's ids as one flat int32 array and the count per text, through the Rust tokenizer's parallel
    batch path without offsets (``encode_batch_fast``) where there is one."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        ids = tok(texts, add_special_tokens=False)["input_ids"]
        lengths = np.fromiter(map(len, ids), np.int64, len(ids))
        return np.fromiter(chain.from_iterable(ids), np.int32, int(lengths.sum())), lengths
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
    flats, counts = [], []
    for lo, hi in _chunks(texts):
        ids = [e.ids for e in encode(texts[lo:hi], add_special_tokens=False)]
        lengths = np.fromiter(map(len, ids), np.int64, len(ids))
        flats.append(np.fromiter(chain.from_iterable(ids), np.int32, int(lengths.sum())))
        counts.append(lengths)
    if not flats:
        return np.empty(0, np.int32), np.empty(0, np.int64)
    return np.concatenate(flats), np.concatenate(counts)


def _encode_with_offsets(tok, texts: list[str], min_tokens: int = 0) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Each text's ids (int32) and the character where each token starts, in batched Rust calls; the starts
    only for texts of at least ``min_tokens`` tokens (None for the others: only texts cut into windows need
    them)."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        enc = tok(texts, add_special_tokens=False, return_offsets_mapping=True)
        pairs = zip(enc["input_ids"], enc["offset_mapping"], strict=True)
        return [(np.asarray(i, np.int32), _starts(o) if len(i) >= min_tokens else None) for i, o in pairs]
    out = []
    for lo, hi in _chunks(texts):
        for e in backend.encode_batch(texts[lo:hi], add_special_tokens=False):
            ids = np.asarray(e.ids, np.int32)
            out.append((ids, _starts(e.offsets) if ids.size >= min_tokens else None))
    return out


# A text of at least this many characters per window token is encoded with offsets from the start (most such
# texts are longer than a window and get cut, which needs them), rather than encoded twice.
_OFFSETS_FROM_CHARS_PER_TOKEN = 3


def _encode_texts(
    tok, texts: list[str], max_length: int
) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[np.ndarray, np.ndarray | None]]]:
    """``_encode_ids`` over every text, and the ids and token starts of the long texts (by character count),
    which are encoded with offsets instead; the same ids either way."""
    chars = np.fromiter(map(len, texts), np.int64, len(texts))
    wide = np.flatnonzero(chars >= _OFFSETS_FROM_CHARS_PER_TOKEN * max_length)
    if not wide.size or getattr(tok, "backend_tokenizer", None) is None:
        return (*_encode_ids(tok, texts), {})
    narrow = np.flatnonzero(chars < _OFFSETS_FROM_CHARS_PER_TOKEN * max_length)
    narrow_flat, narrow_lengths = _encode_ids(tok, [texts[k] for k in narrow.tolist()])
    encoded = _encode_with_offsets(tok, [texts[k] for k in wide.tolist()], max_length)
    lengths = np.empty(len(texts), np.int64)
    lengths[narrow] = narrow_lengths
    lengths[wide] = np.fromiter((len(ids) for ids, _ in encoded), np.int64, len(encoded))
    first = np.cumsum(lengths) - lengths  # where each text's ids start in the flat array
    flat = np.empty(int(lengths.sum()), np.int32)
    within = np.arange(narrow_flat.size) - np.repeat(np.cumsum(narrow_lengths) - narrow_lengths, narrow_lengths)
    flat[np.repeat(first[narrow], narrow_lengths) + within] = narrow_flat
    for k, (ids, _) in zip(wide.tolist(), encoded, strict=True):
        flat[first[k] : first[k] + ids.size] = ids
    return flat, lengths, dict(zip(wide.tolist(), encoded, strict=True))


def _starts(offsets: list[tuple[int, int]]) -> np.ndarray:
    return np.fromiter(map(itemgetter(0), offsets), np.int64, len(offsets))


class Encoded(NamedTuple):
    """Window rows to keep, and window rows dropped (no loss token) with stage, reason and detail."""

    kept: pl.DataFrame
    dropped: pl.DataFrame


def _list_column(values: np.ndarray, lengths: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.LargeListArray.from_arrays(numeric_array(offsets), numeric_array(np.asarray(values)))


def _replace_rows(column: pl.Series, rows: np.ndarray, values: list) -> pl.Series:
    """``column`` with ``values`` at ``rows``, built without a Python object per row it keeps."""
    if not len(rows):
        return column
    taken = np.arange(len(column), dtype=np.int64)
    taken[rows] = len(column) + np.arange(len(rows))
    return pl.concat([column, pl.Series(column.name, values, dtype=column.dtype)]).gather(taken)


def encode_records(df: pl.DataFrame, tok, max_length: int) -> Encoded:
    """One row per window: the record's columns, its ``text`` or ``messages`` as that window encodes them,
    window number, ids, mask and token count; windows without a loss token are dropped (``no_loss_tokens``).

    Documents go through the tokenizer in batched calls without offsets; only those longer than a window are
    encoded again with offsets and cut. Conversations are rendered once each and encoded in batched calls.
    The columns are built as flat arrays: no Python work per token, little per record.
    """
    n = df.height
    is_chat = (df["format"] == "chat").fill_null(False).to_numpy()
    text_rows = np.flatnonzero(~is_chat)
    eos = np.int32(tok.eos_token_id)
    windows: dict[int, list[Window]] = {}  # records that are not one window of their ids + EOS
    in_flat = np.zeros(n, np.int64)  # tokens each record has in ``flat``
    flat = np.empty(0, np.int32)
    if text_rows.size:
        texts = [t or "" for t in df["text"].gather(text_rows).to_list()]
        flat, lengths, offsets = _encode_texts(tok, texts, max_length)
        in_flat[text_rows] = lengths
        long = np.flatnonzero(lengths >= max_length).tolist()
        missing = [k for k in long if k not in offsets]
        offsets.update(zip(missing, _encode_with_offsets(tok, [texts[k] for k in missing]), strict=True))
        docs = [(texts[k], *offsets[k]) for k in long]
        for k, cut in zip(long, _long_windows(docs, tok, max_length), strict=True):  # type: ignore[arg-type]
            windows[int(text_rows[k])] = cut
    chat_rows = np.flatnonzero(is_chat).tolist()
    if chat_rows:
        conversations = df["messages"].gather(chat_rows).to_list()
        for i, chat in zip(chat_rows, _encode_chats(conversations, tok, max_length), strict=True):
            windows[i] = chat
    # ``flat`` with an EOS after each text record's ids: record i's window is with_eos[first[i]:first[i + 1]]
    with_eos = np.insert(flat, np.cumsum(in_flat)[text_rows], eos)
    first = np.concatenate(([0], np.cumsum(in_flat + ~is_chat)))
    ids_parts, mask_parts, length_parts, counts = [], [], [], np.ones(n, np.int64)
    done = 0
    for i in sorted(windows):
        if i > done:  # records done..i-1: one window each, every token in the loss
            ids_parts.append(with_eos[first[done] : first[i]])
            mask_parts.append(np.ones(first[i] - first[done], np.int8))
            length_parts.append(in_flat[done:i] + 1)
        for w in windows[i]:
            ids_parts.append(np.asarray(w.ids, np.int32))
            mask_parts.append(np.ones(len(w.ids), np.int8) if w.mask is None else np.asarray(w.mask, np.int8))
        length_parts.append(np.fromiter((len(w.ids) for w in windows[i]), np.int64, len(windows[i])))
        counts[i] = len(windows[i])
        done = i + 1
    if done < n:
        ids_parts.append(with_eos[first[done] :])
        mask_parts.append(np.ones(first[n] - first[done], np.int8))
        length_parts.append(in_flat[done:] + 1)
    ids_flat = np.concatenate(ids_parts) if ids_parts else np.empty(0, np.int32)
    mask_flat = np.concatenate(mask_parts) if mask_parts else np.empty(0, np.int8)
    lengths = np.concatenate(length_parts) if length_parts else np.empty(0, np.int64)
    rows_idx = np.repeat(np.arange(n), counts)
    window_no = np.arange(len(rows_idx), dtype=np.int32) - np.repeat(np.cumsum(counts) - counts, counts).astype(
        np.int32
    )
    out = df if len(rows_idx) == n else df[rows_idx]
    columns = [
        pl.Series("window", window_no, dtype=pl.Int32),
        pl.from_arrow(_list_column(ids_flat, lengths)).alias("input_ids"),
        pl.from_arrow(_list_column(mask_flat, lengths)).alias("loss_mask"),
        pl.Series("n_tokens", lengths.astype(np.int32), dtype=pl.Int32),
    ]
    cut = [i for i in windows if counts[i] > 1]
    if cut:  # a cut record: each window row holds only what its ids encode
        row_of = np.cumsum(counts) - counts  # each record's first window row
        cut_rows = np.concatenate([np.arange(row_of[i], row_of[i] + counts[i]) for i in cut])
        cut_windows = [w for i in cut for w in windows[i]]
        is_turns = np.array([w.messages is not None for w in cut_windows])
        columns += [
            _replace_rows(out["text"], cut_rows[~is_turns], [w.text for w in cut_windows if w.messages is None]),
            _replace_rows(out["messages"], cut_rows[is_turns], [w.messages for w in cut_windows if w.messages]),
        ]
    out = out.with_columns(columns)
    if not len(lengths):
        return Encoded(out, with_drop_reason(out.clear(), "tokenize", NO_LOSS))
    lossless = np.add.reduceat(mask_flat, np.r_[0, np.cumsum(lengths)[:-1]]) == 0
    if not lossless.any():
        return Encoded(out, with_drop_reason(out.clear(), "tokenize", NO_LOSS))
    keep = pl.Series(lossless)
    dropped = with_drop_reason(
        out.filter(keep),
        "tokenize",
        NO_LOSS,
        "a window with no token in the loss (a prompt cut away from its answer)",
    )
    return Encoded(out.filter(~keep), dropped)


def train_chars(path: Path) -> int:
    """Characters of train-split text (plain text and chat turns), by a lazy scan."""
    turns = pl.col("messages").list.eval(pl.element().struct.field("content").str.len_chars()).list.sum()
    query = pl.scan_parquet(path).filter(pl.col("split") == "train")
    total = query.select(pl.col("text").str.len_chars().fill_null(0).sum() + turns.fill_null(0).sum()).collect()
    return int(total.item())

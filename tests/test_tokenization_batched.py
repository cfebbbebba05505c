"""The batched encoders give what encoding record by record gives: conversations rendered once each (prefix
renders made once per shape on placeholders) against every prefix rendered by the template per record; texts
encoded without offsets against encoding each text with its offsets."""

import random

import numpy as np
import polars as pl
import pytest
from transformers import AutoTokenizer

from shards import tokenization as T
from shards.config import TokenizerConfig
from shards.encode import Tokenize
from tuneprep.records import make_records
from tuneprep.stage import StageOutput

WORDS = [
    "order",
    "parcel",
    "Leeds",
    "refund",
    "café",
    "naïve",
    "日本語",
    "😀",
    "x1",
    "$46.33",
    "e\u0301",
    "—",
    "«quoted»",
]
SENTENCES = [
    "Your order shipped on Monday.",
    "The parcel left our warehouse in Leeds!",
    "Can I get a refund?",
    "Il a reçu le colis à Zürich… merci.",
    "配送は月曜日です。",
]
LLAMA2_STYLE = (  # the system prompt goes inside the first user turn: a content slot far from its own turn
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'user' %}{{ '[INST] ' }}{% if loop.index0 == 1 and messages[0]['role'] == 'system' %}"
    "{{ '<<SYS>>' + messages[0]['content'] + '<</SYS>> ' }}{% endif %}{{ m['content'] + ' [/INST]' }}"
    "{% elif m['role'] == 'assistant' %}{{ ' ' + m['content'] + eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '' }}{% endif %}"
)
TRIMMING = T.DEFAULT_CHAT_TEMPLATE.replace("m['content']", "m['content'] | trim")  # rewrites some contents


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    T.train_sentencepiece([" ".join(WORDS), *SENTENCES] * 20, TokenizerConfig(vocab_size=300), d)
    return AutoTokenizer.from_pretrained(str(d))


def _content(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.08:
        return ""
    if kind < 0.14:
        return rng.choice(["s", ">", "|", "\n", "assistant", "user", "<|user|>"])  # found in the template's text too
    if kind < 0.3:  # a long turn: it gets windowed
        return " ".join(rng.choice(SENTENCES + WORDS) for _ in range(rng.randint(40, 90)))
    text = " ".join(rng.choice(SENTENCES + WORDS) for _ in range(rng.randint(1, 8)))
    return text + rng.choice(["", "", "\n", "  ", "\n\n"])


def conversations(n: int, seed: int = 0) -> list[list[dict]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        msgs = [{"role": "system", "content": _content(rng) or "Be brief."}] if rng.random() < 0.4 else []
        for t in range(rng.randint(1, 6)):
            msgs.append({"role": "user", "content": _content(rng)})
            for _ in range(1 if t or rng.random() < 0.8 else 2):  # sometimes two assistant turns in a row
                msgs.append({"role": "assistant", "content": _content(rng)})
        out.append(msgs)
    return out


def _chat_frame(convs: list[list[dict]]) -> pl.DataFrame:
    return make_records(
        {"id": f"c{i}", "source": "s", "format": "chat", "messages": m, "split": "train"} for i, m in enumerate(convs)
    )


class PrefixRenders:
    """The path before batching: every prefix rendered by the template, for each conversation on its own."""

    def __init__(self, tok) -> None:
        self.tok = tok

    def turns(self, convs: list[list[dict]]) -> list[T.Turns]:
        return [T._turns(m, T._template_render(m, self.tok)) for m in convs]


def _one_by_one(tok, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for text in texts:
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        out.append((np.asarray(enc["input_ids"], np.int32), np.asarray([o[0] for o in enc["offset_mapping"]])))
    return out


def _assert_same(a: StageOutput, b: StageOutput) -> None:
    for x, y in ((a.kept, b.kept), (a.dropped, b.dropped), (a.quarantined, b.quarantined)):
        assert x.columns == y.columns and x.schema == y.schema
        for c in x.columns:
            assert x[c].to_list() == y[c].to_list(), c


@pytest.mark.parametrize("template", [None, LLAMA2_STYLE, TRIMMING], ids=["default", "system-in-user", "trim"])
def test_conversations_rendered_once_encode_as_prefix_renders_one_by_one(tok, template, monkeypatch):
    if template is not None:
        tok = AutoTokenizer.from_pretrained(tok.name_or_path)
        tok.chat_template = template
    convs = conversations(80, seed=len(template or ""))
    df = _chat_frame(convs)
    for max_length in (40, 96, 512):
        batched = Tokenize(tok, max_length)(df)  # a record it cannot window is quarantined alone, as in a run
        with monkeypatch.context() as m:
            m.setattr(T, "chat_renderer", PrefixRenders)
            m.setattr(T, "_encode_with_offsets", _one_by_one)
            reference = Tokenize(tok, max_length)(df)
        _assert_same(batched, reference)
        if max_length == 40:
            assert (batched.kept["window"] > 0).any()  # some conversations were windowed


def test_a_conversation_is_rendered_once_and_its_shape_once(tok, monkeypatch):
    tok = AutoTokenizer.from_pretrained(tok.name_or_path)
    rendered: list[int] = []
    real = type(tok).apply_chat_template

    def counting(self, conversation, **kwargs):
        rendered.append(len(conversation) if conversation and isinstance(conversation[0], list) else 1)
        return real(self, conversation, **kwargs)

    monkeypatch.setattr(type(tok), "apply_chat_template", counting)
    convs = [
        [{"role": "user", "content": f"Where is order {i}?"}, {"role": "assistant", "content": f"It left on day {i}."}]
        for i in range(50)
    ]
    T.encode_records(_chat_frame(convs), tok, 512)
    assert rendered[0] == 50 and sum(rendered) == 50 + 3  # the batch in one call; its one shape's three prefixes
    rendered.clear()
    T.encode_records(_chat_frame(convs[::-1]), tok, 512)
    assert rendered == [50]


def test_texts_encoded_without_offsets_match_each_text_encoded_with_them(tok):
    rng = random.Random(3)
    texts = ["", "x", *SENTENCES, "\n\n".join(SENTENCES)]
    texts += [" ".join(rng.choice(SENTENCES + WORDS) for _ in range(rng.randint(1, 120))) for _ in range(150)]
    # few characters, many byte-fallback tokens: longer than a window though short enough to skip offsets at first
    texts += ["漢字かな🙂" * 12, "ü€" * 30]
    df = make_records(
        {"id": f"t{i}", "source": "s", "format": "text", "text": t, "split": "train"} for i, t in enumerate(texts)
    )
    for max_length in (32, 100, 2048):
        kept = T.encode_records(df, tok, max_length).kept
        expected = [(i, k, w) for i, t in enumerate(texts) for k, w in enumerate(T.encode_text(t, tok, max_length))]
        assert kept["id"].to_list() == [f"t{i}" for i, _, _ in expected]
        assert kept["window"].to_list() == [k for _, k, _ in expected]
        assert kept["input_ids"].to_list() == [w.ids for _, _, w in expected]
        assert kept["loss_mask"].to_list() == [w.mask for _, _, w in expected]
        cut = {i for i, k, _ in expected if k}
        assert kept["text"].to_list() == [w.text if i in cut else texts[i] for i, _, w in expected]
        assert kept["n_tokens"].to_list() == [len(w.ids) for _, _, w in expected]


def test_text_and_chat_records_interleaved_keep_their_order(tok):
    convs = conversations(30, seed=5)
    rows = []
    for i, m in enumerate(convs):
        rows.append({"id": f"c{i}", "source": "s", "format": "chat", "messages": m, "split": "train"})
        rows.append({"id": f"t{i}", "source": "s", "format": "text", "text": " ".join(SENTENCES * i), "split": "train"})
    df = make_records(rows)
    enc = T.encode_records(df, tok, 64)
    both = pl.concat([enc.kept, enc.dropped.select(enc.kept.columns)]).sort("id", "window", maintain_order=True)
    alone = pl.concat(
        [
            pl.concat([e.kept, e.dropped.select(e.kept.columns)])
            for e in (T.encode_records(df[i : i + 1], tok, 64) for i in range(df.height))
        ]
    ).sort("id", "window", maintain_order=True)
    assert both.equals(alone)
    assert enc.kept["id"].to_list() == sorted(enc.kept["id"].to_list(), key=[r["id"] for r in rows].index)


def test_window_text_decodes_as_the_tokenizer_decodes(tok):
    rng = np.random.default_rng(0)
    for ids in [rng.integers(0, len(tok), size=n) for n in (1, 2, 17, 200)] + [np.arange(len(tok))]:
        expected = tok.decode(ids.tolist(), skip_special_tokens=False, clean_up_tokenization_spaces=False)
        assert T._decode(tok, ids) == T._decode(tok, ids.tolist()) == expected

import filecmp

import polars as pl
import pytest
from transformers import AutoTokenizer

from shards.config import TokenizerConfig
from shards.tokenization import encode_chat, encode_records, encode_text, tokenizer_identity, train_sentencepiece
from tuneprep.records import make_records

TEXTS = [
    f"Order {i} shipped on Monday. The parcel left our warehouse in Leeds.\n\nCall us if the box is damaged or late."
    for i in range(200)
]
CHAT = [
    {"role": "system", "content": "You are a support agent."},
    {"role": "user", "content": "Where is order 42?"},
    {"role": "assistant", "content": "It shipped on Monday."},
    {"role": "user", "content": "Thanks!"},
    {"role": "assistant", "content": "You are welcome."},
]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    train_sentencepiece(TEXTS, TokenizerConfig(vocab_size=300), d)
    return d


@pytest.fixture(scope="module")
def tok(tok_dir):
    return AutoTokenizer.from_pretrained(str(tok_dir))


def test_trained_tokenizer_loads_and_round_trips(tok):
    text = "Order 7 shipped on Monday.\n\nCall us — café 😀"
    ids = tok(text, add_special_tokens=False).input_ids
    assert tok.decode(ids) == text
    assert tok.eos_token == "</s>" and tok.pad_token == "<pad>" and tok.chat_template


def test_training_is_deterministic(tok_dir, tmp_path):
    train_sentencepiece(TEXTS, TokenizerConfig(vocab_size=300), tmp_path)
    assert filecmp.cmp(tok_dir / "tokenizer.json", tmp_path / "tokenizer.json", shallow=False)
    assert tokenizer_identity(tok_dir)["sha256"] == tokenizer_identity(tmp_path)["sha256"]


def test_plain_text_windows_end_with_eos_and_cover_the_text(tok):
    text = "\n\n".join(TEXTS[:6])
    windows = encode_text(text, tok, max_length=40)
    assert len(windows) > 1
    for k, (ids, mask, _, _) in enumerate(windows):
        assert ids[-1] == tok.eos_token_id and len(ids) <= 40 and len(mask) == len(ids)
        # every token is in the loss; the EOS of a window the document goes on after is not
        assert mask == [1] * (len(ids) - 1) + [1 if k == len(windows) - 1 else 0]
    assert "".join(tok.decode(w.ids[:-1]) for w in windows).replace(" ", "") == text.replace(" ", "")


def _words_of(text: str) -> set[str]:
    return set(text.split())


def test_long_text_is_cut_at_sentences_then_words_never_inside_a_word(tok):
    """Today's cut fell at raw token positions: "tion 46: the…". Every window must start and end on a word."""
    sentence = "Order 46 shipped on Monday and the parcel left our warehouse in Leeds before noon."
    text = " ".join([sentence] * 12)
    words = _words_of(text)
    for max_length in (48, 200):  # shorter and longer than a sentence
        windows = encode_text(text, tok, max_length=max_length)
        assert len(windows) > 2
        for w in windows:
            assert w.text == tok.decode(w.ids[:-1])  # the row's text is what its ids encode
            assert _words_of(w.text) <= words, w.text  # whole words only
        assert " ".join(w.text for w in windows).split() == text.split()
    assert all(w.text.rstrip().endswith(".") for w in windows)  # a window holds whole sentences where they fit
    one_word = "x" * 400  # longer than a window: the only cut left is inside it
    assert len(encode_text(f"{one_word} end.", tok, max_length=48)) > 1


def test_window_text_is_stored_once_and_equals_its_decoded_window(tok):
    doc = " ".join(["The parcel left our warehouse in Leeds."] * 60)
    df = make_records([{"id": "d", "source": "s", "format": "text", "text": doc, "split": "train"}])
    kept = encode_records(df, tok, max_length=64).kept
    assert kept.height > 3
    assert sum(len(t) for t in kept["text"]) < 1.1 * len(doc)  # not the whole document on every row
    for text, ids in zip(kept["text"], kept["input_ids"].to_list(), strict=True):
        assert text == tok.decode(ids[:-1])


def test_chat_mask_covers_assistant_turns_only(tok):
    ((ids, mask, _, messages),) = encode_chat(CHAT, tok, max_length=512)
    assert messages == CHAT
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    masked = tok.decode([i for i, m in zip(ids, mask, strict=True) if m], skip_special_tokens=False)
    assert masked == "It shipped on Monday.</s>You are welcome.</s>"
    assert ids.count(tok.eos_token_id) == 2 and ids[-1] == tok.eos_token_id


def test_long_chat_is_cut_at_turn_boundaries(tok):
    chat = CHAT + CHAT[1:] * 4
    windows = encode_chat(chat, tok, max_length=160)
    assert len(windows) > 1
    for ids, mask, _, messages in windows:
        assert len(ids) <= 160 and ids[0] == tok.bos_token_id and len(ids) == len(mask) and ids[-1] == tok.eos_token_id
        assert ids[1] != tok.bos_token_id  # the repeated system prompt brings no second BOS
        assert messages[0] == CHAT[0]  # the short system prompt opens every window
        contents = [m["content"] for m in CHAT]
        assert all(m["content"] in contents for m in messages)  # whole turns: every cut fell between turns
        assert messages[1]["role"] == "user"  # and before a question, not between it and its answer


def test_a_long_turn_is_never_windowed_mid_word_and_keeps_its_role_marker(tok):
    answer = " ".join(["Your parcel left our warehouse in Leeds on Monday and should arrive soon."] * 12)
    chat = [{"role": "user", "content": "Where is order 42?"}, {"role": "assistant", "content": answer}]
    windows = encode_chat(chat, tok, max_length=64)
    assert len(windows) > 2
    words = _words_of(answer) | _words_of(chat[0]["content"])
    assistant = tok.convert_tokens_to_ids("<|assistant|>")
    for k, w in enumerate(windows):
        rendered = tok.decode(w.ids, skip_special_tokens=False)
        assert w.ids[0] == tok.bos_token_id and w.ids[-1] == tok.eos_token_id
        if k:
            assert w.ids[1] == assistant  # a window inside the answer starts with its role marker
            assert [m["role"] for m in w.messages] == ["assistant"]
        for m in w.messages:
            assert _words_of(m["content"]) <= words, m["content"]  # never a piece of a word
            assert m["content"] in rendered  # the turns are what the ids encode
        assert sum(w.mask) > 0
    pieces = " ".join(m["content"] for w in windows for m in w.messages if m["role"] == "assistant")
    assert pieces.split() == answer.split()


@pytest.mark.parametrize("first", ["system", "user"])
def test_windows_repeating_the_opening_turn_start_with_one_bos(tok, first):
    """The repeated system prompt, or the role marker of a long first turn, comes after the window's one BOS."""
    long = " ".join(["Your parcel left our warehouse in Leeds on Monday and should arrive soon."] * 12)
    chat = [{"role": first, "content": "You are a support agent." if first == "system" else long}]
    chat += [{"role": "user", "content": "Where is order 42?"}, {"role": "assistant", "content": long}]
    windows = encode_chat(chat, tok, max_length=128)
    assert len(windows) > 2
    for w in windows:
        assert w.ids[0] == tok.bos_token_id and w.ids[1] != tok.bos_token_id


def test_windows_without_a_loss_token_are_dropped_with_a_reason(tok):
    question = " ".join(["Please tell me where my parcel is now because it left Leeds on Monday."] * 8)
    chat = [{"role": "user", "content": question}, {"role": "assistant", "content": "It is in York."}]
    df = make_records([{"id": "c", "source": "s", "format": "chat", "messages": chat, "split": "train"}])
    enc = encode_records(df, tok, max_length=64)
    assert enc.dropped.height >= 1 and set(enc.dropped["reason"]) == {"no_loss_tokens"}
    assert enc.kept.height >= 1 and all(sum(m) > 0 for m in enc.kept["loss_mask"].to_list())
    assert enc.kept["messages"][-1].to_list()[-1]["content"] == "It is in York."


def test_encode_records_one_row_per_window(tok):
    df = make_records(
        [
            {"id": "a", "source": "s", "format": "text", "text": "\n\n".join(TEXTS[:4]), "split": "train"},
            {"id": "b", "source": "s", "format": "chat", "messages": CHAT, "split": "test"},
        ]
    )
    out = encode_records(df, tok, max_length=32).kept
    assert out.filter(pl.col("id") == "a").height > 1
    assert out["n_tokens"].to_list() == [len(x) for x in out["input_ids"].to_list()]
    assert set(out.filter(pl.col("id") == "b")["split"]) == {"test"}


def test_pretrained_tokenizer_by_path_gets_a_chat_template_and_mask(tmp_path):
    from tiny_gpt2 import save_tokenizer

    from shards.tokenization import load_pretrained

    words = [
        "you",
        "are",
        "a",
        "support",
        "agent",
        "where",
        "is",
        "order",
        "42",
        "it",
        "shipped",
        "on",
        "monday",
        "thanks",
        "welcome",
    ]
    save_tokenizer([" ".join(words)], tmp_path / "hub")
    tok = load_pretrained(str(tmp_path / "hub"), tmp_path / "copy")
    reloaded = AutoTokenizer.from_pretrained(str(tmp_path / "copy"))
    assert reloaded.chat_template and reloaded.pad_token is not None
    chat = [{"role": "user", "content": "where is order 42"}, {"role": "assistant", "content": "it shipped on monday"}]
    ((ids, mask, _, _),) = encode_chat(chat, tok, max_length=64)
    masked = [t for t, m in zip(tok.convert_ids_to_tokens(ids), mask, strict=True) if m]
    assert masked == ["it", "shipped", "on", "monday", tok.eos_token]


def test_configured_special_tokens_stay_whole(tmp_path):
    cfg = TokenizerConfig(vocab_size=300, extra_special_tokens=["<|tool|>", "{{ORDER_ID}}"])
    tok = train_sentencepiece(TEXTS, cfg, tmp_path)
    ids = tok("Ask <|tool|> about {{ORDER_ID}} now", add_special_tokens=False).input_ids
    assert tok.convert_tokens_to_ids("<|tool|>") in ids and tok.convert_tokens_to_ids("{{ORDER_ID}}") in ids
    reloaded = AutoTokenizer.from_pretrained(str(tmp_path))
    assert reloaded("{{ORDER_ID}}", add_special_tokens=False).input_ids == [tok.convert_tokens_to_ids("{{ORDER_ID}}")]


def test_a_large_train_split_is_sampled_to_the_char_budget(tmp_path):
    """The trainer's memory follows its input, so a split over budget trains on a hashed sample of records."""
    from flows import steps as pipeline
    from flows.config import PipelineConfig
    from flows.layout import RunPaths
    from shards.tokenization import train_chars
    from tuneprep.hashing import sampled

    rows = make_records(
        {"id": f"r{i}", "source": "s", "format": "text", "text": f"Record number {i} says hello to the world. " * 5}
        for i in range(600)
    ).with_columns(pl.lit("train").alias("split"))
    paths = RunPaths(tmp_path).make()
    rows.write_parquet(paths.stage_file("augmented"))
    assert train_chars(paths.stage_file("augmented")) == sum(len(t) for t in rows["text"])
    picked = sampled(rows["id"].to_list(), 0.25, seed=1)
    assert picked == sampled(rows["id"].to_list(), 0.25, seed=1) and 100 < sum(picked) < 200
    cfg = PipelineConfig.model_validate({"tokenizer": {"vocab_size": 300, "max_train_chars": 30_000}})
    logs: list[str] = []
    pipeline.tokenizer_step(cfg, paths, logs.append)
    assert "sample of the train split" in logs[-1]
    assert AutoTokenizer.from_pretrained(str(paths.tokenizer))("hello world")["input_ids"]

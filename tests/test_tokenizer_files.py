"""``SavedTokenizer``: a saved plain fast tokenizer read without transformers must be the tokenizer transformers
loads, and any folder it cannot vouch for must go to transformers."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from shards.config import TokenizerConfig
from shards.tokenization import (
    DEFAULT_CHAT_TEMPLATE,
    SavedTokenizer,
    encode_records,
    load_pretrained,
    read_tokenizer,
    tokenizer_identity,
    train_sentencepiece,
)
from tuneprep.records import make_records

ROOT = Path(__file__).resolve().parents[1]
WORDS = "Order 42 shipped on Monday from Leeds ; call us if the box is late or damaged . Thanks a lot !"
TEXTS = [f"{WORDS} Parcel {i} café 😀 naïve\tcolumns  spaced\n\nnew paragraph" for i in range(60)]
PROBES = [
    "",
    " ",
    "Order 7 shipped.\n\nCall us — café 😀",
    "  leading and trailing spaces  ",
    "specials inline: </s><s> <pad> <|tool|> <|user|>\n<|assistant|> done",
    "unknown ✈ 漢字 \u200b zero-width",
    "tab\tand\r\nwindows line ends",
]
CHAT = [
    {"role": "system", "content": "You are a support agent."},
    {"role": "user", "content": "Where is order 42?"},
    {"role": "assistant", "content": "It shipped on Monday."},
]


def _sentencepiece(d: Path) -> None:
    train_sentencepiece(TEXTS, TokenizerConfig(vocab_size=300, extra_special_tokens=["<|tool|>"]), d)


def _word_level(d: Path) -> None:
    from tiny_gpt2 import build_tokenizer

    tok = build_tokenizer(TEXTS)  # no post-processor of its own: transformers builds one before saving
    tok.chat_template = DEFAULT_CHAT_TEMPLATE
    tok.add_special_tokens({"additional_special_tokens": ["<|user|>", "<|assistant|>", "<|system|>"]})
    tok.save_pretrained(str(d))


def _byte_level(d: Path) -> None:
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(TEXTS, trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"]))
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=[AddedToken("<|tool|>", lstrip=True), "<|user|>", "<|assistant|>"],
    )
    tok.chat_template = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{{ eos_token }}{% endfor %}"
    tok.save_pretrained(str(d))


@pytest.fixture(scope="module", params=[_sentencepiece, _word_level, _byte_level], ids=lambda f: f.__name__[1:])
def saved(request, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp(request.param.__name__)
    request.param(d)
    return d


def test_the_saved_tokenizer_is_the_one_transformers_loads(saved):
    light = SavedTokenizer.read(saved)
    full = PreTrainedTokenizerFast.from_pretrained(str(saved))
    assert light is not None
    assert light.backend_tokenizer.to_str() == full.backend_tokenizer.to_str()
    for special in (False, True):
        ours = light.backend_tokenizer.encode_batch(PROBES, add_special_tokens=special)
        theirs = full.backend_tokenizer.encode_batch(PROBES, add_special_tokens=special)
        assert [(e.ids, e.offsets) for e in ours] == [(e.ids, e.offsets) for e in theirs]
        assert [e.ids for e in light.backend_tokenizer.encode_batch_fast(PROBES, add_special_tokens=special)] == [
            e.ids for e in theirs
        ]
    ids = [e.ids for e in theirs]
    assert light.backend_tokenizer.decode_batch(ids, skip_special_tokens=False) == [
        full.decode(i, skip_special_tokens=False, clean_up_tokenization_spaces=False) for i in ids
    ]
    assert len(light) == len(full)
    assert light.special_tokens_map == full.special_tokens_map
    for name in ("bos_token", "eos_token", "unk_token", "pad_token"):
        assert (getattr(light, name), getattr(light, f"{name}_id")) == (
            getattr(full, name),
            getattr(full, f"{name}_id"),
        )
    assert light.chat_template == full.chat_template
    assert "transformers_tokenizer" not in light.__dict__  # nothing above needed transformers
    # the rest of the tokenizer API, as a notebook would use it
    assert light(PROBES[2]).input_ids == full(PROBES[2]).input_ids
    assert light.convert_ids_to_tokens(ids[2]) == full.convert_ids_to_tokens(ids[2])


def test_records_encode_the_same_through_either_loader(saved):
    """Text (one window and cut ones) and a conversation, whose template the saved tokenizer hands on."""
    df = make_records(
        [
            {"id": "a", "source": "s", "format": "text", "text": "\n\n".join(TEXTS[:5]), "split": "train"},
            {"id": "b", "source": "s", "format": "text", "text": PROBES[4], "split": "train"},
            {"id": "c", "source": "s", "format": "chat", "messages": CHAT, "split": "train"},
        ]
    )
    light, full = SavedTokenizer.read(saved), PreTrainedTokenizerFast.from_pretrained(str(saved))
    ours, theirs = encode_records(df, light, max_length=48), encode_records(df, full, max_length=48)
    assert ours.kept.height > 3
    assert ours.kept.equals(theirs.kept) and ours.dropped.equals(theirs.dropped)
    identity = tokenizer_identity(saved)
    assert (identity["vocab_size"], identity["eos_token"]) == (len(full), full.eos_token)
    assert identity["chat_template_sha256"] == hashlib.sha256(full.chat_template.encode()).hexdigest()


def _edit_config(d: Path, **changes) -> None:
    path = d / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize(
    "change",
    [
        "a special token missing from tokenizer.json",
        "another tokenizer class",
        "an older save format",
        "an explicit add_bos_token",
        "no post-processor",
    ],
)
def test_a_folder_transformers_would_change_is_left_to_transformers(tmp_path, change):
    _sentencepiece(tmp_path)
    if change == "a special token missing from tokenizer.json":
        _edit_config(tmp_path, eos_token="<|end|>")  # transformers adds it on load, with a new id
    elif change == "another tokenizer class":
        _edit_config(tmp_path, tokenizer_class="LlamaTokenizer")
    elif change == "an older save format":
        (tmp_path / "special_tokens_map.json").write_text(json.dumps({"eos_token": "</s>"}))
    elif change == "an explicit add_bos_token":
        _edit_config(tmp_path, add_bos_token=True)
    else:
        backend = json.loads((tmp_path / "tokenizer.json").read_text())
        backend["post_processor"] = None
        (tmp_path / "tokenizer.json").write_text(json.dumps(backend))
    assert SavedTokenizer.read(tmp_path) is None
    if change == "a special token missing from tokenizer.json":
        tok = read_tokenizer(tmp_path)
        assert not isinstance(tok, SavedTokenizer) and tok.eos_token_id == len(tok) - 1


def test_a_ready_pretrained_folder_is_copied_and_read_without_transformers(tmp_path):
    """What the bench and a rerun on a run's own tokenizer do: no transformers import in the whole step."""
    _sentencepiece(tmp_path / "src")
    (tmp_path / "src" / "model.safetensors").write_bytes(b"weights stay where they are")
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "chat_template.jinja").write_text("an earlier run's template")
    config = json.loads((tmp_path / "src" / "tokenizer_config.json").read_text())
    config["chat_template"] = (tmp_path / "src" / "chat_template.jinja").read_text() + "{# in the config #}"
    (tmp_path / "src" / "tokenizer_config.json").write_text(json.dumps(config))
    (tmp_path / "src" / "chat_template.jinja").unlink()
    script = f"""
import sys
from pathlib import Path
import polars as pl
from shards.tokenization import encode_records, load_pretrained, read_tokenizer, tokenizer_identity
from tuneprep.records import make_records
load_pretrained({str(tmp_path / "src")!r}, Path({str(tmp_path / "copy")!r}))
tok = read_tokenizer({str(tmp_path / "copy")!r})
identity = tokenizer_identity(Path({str(tmp_path / "copy")!r}))
df = make_records([{{"id": "a", "source": "s", "format": "text", "text": {TEXTS[0]!r}, "split": "train"}}])
encode_records(df, tok, max_length=16).kept.write_parquet({str(tmp_path / "out.parquet")!r})
assert "transformers" not in sys.modules, "transformers was imported"
print(identity["vocab_size"])
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "copy" / name).read_bytes() == (tmp_path / "src" / name).read_bytes()
    full = PreTrainedTokenizerFast.from_pretrained(str(tmp_path / "copy"))
    assert full.chat_template.endswith("{# in the config #}") and int(done.stdout) == len(full)
    df = make_records([{"id": "a", "source": "s", "format": "text", "text": TEXTS[0], "split": "train"}])
    assert pl.read_parquet(tmp_path / "out.parquet").equals(encode_records(df, full, max_length=16).kept)
    before = {p.name: p.read_bytes() for p in (tmp_path / "copy").iterdir()}
    load_pretrained(str(tmp_path / "copy"), tmp_path / "copy")  # a rerun pointed at its own copy
    assert {p.name: p.read_bytes() for p in (tmp_path / "copy").iterdir()} == before


def test_a_pretrained_folder_missing_what_the_shards_need_is_completed_by_transformers(tmp_path):
    _sentencepiece(tmp_path / "src")
    (tmp_path / "src" / "chat_template.jinja").unlink()
    tok = load_pretrained(str(tmp_path / "src"), tmp_path / "copy")
    assert not isinstance(tok, SavedTokenizer) and tok.chat_template == DEFAULT_CHAT_TEMPLATE
    assert (tmp_path / "copy" / "chat_template.jinja").read_text() == DEFAULT_CHAT_TEMPLATE
    tok = load_pretrained(str(tmp_path / "copy"), tmp_path / "again", extra_special_tokens=["<|new|>"])
    assert not isinstance(tok, SavedTokenizer) and "<|new|>" in tok.get_vocab()
    assert isinstance(read_tokenizer(tmp_path / "again"), SavedTokenizer)

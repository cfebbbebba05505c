"""The fine-tune refuses shards made with another tokenizer."""

import json

import pytest
from tiny_gpt2 import save_tokenizer

from finetune import check_tokenizer
from flows.finetune import resolve_data_dir
from shards.tokenization import tokenizer_identity


def prepared(tmp_path, sha: str | None = None):
    save_tokenizer(["hello world again"], tmp_path / "tokenizer")
    (tmp_path / "shards").mkdir()
    sha = sha or tokenizer_identity(tmp_path / "tokenizer")["sha256"]
    (tmp_path / "manifest.json").write_text(json.dumps({"tokenizer": {"sha256": sha}}))
    return tmp_path


def test_matching_tokenizer_passes_and_shards_dir_resolves(tmp_path):
    data = prepared(tmp_path)
    check_tokenizer(data)
    assert resolve_data_dir(data / "shards") == data


def test_swapped_tokenizer_is_refused(tmp_path):
    data = prepared(tmp_path, sha="0" * 64)
    with pytest.raises(ValueError, match="not the one the shards were made with"):
        check_tokenizer(data)


def test_not_a_prepared_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="tuneprep prepare"):
        resolve_data_dir(tmp_path)

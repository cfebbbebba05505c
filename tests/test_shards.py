import datasets
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shards.writer import write_shards


@pytest.fixture
def tokenized(tmp_path):
    df = pl.DataFrame(
        {
            "id": [f"r{i}" for i in range(30)],
            "split": ["train", "validation", "test"] * 10,
            "label": ["a", "b", None] * 10,
            "input_ids": [[1, 2, i] for i in range(30)],
            "n_tokens": [3] * 30,
        },
        schema_overrides={"input_ids": pl.List(pl.Int32), "n_tokens": pl.Int32},
    )
    path = tmp_path / "tok.parquet"
    pq.write_table(df.to_arrow(), path, row_group_size=7)
    return path


def test_split_shards_load_with_datasets_polars_and_pyarrow(tokenized, tmp_path):
    info = write_shards(tokenized, tmp_path / "shards", rows_per_shard=4, batch_size=5)
    train = info["train"]
    assert train["rows"] == 10 and train["tokens"] == 30 and len(train["shards"]) == 3
    assert [s["rows"] for s in train["shards"]] == [4, 4, 2] and train["labels"] == {"a": 10}
    assert info["test"]["labels"] == {"(none)": 10}
    ds = datasets.load_from_disk(str(tmp_path / "shards" / "train"))
    assert ds.num_rows == 10 and set(ds["split"]) == {"train"}
    assert ds["id"] == [f"r{i}" for i in range(0, 30, 3)]
    assert ds[0]["input_ids"] == [1, 2, 0]
    frames = [pl.read_ipc_stream(tmp_path / s["file"]) for s in train["shards"]]
    assert sum(f.height for f in frames) == 10
    assert pa.ipc.open_stream(str(tmp_path / train["shards"][0]["file"])).read_all().num_rows == 4
    assert not list((tmp_path / "shards").glob(".*"))


def test_same_rows_give_byte_identical_shards(tokenized, tmp_path):
    a = write_shards(tokenized, tmp_path / "a" / "shards", 4)
    b = write_shards(tokenized, tmp_path / "b" / "shards", 4, batch_size=3)
    assert a == b
    for name in ("state.json", "dataset_info.json"):
        assert (tmp_path / "a/shards/test" / name).read_bytes() == (tmp_path / "b/shards/test" / name).read_bytes()


def test_empty_split_still_loads(tmp_path):
    df = pl.DataFrame({"id": ["x"], "split": ["train"], "n_tokens": [1]})
    pq.write_table(df.to_arrow(), tmp_path / "t.parquet")
    info = write_shards(tmp_path / "t.parquet", tmp_path / "shards", 10)
    assert info["test"]["rows"] == 0
    assert datasets.load_from_disk(str(tmp_path / "shards" / "test")).num_rows == 0


def test_rewrite_replaces_split_atomically_and_ignores_leftovers(tokenized, tmp_path):
    write_shards(tokenized, tmp_path / "s", 100)
    (tmp_path / "s" / ".validation.tmp-999").mkdir()  # left by a killed run
    write_shards(tokenized, tmp_path / "s", 2)
    assert datasets.load_from_disk(str(tmp_path / "s" / "validation")).num_rows == 10
    assert len(list((tmp_path / "s" / "validation").glob("*.arrow"))) == 5


def test_parquet_export_scans_lazily(tokenized, tmp_path):
    write_shards(tokenized, tmp_path / "shards", 100, parquet_dir=tmp_path / "parquet")
    lazy = pl.scan_parquet(tmp_path / "parquet" / "validation" / "*.parquet")
    assert lazy.select(pl.len()).collect().item() == 10

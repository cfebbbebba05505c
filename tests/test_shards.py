import datasets
import polars as pl
import pyarrow.parquet as pq

from tuneprep.shards import write_split


def tokenized(path):
    df = pl.DataFrame(
        {
            "id": [f"r{i}" for i in range(30)],
            "split": ["train"] * 20 + ["validation"] * 5 + ["test"] * 5,
            "input_ids": [[1, 2, i] for i in range(30)],
            "n_tokens": [3] * 30,
        },
        schema_overrides={"input_ids": pl.List(pl.Int32), "n_tokens": pl.Int32},
    )
    pq.write_table(df.to_arrow(), path)


def test_split_shards_load_with_datasets_and_polars(tmp_path):
    src = tmp_path / "tok.parquet"
    tokenized(src)
    info = write_split(src, tmp_path / "shards", "train", max_rows_per_shard=8)
    assert info["rows"] == 20 and info["tokens"] == 60 and len(info["shards"]) == 3
    ds = datasets.load_from_disk(str(tmp_path / "shards" / "train"))
    assert ds.num_rows == 20 and set(ds["split"]) == {"train"}
    frames = [pl.read_ipc_stream(tmp_path / s["file"]) for s in info["shards"]]
    assert sum(f.height for f in frames) == 20
    assert not list((tmp_path / "shards").glob(".*tmp*"))


def test_same_rows_give_byte_identical_shards(tmp_path):
    src = tmp_path / "tok.parquet"
    tokenized(src)
    a = write_split(src, tmp_path / "a", "test", 100)
    b = write_split(src, tmp_path / "b", "test", 100)
    assert [s["sha256"] for s in a["shards"]] == [s["sha256"] for s in b["shards"]]
    for name in ("state.json", "dataset_info.json"):
        assert (tmp_path / "a/test" / name).read_bytes() == (tmp_path / "b/test" / name).read_bytes()


def test_rewrite_replaces_split_atomically(tmp_path):
    src = tmp_path / "tok.parquet"
    tokenized(src)
    write_split(src, tmp_path / "s", "validation", 100)
    (tmp_path / "s" / ".validation.tmp-999").mkdir()  # left by a killed run
    write_split(src, tmp_path / "s", "validation", 2)
    assert datasets.load_from_disk(str(tmp_path / "s" / "validation")).num_rows == 5
    assert len(list((tmp_path / "s" / "validation").glob("*.arrow"))) == 3

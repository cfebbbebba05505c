import json

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


SCHEMAS = [
    pa.schema([("id", pa.large_string()), ("messages", pa.large_list(pa.struct([("role", pa.large_string()),
               ("content", pa.large_string())]))), ("input_ids", pa.large_list(pa.int32())),
               ("loss_mask", pa.large_list(pa.int8())), ("n_tokens", pa.int32())]),
    pa.schema([("s", pa.string()), ("b", pa.bool_()), ("f", pa.float32()), ("d", pa.float64()), ("u", pa.uint16()),
               ("l", pa.list_(pa.int64())), ("nested", pa.struct([("x", pa.list_(pa.string())), ("y", pa.uint64())]))]),
    pa.schema([("when", pa.timestamp("ms")), ("ids", pa.large_list(pa.int32()))]),  # not mapped: datasets answers
]  # fmt: skip


@pytest.mark.parametrize("schema", SCHEMAS, ids=["shards", "more-types", "fallback"])
def test_features_metadata_is_what_datasets_writes(schema, tmp_path):
    """The features JSON is written without importing ``datasets``; it must be byte for byte what it writes."""
    from datasets.utils.py_utils import asdict

    from shards.writer import dataset_info, hf_schema

    features = datasets.Features.from_arrow_schema(schema)
    want = json.dumps({"info": {"features": features.to_dict()}})
    assert hf_schema(schema).metadata[b"huggingface"].decode() == want
    info = asdict(datasets.DatasetInfo(features=features))
    assert json.dumps(dataset_info(schema), indent=2) == json.dumps({k: info[k] for k in sorted(info)}, indent=2)


def test_arrow_arrays_without_pa_array():
    import numpy as np

    from tuneprep.arrow import numeric_array, string_array

    for dtype in (np.int8, np.int32, np.int64, np.uint64, np.float32):
        values = np.arange(5, dtype=dtype)[::2]  # a strided view is made contiguous
        assert numeric_array(values).to_pylist() == values.tolist()
    assert numeric_array(np.empty(0, np.int64)).type == pa.int64()
    with pytest.raises(TypeError):
        numeric_array(np.array(["a"]))
    arr = string_array(["a", None, "é"])
    assert arr.type == pa.large_string() and arr.to_pylist() == ["a", None, "é"]

"""Arrow arrays from numpy and Python values without ``pa.array``.

``pa.array`` imports pandas on its first call, whatever it is given (pyarrow checks for pandas objects):
0.2–0.6 s in every process that builds an array, a noticeable share of a step on a small corpus.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import pyarrow as pa

_TYPES = {np.dtype(np.int64): pa.int64(), np.dtype(np.int32): pa.int32(), np.dtype(np.uint32): pa.uint32(),
          np.dtype(np.uint64): pa.uint64(), np.dtype(np.float32): pa.float32(), np.dtype(np.float64): pa.float64(),
          np.dtype(np.int8): pa.int8(), np.dtype(np.uint8): pa.uint8(), np.dtype(np.int16): pa.int16(),
          np.dtype(np.uint16): pa.uint16()}  # fmt: skip


def numeric_array(values: np.ndarray) -> pa.Array:
    """A 1-D numeric numpy array as an Arrow array without nulls (its bytes are shared, not copied)."""
    values = np.ascontiguousarray(values)
    if values.ndim != 1 or values.dtype not in _TYPES:
        raise TypeError(f"a 1-D numeric array is needed, got {values.dtype} with {values.ndim} dimensions")
    return pa.Array.from_buffers(_TYPES[values.dtype], len(values), [None, pa.py_buffer(values)])


def string_array(values: Sequence[str | None]) -> pa.Array:
    """Python strings as an Arrow ``large_string`` array (built by polars)."""
    return pl.Series(values, dtype=pl.String).to_arrow().cast(pa.large_string())


def string_scalar(value: str) -> pa.Scalar:
    """A ``large_string`` Arrow scalar (``pa.scalar`` imports pandas too)."""
    return string_array([value])[0]

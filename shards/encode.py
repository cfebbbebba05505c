"""Tokenizing as a stage, so a record the tokenizer or the chat template cannot handle is quarantined alone."""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from shards.tokenization import encode_records
from tuneprep.stage import Stage, StageOutput


class Tokenize(Stage):
    """Records in, one row per window out (``input_ids``, ``loss_mask``, ``n_tokens``, ``window``); windows
    without a loss token come out dropped (``no_loss_tokens``)."""

    name: ClassVar[str] = "tokenize"
    adds_records: ClassVar[bool] = True  # a long record becomes several windows

    def __init__(self, tokenizer, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def process(self, batch: pl.DataFrame) -> StageOutput:
        kept, dropped = encode_records(batch, self.tokenizer, self.max_length)
        return StageOutput(kept, dropped)

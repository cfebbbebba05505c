"""Length-based quality filter: too short to teach anything, too long to be a document, or a broken chat."""

from __future__ import annotations

import polars as pl

from cleaners.config import FilterConfig
from tuneprep.records import document_text
from tuneprep.stage import Filter


def _has_role(role: str) -> pl.Expr:
    turn = (pl.element().struct.field("role") == role) & (
        pl.element().struct.field("content").fill_null("").str.strip_chars() != ""
    )
    return pl.col("messages").list.eval(turn).list.any().fill_null(False)


class LengthFilter(Filter):
    """Drops records outside the configured length bounds; chats are measured over the whole conversation."""

    name = "length_filter"

    def __init__(self, cfg: FilterConfig | None = None) -> None:
        self.cfg = cfg or FilterConfig()

    def reasons(self, batch: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
        cfg = self.cfg
        doc = document_text(batch).str.strip_chars()
        df = batch.with_columns(
            doc.str.len_chars().alias("_chars"),
            doc.str.count_matches(r"\S+").alias("_words"),
            _has_role("user").alias("_user"),
            _has_role("assistant").alias("_assistant"),
        )
        is_chat = pl.col("format") == "chat"
        chars, words = pl.col("_chars"), pl.col("_words")
        content_chars = (
            pl.col("messages")
            .list.eval(pl.element().struct.field("content").fill_null("").str.strip_chars().str.len_chars())
            .list.sum()
        )
        empty = pl.when(is_chat).then(content_chars.fill_null(0) == 0).otherwise(chars == 0)
        rules: list[tuple[pl.Expr, str, pl.Expr]] = [(empty, "no_content", pl.lit(None, pl.Utf8))]
        if cfg.require_chat_turns:
            missing = is_chat & ~(pl.col("_user") & pl.col("_assistant"))
            detail = pl.concat_str(
                pl.lit("user="),
                pl.col("_user").cast(pl.Utf8),
                pl.lit(" assistant="),
                pl.col("_assistant").cast(pl.Utf8),
            )
            rules.append((missing, "chat_missing_turns", detail))
        rules.append(
            (chars < cfg.min_chars, "too_short_chars", pl.format("{} chars < {}", chars, pl.lit(cfg.min_chars)))
        )
        rules.append(
            (words < cfg.min_words, "too_short_words", pl.format("{} words < {}", words, pl.lit(cfg.min_words)))
        )
        if cfg.max_chars is not None:
            rules.append((chars > cfg.max_chars, "too_long", pl.format("{} chars > {}", chars, pl.lit(cfg.max_chars))))
        reason: pl.Expr = pl.lit(None, pl.Utf8)
        detail_expr: pl.Expr = pl.lit(None, pl.Utf8)
        for cond, why, det in reversed(rules):
            reason = pl.when(cond).then(pl.lit(why)).otherwise(reason)
            detail_expr = pl.when(cond).then(det).otherwise(detail_expr)
        out = df.select(reason.alias("reason"), detail_expr.alias("detail"))
        return out["reason"], out["detail"]

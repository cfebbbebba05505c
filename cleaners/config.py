"""Settings for the cleaning stages, with defaults chosen for LM fine-tuning data."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_DROP_TAGS = ["script", "style", "nav", "header", "footer", "aside", "noscript", "form", "iframe", "svg"]
DEFAULT_BOILERPLATE = [
    "cookie",
    "consent",
    "banner",
    "breadcrumb",
    "related",
    "share",
    "social",
    "comment",
    "sidebar",
    "menu",
    "newsletter",
    "subscribe",
    "advert",
    "sponsor",
    "promo",
    "popup",
    "modal",
    "skip-link",
]
DEFAULT_DROP_ROLES = ["navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog", "menu"]


class HtmlConfig(BaseModel):
    """How HTML pages become plain text: what counts as boilerplate and where the article lives."""

    model_config = ConfigDict(extra="forbid")

    drop_tags: list[str] = Field(default_factory=lambda: list(DEFAULT_DROP_TAGS))
    boilerplate_patterns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BOILERPLATE),
        description="Regexes matched (case-insensitive, at a word/dash boundary) against class and id attributes.",
    )
    drop_roles: list[str] = Field(default_factory=lambda: list(DEFAULT_DROP_ROLES))
    drop_hidden: bool = Field(True, description="Drop elements with `hidden`, aria-hidden=true or display:none.")
    boilerplate_max_share: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="A class/id match holding more than this share of the page text is a layout wrapper, so kept.",
    )
    prefer_main: bool = Field(True, description="Extract only <main> / role=main / <article> when present.")
    main_min_share: float = Field(
        0.2, ge=0.0, le=1.0, description="Fall back to the whole body when the main region holds less text than this."
    )
    keep_paragraphs: bool = Field(True, description="Block elements become blank-line separated paragraphs.")
    parser: str = "lxml"


class NormalizeConfig(BaseModel):
    """Text normalisation; the lossy options (lowercase, punctuation, stopwords) are off for LM data."""

    model_config = ConfigDict(extra="forbid")

    unicode_form: Literal["NFC", "NFKC", "NFD", "NFKD"] | None = "NFC"
    fix_mojibake: bool = True
    strip_control_chars: bool = True
    normalize_spaces: bool = Field(True, description="NBSP and other odd spaces become a plain space.")
    collapse_whitespace: bool = Field(True, description="Runs of spaces -> one; blank-line runs -> max_blank_lines.")
    keep_indentation: bool = Field(True, description="Leading indentation survives collapsing (code blocks).")
    max_blank_lines: int = Field(1, ge=0)
    lowercase: bool = False
    remove_punctuation: bool = False
    remove_stopwords: bool = False
    stopwords: list[str] | None = Field(None, description="Custom stopword list; a built-in English list otherwise.")


class FilterConfig(BaseModel):
    """Length bounds; chats are measured over the whole conversation."""

    model_config = ConfigDict(extra="forbid")

    min_chars: int = Field(20, ge=0)
    min_words: int = Field(5, ge=0)
    max_chars: int | None = Field(None, ge=1)
    require_chat_turns: bool = Field(True, description="Chats need a user turn and an assistant turn.")


def _fp_fn_areas(threshold: float, bands: int, rows: int, grid: int = 1001) -> tuple[float, float]:
    s_lo = np.linspace(0.0, threshold, grid)
    s_hi = np.linspace(threshold, 1.0, grid)
    p_lo = 1.0 - (1.0 - s_lo**rows) ** bands
    p_hi = (1.0 - s_hi**rows) ** bands
    return float(np.trapezoid(p_lo, s_lo)), float(np.trapezoid(p_hi, s_hi))


def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising weighted false-positive and false-negative areas, as datasketch's `_optimal_param`."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp, fn = _fp_fn_areas(threshold, b, r)
            err = fp * fp_weight + fn * fn_weight
            if err < best_err:
                best, best_err = (b, r), err
    return best


class DedupConfig(BaseModel):
    """Exact and near-duplicate removal; bands/rows default to the datasketch-style optimum for the threshold.

    Word 3-grams at Jaccard 0.7 catch lightly edited copies of short texts (a ticket with a
    changed date, a page with a reworded sentence), where 5-grams lose most shingles to each edit.
    """

    model_config = ConfigDict(extra="forbid")

    exact: bool = True
    near: bool = True
    threshold: float = Field(0.7, gt=0.0, lt=1.0, description="Estimated Jaccard at or above which a doc is a dup.")
    num_perm: int = Field(128, ge=2, le=1024)
    shingle: Literal["word", "char"] = "word"
    ngram: int = Field(3, ge=1)
    seed: int = 1
    fp_weight: float = Field(0.5, ge=0.0)
    fn_weight: float = Field(0.5, ge=0.0)
    bands: int | None = Field(None, ge=1)
    rows: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _check_bands(self) -> DedupConfig:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither")
        if self.bands is not None and self.rows is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands*rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self

    def lsh_params(self) -> tuple[int, int]:
        """(bands, rows): explicit values if set, else derived from threshold and num_perm."""
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        return _cached_optimal(self.threshold, self.num_perm, self.fp_weight, self.fn_weight)


_OPT_CACHE: dict[tuple[float, int, float, float], tuple[int, int]] = {}


def _cached_optimal(threshold: float, num_perm: int, fp_weight: float, fn_weight: float) -> tuple[int, int]:
    key = (threshold, num_perm, fp_weight, fn_weight)
    if key not in _OPT_CACHE:
        _OPT_CACHE[key] = optimal_bands(threshold, num_perm, fp_weight, fn_weight)
    return _OPT_CACHE[key]


class CleanConfig(BaseModel):
    """All cleaning settings, in pipeline order."""

    model_config = ConfigDict(extra="forbid")

    html: HtmlConfig = Field(default_factory=HtmlConfig)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)

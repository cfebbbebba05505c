"""Cleaning stages: HTML stripping, normalisation, length filtering, exact and near-duplicate removal."""

from cleaners.config import CleanConfig, DedupConfig, FilterConfig, HtmlConfig, NormalizeConfig, optimal_bands
from cleaners.dedup import (
    ExactDeduper,
    LSHIndex,
    MinHashDeduper,
    MinHasher,
    canonical_text,
    dedup_stages,
    jaccard_estimate,
)
from cleaners.filters import LengthFilter
from cleaners.html import StripHtml, strip_html
from cleaners.normalize import Normalize, fix_mojibake, normalize_text

__all__ = [
    "CleanConfig",
    "DedupConfig",
    "ExactDeduper",
    "FilterConfig",
    "HtmlConfig",
    "LSHIndex",
    "LengthFilter",
    "MinHashDeduper",
    "MinHasher",
    "Normalize",
    "NormalizeConfig",
    "StripHtml",
    "canonical_text",
    "dedup_stages",
    "fix_mojibake",
    "jaccard_estimate",
    "normalize_text",
    "optimal_bands",
    "strip_html",
]

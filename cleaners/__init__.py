"""Cleaning stages: HTML extraction, normalisation, PII redaction, length/language/quality filtering, dedup."""

from cleaners.config import (
    CleanConfig,
    DedupConfig,
    FilterConfig,
    HtmlConfig,
    LanguageConfig,
    NormalizeConfig,
    PIIConfig,
    QualityConfig,
    optimal_bands,
)
from cleaners.decontaminate import DecontamConfig, Decontaminator
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
from cleaners.html import StripHtml, drop_boilerplate_lines, strip_html
from cleaners.langid import LanguageFilter, detect_language
from cleaners.normalize import Normalize, fix_mojibake, normalize_text
from cleaners.pii import RedactPII, redact_pii
from cleaners.quality import QualityFilter, check_quality

__all__ = [
    "CleanConfig",
    "DedupConfig",
    "DecontamConfig",
    "Decontaminator",
    "ExactDeduper",
    "FilterConfig",
    "HtmlConfig",
    "LanguageConfig",
    "LanguageFilter",
    "LSHIndex",
    "LengthFilter",
    "MinHashDeduper",
    "MinHasher",
    "Normalize",
    "NormalizeConfig",
    "PIIConfig",
    "QualityConfig",
    "QualityFilter",
    "RedactPII",
    "SemanticDeduper",
    "StripHtml",
    "canonical_text",
    "check_quality",
    "dedup_stages",
    "detect_language",
    "drop_boilerplate_lines",
    "fix_mojibake",
    "jaccard_estimate",
    "normalize_text",
    "optimal_bands",
    "redact_pii",
    "strip_html",
]


def __getattr__(name: str):
    """SemanticDeduper loads on first use: it is the one stage with an optional dependency."""
    if name == "SemanticDeduper":
        from cleaners.semantic import SemanticDeduper

        return SemanticDeduper
    raise AttributeError(f"module 'cleaners' has no attribute {name!r}")

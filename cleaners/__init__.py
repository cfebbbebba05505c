"""Cleaning stages: HTML extraction, normalisation, PII redaction, length/language/quality filters, dedup,
decontamination.

Names load on first use, so reading the settings (``cleaners.config``) does not import bs4, trafilatura or numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneprep.lazy import lazy_exports

_EXPORTS = {
    "CleanConfig": "config",
    "DecontamConfig": "config",
    "DedupConfig": "config",
    "FilterConfig": "config",
    "HtmlConfig": "config",
    "LanguageConfig": "config",
    "NormalizeConfig": "config",
    "PIIConfig": "config",
    "QualityConfig": "config",
    "optimal_bands": "config",
    "Decontaminator": "decontaminate",
    "ExactDeduper": "dedup",
    "LSHIndex": "dedup",
    "MinHashDeduper": "dedup",
    "MinHasher": "dedup",
    "canonical_text": "dedup",
    "dedup_stages": "dedup",
    "jaccard_estimate": "dedup",
    "save_indexes": "dedup",
    "LengthFilter": "filters",
    "StripHtml": "html",
    "drop_boilerplate_lines": "html",
    "strip_html": "html",
    "LanguageFilter": "langid",
    "detect_language": "langid",
    "Normalize": "normalize",
    "fix_mojibake": "normalize",
    "normalize_text": "normalize",
    "RedactPII": "pii",
    "redact_pii": "pii",
    "QualityFilter": "quality",
    "check_quality": "quality",
    "SemanticDeduper": "semantic",
    "clean_stages": "stages",
}
__all__ = [
    "CleanConfig",
    "DecontamConfig",
    "Decontaminator",
    "DedupConfig",
    "ExactDeduper",
    "FilterConfig",
    "HtmlConfig",
    "LSHIndex",
    "LanguageConfig",
    "LanguageFilter",
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
    "clean_stages",
    "dedup_stages",
    "detect_language",
    "drop_boilerplate_lines",
    "fix_mojibake",
    "jaccard_estimate",
    "normalize_text",
    "optimal_bands",
    "redact_pii",
    "save_indexes",
    "strip_html",
]

if TYPE_CHECKING:
    from cleaners.config import (
        CleanConfig,
        DecontamConfig,
        DedupConfig,
        FilterConfig,
        HtmlConfig,
        LanguageConfig,
        NormalizeConfig,
        PIIConfig,
        QualityConfig,
        optimal_bands,
    )
    from cleaners.decontaminate import Decontaminator
    from cleaners.dedup import (
        ExactDeduper,
        LSHIndex,
        MinHashDeduper,
        MinHasher,
        canonical_text,
        dedup_stages,
        jaccard_estimate,
        save_indexes,
    )
    from cleaners.filters import LengthFilter
    from cleaners.html import StripHtml, drop_boilerplate_lines, strip_html
    from cleaners.langid import LanguageFilter, detect_language
    from cleaners.normalize import Normalize, fix_mojibake, normalize_text
    from cleaners.pii import RedactPII, redact_pii
    from cleaners.quality import QualityFilter, check_quality
    from cleaners.semantic import SemanticDeduper
    from cleaners.stages import clean_stages


__getattr__ = lazy_exports(__name__, _EXPORTS)

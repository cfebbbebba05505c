"""The cleaning stages in the order they must run, built from one ``CleanConfig``."""

from __future__ import annotations

from cleaners.config import CleanConfig
from tuneprep.stage import Stage


def clean_stages(cfg: CleanConfig | None = None) -> list[Stage]:
    """HTML extraction, normalisation, PII redaction, then the filters the config enables.

    Redaction comes before every filter so PII never reaches ``dropped/*.parquet``; the language filter
    comes before the quality filter so the English stop-word rule only sees English.
    """
    from cleaners.filters import LengthFilter
    from cleaners.html import StripHtml
    from cleaners.langid import LanguageFilter
    from cleaners.normalize import Normalize
    from cleaners.pii import RedactPII
    from cleaners.quality import QualityFilter

    cfg = cfg or CleanConfig()
    stages: list[Stage] = [StripHtml(cfg.html), Normalize(cfg.normalize), RedactPII(cfg.pii), LengthFilter(cfg.filter)]
    if cfg.language.enabled:
        stages.append(LanguageFilter(cfg.language))
    if cfg.quality.enabled:
        stages.append(QualityFilter(cfg.quality))
    return stages

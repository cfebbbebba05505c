"""Text augmentation for the train split: synonyms, typos, EDA word edits and back-translation.

Names load lazily, so ``python -m augment.resources`` runs without importing the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneprep.lazy import lazy_exports

_EXPORTS = {
    "ApertiumBackend": "backtranslate",
    "BackendUnavailable": "backtranslate",
    "BackTranslator": "backtranslate",
    "TransformersBackend": "backtranslate",
    "TranslationBackend": "backtranslate",
    "make_backend": "backtranslate",
    "Augmenter": "base",
    "protected_spans": "base",
    "seed_for": "base",
    "AugmentConfig": "config",
    "FidelityConfig": "config",
    "LeakageConfig": "config",
    "Fidelity": "gates",
    "CaseNoise": "noise",
    "PunctNoise": "noise",
    "TextBatch": "text",
    "edit_count": "base",
    "BackTranslationConfig": "config",
    "NoiseConfig": "config",
    "SynonymConfig": "config",
    "CharNoise": "noise",
    "WordNoise": "noise",
    "apertium_available": "resources",
    "ensure_wordnet": "resources",
    "Augment": "stage",
    "build_augmenters": "stage",
    "SynonymSwap": "synonym",
}

__all__ = [
    "ApertiumBackend",
    "CaseNoise",
    "Fidelity",
    "FidelityConfig",
    "LeakageConfig",
    "PunctNoise",
    "TextBatch",
    "edit_count",
    "Augment",
    "AugmentConfig",
    "Augmenter",
    "BackTranslationConfig",
    "BackTranslator",
    "BackendUnavailable",
    "CharNoise",
    "NoiseConfig",
    "SynonymConfig",
    "SynonymSwap",
    "TransformersBackend",
    "TranslationBackend",
    "WordNoise",
    "apertium_available",
    "build_augmenters",
    "ensure_wordnet",
    "make_backend",
    "protected_spans",
    "seed_for",
]

if TYPE_CHECKING:
    from augment.backtranslate import (
        ApertiumBackend,
        BackendUnavailable,
        BackTranslator,
        TransformersBackend,
        TranslationBackend,
        make_backend,
    )
    from augment.base import Augmenter, edit_count, protected_spans, seed_for
    from augment.config import (
        AugmentConfig,
        BackTranslationConfig,
        FidelityConfig,
        LeakageConfig,
        NoiseConfig,
        SynonymConfig,
    )
    from augment.gates import Fidelity
    from augment.noise import CaseNoise, CharNoise, PunctNoise, WordNoise
    from augment.resources import apertium_available, ensure_wordnet
    from augment.stage import Augment, build_augmenters
    from augment.synonym import SynonymSwap
    from augment.text import TextBatch


__getattr__ = lazy_exports(__name__, _EXPORTS)

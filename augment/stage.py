"""The augment stage: new records derived from train records, each pointing back to its source.

Variants inherit split and group_id, so a leakage-safe split stays leakage-safe,
and are never augmented again (``aug_of`` is set).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import ClassVar

import polars as pl

from augment.backtranslate import BackTranslator, make_backend
from augment.base import Augmenter, seed_for, sub_seed
from augment.config import AugmentConfig
from augment.noise import CharNoise, WordNoise
from augment.synonym import SynonymSwap
from tuneprep.records import MESSAGE, content_key, record_id
from tuneprep.stage import Stage, StageOutput

logger = logging.getLogger(__name__)

EXAMPLES_PER_KIND = 3


def build_augmenters(
    cfg: AugmentConfig, log: Callable[[str], object] | None = None
) -> tuple[list[Augmenter], dict[str, str]]:
    """Augmenters in ``cfg.augmenters`` order, and why each unavailable or disabled one was skipped."""
    common = {"keep_words": cfg.keep_words, "protect_names": cfg.protect_names}
    built: list[Augmenter] = []
    skipped: dict[str, str] = {}
    synonyms: SynonymSwap | None = None
    for kind in cfg.augmenters:
        try:
            if kind == "synonym":
                if not cfg.synonym.enabled:
                    skipped[kind] = "disabled"
                    continue
                synonyms = synonyms or SynonymSwap(
                    cfg.synonym.rate, cfg.synonym.min_words, cfg.synonym.max_words, **common
                )
                built.append(synonyms)
            elif kind in ("char_noise", "word_noise"):
                if not cfg.noise.enabled:
                    skipped[kind] = "disabled"
                    continue
                if kind == "char_noise":
                    built.append(CharNoise(cfg.noise.char_rate, cfg.noise.char_ops, **common))
                else:
                    if synonyms is None and "insert" in cfg.noise.word_ops:
                        try:
                            synonyms = SynonymSwap(**common)
                        except (RuntimeError, LookupError, ImportError):
                            synonyms = None
                    built.append(WordNoise(cfg.noise.word_rate, cfg.noise.word_ops, synonyms, **common))
            elif kind == "backtranslation":
                if not cfg.backtranslation.enabled:
                    skipped[kind] = "disabled"
                    continue
                backend = make_backend(cfg.backtranslation)
                if backend is None:
                    skipped[kind] = "backend 'none'"
                    continue
                built.append(BackTranslator(backend, **common))
        except (RuntimeError, LookupError, ImportError, OSError) as e:
            skipped[kind] = str(e)
            logger.warning("augment: skipping %s: %s", kind, e)
            if log is not None:
                log(f"augment: skipping {kind}: {e}")
    return built, skipped


class Augment(Stage):
    """Add ``variants_per_record`` variants per augmenter for eligible rows; every input row is kept.

    ``seed`` overrides ``cfg.seed`` (the pipeline's run seed); ``log`` also receives
    the warnings about augmenters that cannot run here.

    Text/html records get their ``text`` rewritten; chats only the turns whose
    role is in ``augment_roles`` (the others, assistant answers included, stay
    verbatim). A variant equal to its source, or to one already made, is not
    emitted. ``stats`` counts made/identical/failed per kind; ``examples`` keeps
    the first few (source, variant, kind) triples for the report.
    """

    name: ClassVar[str] = "augment"
    adds_records: ClassVar[bool] = True

    def __init__(
        self,
        cfg: AugmentConfig | None = None,
        augmenters: Sequence[Augmenter] | None = None,
        seed: int | None = None,
        log: Callable[[str], object] | None = None,
    ) -> None:
        self.cfg = cfg or AugmentConfig()
        if seed is not None:
            self.cfg = self.cfg.model_copy(update={"seed": seed})
        if augmenters is None:
            built, self.skipped = build_augmenters(self.cfg, log) if self.cfg.enabled else ([], {})
            self.augmenters = built
        else:
            self.augmenters, self.skipped = list(augmenters), {}
        self.stats: dict[str, dict[str, int]] = {
            a.kind: {"made": 0, "identical": 0, "failed": 0} for a in self.augmenters
        }
        self.examples: list[tuple[str, str, str]] = []
        self.augmented_sources = 0

    def _eligible(self, batch: pl.DataFrame) -> pl.DataFrame:
        mask = pl.col("split").is_in(self.cfg.splits) & pl.col("aug_of").is_null()
        has_text = (pl.col("format") != "chat") & pl.col("text").is_not_null() & (pl.col("text").str.len_chars() > 0)
        has_chat = (pl.col("format") == "chat") & pl.col("messages").is_not_null()
        rows = batch.with_row_index("_row").filter(mask & (has_text | has_chat))
        if self.cfg.max_records is not None:
            room = max(0, self.cfg.max_records - self.augmented_sources)
            rows = rows.head(room)
        return rows

    def process(self, batch: pl.DataFrame) -> StageOutput:
        if not self.cfg.enabled or not self.augmenters or batch.height == 0 or self.cfg.variants_per_record == 0:
            return StageOutput.keep_all(batch, self.name)
        rows = self._eligible(batch)
        self.augmented_sources += rows.height
        new_rows: list[int] = []
        new_text: list[str | None] = []
        new_messages: list[list[dict] | None] = []
        new_ids: list[str] = []
        aug_of: list[str] = []
        kinds: list[str] = []
        records = rows.select("_row", "id", "source", "format", "text", "messages").to_dicts()
        for augmenter in self.augmenters:
            for variant in range(self.cfg.variants_per_record):
                for rec, text, messages in self._variants(augmenter, records, variant):
                    new_rows.append(rec["_row"])
                    new_text.append(text)
                    new_messages.append(messages)
                    new_ids.append(
                        record_id(rec["source"], content_key(text, messages), salt=f"aug:{augmenter.kind}:{rec['id']}")
                    )
                    aug_of.append(rec["id"])
                    kinds.append(augmenter.kind)
        if not new_rows:
            return StageOutput.keep_all(batch, self.name)
        added = batch[new_rows].with_columns(
            pl.Series("id", new_ids, dtype=pl.Utf8),
            pl.Series("text", new_text, dtype=pl.Utf8),
            pl.Series("messages", new_messages, dtype=pl.List(MESSAGE)),
            pl.Series("aug_of", aug_of, dtype=pl.Utf8),
            pl.Series("aug_kind", kinds, dtype=pl.Utf8),
        )
        return StageOutput(pl.concat([batch, added.select(batch.columns)]), self.drop(batch.clear(), "none"))

    def _variants(
        self, augmenter: Augmenter, records: list[dict], variant: int
    ) -> list[tuple[dict, str | None, list[dict] | None]]:
        """Run one augmenter over all texts and chat turns of the batch in a single call."""
        kind = augmenter.kind
        roles = set(self.cfg.augment_roles)
        units: list[tuple[int, int | None]] = []  # (record index, turn index or None for text)
        texts: list[str] = []
        seeds: list[int] = []
        for r, rec in enumerate(records):
            seed = seed_for(rec["id"], self.cfg.seed, kind, variant)
            if rec["format"] == "chat":
                for t, msg in enumerate(rec["messages"] or []):
                    if msg["role"] in roles and msg["content"] and msg["content"].strip():
                        units.append((r, t))
                        texts.append(msg["content"])
                        seeds.append(sub_seed(seed, t))
            else:
                units.append((r, None))
                texts.append(rec["text"])
                seeds.append(seed)
        outputs = augmenter(texts, seeds) if texts else []
        changed: dict[int, dict[int | None, str]] = {}
        tried: set[int] = set()
        for (r, t), out in zip(units, outputs, strict=True):
            tried.add(r)
            if out is not None:
                changed.setdefault(r, {})[t] = out
        stats = self.stats.setdefault(kind, {"made": 0, "identical": 0, "failed": 0})
        result = []
        for r in sorted(tried):
            rec = records[r]
            if r not in changed:
                stats["failed"] += 1
                continue
            if rec["format"] == "chat":
                messages = [dict(m) for m in rec["messages"]]
                for t, content in changed[r].items():
                    messages[t]["content"] = content
                text = rec["text"]
            else:
                messages, text = rec["messages"], changed[r][None]
            before = content_key(rec["text"], rec["messages"] if rec["format"] == "chat" else None)
            after = content_key(text, messages if rec["format"] == "chat" else None)
            seen = rec.setdefault("_seen", {}).setdefault(kind, {before})
            if after in seen:
                stats["identical"] += 1
                continue
            seen.add(after)
            stats["made"] += 1
            self._remember(rec, text, messages, changed[r], kind)
            result.append((rec, text, messages))
        failed_no_units = len(records) - len(tried)
        stats["failed"] += failed_no_units
        return result

    def _remember(self, rec: dict, text: str | None, messages: list[dict] | None, changed: dict, kind: str) -> None:
        if sum(1 for _, _, k in self.examples if k == kind) >= EXAMPLES_PER_KIND:
            return
        if rec["format"] == "chat":
            t = next(iter(changed))
            self.examples.append((rec["messages"][t]["content"], changed[t], kind))
        else:
            self.examples.append((rec["text"], text or "", kind))

    def summary(self) -> dict:
        return {
            "augmenters": [a.kind for a in self.augmenters],
            "skipped": dict(self.skipped),
            "sources": self.augmented_sources,
            "per_kind": {k: dict(v) for k, v in self.stats.items()},
            "examples": [{"kind": k, "source": s, "variant": v} for s, v, k in self.examples],
        }

    def close(self) -> None:
        for augmenter in self.augmenters:
            augmenter.close()

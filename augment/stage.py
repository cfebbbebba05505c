"""The augment stage: new records derived from train records, each pointing back to its source.

Variants inherit split and group_id, so a leakage-safe split stays leakage-safe,
and are never augmented again (``aug_of`` is set). Each carries ``aug_params``,
the JSON of the augmenter settings that made it. Variants that fail a quality
gate (see :mod:`augment.gates`) are returned as dropped records with a reason.

Accounting (``adds_records``): ``read`` = the batch's records, ``kept`` = those
plus the accepted variants, ``dropped`` = the rejected variants; the runner's
``added = kept - (read - dropped)`` is then every variant made (accepted +
rejected), and ``read + added == kept + dropped`` holds.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import numpy as np
import polars as pl

from augment.backtranslate import BackTranslator, make_backend
from augment.base import Augmenter, Rejected, seeds_for, sub_seed
from augment.config import AugmentConfig
from augment.facts import FactFinder, rules_of
from augment.gates import IDENTICAL, LENGTH_RATIO, NEAR_HOLDOUT, REASONS, Diversity, Embedder, Fidelity
from augment.noise import CaseNoise, CharNoise, PunctNoise, WordNoise
from augment.synonym import SynonymSwap
from cleaners.heldout import HeldoutIndex
from tuneprep.files import tmp_name
from tuneprep.records import MESSAGE, content_key, record_id
from tuneprep.stage import Stage, StageOutput

logger = logging.getLogger(__name__)

AUG_PARAMS = "aug_params"
EXAMPLE_WORDS = (8, 60)  # report examples: sources of this many words read best
_CANDIDATES = 40


def build_augmenters(
    cfg: AugmentConfig, log: Callable[[str], object] | None = None
) -> tuple[list[Augmenter], dict[str, str]]:
    """Augmenters in ``cfg.augmenters`` order, and why each unavailable or disabled one was skipped."""
    common = {"keep_words": cfg.keep_words, "protect_names": cfg.protect_names, "rules": rules_of(cfg.protect)}
    built: list[Augmenter] = []
    skipped: dict[str, str] = {}
    synonyms: SynonymSwap | None = None
    noise = cfg.noise
    for kind in cfg.augmenters:
        try:
            if kind == "synonym":
                if not cfg.synonym.enabled:
                    skipped[kind] = "disabled"
                    continue
                s = cfg.synonym
                synonyms = SynonymSwap(
                    s.rate, s.min_words, s.max_words, multiword=s.multiword, min_share=s.min_share, **common
                )
                built.append(synonyms)
            elif kind in ("char_noise", "word_noise", "case_noise", "punct_noise"):
                if not noise.enabled:
                    skipped[kind] = "disabled"
                    continue
                if kind == "char_noise":
                    built.append(
                        CharNoise(
                            noise.char_rate, noise.char_ops, minimum=noise.char_min, maximum=noise.char_max, **common
                        )
                    )
                elif kind == "case_noise":
                    built.append(CaseNoise(noise.case_rate, noise.case_ops, **common))
                elif kind == "punct_noise":
                    built.append(PunctNoise(noise.punct_rate, noise.punct_ops, **common))
                else:
                    if synonyms is None and "insert" in noise.word_ops:
                        try:
                            synonyms = SynonymSwap(**common)  # type: ignore[arg-type]
                        except (RuntimeError, LookupError, ImportError):
                            synonyms = None
                    built.append(
                        WordNoise(
                            noise.word_rate,
                            noise.word_ops,
                            synonyms,
                            minimum=noise.word_min,
                            maximum=noise.word_max,
                            **common,
                        )
                    )
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


def _doc_text(text: str | None, messages: list[dict] | None) -> str:
    """The string dedup and the held-out check see: the text, or "role: content" turns joined."""
    if messages is not None:
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages)
    return text or ""


def _source_type(rec: dict) -> str:
    path = PurePosixPath(rec.get("source") or "")
    return f"{rec['format']}:{path.parts[0] if len(path.parts) > 1 else path.suffix}"


class Augment(Stage):
    """Add up to ``variants_per_record`` variants per augmenter for eligible rows; every input row is kept.

    ``seed`` is the pipeline's run seed; ``log`` also receives the warnings about augmenters
    that cannot run here. ``holdout`` is the run's held-out index (``cleaners.heldout``), which no
    variant may near-duplicate; ``holdout_texts`` (or :meth:`set_holdout`) builds one from texts;
    ``embedder`` replaces the sentence-transformers model of the similarity gate.

    Text/html records get their ``text`` rewritten; chats only the turns whose
    role is in ``augment_roles`` (the others, assistant answers included, stay
    verbatim). A variant's seed comes from its record id, the run seed, the
    augmenter and the variant number, so output does not depend on batching.
    """

    name: ClassVar[str] = "augment"
    adds_records: ClassVar[bool] = True

    def __init__(
        self,
        cfg: AugmentConfig | None = None,
        augmenters: Sequence[Augmenter] | None = None,
        seed: int = 0,
        log: Callable[[str], object] | None = None,
        holdout: HeldoutIndex | None = None,
        holdout_texts: Iterable[str] | None = None,
        holdout_ids: Iterable[str] | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.cfg = cfg or AugmentConfig()
        self.seed = seed
        if augmenters is None:
            built, self.skipped = build_augmenters(self.cfg, log) if self.cfg.enabled else ([], {})
            self.augmenters = built
        else:
            self.augmenters, self.skipped = list(augmenters), {}
        extra_words = [*self.cfg.keep_words, *self.cfg.protect_names]
        rules = rules_of(self.cfg.protect)
        self.facts = FactFinder(self.cfg.protect, extra_words) if self.augmenters else None
        self.fidelity = Fidelity(self.cfg.fidelity, extra_words, embedder, rules) if self.augmenters else None
        self.holdout = holdout if self.cfg.leakage.enabled else None
        if holdout_texts is not None:
            self.set_holdout(holdout_texts, holdout_ids)
        self.stats: dict[str, dict[str, int]] = {a.kind: self._empty_stats() for a in self.augmenters}
        self.diversity: dict[str, Diversity] = {a.kind: Diversity() for a in self.augmenters}
        self.seconds: dict[str, float] = {a.kind: 0.0 for a in self.augmenters}
        self._candidates: dict[str, tuple[list[dict], list[dict]]] = {}
        self.augmented_sources = 0

    @staticmethod
    def _empty_stats() -> dict[str, int]:
        return {"made": 0, "failed": 0, **dict.fromkeys(REASONS, 0)}

    def set_holdout(self, texts: Iterable[str], ids: Iterable[str] | None = None) -> int:
        """Index held-out texts (validation + test document texts); returns how many are indexed.

        Replaces any earlier set. Call before the first batch; variants that near-duplicate
        one of them (estimated Jaccard >= the default ``heldout.near_threshold``) are dropped.
        """
        if not self.cfg.leakage.enabled:
            self.holdout = None
            return 0
        self.holdout = HeldoutIndex()
        texts = [t or "" for t in texts]
        self.holdout.add(texts, list(ids) if ids is not None else None)
        return len(self.holdout)

    def _eligible(self, batch: pl.DataFrame, offset: int | None = None) -> pl.DataFrame:
        """The rows to augment; ``offset`` is how many were taken before (default: by ``process`` so far)."""
        mask = pl.col("split").is_in(self.cfg.splits) & pl.col("aug_of").is_null()
        has_text = (pl.col("format") != "chat") & pl.col("text").is_not_null() & (pl.col("text").str.len_chars() > 0)
        has_chat = (pl.col("format") == "chat") & pl.col("messages").is_not_null()
        rows = batch.with_row_index("_row").filter(mask & (has_text | has_chat))
        if self.cfg.max_records is not None:
            done = self.augmented_sources if offset is None else offset
            rows = rows.head(max(0, self.cfg.max_records - done))
        return rows

    def fit(self, read_batches: Callable[[], Iterable[pl.DataFrame]], cache: Path | None = None) -> int:
        """Learn the corpus terms (``augment.protect.corpus_terms``) from the records ``process`` will augment,
        in the order it will see them; returns how many records were read (0 when loaded or not needed). Call
        once, before the first batch. With ``cache`` (an .npz named by whatever identifies the input and the
        settings), terms saved there are loaded instead, and terms fitted are saved there atomically: the
        partitions of one input then read it once between them."""
        if self.facts is None or not self.cfg.enabled or not self.cfg.protect.corpus_terms:
            return 0
        if cache is not None and cache.exists():
            with np.load(cache, allow_pickle=False) as terms:
                self.facts.use_terms({k: terms[k] for k in terms.files})
            return 0
        seen = self._fit_terms(read_batches)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = tmp_name(cache)
            with open(tmp, "wb") as fh:
                np.savez(fh, **self.facts.terms())
            os.replace(tmp, cache)
        return seen

    def _fit_terms(self, read_batches: Callable[[], Iterable[pl.DataFrame]]) -> int:
        assert self.facts is not None
        seen = 0
        for batch in read_batches():
            rows = self._eligible(batch, offset=seen)
            texts: list[str] = []
            records: list[int] = []
            for r, (fmt, text, messages) in enumerate(rows.select("format", "text", "messages").iter_rows()):
                strings = [m["content"] or "" for m in messages or []] if fmt == "chat" else [text or ""]
                texts += strings
                records += [seen + r] * len(strings)
            self.facts.fit(texts, records)
            seen += rows.height
        return seen

    def _with_params(self, df: pl.DataFrame) -> pl.DataFrame:
        return df if AUG_PARAMS in df.columns else df.with_columns(pl.lit(None, dtype=pl.Utf8).alias(AUG_PARAMS))

    def process(self, batch: pl.DataFrame) -> StageOutput:
        batch = self._with_params(batch)
        if not self.cfg.enabled or not self.augmenters or batch.height == 0 or self.cfg.variants_per_record == 0:
            return StageOutput.keep_all(batch, self.name)
        rows = self._eligible(batch)
        self.augmented_sources += rows.height
        records = rows.select("_row", "id", "source", "format", "text", "messages").to_dicts()
        spans = self._spans(records)
        candidates: list[dict] = []
        for augmenter in self.augmenters:
            t0 = time.perf_counter()
            candidates += self._variants(augmenter, records, spans)
            self.seconds[augmenter.kind] = self.seconds.get(augmenter.kind, 0.0) + time.perf_counter() - t0
        verdicts = self._gate(candidates, spans)
        accepted = [c for c, v in zip(candidates, verdicts, strict=True) if v is None]
        rejected = [(c, v) for c, v in zip(candidates, verdicts, strict=True) if v is not None]
        for c in accepted:
            kind = c["kind"]
            self.stats[kind]["made"] += 1
            self.diversity[kind].add(c["src_changed"], c["var_changed"])
            self._remember(c)
        for c, (reason, _) in rejected:
            self.stats[c["kind"]][reason] += 1
        kept = pl.concat([batch, self._frame(batch, accepted)]) if accepted else batch
        dropped = self._frame(batch, [c for c, _ in rejected])
        dropped = self.drop(
            dropped,
            pl.Series([v[0] for _, v in rejected], dtype=pl.Utf8),
            pl.Series([v[1] for _, v in rejected], dtype=pl.Utf8),
        )
        return StageOutput(kept, dropped)

    def _frame(self, batch: pl.DataFrame, cands: list[dict]) -> pl.DataFrame:
        if not cands:
            return batch.clear()
        return (
            batch[[c["rec"]["_row"] for c in cands]]
            .with_columns(
                pl.Series("id", [c["id"] for c in cands], dtype=pl.Utf8),
                pl.Series("text", [c["text"] for c in cands], dtype=pl.Utf8),
                pl.Series("messages", [c["messages"] for c in cands], dtype=pl.List(MESSAGE)),
                pl.Series("aug_of", [c["rec"]["id"] for c in cands], dtype=pl.Utf8),
                pl.Series("aug_kind", [c["kind"] for c in cands], dtype=pl.Utf8),
                pl.Series(AUG_PARAMS, [c["params"] for c in cands], dtype=pl.Utf8),
            )
            .select(batch.columns)
        )

    def _spans(self, records: list[dict]) -> dict[tuple[int, int | None], list]:
        """Protected spans of every text and turn of the batch's records, keyed (record, turn or None).

        All turns of a conversation go in, assistant turns too, so words one side echoes are found."""
        keys: list[tuple[int, int | None]] = []
        texts: list[str] = []
        groups: list[int] = []
        for r, rec in enumerate(records):
            if rec["format"] == "chat":
                for t, msg in enumerate(rec["messages"] or []):
                    keys.append((r, t))
                    texts.append(msg["content"] or "")
                    groups.append(r)
            else:
                keys.append((r, None))
                texts.append(rec["text"] or "")
                groups.append(-1)
        if self.facts is None or not texts:
            return {}
        return dict(zip(keys, self.facts.spans(texts, groups), strict=True))

    def _variants(
        self, augmenter: Augmenter, records: list[dict], spans: dict[tuple[int, int | None], list]
    ) -> list[dict]:
        """Run one augmenter over every text, chat turn and variant number of the batch in a single call."""
        kind = augmenter.kind
        roles = set(self.cfg.augment_roles)
        n = self.cfg.variants_per_record
        units: list[tuple[int, int, int | None]] = []  # (variant, record index, turn index or None for text)
        texts: list[str] = []
        seeds: list[int] = []
        ids = [rec["id"] for rec in records]
        for v in range(n):
            for r, (rec, seed) in enumerate(zip(records, seeds_for(ids, self.seed, kind, v), strict=True)):
                if rec["format"] == "chat":
                    for t, msg in enumerate(rec["messages"] or []):
                        if msg["role"] in roles and msg["content"] and msg["content"].strip():
                            units.append((v, r, t))
                            texts.append(msg["content"])
                            seeds.append(sub_seed(seed, t))
                else:
                    units.append((v, r, None))
                    texts.append(rec["text"])
                    seeds.append(seed)
        unit_spans = [spans.get((r, t), []) for _, r, t in units] if spans else None
        outputs = augmenter(texts, seeds, unit_spans) if texts else []
        changed: dict[tuple[int, int], dict[int | None, str]] = {}
        rejected: dict[tuple[int, int], tuple[str, str]] = {}
        for (v, r, t), text, out in zip(units, texts, outputs, strict=True):
            if isinstance(out, Rejected):
                changed.setdefault((v, r), {})[t] = out.text
                rejected.setdefault((v, r), (out.reason, out.detail))
            elif out is not None and out != text:  # the same text back is no variant: the augmenter failed
                changed.setdefault((v, r), {})[t] = out
        stats = self.stats.setdefault(kind, self._empty_stats())
        stats["failed"] += n * len(records) - len(changed)
        params = augmenter.params()
        result = []
        for v, r in sorted(changed):
            rec = records[r]
            turns = changed[(v, r)]
            if rec["format"] == "chat":
                messages = [dict(m) for m in rec["messages"]]
                for t, content in turns.items():
                    messages[t]["content"] = content
                text = rec["text"]
                src_changed = "\n".join(rec["messages"][t]["content"] for t in sorted(turns))
                var_changed = "\n".join(turns[t] for t in sorted(turns))
            else:
                messages, text = rec["messages"], turns[None]
                src_changed, var_changed = rec["text"], text
            chat = rec["format"] == "chat"
            key = content_key(text, messages if chat else None)
            result.append(
                {
                    "rec": rec,
                    "r": r,
                    "kind": kind,
                    "variant": v,
                    "text": text,
                    "messages": messages,
                    "turns": turns,
                    "rejected": rejected.get((v, r)),
                    "key": key,
                    "src_key": content_key(rec["text"], rec["messages"] if chat else None),
                    "doc": _doc_text(text, messages if chat else None),
                    "src_changed": src_changed,
                    "var_changed": var_changed,
                    "id": record_id(rec["source"], key, salt=f"aug:{kind}:{rec['id']}"),
                    "params": json.dumps({**params, "variant": v, "seed": self.seed}, sort_keys=True),
                }
            )
        return result

    def _gate(self, cands: list[dict], spans: dict[tuple[int, int | None], list]) -> list[tuple[str, str] | None]:
        """A (reason, detail) for each rejected candidate, in gate order; None for accepted ones.

        The fidelity gate looks at each rewritten turn on its own, with that turn's protected spans."""
        verdicts: list[tuple[str, str] | None] = [c["rejected"] for c in cands]
        seen: dict[str, dict[str, str]] = {}
        for i, c in enumerate(cands):
            if verdicts[i] is not None:
                continue
            mine = seen.setdefault(c["rec"]["id"], {c["src_key"]: "its source"})
            if c["key"] in mine:
                verdicts[i] = (IDENTICAL, f"same as {mine[c['key']]}")
            else:
                mine[c["key"]] = f"variant {c['id']} ({c['kind']})"
        todo = [i for i, v in enumerate(verdicts) if v is None]
        if self.fidelity is not None and todo:
            pairs: list[tuple[int, str, str, list]] = []
            for i in todo:
                c = cands[i]
                for t, new in sorted(c["turns"].items(), key=lambda x: -1 if x[0] is None else x[0]):
                    old = c["rec"]["messages"][t]["content"] if t is not None else c["rec"]["text"]
                    pairs.append((i, old, new, spans.get((c["r"], t), [])))
            checks = self.fidelity.check(
                [p[1] for p in pairs], [p[2] for p in pairs], [p[3] for p in pairs] if spans else None
            )
            for (i, _, _, _), verdict in zip(pairs, checks, strict=True):
                if verdict is not None and verdicts[i] is None:
                    verdicts[i] = verdict
            for i in todo:  # the length ratio over all the rewritten text of a record
                c = cands[i]
                if verdicts[i] is None and len(c["turns"]) > 1:
                    ratio = len(c["var_changed"]) / max(1, len(c["src_changed"]))
                    lo, hi = self.cfg.fidelity.min_length_ratio, self.cfg.fidelity.max_length_ratio
                    if self.cfg.fidelity.enabled and not lo <= ratio <= hi:
                        verdicts[i] = (LENGTH_RATIO, f"length ratio {ratio:.2f} outside [{lo}, {hi}]")
        todo = [i for i, v in enumerate(verdicts) if v is None]
        if self.holdout is not None and todo:
            for i, match in zip(todo, self.holdout.match([cands[i]["doc"] for i in todo]), strict=True):
                if match is not None:
                    verdicts[i] = (NEAR_HOLDOUT, f"near {match[0]} (Jaccard ~{match[1]:.2f})")
        return verdicts

    def _remember(self, c: dict) -> None:
        """Keep a few readable examples per kind: short sources first, one per source type if possible."""
        words = len(c["src_changed"].split())
        short, other = self._candidates.setdefault(c["kind"], ([], []))
        pool = short if EXAMPLE_WORDS[0] <= words <= EXAMPLE_WORDS[1] else other
        if len(pool) < _CANDIDATES:
            pool.append(
                {
                    "kind": c["kind"],
                    "source": c["src_changed"],
                    "variant": c["var_changed"],
                    "type": _source_type(c["rec"]),
                }
            )

    @property
    def examples(self) -> list[tuple[str, str, str]]:
        """(source, variant, kind) triples chosen for the report."""
        out = []
        for kind, (short, other) in self._candidates.items():
            picked: list[dict] = []
            types: set[str] = set()
            for ex in short:  # one per source type first
                if len(picked) < self.cfg.examples_per_kind and ex["type"] not in types:
                    picked.append(ex)
                    types.add(ex["type"])
            for ex in [*short, *other]:
                if len(picked) < self.cfg.examples_per_kind and ex not in picked:
                    picked.append(ex)
            out += [(ex["source"], ex["variant"], kind) for ex in picked]
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "augmenters": [a.kind for a in self.augmenters],
            "skipped": dict(self.skipped),
            "sources": self.augmented_sources,
            "per_kind": {k: dict(v) for k, v in self.stats.items()},
            "diversity": {k: d.summary() for k, d in self.diversity.items()},
            "seconds_per_kind": {k: round(s, 3) for k, s in self.seconds.items()},
            "params": {a.kind: a.params() for a in self.augmenters},
            "holdout_indexed": len(self.holdout) if self.holdout is not None else 0,
            "protect": {
                **self.cfg.protect.model_dump(
                    include={"numbers", "times", "names", "echoes", "negations", "corpus_terms"}
                ),
                "spacy_model": self.cfg.protect.spacy_model,
                "corpus_terms_found": len(self.facts) if self.facts is not None else 0,
            },
            "examples": [{"kind": k, "source": s, "variant": v} for s, v, k in self.examples],
        }

    def close(self) -> None:
        for augmenter in self.augmenters:
            augmenter.close()

    def checkpoint(self) -> object:
        """The counters a batch updates before it can still fail, for ``rollback`` (see ``tuneprep.stage``)."""
        diversity = {}
        for kind, d in self.diversity.items():
            d = copy.copy(d)
            d.unigrams, d.bigrams = set(d.unigrams), set(d.bigrams)
            diversity[kind] = d
        stats = {kind: dict(counts) for kind, counts in self.stats.items()}
        candidates = {kind: (list(a), list(b)) for kind, (a, b) in self._candidates.items()}
        return stats, diversity, dict(self.seconds), candidates, self.augmented_sources

    def rollback(self, state: object) -> None:
        self.stats, self.diversity, self.seconds, self._candidates, self.augmented_sources = state

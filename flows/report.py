"""A run report a person would rather look at than read: one Markdown page.

Built only from the manifest, the model's metrics and a few small figures, so
it can be regenerated from a finished run folder (``tuneprep report RUN``).
"""

from __future__ import annotations

import difflib
import html
import json
import math
from collections.abc import Sequence
from pathlib import Path

from flows.layout import RunPaths
from flows.manifest import dataset_profile, read_manifest
from tuneprep.files import atomic_write_text

BAR = "█"


def bar(value: float, top: float, width: int = 24) -> str:
    if top <= 0:
        return ""
    n = value / top * width
    full = int(n)
    part = " ▏▎▍▌▋▊▉"[int((n - full) * 8)] if full < width else ""
    return (BAR * full + part).rstrip()


def table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join("" if c is None else str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def histogram(values: Sequence[int], bins: int = 10, width: int = 30) -> str:
    """Text histogram with bin edges; fine in a terminal, a Markdown code block and the Prefect UI."""
    if not values:
        return "(empty)"
    lo, hi = min(values), max(values)
    step = max(1, math.ceil((hi - lo + 1) / bins))
    counts = [0] * bins
    for v in values:
        counts[min((v - lo) // step, bins - 1)] += 1
    top = max(counts)
    rows = []
    for i, c in enumerate(counts):
        a = lo + i * step
        b = min(a + step - 1, hi) if i < bins - 1 else hi
        if a > hi:
            break
        rows.append(f"{a:>6}–{b:<6} {c:>6} {bar(c, top, width)}")
    return "\n".join(rows)


def word_diff(before: str, after: str, context: int = 6) -> tuple[str, str]:
    """``marked_words`` for a Markdown table cell (pipes escaped)."""
    left, right = marked_words(before, after, context)
    return left.replace("|", "\\|"), right.replace("|", "\\|")


def marked_words(before: str, after: str, context: int = 6) -> tuple[str, str]:
    """Both texts as HTML with changed words marked (<del> removed, <ins> inserted), long unchanged runs cut to "…"."""
    a, b = before.split(), after.split()
    left, right = [], []

    def same(words: list[str]) -> str:
        if len(words) > 2 * context + 1:
            words = [*words[:context], "…", *words[-context:]] if left else ["…", *words[-context:]]
        return html.escape(" ".join(words), quote=False)

    ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    for n, (op, i1, i2, j1, j2) in enumerate(ops):
        if op == "equal":
            words = a[i1:i2]
            if n == len(ops) - 1 and len(words) > context:
                words = [*words[:context], "…"]
            left.append(same(words))
            right.append(same(words))
            continue
        x, y = html.escape(" ".join(a[i1:i2]), quote=False), html.escape(" ".join(b[j1:j2]), quote=False)
        if x:
            left.append(f"<del>{x}</del>")
        if y:
            right.append(f"<ins>{y}</ins>")
    return " ".join(left), " ".join(right)


def _fmt(x, digits: int = 3) -> str:
    if x is None:
        return "–"
    return f"{x:,.{digits}f}" if isinstance(x, float) else f"{x:,}"


def _cleaning_details(stages: list[dict]) -> list[str]:
    """PII replaced, languages seen, dedup index and decontamination figures, where those stages ran."""
    by_name = {s["name"]: s.get("extra", {}) for s in stages}
    lines = []
    fallback = by_name.get("strip_html", {}).get("fallback")
    if fallback:
        why = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(fallback.items()))
        lines.append(
            f"- HTML pages given the plain-text fallback (past a bound of `clean.html`, or the extractor failed): {why}"
        )
    pii = by_name.get("pii_redaction", {}).get("pii")
    if pii is not None:
        found = ", ".join(f"{k} {v}" for k, v in pii.items() if v) or "none"
        kept = by_name["pii_redaction"].get("allowed") or {}
        allowed = f"; kept by the allow-list: {', '.join(f'{k} {v}' for k, v in kept.items())}" if kept else ""
        lines.append(
            f"- PII replaced by placeholders: {found} (in {by_name['pii_redaction'].get('records_with_pii', 0)} records)"
            + allowed
        )
    langs = by_name.get("language_filter", {}).get("languages")
    if langs is not None:
        seen = ", ".join(f"{k} {v}" for k, v in list(langs.items())[:6]) or "none"
        lines.append(
            f"- Languages detected: {seen}; {by_name['language_filter'].get('undecided', 0)} texts too short to judge"
        )
    near = by_name.get("near_dedup", {})
    if near:
        lines.append(
            f"- Near-dedup: MinHash LSH, {near.get('bands')} bands × {near.get('rows')} rows; index holds {near.get('index_size')} records"
        )
    dec = by_name.get("decontaminate", {})
    if dec:
        lines += _decontamination(dec)
    tok = by_name.get("tokenize", {})
    if tok:
        lines.append(
            f"- Tokenize: {tok.get('records_cut', 0):,} records longer than a window were cut at sentence or word "
            f"starts into {tok.get('windows', 0):,} windows in all; {tok.get('windows_without_loss', 0):,} windows "
            "without a loss token were dropped (`dropped/tokenize.parquet`)"
        )
    return ["## Cleaning", "", *lines, ""] if lines else []


def _stage_of(key: str) -> str:
    """The stage in a ``stage:reason`` key (an older manifest's bare reason is the loader's)."""
    return key.split(":", 1)[0] if ":" in key else "load"


def _quarantine_details(quarantine: dict) -> list[str]:
    """Per quarantine file: how many entries, and the sources most of them came from."""
    lines = []
    for q in quarantine.values():
        worst = ", ".join(f"`{src}` {n:,}" for src, n in list(q.get("worst_sources", {}).items())[:3])
        lines.append(f"- `{q['file']}`: {q['entries']:,} entries; most from {worst}")
    return (
        ["Quarantined (could not be read or processed; each entry names its file and why):", "", *lines, ""]
        if lines
        else []
    )


def _decontamination(dec: dict) -> list[str]:
    """What decontamination flagged, what it removed, the most shared n-grams, and a loud line if it moved the split."""
    reasons = ", ".join(f"{k} {v:,}" for k, v in (dec.get("by_reason") or {}).items()) or "none"
    against = dec.get("against")
    done = {"drop": "dropped", "report": "reported"}
    lines = [
        f"- Decontamination against {dec.get('heldout_records', 0):,} validation/test records"
        + (f" and {against['records']:,} records of {', '.join(against['inputs'])}" if against else "")
        + f": {dec.get('flagged', 0):,} train records flagged ({reasons}), {dec.get('removed', 0):,} removed. "
        f"Near-duplicates{' and matches with `against`' if against else ''} are {done.get(dec.get('action'), '?')}; "
        f"n-grams shared with the corpus's own held-out records are "
        f"{done.get(dec.get('heldout_ngrams_action', 'drop'), '?')}. "
        f"{dec.get('common_ngrams_ignored', 0):,} n-grams found in more than {dec.get('stock_cutoff')} train "
        "records are stock phrasing and ignored."
    ]
    shift = dec.get("split_shift") or {}
    if "warning" in shift:
        lines.insert(0, f"- **⚠ WARNING: {shift['warning']}.** See `dropped/decontaminate.parquet`.")
    top = [t for t in dec.get("top_ngrams") or [] if isinstance(t, dict) and "train_records" in t]
    if top:
        lines += ["", "Most shared n-grams (train records holding each; stock phrasing is ignored):", ""]
        lines += [
            table(
                ["n-gram", "train records", "shared with", "stock"],
                [
                    [
                        html.escape(str(t.get("ngram"))).replace("|", "\\|"),
                        f"{t['train_records']:,}",
                        t.get("with", ""),
                        "yes" if t.get("stock") else "",
                    ]
                    for t in top
                ],
            ),
            "",
        ]
    return lines


def render(
    manifest: dict,
    metrics: dict | None,
    token_lengths: dict[str, list[int]] | None = None,
    model_files: dict | None = None,
) -> str:
    stages = manifest["stages"]
    first = stages[0]
    splits = manifest.get("splits") or {}
    total_rows = sum(s.get("rows", 0) for s in splits.values())
    out = [f"# tuneprep run report{': ' + manifest['name'] if manifest.get('name') else ''}", ""]

    acc = manifest["accounting"]
    headline = (
        f"**{first['read']:,}** input records from **{len(manifest['inputs'])}** files → "
        f"**{total_rows:,}** tokenized examples in train/validation/test. "
        f"Accounting (kept + dropped + quarantined = read, at every stage): **{'OK' if acc['ok'] else 'BROKEN'}**."
    )
    out += [headline, ""]
    if manifest.get("nothing_new"):
        earlier = manifest.get("tokenizer", {}).get("reused_from", "the earlier run")
        out += [
            f"**Nothing new**: every record of this data drop is already in {earlier} (or was dropped or "
            "quarantined here), so the new shards are empty and the earlier run's tokenizer is reused.",
            "",
        ]
    if metrics:
        out += [_model_headline(metrics), ""]

    out += ["## Stages", ""]
    top = max(s["read"] for s in stages) or 1
    rows = [
        [
            s["name"],
            _fmt(s["read"]),
            _fmt(s["kept"]),
            _fmt(s["dropped"]),
            _fmt(s["quarantined"]),
            _fmt(s["added"]),
            f"{s['seconds']:.2f}",
            bar(s["kept"], top),
        ]
        for s in stages
    ]
    out += [table(["stage", "read", "kept", "dropped", "quarantined", "added", "seconds", "kept"], rows), ""]

    reasons = [(k, v) for k, v in manifest.get("dropped_by_reason", {}).items()]
    quarantined = list(manifest.get("quarantined_by_reason", {}).items())
    if reasons or quarantined:
        out += ["## Why records left", ""]
        items = sorted(
            [(k, v, "dropped") for k, v in reasons] + [(k, v, "quarantined") for k, v in quarantined],
            key=lambda r: -r[1],
        )
        top = max(v for _, v, _ in items)
        out += [
            table(
                ["reason", "records", "", "where to look"],
                [
                    [
                        k,
                        v,
                        bar(v, top, 16),
                        f"`quarantine/{_stage_of(k)}.jsonl`"
                        if kind == "quarantined"
                        else f"`dropped/{_stage_of(k)}.parquet`",
                    ]
                    for k, v, kind in items
                ],
            ),
            "",
        ]

    out += _quarantine_details(manifest.get("quarantine") or {})
    out += _cleaning_details(stages)

    profile = manifest.get("profile", {})
    if splits:
        out += ["## Splits", ""]
        rows = []
        for name, s in splits.items():
            origin = profile.get("per_split", {}).get(name, {})
            rows.append(
                [
                    name,
                    _fmt(s["rows"]),
                    _fmt(origin.get("original")),
                    _fmt(origin.get("augmented")),
                    _fmt(s.get("tokens")),
                    bar(s["rows"], max(1, total_rows), 20),
                ]
            )
        out += [table(["split", "examples", "original docs", "augmented docs", "tokens", "share"], rows), ""]
        per_label = profile.get("per_label", {})
        labels = sorted({lab for d in per_label.values() for lab in d})
        if labels:
            out += ["Documents per label and split (originals and variants):", ""]
            rows = [[lab] + [per_label.get(s, {}).get(lab, 0) for s in splits] for lab in labels]
            out += [table(["label", *splits], rows), ""]
        small = next((s["extra"].get("small_strata") for s in stages if s["name"] == "split" and "extra" in s), None)
        if small:
            out += [f"Strata too small to reach every split: {', '.join(small)}.", ""]

    if token_lengths:
        out += ["## Example lengths (tokens)", ""]
        for name, values in token_lengths.items():
            if values:
                out += [
                    f"**{name}** — {len(values):,} examples, median {sorted(values)[len(values) // 2]}, max {max(values)}",
                    "",
                    "```",
                    histogram(values),
                    "```",
                    "",
                ]

    aug = next((s for s in stages if s["name"] == "augment"), None)
    if aug:
        out += ["## Augmentation", ""]
        extra = aug.get("extra", {})
        per_kind = extra.get("per_kind") or {}
        diversity = extra.get("diversity") or {}
        protect = extra.get("protect") or {}
        if protect:
            rules = ", ".join(k.replace("_", " ") for k, v in protect.items() if v is True) or "formats only"
            lost = sum(c.get("aug_protected_lost", 0) + c.get("aug_placeholder_lost", 0) for c in per_kind.values())
            out += [
                f"Facts protected by rules: {rules}"
                + (f", entities of `{protect['spacy_model']}`" if protect.get("spacy_model") else "")
                + f"; {protect.get('corpus_terms_found', 0):,} corpus terms found. {lost:,} variants lost a fact "
                "and were dropped (`aug_protected_lost`, `aug_placeholder_lost`).",
                "",
            ]
        if per_kind:
            out += [
                "Per augmenter: variants kept, sources it could not change, variants rejected by a quality "
                "gate (reason: count; the rows are in `dropped/augment.parquet`), and diversity over the kept "
                "variants (distinct-1/2: share of distinct words/word pairs; edit rate: share of source words changed).",
                "",
            ]
            rows = []
            for kind in sorted(per_kind):
                counts = per_kind[kind]
                why = {k: v for k, v in counts.items() if k not in ("made", "failed") and v}
                div = diversity.get(kind, {})
                rows.append(
                    [
                        kind,
                        _fmt(counts.get("made", 0)),
                        _fmt(counts.get("failed", 0)),
                        _fmt(sum(why.values())),
                        ", ".join(f"{k.removeprefix('aug_')} {v:,}" for k, v in sorted(why.items())) or "–",
                        _fmt(div.get("distinct_1")),
                        _fmt(div.get("distinct_2")),
                        _fmt(div.get("edit_rate")),
                    ]
                )
            headers = ["augmenter", "made", "failed", "rejected", "why rejected", "distinct-1", "distinct-2"]
            headers.append("edit rate")
            out += [table(headers, rows), ""]
        for ex in extra.get("examples", [])[:15]:
            left, right = word_diff(ex["source"], ex["variant"])
            out += [f"**{ex['kind']}**", "", table(["before", "after"], [[left, right]]), ""]
        skipped = extra.get("skipped") or {}
        for kind, why in skipped.items():
            out += [f"- {kind} skipped: {why}"]
        if skipped:
            out += [""]

    if metrics:
        out += model_section(metrics, model_files or {})
    if (model_files or {}).get("ablation"):
        out += ablation_section(model_files["ablation"])

    tok = manifest.get("tokenizer", {})
    out += [
        "## Files",
        "",
        "- `report.html` — this report with plots (`tuneprep report RUN_DIR --open` opens it in a browser)",
        "- `shards/{train,validation,test}/` — `datasets.load_from_disk(...)`, or `polars.read_ipc_stream(...)` on a shard",
        "- `manifest.json` — inputs with sha256, config, versions, accounting, shard sha256s",
        "- `dropped/<stage>.parquet`, `quarantine/<stage>.jsonl` — every record not kept, with stage and reason",
        f"- `tokenizer/` — {tok.get('name')}, vocab {tok.get('vocab_size')}, sha256 `{str(tok.get('sha256'))[:12]}…`",
        "- `model/` — `from_pretrained`-ready weights and tokenizer, model card `README.md`, `metrics.json`, "
        "`training.json`, `samples.json`, TensorBoard logs in `model/tb/`",
        "",
    ]
    return "\n".join(out)


def write_report(paths: RunPaths, metrics_path: Path | None = None) -> str:
    """Write ``report.md`` from the manifest and, when there is one, the model's metrics and the files beside them."""
    manifest = read_manifest(paths)  # with the durations timings.json keeps
    metrics = json.loads(metrics_path.read_text()) if metrics_path and metrics_path.exists() else None
    metrics = _current_shape(metrics)
    model_files = {}
    if metrics_path is not None:
        for name in ("training", "samples", "trials"):
            f = metrics_path.parent / f"{name}.json"
            if f.exists():
                model_files[name] = json.loads(f.read_text())
    if (paths.out / "ablation.json").exists():
        model_files["ablation"] = json.loads((paths.out / "ablation.json").read_text())
    lengths = dataset_profile(paths, lengths=True)["token_lengths"] if paths.stage_file("tokenized").exists() else None
    text = render(manifest, metrics, lengths, model_files)
    atomic_write_text(paths.report, text)
    return text


def _current_shape(metrics: dict | None) -> dict | None:
    """A run folder from before base/final metrics (``initial``, ``validation``, ``test``, ``train``) in today's
    shape, so ``tuneprep report`` still renders it."""
    if not metrics or "base" in metrics or "initial" not in metrics:
        return metrics
    train = metrics.get("train") or {}
    return {
        "base": {"validation": (metrics.get("initial") or {}).get("validation")},
        "final": {"validation": metrics.get("validation"), "test": metrics.get("test")},
        "best_step": train.get("steps"),
        "stopped_early": False,
        "train_tokens": train.get("tokens"),
        "tokens_per_s": train.get("tokens_per_s"),
    }


# ---- the model --------------------------------------------------------------------------------------------------


def ablation_section(summary: dict) -> list[str]:
    """The augmentation ablation (``tuneprep ablate``): the verdict, and mean ± std per arm."""
    from finetune.ablation import markdown

    return [
        "## Does augmentation help?",
        "",
        summary.get("verdict", ""),
        "",
        f"Each arm trained the same configuration at {summary.get('token_budget', 0):,} loss tokens per run (no early "
        f"stopping), once per seed; {summary.get('split')} metrics of the exported weights, mean ± std over the seeds "
        "(`ablation.json`, runs in `ablation/`). Δ loss: the arm minus the arm without augmented rows, ± its standard "
        "error.",
        "",
        markdown(summary),
        "",
    ]


def _ppl(m: dict | None) -> str:
    return _fmt(m and m.get("perplexity"), 1)


def _gen(m: dict | None, key: str, digits: int) -> str:
    return _fmt(((m or {}).get("generation") or {}).get(key), digits)


def _model_headline(metrics: dict) -> str:
    base, final = metrics.get("base") or {}, metrics.get("final") or {}
    parts = []
    for split in ("validation", "test"):
        if final.get(split):
            parts.append(f"{split} perplexity **{_ppl(base.get(split))} → {_ppl(final[split])}**")
    for split in ("validation", "test"):
        gen = (final.get(split) or {}).get("generation")
        if gen and gen.get("n"):
            parts.append(
                f"{split} conversations BLEU **{_gen(base.get(split), 'bleu', 1)} → {_gen(final[split], 'bleu', 1)}**, "
                f"ROUGE-L **{_gen(base.get(split), 'rouge_l', 3)} → {_gen(final[split], 'rouge_l', 3)}**"
            )
            break
    return f"Model (before → after fine-tuning): {'; '.join(parts) or 'no held-out examples to score'}."


def _cell(text: str | None, limit: int = 160) -> str:
    if text is None:
        return "–"
    text = " ".join(text.split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return html.escape(text, quote=False).replace("|", "\\|") or "(empty)"


def model_section(metrics: dict, files: dict) -> list[str]:
    """Base vs final per split and format, generation scores, a few answers side by side, the grid's trials."""
    base, final = metrics.get("base") or {}, metrics.get("final") or {}
    out = ["## Model", ""]
    rows = []
    for split in ("validation", "test"):
        after, before = final.get(split), base.get(split) or {}
        if not after:
            continue
        views = [("all", before, after)]
        formats = after.get("by_format") or {}
        if len(formats) > 1:
            views += [(name, (before.get("by_format") or {}).get(name), m) for name, m in formats.items()]
        tasks = after.get("by_task") or {}
        views += [(f"task {name}", (before.get("by_task") or {}).get(name), m) for name, m in tasks.items()]
        for name, b, a in views:
            rows.append(
                [
                    split,
                    name,
                    _fmt(a.get("tokens")),
                    f"{_fmt((b or {}).get('loss'))} → {_fmt(a['loss'])}",
                    f"{_ppl(b)} → {_ppl(a)}",
                    f"{_fmt((b or {}).get('token_accuracy'))} → {_fmt(a['token_accuracy'])}",
                ]
            )
    out += [
        "Loss, perplexity and next-token accuracy on loss tokens (every token of a document, the assistant turns "
        "of a conversation), before → after fine-tuning.",
        "",
        table(["split", "format or task", "loss tokens", "loss", "perplexity", "token accuracy"], rows),
        "",
    ]
    gen_rows = []
    for split in ("validation", "test"):
        after = final.get(split) or {}
        gen = after.get("generation")
        if gen and gen.get("n"):
            b = base.get(split)
            views = [(split, b, after)] + [
                (f"{split}, task {name}", ((b or {}).get("by_task") or {}).get(name), m)
                for name, m in (after.get("by_task") or {}).items()
                if (m.get("generation") or {}).get("n")
            ]
            gen_rows += [
                [
                    where,
                    a["generation"]["n"],
                    f"{_gen(before, 'bleu', 2)} → {_gen(a, 'bleu', 2)}",
                    f"{_gen(before, 'rouge_l', 3)} → {_gen(a, 'rouge_l', 3)}",
                    f"{_gen(before, 'f1', 3)} → {_gen(a, 'f1', 3)}",
                ]
                for where, before, a in views
            ]
    if gen_rows:
        out += [
            "Held-out conversations: the last assistant turn generated (greedy) from the turns before it, against "
            "the reference: corpus BLEU (sacrebleu, 0–100), ROUGE-L F and token F1 (0–1).",
            "",
            table(["split", "answers", "BLEU", "ROUGE-L", "F1"], gen_rows),
            "",
        ]
    training = files.get("training") or {}
    if training:
        model = training.get("model", {})
        early = " (stopped early)" if metrics.get("stopped_early") else ""
        out += [
            f"Trained `{model.get('source')}` ({model.get('mode')}, {_fmt(model.get('parameters'))} parameters, "
            f"{_fmt(model.get('trained'))} trained) for {training.get('steps')} of {training.get('max_steps')} steps"
            f"{early} on `{training.get('device')}` ({training.get('precision')}): {_fmt(metrics.get('train_tokens'))} "
            f"loss tokens at {_fmt(metrics.get('tokens_per_s'), 0)}/s; exported the weights of step "
            f"{metrics.get('best_step')} (lowest validation loss).",
            "",
        ]
    samples = [s for s in files.get("samples") or [] if s.get("final") is not None][:4]
    if samples:
        out += ["Answers beside their references (before → after fine-tuning):", ""]
        out += [
            table(
                ["conversation so far (last turn)", "reference", "base model", "fine-tuned"],
                [
                    [_cell(s["context"][-1]["content"]), _cell(s["reference"]), _cell(s["base"]), _cell(s["final"])]
                    for s in samples
                ],
            ),
            "",
        ]
    trials = files.get("trials")
    if trials:
        from finetune.grid import table_rows

        flat = table_rows(trials["trials"])
        headers = list(flat[0]) if flat else []
        out += [
            f"### Grid search: {len(flat)} trials, trial {trials['best_trial']} exported (lowest validation loss)",
            "",
            table(headers, [[f"{r[h]:.4g}" if isinstance(r[h], float) else r[h] for h in headers] for r in flat]),
            "",
        ]
    return out

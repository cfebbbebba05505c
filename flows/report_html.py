"""``OUT/report.html``: the run report as one self-contained page with plots, for people who would rather look.

Everything is inline (SVG figures as data URIs, CSS, a few lines of JS to sort tables), so the file opens
offline, from a mail attachment or a CI artifact alike; links to the files holding dropped and quarantined
records are relative to the run folder. It is built from the same run folder as ``report.md``
(``flows.report``), which stays the text version for terminals and the Prefect UI.
"""

from __future__ import annotations

import base64
import html
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flows import plots
from flows.layout import RunPaths
from flows.manifest import read_manifest
from flows.report import marked_words
from flows.report_data import (
    generated_samples,
    grid_trials,
    model_metrics,
    read_json,
    shared_ngrams,
    token_lengths,
    training_curves,
)
from tuneprep.files import atomic_write_text

THIN_HELDOUT_DOCS = 3  # a label with fewer documents than this in validation or test gives per-label metrics no weight
LOWER_IS_BETTER = ("loss", "perplexity")
MAX_EXAMPLES = 12
MAX_SAMPLES = 20
PROMPT_TURNS = 3  # a sample's conversation so far: its last turns are what the answer replies to
TOP_NGRAMS = 15
MAX_TABLE_ROWS = 100  # longer lists stay in manifest.json
MAX_INPUT_ROWS = 500


class Raw(str):
    """HTML that is already safe to insert (everything else is escaped)."""


def esc(value: Any) -> str:
    return value if isinstance(value, Raw) else html.escape("" if value is None else str(value))


def fmt(x: Any, digits: int = 4) -> str:
    """Numbers for people: thousands separated, floats to ``digits`` significant digits (one decimal from 100)."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if x == 0 or not math.isfinite(x):
            return str(x)
        return f"{x:,.1f}" if abs(x) >= 100 else f"{x:,.{digits}g}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def num(x: Any, digits: int = 4) -> Raw:
    """A table cell for a number: formatted text, the raw value for sorting."""
    value = "" if x is None or isinstance(x, bool) else x
    return Raw(f'<td class="num" data-value="{esc(value)}">{esc(fmt(x, digits))}</td>')


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any] | dict],
    sortable: bool = False,
    cls: str = "",
    widths: Mapping[int, str] | None = None,
) -> str:
    """An HTML table; a cell is escaped text, or a ``Raw`` fragment (a whole ``<td>`` when it starts with one).

    A row may be ``{"class": ..., "cells": [...]}``; ``widths`` fixes some columns' widths (by index).
    """
    widths = widths or {}
    head = "".join(
        f'<th style="width: {widths[i]}">{esc(h)}</th>' if i in widths else f"<th>{esc(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        row_cls = ""
        if isinstance(row, dict):
            row_cls, row = row.get("class", ""), row["cells"]
        cells = "".join(c if isinstance(c, Raw) and c.startswith("<td") else f"<td>{esc(c)}</td>" for c in row)
        body.append(f'<tr class="{row_cls}">{cells}</tr>' if row_cls else f"<tr>{cells}</tr>")
    classes = " ".join(c for c in (cls, "sortable" if sortable else "") if c)
    title = ' title="click a column to sort"' if sortable else ""
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    return f'<table class="{classes}"{title}>{thead}<tbody>{"".join(body)}</tbody></table>'


def figure(svg: str, alt: str, caption: str = "") -> str:
    data = base64.b64encode(svg.encode()).decode()
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img class="plot" alt="{esc(alt)}" src="data:image/svg+xml;base64,{data}">{cap}</figure>'


def file_link(paths: RunPaths, rel: str) -> Raw:
    """A relative link to a file in the run folder, or the name struck through when the file is not there."""
    if (paths.out / rel).exists():
        return Raw(f'<a href="{esc(rel)}"><code>{esc(rel)}</code></a>')
    return Raw(f'<span class="missing" title="not in this run folder"><code>{esc(rel)}</code></span>')


def section(anchor: str, title: str, *parts: str) -> str:
    body = "\n".join(p for p in parts if p)
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def para(text: str) -> str:
    return f"<p>{text}</p>"


# --- sections ----------------------------------------------------------------------------------------


def header(manifest: Mapping, paths: RunPaths, metrics: Mapping) -> str:
    stages = manifest.get("stages") or []
    splits = manifest.get("splits") or {}
    rows = sum(s.get("rows", 0) for s in splits.values())
    ok = (manifest.get("accounting") or {}).get("ok")
    cards = [
        (f"{stages[0]['read']:,}" if stages else "–", f"input records from {len(manifest.get('inputs', []))} inputs"),
        (f"{rows:,}", "examples: " + " / ".join(f"{k} {v.get('rows', 0):,}" for k, v in splits.items())),
        ("OK" if ok else "BROKEN", "accounting: read = kept + dropped + quarantined at every stage"),
    ]
    base, final = metrics["base"].get("validation", {}), metrics["final"].get("validation", {})
    if final.get("perplexity") is not None:
        cards.append(
            (f"{fmt(base.get('perplexity'))} → {fmt(final['perplexity'])}", "validation perplexity, base → final")
        )
    card_html = "".join(
        f'<div class="card{" bad" if value == "BROKEN" else ""}"><div class="big">{esc(value)}</div>'
        f'<div class="small">{esc(label)}</div></div>'
        for value, label in cards
    )
    commit = manifest.get("git_commit") or "unknown"
    name = manifest.get("name")
    return (
        f"<header><h1>tuneprep run report{esc(': ' + name if name else '')}</h1>"
        f'<p class="meta">run folder <code>{esc(paths.out.resolve())}</code> · git <code>{esc(commit)}</code> · '
        f"{file_link(paths, 'report.md')} (the same numbers as text) · {file_link(paths, 'manifest.json')}</p>"
        f'<div class="cards">{card_html}</div></header>'
    )


def funnel_section(manifest: Mapping, paths: RunPaths) -> str:
    stages = manifest.get("stages") or []
    if not stages:
        return ""
    acc = {a["stage"]: a for a in (manifest.get("accounting") or {}).get("stages", [])}
    rows = []
    for s in stages:
        check = acc.get(s["name"], {})
        balanced = check.get("balanced", True) and check.get("reads_previous_kept", True)
        files = [file_link(paths, f"dropped/{s['name']}.parquet")] if s["dropped"] or s["name"] == "augment" else []
        if s["quarantined"]:
            files.append(_quarantine_link(paths, s["name"]))
        rows.append(
            {
                "class": "" if balanced else "flag",
                "cells": [
                    s["name"],
                    num(s["read"]),
                    num(s["kept"]),
                    num(s["added"]),
                    num(s["dropped"]),
                    num(s["quarantined"]),
                    num(s.get("seconds"), 2),
                    "yes" if balanced else "NO",
                    Raw("<td>" + " ".join(files) + "</td>"),
                ],
            }
        )
    return section(
        "funnel",
        "Records through the stages",
        figure(plots.funnel(stages), "record funnel per stage"),
        table(
            ["stage", "read", "kept", "added", "dropped", "quarantined", "seconds", "balanced", "records removed"],
            rows,
        ),
    )


def _quarantine_link(paths: RunPaths, stage: str) -> Raw:
    own = paths.quarantine / f"{stage}.jsonl"
    if own.exists() or not paths.quarantine.is_dir():
        return file_link(paths, f"quarantine/{stage}.jsonl")
    return Raw(" ".join(file_link(paths, f"quarantine/{p.name}") for p in sorted(paths.quarantine.glob("*.jsonl"))))


def reasons_section(manifest: Mapping, paths: RunPaths) -> str:
    items = []
    for s in manifest.get("stages") or []:
        # Drop reasons are under "reasons", quarantine reasons under "quarantine_reasons"; an older manifest
        # kept the loader's quarantine reasons under "reasons".
        legacy = "quarantine_reasons" not in s and s["quarantined"] and not s["dropped"]
        for reason, n in (s.get("reasons") or {}).items():
            if n:
                quarantined = legacy
                link = (
                    _quarantine_link(paths, s["name"])
                    if quarantined
                    else file_link(paths, f"dropped/{s['name']}.parquet")
                )
                items.append((s["name"], reason, n, "quarantined" if quarantined else "dropped", link))
        for reason, n in (s.get("quarantine_reasons") or {}).items():
            if n:
                items.append((s["name"], reason, n, "quarantined", _quarantine_link(paths, s["name"])))
    if not items:
        return section("reasons", "Why records left", para("Every record read was kept."))
    items.sort(key=lambda r: (-r[2], r[0], r[1]))
    plot = plots.reasons([(f"{st}: {reason}", n, kind) for st, reason, n, kind, _ in items])
    return section(
        "reasons",
        "Why records left",
        figure(plot, "records removed per stage and reason"),
        table(
            ["stage", "reason", "records", "", "the records"],
            ([st, reason, num(n), kind, link] for st, reason, n, kind, link in items),
            sortable=True,
        ),
        _cleaning_facts(manifest.get("stages") or []),
    )


def _cleaning_facts(stages: Sequence[Mapping]) -> str:
    extra = {s["name"]: s.get("extra") or {} for s in stages}
    facts = []
    pii = extra.get("pii_redaction", {}).get("pii")
    if pii is not None:
        found = ", ".join(f"{k} {v:,}" for k, v in pii.items() if v) or "none"
        facts.append(
            f"PII replaced by placeholders: {esc(found)} "
            f"(in {extra['pii_redaction'].get('records_with_pii', 0):,} records)"
        )
    langs = extra.get("language_filter", {}).get("languages")
    if langs is not None:
        seen = ", ".join(f"{k} {v:,}" for k, v in list(langs.items())[:8]) or "none"
        facts.append(f"Languages detected: {esc(seen)}")
    near = extra.get("near_dedup", {})
    if near.get("bands"):
        facts.append(
            f"Near-dedup: MinHash LSH, {near['bands']} bands × {near.get('rows')} rows; "
            f"index holds {fmt(near.get('index_size'))} records"
        )
    return "<ul>" + "".join(f"<li>{f}</li>" for f in facts) + "</ul>" if facts else ""


def splits_section(manifest: Mapping) -> str:
    splits = manifest.get("splits") or {}
    if not splits:
        return ""
    profile = manifest.get("profile") or {}
    per_split = profile.get("per_split") or {}
    rows = [
        [
            name,
            num(s.get("rows")),
            num(per_split.get(name, {}).get("original")),
            num(per_split.get(name, {}).get("augmented")),
            num(s.get("tokens")),
            num(len(s.get("shards") or [])),
        ]
        for name, s in splits.items()
    ]
    parts = [table(["split", "examples", "original docs", "augmented docs", "tokens", "shard files"], rows)]
    per_label = profile.get("per_label") or {s: v.get("labels") or {} for s, v in splits.items()}
    per_label = {s: c for s, c in per_label.items() if c}
    split_extra = next((s.get("extra") or {} for s in manifest.get("stages") or [] if s["name"] == "split"), {})
    small = set(split_extra.get("small_strata") or [])
    thin = {
        lab: [f"{s} {per_label[s].get(lab, 0)}" for s in per_label if s != "train"]
        for lab in {lab for c in per_label.values() for lab in c}
        if any(per_label[s].get(lab, 0) < THIN_HELDOUT_DOCS for s in per_label if s != "train")
    }
    flagged = small | set(thin)
    if per_label:
        parts.append(figure(plots.label_balance(per_label, flagged), "label balance per split"))
        labels = sorted({lab for c in per_label.values() for lab in c})
        totals = {s: sum(c.values()) or 1 for s, c in per_label.items()}
        label_rows = [
            {
                "class": "flag" if lab in flagged else "",
                "cells": [lab]
                + [
                    Raw(
                        f'<td class="num" data-value="{per_label[s].get(lab, 0)}">{per_label[s].get(lab, 0):,} '
                        f'<span class="dim">({per_label[s].get(lab, 0) / totals[s]:.0%})</span></td>'
                    )
                    for s in per_label
                ]
                + [_flag_reason(lab, small, thin)],
            }
            for lab in labels
        ]
        parts.append(
            f"<details{' open' if len(labels) <= 30 else ''}><summary>Documents per label and split "
            "(a document counts once, with its augmented variants)</summary>"
            + table(["label", *per_label, "flag"], label_rows, sortable=True)
            + "</details>"
        )
    if small:
        parts.append(para(f"Strata too small to reach every split: {_names(small)}."))
    if thin:
        parts.append(
            para(
                f"Labels with fewer than {THIN_HELDOUT_DOCS} documents in a held-out split (their per-label "
                f"metrics rest on a handful of examples): {_names(thin)}."
            )
        )
    return section("splits", "Splits and label balance", *parts)


def _names(names: Iterable[str]) -> str:
    return ", ".join(f"<code>{esc(n)}</code>" for n in sorted(names))


def _flag_reason(label: str, small: set[str], thin: Mapping[str, list[str]]) -> str:
    why = []
    if label in small:
        why.append("too small to split")
    if label in thin:
        why.append("thin in held-out: " + ", ".join(thin[label]))
    return "; ".join(why)


def lengths_section(lengths: Mapping[str, list[int]], max_length: int | None) -> str:
    present = {s: v for s, v in lengths.items() if v}
    if not present:
        return ""
    rows = []
    for split, values in present.items():
        ordered = sorted(values)
        at_max = sum(v >= max_length for v in values) if max_length else None
        rows.append(
            [
                split,
                num(len(values)),
                num(ordered[0]),
                num(int(statistics.median(ordered))),
                num(ordered[int(0.95 * (len(ordered) - 1))]),
                num(ordered[-1]),
                num(sum(values)),
                num(at_max),
            ]
        )
    note = (
        f"Examples are windows of at most <code>tokenizer.max_length</code> = {max_length:,} tokens; "
        "a longer document is cut into several windows at paragraph, sentence or turn boundaries."
        if max_length
        else ""
    )
    return section(
        "lengths",
        "Token lengths",
        figure(plots.length_histograms(present, max_length), "token length histograms per split"),
        table(["split", "examples", "min", "median", "p95", "max", "tokens", "at max_length"], rows),
        para(note) if note else "",
    )


def augmentation_section(manifest: Mapping, paths: RunPaths) -> str:
    aug = next((s for s in manifest.get("stages") or [] if s["name"] == "augment"), None)
    if aug is None:
        return ""
    extra = aug.get("extra") or {}
    per_kind = extra.get("per_kind") or {}
    diversity = extra.get("diversity") or {}
    timing = extra.get("seconds_per_kind") or {}
    parts = []
    if per_kind:
        parts.append(figure(plots.augmenters(per_kind), "augmentation per augmenter"))
        rows = []
        for kind in sorted(per_kind):
            counts = per_kind[kind]
            why = {k.removeprefix("aug_"): v for k, v in counts.items() if k not in ("made", "failed") and v}
            div = diversity.get(kind, {})
            rows.append(
                [
                    kind,
                    num(counts.get("made", 0)),
                    num(counts.get("failed", 0)),
                    num(sum(why.values())),
                    ", ".join(f"{k} {v:,}" for k, v in sorted(why.items())) or "–",
                    num(div.get("distinct_1")),
                    num(div.get("distinct_2")),
                    num(div.get("edit_rate")),
                    num(timing.get(kind), 2),
                ]
            )
        headers = ["augmenter", "kept", "could not change", "rejected", "rejected because", "distinct-1"]
        parts.append(table([*headers, "distinct-2", "edit rate", "seconds"], rows, sortable=True))
        parts.append(
            para(
                "Rejected variants are in "
                + file_link(paths, "dropped/augment.parquet")
                + ". Distinct-1/2: share of distinct words / word pairs over the kept variants; edit rate: "
                "share of source words changed."
            )
        )
    for kind, why in (extra.get("skipped") or {}).items():
        parts.append(para(f"<strong>{esc(kind)}</strong> skipped: {esc(why)}"))
    examples = extra.get("examples") or []
    if examples:
        rows = []
        for ex in examples[:MAX_EXAMPLES]:
            left, right = marked_words(ex.get("source", ""), ex.get("variant", ""), context=12)
            rows.append([ex.get("kind"), Raw(f'<td class="text">{left}</td>'), Raw(f'<td class="text">{right}</td>')])
        parts.append("<h3>Before and after</h3>")
        parts.append(para("Removed words are <del>struck out</del>, inserted words <ins>highlighted</ins>."))
        parts.append(table(["augmenter", "before", "after"], rows, cls="examples", widths={0: "9em"}))
    return section("augmentation", "Augmentation (train split only)", *parts)


def decontamination_section(manifest: Mapping, paths: RunPaths) -> str:
    stage = next((s for s in manifest.get("stages") or [] if s["name"] == "decontaminate"), None)
    if stage is None:
        return ""
    extra = stage.get("extra") or {}
    against = extra.get("against")
    facts = (
        f"Checked the train split against <strong>{fmt(extra.get('heldout_records'))}</strong> validation/test "
        f"records ({fmt(extra.get('heldout_ngrams'))} distinct n-grams)"
        + (
            f" and {fmt(against.get('records'))} records of {esc(', '.join(against.get('inputs', [])))}"
            if against
            else ""
        )
        + f": <strong>{fmt(extra.get('flagged', 0))}</strong> train records flagged, "
        f"<strong>{fmt(extra.get('removed', stage.get('dropped', 0)))}</strong> removed (near-duplicates and "
        f"<code>against</code> matches: <code>{esc(extra.get('action'))}</code>; n-grams shared within the corpus: "
        f"<code>{esc(extra.get('heldout_ngrams_action', 'drop'))}</code>); "
        f"{fmt(extra.get('common_ngrams_ignored', 0))} stock-phrase n-grams ignored "
        f"(found in more than {fmt(extra.get('stock_cutoff'))} train records). "
        f"The dropped records: {file_link(paths, 'dropped/decontaminate.parquet')}."
    )
    parts = []
    warning = (extra.get("split_shift") or {}).get("warning")
    if warning:
        parts.append(para(f'<strong class="flag">Warning: {esc(warning)}.</strong>'))
    parts.append(para(facts))
    reasons = extra.get("by_reason") or stage.get("reasons") or {}
    if reasons:
        parts.append(table(["reason", "train records"], ([r, num(n)] for r, n in sorted(reasons.items()))))
    top = shared_ngrams(extra)
    if top:
        parts.append(figure(plots.ngrams(top[:TOP_NGRAMS]), "most shared n-grams (train records holding each)"))
        rows = ([Raw(f'<td class="text">{esc(g)}</td>'), num(n)] for g, n in top[:MAX_TABLE_ROWS])
        parts.append(table(["n-gram", "count"], rows, sortable=True))
    elif stage.get("dropped") or extra.get("flagged"):
        parts.append(para('<span class="dim">This run\'s manifest records no per-n-gram figures for the drops.</span>'))
    examples = extra.get("examples") or []
    if examples:
        parts.append(
            table(
                ["train record", "reason", "detail"],
                (
                    [Raw(f"<td><code>{esc(e.get('id'))}</code></td>"), e.get("reason"), e.get("detail")]
                    for e in examples
                ),
            )
        )
    return section("decontamination", "Decontamination", *parts)


def training_section(metrics: Mapping, curves: Mapping, samples: list[dict], trials: list[dict]) -> str:
    if not (metrics["base"] or metrics["final"] or curves or samples or trials):
        return ""
    parts = []
    facts = metrics["facts"]
    if facts:
        parts.append(
            '<ul class="facts">'
            + "".join(f"<li><span>{esc(k.replace('_', ' '))}</span> {esc(fmt(v))}</li>" for k, v in facts.items())
            + "</ul>"
        )
    losses = {k: v for k, v in curves.items() if k.partition("@")[0].endswith("/loss") and v}
    base_val = metrics["base"].get("validation", {}).get("loss")
    if base_val is not None and "validation/loss" in losses and "validation/loss@base" not in losses:
        losses["validation/loss@base"] = [(0, base_val)]  # older logs hold the base model's loss only in metrics.json
    if losses:
        order = {"train": 0, "validation": 1, "test": 2}
        losses = dict(sorted(losses.items(), key=lambda kv: (order.get(kv[0].split("/")[0], 3), kv[0])))
        plot = plots.curves(losses, "Loss over training", "loss (nats per token)")
        phases = {k.partition("@")[2] for k in losses}
        notes = {"base": "squares: the base model before training", "final": "stars: the exported (best) model"}
        caption = "; ".join(notes[p] for p in ("base", "final") if p in phases).capitalize()
        parts.append(figure(plot, "loss curves over steps", caption + "." if caption else ""))
    rates = {k: v for k, v in curves.items() if k.endswith("/lr") and v}
    if rates:
        parts.append(figure(plots.curves(rates, "Learning rate schedule", "learning rate"), "learning rate over steps"))
    if curves and not losses:
        parts.append(para("The training logs hold no loss series: " + esc(", ".join(sorted(curves)))))
    parts.append(_metrics_comparison(metrics))
    if samples:
        parts.append(_samples_table(samples))
    if trials:
        parts.append(_trials_table(trials))
    return section("training", "Training", *parts)


def _metrics_comparison(metrics: Mapping) -> str:
    base, final = metrics["base"], metrics["final"]
    splits = list(dict.fromkeys([*final, *base]))
    names = list(dict.fromkeys(k for s in splits for k in [*final.get(s, {}), *base.get(s, {})]))
    rows, plotted = [], []
    for name in names:
        for split in splits:
            b, f = base.get(split, {}).get(name), final.get(split, {}).get(name)
            if b is None and f is None:
                continue
            change = None if b is None or f is None else f - b
            better = None if change is None else (change < 0) == any(w in name for w in LOWER_IS_BETTER)
            cls = "" if better is None or change == 0 else ("good" if better else "bad")
            rows.append([name, split, num(b), num(f), Raw(f'<td class="num {cls}">{fmt(change)}</td>')])
            plotted.append((name, split, b, f))
    if not rows:
        return ""
    fig = (
        figure(plots.before_after(plotted), "base vs final metrics")
        if any(b is not None for *_, b, _ in plotted)
        else ""
    )
    return "<h3>Base vs final</h3>" + fig + table(["metric", "split", "base", "final", "change"], rows)


def _text(value: Any, last_turns: int | None = None) -> Raw:
    """A prompt, reference or generation: a string, or a list of chat turns shown one per line (the last few)."""
    if isinstance(value, list):
        cut = last_turns is not None and len(value) > last_turns
        value = value[-last_turns:] if cut else value
        turns = ["…"] * cut + [
            f"<b>{esc(t.get('role', ''))}</b>: {esc(t.get('content', ''))}" if isinstance(t, Mapping) else esc(t)
            for t in value
        ]
        return Raw('<td class="text">' + "<br>".join(turns) + "</td>")
    return Raw(f'<td class="text">{esc(value)}</td>')


def _samples_table(samples: list[dict]) -> str:
    with_base = any(s["base"] is not None for s in samples)
    with_split = any(s["split"] for s in samples)
    headers = [*(["split"] if with_split else []), "prompt", "reference", *(["base model"] if with_base else [])]
    rows = []
    for s in samples[:MAX_SAMPLES]:
        row = [*([s["split"]] if with_split else []), _text(s["prompt"], PROMPT_TURNS), _text(s["reference"])]
        row += [_text(s["base"])] if with_base else []
        rows.append([*row, _text(s["generated"])])
    more = f" (the first {MAX_SAMPLES} of {len(samples):,})" if len(samples) > MAX_SAMPLES else ""
    return (
        "<h3>Generated samples</h3>"
        + para(f"Generations beside their references{more}.")
        + table([*headers, "fine-tuned model"], rows, cls="examples", widths={0: "7em"} if with_split else None)
    )


def _trials_table(trials: list[dict]) -> str:
    settings = list(dict.fromkeys(k for t in trials for k in t["settings"]))
    results = list(dict.fromkeys(k for t in trials for k in t["metrics"]))
    best = next((i for i, t in enumerate(trials) if t["best"]), None)
    note = f" Trial {esc(trials[best]['trial'])} was exported (highlighted)." if best is not None else ""
    loss = next((k for k in results if "loss" in k), None)
    scored = [i for i, t in enumerate(trials) if t["metrics"].get(loss) is not None] if loss else []
    if best is None and scored:  # the trials file does not say: the lowest loss is the one to look at
        best = min(scored, key=lambda i: trials[i]["metrics"][loss])
        note = f" Best by {esc(loss)}: trial {esc(trials[best]['trial'])} (highlighted)."
    rows = [
        {
            "class": "best" if i == best else "",
            "cells": [num(t["trial"])]
            + [num(v) if isinstance(v, int | float) else v for v in (t["settings"].get(k) for k in settings)]
            + [num(t["metrics"].get(k)) for k in results],
        }
        for i, t in enumerate(trials)
    ]
    return (
        "<h3>Grid-search trials</h3>"
        + para(f"{len(trials)} trials; click a column header to sort.{note}")
        + table(["trial", *settings, *results], rows, sortable=True, cls="trials")
    )


def ablation_section(paths: RunPaths) -> str:
    """``tuneprep ablate``'s table (RUN_DIR/ablation.json): mean ± std per arm, and its one-sentence verdict."""
    summary = read_json(paths.out / "ablation.json")
    if not isinstance(summary, Mapping) or not summary.get("arms"):
        return ""
    from finetune.ablation import table_rows

    rows = table_rows(dict(summary))
    headers = list(rows[0])
    return section(
        "ablation",
        "Does augmentation help?",
        para(esc(summary.get("verdict", ""))),
        para(
            f"Same configuration, {esc(fmt(summary.get('token_budget')))} loss tokens per run, mean ± std over seeds "
            f"on {esc(summary.get('split'))}; runs in {file_link(paths, 'ablation')}, figures in "
            f"{file_link(paths, 'ablation.json')}."
        ),
        table(headers, [[r[h] for h in headers] for r in rows], sortable=True),
    )


def identity_section(manifest: Mapping, paths: RunPaths) -> str:
    versions = manifest.get("versions") or {}
    tok = manifest.get("tokenizer") or {}
    facts = [
        ("name", manifest.get("name")),
        ("git commit", manifest.get("git_commit")),
        ("python", manifest.get("python_executable")),
        ("tokenizer", f"{tok.get('name')}, vocab {fmt(tok.get('vocab_size'))}, sha256 {tok.get('sha256')}"),
    ]
    parts = [table(["", ""], ([k, Raw(f"<td><code>{esc(fmt(v))}</code></td>")] for k, v in facts), cls="kv")]
    inputs = manifest.get("inputs") or []
    if inputs:
        rows = [
            [
                Raw(f'<td class="text"><code>{esc(i.get("source"))}</code></td>'),
                i.get("kind", "file"),
                num(i.get("bytes")),
                Raw(f"<td><code>{esc(i.get('sha256', ''))}</code></td>"),
            ]
            for i in inputs[:MAX_INPUT_ROWS]
        ]
        if len(inputs) > MAX_INPUT_ROWS:
            rows.append([f"… and {len(inputs) - MAX_INPUT_ROWS:,} more, all in manifest.json", "", "", ""])
        parts.append(
            f"<details{' open' if len(inputs) <= 10 else ''}><summary>Inputs ({len(inputs)}) and their sha256</summary>"
            + table(["input", "kind", "bytes", "sha256"], rows, sortable=True, cls="hashes")
            + "</details>"
        )
    shard_rows = [
        [
            split,
            file_link(paths, sh["file"]),
            num(sh.get("rows")),
            num(sh.get("tokens")),
            Raw(f"<td><code>{esc(sh.get('sha256'))}</code></td>"),
        ]
        for split, info in (manifest.get("splits") or {}).items()
        for sh in info.get("shards") or []
    ]
    if shard_rows:
        parts.append(
            "<details><summary>Shard files and their sha256</summary>"
            + table(["split", "file", "rows", "tokens", "sha256"], shard_rows, cls="hashes")
            + "</details>"
        )
    if versions:
        parts.append(
            "<details><summary>Versions</summary>"
            + table(["package", "version"], sorted(versions.items()), cls="kv")
            + "</details>"
        )
    if manifest.get("config"):
        config = json.dumps(manifest["config"], indent=2)
        parts.append(f"<details><summary>Configuration</summary><pre>{esc(config)}</pre></details>")
    return section("identity", "Run identity", *parts)


# --- page --------------------------------------------------------------------------------------------

CSS = """
:root { --fg: #1d2125; --dim: #6b7280; --line: #e5e7eb; --accent: #1f78b4; }
* { box-sizing: border-box; }
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1180px; padding: 0 24px 48px; }
header { border-bottom: 1px solid var(--line); padding: 16px 0 8px; }
h1 { font-size: 24px; margin: 8px 0 4px; } h2 { font-size: 19px; margin: 32px 0 8px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; }
.meta { color: var(--dim); margin: 0 0 12px; } code { font-size: 12px; }
nav { position: sticky; top: 0; background: #fff; padding: 6px 0; border-bottom: 1px solid var(--line); z-index: 1; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 200px; flex: 1; }
.card .big { font-size: 22px; font-weight: 600; } .card .small { color: var(--dim); font-size: 12px; }
.card.bad { border-color: #d1495b; background: #fdecee; }
figure { margin: 12px 0; } figcaption { color: var(--dim); font-size: 12px; } img.plot { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; position: relative; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[data-dir="asc"]::after { content: " ▲"; } table.sortable th[data-dir="desc"]::after { content: " ▼"; }
td.text { max-width: 520px; } table.examples { width: 100%; table-layout: fixed; }
table.examples td.text { max-width: none; overflow-wrap: anywhere; } tr.best td { background: #e8f4fd; font-weight: 600; }
tr.flag td { background: #fff6e0; } .good { color: #2e7d32; } .bad { color: #c62828; }
del { background: #fde2e1; color: #a40e26; } ins { background: #d7f5dd; color: #14532d; text-decoration: none; }
.dim { color: var(--dim); } .missing { color: var(--dim); text-decoration: line-through; }
ul.facts { display: flex; flex-wrap: wrap; gap: 6px 22px; list-style: none; padding: 0; }
ul.facts span { color: var(--dim); }
pre { background: #f6f8fa; padding: 10px; overflow: auto; max-height: 480px; font-size: 12px; }
details { margin: 8px 0; } summary { cursor: pointer; font-weight: 600; }
"""

SORT_JS = """
document.querySelectorAll("table.sortable th").forEach(function (th) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
    var asc = th.dataset.dir !== "asc";
    table.querySelectorAll("th").forEach(function (h) { delete h.dataset.dir; });
    th.dataset.dir = asc ? "asc" : "desc";
    function key(row) {
      var cell = row.cells[col];
      return cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
    }
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      if (x === "" || y === "") { return x === y ? 0 : (x === "" ? 1 : -1); }
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def render_html(
    paths: RunPaths,
    manifest: Mapping,
    lengths: Mapping[str, list[int]],
    metrics_raw: Mapping | None = None,
    model_dir: Path | None = None,
) -> str:
    """The whole page from the run's data; sections that do not apply to this run are left out."""
    metrics = model_metrics(metrics_raw)
    max_length = ((manifest.get("config") or {}).get("tokenizer") or {}).get("max_length")
    sections = [
        ("funnel", "Funnel", funnel_section(manifest, paths)),
        ("reasons", "Why records left", reasons_section(manifest, paths)),
        ("splits", "Splits & labels", splits_section(manifest)),
        ("lengths", "Token lengths", lengths_section(lengths, max_length)),
        ("augmentation", "Augmentation", augmentation_section(manifest, paths)),
        ("decontamination", "Decontamination", decontamination_section(manifest, paths)),
        (
            "training",
            "Training",
            training_section(
                metrics,
                training_curves(model_dir),
                generated_samples(model_dir, metrics_raw),
                grid_trials(model_dir, metrics_raw),
            ),
        ),
        ("ablation", "Augmentation ablation", ablation_section(paths)),
        ("identity", "Run identity", identity_section(manifest, paths)),
    ]
    nav = "".join(f'<a href="#{anchor}">{esc(title)}</a>' for anchor, title, body in sections if body)
    title = f"tuneprep run report{': ' + manifest['name'] if manifest.get('name') else ''}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
        + header(manifest, paths, metrics)
        + f"\n<nav>{nav}</nav>\n"
        + "\n".join(body for _, _, body in sections if body)
        + f"\n<script>{SORT_JS}</script>\n</body></html>\n"
    )


def write_html_report(paths: RunPaths, metrics_path: Path | None = None) -> Path:
    """Write ``report.html`` from the manifest, the shards' lengths and, when there is one, the model's run."""
    if not paths.manifest.exists():
        raise FileNotFoundError(f"{paths.manifest}: not a finished tuneprep run folder (no manifest.json)")
    manifest = read_manifest(paths)  # with the durations timings.json keeps
    metrics = read_json(metrics_path) if metrics_path and metrics_path.exists() else None
    model_dir = metrics_path.parent if metrics is not None else None
    page = render_html(paths, manifest, token_lengths(paths), metrics, model_dir)
    atomic_write_text(paths.report_html, page)
    return paths.report_html

"""The report's figures: small data in, one self-contained SVG document out.

Figures are drawn with matplotlib's object API (``Figure``, never pyplot), so nothing here selects an
interactive backend or touches global state: it runs in a flow worker, a notebook or a server alike.
Each figure has a title and axis units, uses constrained layout so labels do not overlap, and is
written with a fixed hash salt and no date, so the same run data gives the same SVG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, PercentFormatter

KEPT, ADDED, DROPPED, QUARANTINED = "#4c9f70", "#1f78b4", "#d1495b", "#edae49"
SPLIT_COLORS = {"train": "#1f78b4", "validation": "#e6862c", "test": "#6a3d9a"}
BEFORE, AFTER = "#9e9e9e", "#1f78b4"
WIDTH = 9.0  # inches; the page shows figures at most this wide
MAX_LABELS = 20  # label balance: distinct colours (tab20)
MAX_POINTS = 2000  # per curve: more points than pixels only makes the SVG heavy
STYLE = {
    "svg.hashsalt": "tuneprep",
    "font.size": 9,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
}


def _figure(height: float, ncols: int = 1, nrows: int = 1, **kw) -> tuple[Figure, list]:
    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, [ax for row in axes for ax in row]


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _short(text: str, width: int) -> str:
    """One line of at most ``width`` characters (a long label is cut mid-word rather than dropped)."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


THOUSANDS = FuncFormatter(lambda v, _: f"{v:,.0f}")


def _barh_labels(ax, bars, texts: Sequence[str]) -> None:
    for rect, text in zip(bars, texts, strict=True):
        ax.annotate(
            text,
            (rect.get_x() + rect.get_width(), rect.get_y() + rect.get_height() / 2),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )


def funnel(stages: Sequence[Mapping]) -> str:
    """Per stage, what it read split into kept, added (augmentation), dropped and quarantined."""
    with matplotlib.rc_context(STYLE):
        names = [s["name"] for s in stages]
        fig, (ax,) = _figure(0.9 + 0.32 * len(stages))
        y = range(len(stages))
        carried = [s["kept"] - s["added"] for s in stages]
        added = [s["added"] for s in stages]
        dropped = [s["dropped"] for s in stages]
        quarantined = [s["quarantined"] for s in stages]
        ax.barh(y, carried, color=KEPT, label="kept")
        ax.barh(y, added, left=carried, color=ADDED, label="added (augmentation)")
        left = [c + a for c, a in zip(carried, added, strict=True)]
        ax.barh(y, dropped, left=left, color=DROPPED, label="dropped")
        left = [x + d for x, d in zip(left, dropped, strict=True)]
        last = ax.barh(y, quarantined, left=left, color=QUARANTINED, label="quarantined")
        notes = []
        for s in stages:
            parts = [f"{s['read']:,} in → {s['kept']:,} kept"]
            parts += [f"{k} {s[k]:,}" for k in ("added", "dropped", "quarantined") if s[k]]
            notes.append(", ".join(parts))
        _barh_labels(ax, last, notes)
        ax.set_yticks(list(y), names)
        ax.invert_yaxis()
        ax.set_xlabel("records")
        ax.xaxis.set_major_formatter(THOUSANDS)
        ax.set_xlim(0, max(1, max(s["read"] + s["added"] for s in stages)) * 1.45)
        fig.suptitle("Record funnel: what each stage read, kept, added, dropped and quarantined", fontweight="bold")
        fig.legend(loc="outside lower center", ncols=4, fontsize=8)
        ax.grid(axis="y", visible=False)
        return _svg(fig)


def reasons(items: Sequence[tuple[str, int, str]]) -> str:
    """Records removed per (stage: reason), coloured by whether they were dropped or quarantined."""
    with matplotlib.rc_context(STYLE):
        fig, (ax,) = _figure(0.9 + 0.3 * len(items))
        y = range(len(items))
        colors = [QUARANTINED if kind == "quarantined" else DROPPED for _, _, kind in items]
        bars = ax.barh(y, [n for _, n, _ in items], color=colors)
        _barh_labels(ax, bars, [f"{n:,}" for _, n, _ in items])
        ax.set_yticks(list(y), [_short(label, 60) for label, _, _ in items])
        ax.invert_yaxis()
        ax.set_xlabel("records")
        ax.set_xlim(0, max(n for _, n, _ in items) * 1.12)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_major_formatter(THOUSANDS)
        fig.suptitle("Why records left the pipeline (stage: reason)", fontweight="bold")
        handles = [Patch(color=DROPPED), Patch(color=QUARANTINED)]
        ax.legend(handles, ["dropped", "quarantined"], loc="lower right", fontsize=8)
        ax.grid(axis="y", visible=False)
        return _svg(fig)


def length_histograms(lengths: Mapping[str, Sequence[int]], max_length: int | None = None) -> str:
    """One histogram per split on shared bins, each with its own count axis (train dwarfs the others)."""
    import numpy as np

    with matplotlib.rc_context(STYLE):
        splits = [s for s, v in lengths.items() if len(v)]
        fig, axes = _figure(2.1 * len(splits), nrows=len(splits), sharex=True)
        everything = np.concatenate([np.asarray(lengths[s]) for s in splits])
        bins = np.histogram_bin_edges(everything, bins=min(40, max(5, len(np.unique(everything)))))
        for ax, split in zip(axes, splits, strict=True):
            values = np.asarray(lengths[split])
            ax.hist(values, bins=bins, color=SPLIT_COLORS.get(split, KEPT), alpha=0.85)
            med = float(np.median(values))
            ax.axvline(med, color="black", linewidth=1, linestyle="--", label=f"median {med:,.0f}")
            if max_length:
                ax.axvline(max_length, color=DROPPED, linewidth=1, label=f"max_length {max_length:,} (windows cut)")
            ax.set_title(f"{split}: {len(values):,} examples, max {int(values.max()):,} tokens", loc="left")
            ax.set_ylabel("examples")
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_formatter(THOUSANDS)
            ax.legend(loc="upper right", fontsize=8)
        axes[-1].set_xlabel("tokens per example (including EOS)")
        fig.suptitle("Token lengths per split", fontweight="bold")
        return _svg(fig)


def label_balance(per_label: Mapping[str, Mapping[str, int]], flagged: set[str] = frozenset()) -> str:
    """Per split, each label's share of its documents, stacked to 100 %; flagged labels are hatched."""
    with matplotlib.rc_context(STYLE):
        splits = [s for s, counts in per_label.items() if sum(counts.values())]
        labels = sorted({lab for s in splits for lab in per_label[s]}, key=lambda lab: (-_total(per_label, lab), lab))
        if len(labels) > MAX_LABELS:  # past a score of colours nobody can tell them apart: lump the smallest
            keep, rest = labels[: MAX_LABELS - 1], labels[MAX_LABELS - 1 :]
            other = f"{len(rest)} other labels"
            per_label = {
                s: {**{lab: c.get(lab, 0) for lab in keep}, other: sum(c.get(lab, 0) for lab in rest)}
                for s, c in per_label.items()
            }
            labels = [*keep, other]
        cmap = matplotlib.colormaps["tab20"]
        fig, (ax,) = _figure(1.6 + 0.45 * len(splits))
        left = [0.0] * len(splits)
        for i, lab in enumerate(labels):
            shares = [per_label[s].get(lab, 0) / sum(per_label[s].values()) for s in splits]
            name = f"{lab} (small)" if lab in flagged else lab
            ax.barh(
                splits,
                shares,
                left=left,
                color=cmap(i % 20),
                label=_short(name, 28),
                hatch="///" if lab in flagged else None,
                edgecolor="white",
                linewidth=0.5,
            )
            left = [a + b for a, b in zip(left, shares, strict=True)]
        ax.set_yticks(range(len(splits)), [f"{s}\n{sum(per_label[s].values()):,} docs" for s in splits])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("share of the split's documents")
        fig.suptitle("Label balance per split (hatched: strata too small to trust)", fontweight="bold")
        fig.legend(loc="outside lower center", ncols=min(4, len(labels)), fontsize=8)
        ax.grid(axis="y", visible=False)
        return _svg(fig)


def _total(per_label: Mapping[str, Mapping[str, int]], label: str) -> int:
    return sum(counts.get(label, 0) for counts in per_label.values())


def augmenters(per_kind: Mapping[str, Mapping[str, int]]) -> str:
    """Per augmenter: variants kept, sources it could not change, and variants each gate rejected."""
    with matplotlib.rc_context(STYLE):
        kinds = sorted(per_kind)
        reasons_seen = sorted({k for c in per_kind.values() for k, v in c.items() if k not in ("made", "failed") and v})
        fig, (ax,) = _figure(1.4 + 0.4 * len(kinds))
        series = [("made", "kept variants", KEPT), ("failed", "could not change", BEFORE)]
        cmap = matplotlib.colormaps["Reds"]
        series += [
            (r, f"rejected: {r.removeprefix('aug_')}", cmap(0.45 + 0.5 * i / max(1, len(reasons_seen))))
            for i, r in enumerate(reasons_seen)
        ]
        left = [0] * len(kinds)
        for key, label, color in series:
            values = [per_kind[k].get(key, 0) for k in kinds]
            bars = ax.barh(kinds, values, left=left, color=color, label=label)
            left = [a + b for a, b in zip(left, values, strict=True)]
        _barh_labels(
            ax, bars, [f"{per_kind[k].get('made', 0):,} kept of {t:,}" for k, t in zip(kinds, left, strict=True)]
        )
        ax.invert_yaxis()
        ax.set_xlim(0, max(1, max(left)) * 1.3)
        ax.set_xlabel("source records")
        ax.xaxis.set_major_formatter(THOUSANDS)
        fig.suptitle("Augmentation: variants made and rejected, per augmenter", fontweight="bold")
        fig.legend(loc="outside lower center", ncols=min(4, len(series)), fontsize=8)
        ax.grid(axis="y", visible=False)
        return _svg(fig)


def ngrams(top: Sequence[tuple[str, int]], unit: str = "train records dropped") -> str:
    """The shared n-grams behind most decontamination drops."""
    with matplotlib.rc_context(STYLE):
        fig, (ax,) = _figure(0.9 + 0.3 * len(top))
        y = range(len(top))
        bars = ax.barh(y, [n for _, n in top], color=DROPPED)
        _barh_labels(ax, bars, [f"{n:,}" for _, n in top])
        ax.set_yticks(list(y), [f"“{_short(g, 70)}”" for g, _ in top])
        ax.invert_yaxis()
        ax.set_xlim(0, max(1, max(n for _, n in top)) * 1.12)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_major_formatter(THOUSANDS)
        ax.set_xlabel(unit)
        fig.suptitle("Decontamination: n-grams shared with validation/test behind the drops", fontweight="bold")
        ax.grid(axis="y", visible=False)
        return _svg(fig)


def curves(
    series: Mapping[str, Sequence[tuple[float, float]]],
    title: str,
    ylabel: str,
    log: bool = False,
    markers: bool = False,
) -> str:
    """Lines over training steps, one per ``split/metric`` series; sparse series (evaluations) get markers.

    A ``split/metric@base`` or ``@final`` series (the base model before training, the exported model after)
    is drawn as lone markers: a square for the base model, a star for the exported one.
    """
    with matplotlib.rc_context(STYLE):
        fig, (ax,) = _figure(3.2)
        for i, (name, points) in enumerate(series.items()):
            if len(points) > MAX_POINTS:
                stride = -(-len(points) // MAX_POINTS)
                points = [*points[::stride], points[-1]] if (len(points) - 1) % stride else points[::stride]
            steps, values = zip(*points, strict=True) if points else ((), ())
            tag, _, phase = name.partition("@")
            color = SPLIT_COLORS.get(tag.split("/")[0], matplotlib.colormaps["tab10"](i % 10))
            label = tag.replace("/", " ")
            if phase:
                model = "base model" if phase == "base" else "exported model"
                marker, size = ("s", 6) if phase == "base" else ("*", 11)
                ax.plot(steps, values, linestyle="none", marker=marker, markersize=size, color=color)
                ax.plot([], [], linestyle="none", marker=marker, color=color, label=f"{label}, {model}")
                continue
            sparse = markers or len(points) <= 30
            ax.plot(
                steps, values, label=label, color=color, marker="o" if sparse else None, markersize=4, linewidth=1.4
            )
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_major_formatter(THOUSANDS)
        ax.set_title(title)
        ax.legend(loc="best", fontsize=8)
        return _svg(fig)


def before_after(rows: Sequence[tuple[str, str, float | None, float | None]]) -> str:
    """Base vs final model, one panel per metric (scales differ), bars per split: (metric, split, base, final)."""
    import numpy as np

    with matplotlib.rc_context(STYLE):
        metrics = list(dict.fromkeys(m for m, _, _, _ in rows))
        ncols = min(3, len(metrics))
        nrows = -(-len(metrics) // ncols)
        fig, axes = _figure(2.5 * nrows, ncols=ncols, nrows=nrows)
        for ax, metric in zip(axes, metrics, strict=False):
            mine = [r for r in rows if r[0] == metric]
            x = np.arange(len(mine))
            base = [np.nan if b is None else b for _, _, b, _ in mine]
            final = [np.nan if f is None else f for _, _, _, f in mine]
            for offset, values, color, label in ((-0.2, base, BEFORE, "base"), (0.2, final, AFTER, "fine-tuned")):
                bars = ax.bar(x + offset, values, width=0.4, color=color, label=label)
                for rect, v in zip(bars, values, strict=True):
                    if not np.isnan(v):
                        where = (rect.get_x() + rect.get_width() / 2, v)
                        ax.annotate(
                            f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}", where, ha="center", va="bottom", fontsize=7
                        )
            ax.set_xticks(x, [s for _, s, _, _ in mine])
            ax.set_title(metric, fontsize=10)
            ax.margins(y=0.15)
            if metric == "perplexity":  # base and final differ by orders of magnitude
                ax.set_yscale("log")
                ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
                ax.yaxis.set_minor_formatter(NullFormatter())
            ax.grid(axis="x", visible=False)
        for ax in axes[len(metrics) :]:
            ax.set_visible(False)
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper right", ncols=2, fontsize=8)
        fig.suptitle("Base model vs fine-tuned model", fontweight="bold")
        return _svg(fig)

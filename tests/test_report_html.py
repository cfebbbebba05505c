"""report.html: built from a run folder, self-contained, tolerant of missing parts, and checked in headless Chromium."""

import base64
import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl
import pytest
from browser import open_page, require_browser
from test_report import STAGES, stage

from flows.layout import RunPaths
from flows.manifest import accounting
from flows.report_data import model_metrics, shared_ngrams, training_curves
from flows.report_html import write_html_report

DECONTAMINATE = stage(
    "decontaminate",
    7,
    6,
    dropped=1,
    reasons={"contaminated_13gram": 1},
    extra={
        "heldout_records": 2,
        "heldout_ngrams": 40,
        "flagged": 1,
        "action": "drop",
        "top_ngrams": [
            {"ngram": "please reset my password because the link in the email has already expired", "count": 1}
        ],
    },
)
AUGMENT = stage(
    "augment",
    6,
    9,
    added=3,
    extra={
        "per_kind": {
            "synonym": {"made": 2, "failed": 1, "aug_identical": 0, "aug_near_holdout": 1},
            "word_noise": {"made": 1, "failed": 0, "aug_length_ratio": 2},
        },
        "diversity": {"synonym": {"distinct_1": 0.5, "distinct_2": 0.8, "edit_rate": 0.2}},
        "examples": [{"kind": "synonym", "source": "the big dog barked", "variant": "the large dog barked"}],
    },
)
FULL_STAGES = [
    STAGES[0],
    STAGES[1],
    stage("split", 7, 7, extra={"small_strata": ["warranty"]}),
    DECONTAMINATE,
    AUGMENT,
]
SECTIONS = ["funnel", "reasons", "splits", "lengths", "augmentation", "decontamination", "training", "identity"]


def write_run(out: Path, stages=FULL_STAGES, metrics: dict | None = None, **model_files) -> RunPaths:
    """A small finished run folder: manifest, tokenized lengths, the files records went to, and a model folder."""
    paths = RunPaths(out).make()
    manifest = {
        "name": "t",
        "inputs": [{"source": "data/a.jsonl", "bytes": 10, "sha256": "a" * 64}],
        "config": {"tokenizer": {"max_length": 16}},
        "versions": {"python": "3.11", "polars": "1"},
        "git_commit": "abc123",
        "stages": stages,
        "accounting": accounting(stages),
        "dropped_by_reason": {"exact_dedup:exact_duplicate": 1},
        "quarantined_by_reason": {"empty_file": 1, "malformed_json": 1},
        "splits": {
            "train": {"rows": 9, "tokens": 90, "shards": [{"file": "shards/train/d.arrow", "rows": 9, "sha256": "b"}]},
            "validation": {"rows": 1, "tokens": 9, "shards": []},
            "test": {"rows": 1, "tokens": 8, "shards": []},
        },
        "profile": {
            "per_split": {"train": {"original": 6, "augmented": 3}},
            "per_label": {
                "train": {"billing": 6, "warranty": 3},
                "validation": {"billing": 1},
                "test": {"billing": 1, "warranty": 0},
            },
        },
        "tokenizer": {"name": "sp", "vocab_size": 300, "sha256": "c" * 64},
    }
    paths.manifest.write_text(json.dumps(manifest))
    pl.DataFrame(
        {
            "split": ["train"] * 9 + ["validation", "test"],
            "n_tokens": [3, 5, 9, 12, 16, 16, 7, 8, 4, 9, 8],
            "window": [0] * 11,
            "label": ["billing"] * 11,
            "aug_of": pl.Series([None] * 11, dtype=pl.String),
        }
    ).write_parquet(paths.stage_file("tokenized"))
    pl.DataFrame({"id": ["x"], "stage": ["exact_dedup"], "reason": ["exact_duplicate"]}).write_parquet(
        paths.dropped / "exact_dedup.parquet"
    )
    (paths.quarantine / "load.jsonl").write_text('{"reason": "empty_file"}\n{"reason": "malformed_json"}\n')
    if metrics is not None:
        paths.model.mkdir()
        (paths.model / "metrics.json").write_text(json.dumps(metrics))
        for name, content in model_files.items():
            (paths.model / name.replace("_", ".", 1)).write_text(content)
    return paths


NEW_METRICS = {
    "base": {
        "validation": {
            "loss": 6.0,
            "perplexity": 403.4,
            "token_accuracy": 0.05,
            "generation": {"bleu": 0.01, "f1": 0.1, "n": 2},
        },
        "test": {"loss": 6.1, "perplexity": 445.9, "token_accuracy": 0.04},
    },
    "final": {
        "validation": {
            "loss": 3.0,
            "perplexity": 20.1,
            "token_accuracy": 0.4,
            "generation": {"bleu": 0.2, "f1": 0.5, "n": 2},
        },
        "test": {"loss": 3.1, "perplexity": 22.2, "token_accuracy": 0.38},
    },
    "best_step": 40,
    "stopped_early": True,
    "train_tokens": 1000,
    "tokens_per_s": 250.0,
}
# The fine-tuning rewrite's files: samples.json, trials.json, TensorBoard tags "<phase>/<split>/<metric>".
SAMPLES = json.dumps(
    [
        {
            "split": "validation",
            "id": "r1",
            "context": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello, how can I help?"},
                {"role": "user", "content": "Where is my order?"},
                {"role": "assistant", "content": "Which order?"},
                {"role": "user", "content": "Order 12."},
            ],
            "reference": "It ships today.",
            "base": "banana banana",
            "final": "It ships tomorrow.",
        },
        {
            "split": "test",
            "id": "r2",
            "context": "Reset my password",
            "reference": "Use the reset link.",
            "final": "Click the reset link.",
        },
    ]
)


def trial(n: int, lr: float, loss: float) -> dict:
    final = {"validation": {"loss": loss, "perplexity": 2.718**loss, "generation": {"bleu": 10 - loss, "n": 4}}}
    metrics = {"base": {"validation": {"loss": 6.0}}, "final": final, "best_step": 40, "stopped_early": False}
    return {
        "trial": n,
        "settings": {"lr": lr, "lora": {"r": 8}},
        "dir": f"trials/{n}",
        "best": n == 2,
        "metrics": metrics,
    }


TRIALS = json.dumps({"best_trial": 2, "trials": [trial(1, 0.001, 3.5), trial(2, 0.0003, 2.9), trial(3, 0.003, 4.2)]})


def write_tensorboard(model_dir: Path, hf_names: bool = False) -> None:
    """Scalars as the fine-tuning loop logs them, or under the names Hugging Face's Trainer uses."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(model_dir / "tb"))
    for step in range(1, 51):
        writer.add_scalar("train/loss", 6.0 - step * 0.05, step)
        writer.add_scalar("train/learning_rate" if hf_names else "train/lr", 1e-3 * min(1.0, step / 10), step)
    for step in (20, 40, 50):
        writer.add_scalar("eval/loss" if hf_names else "eval/validation/loss", 5.0 - step * 0.03, step)
    if not hf_names:
        writer.add_scalar("base/validation/loss", 6.0, 0)
        writer.add_scalar("final/validation/loss", 3.0, 50)
        writer.add_scalar("final/test/perplexity", 22.2, 50)
    writer.close()


@pytest.fixture
def full_run(tmp_path) -> RunPaths:
    paths = write_run(tmp_path / "run", metrics=NEW_METRICS, samples_json=SAMPLES, trials_json=TRIALS)
    write_tensorboard(paths.model)
    write_html_report(paths, paths.model / "metrics.json")
    return paths


def images(page: str) -> list[ET.Element]:
    """Every inline figure, parsed: each must be a well-formed SVG with a size."""
    out = []
    for data in re.findall(r'<img class="plot" alt="[^"]*" src="data:image/svg\+xml;base64,([^"]+)"', page):
        root = ET.fromstring(base64.b64decode(data))
        assert root.tag.endswith("svg") and float(root.get("width").removesuffix("pt")) > 0
        out.append(root)
    return out


def test_full_report_has_every_section_and_is_self_contained(full_run):
    page = full_run.report_html.read_text()
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in page, anchor
    assert (
        len(images(page)) == page.count("<img") == 9
    )  # funnel, reasons, labels, lengths, aug, n-grams, loss, lr, base/final
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert not [r for r in refs if re.match(r"(https?:)?//", r)], "report.html must not reach the network"
    for ref in refs:
        if not ref.startswith(("data:", "#")):
            assert (full_run.out / ref).exists() or f'title="not in this run folder"><code>{ref}' in page, ref
    assert '<a href="dropped/exact_dedup.parquet">' in page and '<a href="quarantine/load.jsonl">' in page
    assert "please reset my password because the link" in page  # decontamination n-grams
    assert "<del>big</del>" in page and "<ins>large</ins>" in page
    assert "It ships tomorrow." in page and "It ships today." in page and "banana banana" in page
    assert "<b>user</b>: Order 12." in page and "Hello, how can I help?" not in page  # the last turns of the context
    assert '<tr class="best"><td class="num" data-value="2">' in page  # the exported trial
    assert "Squares: the base model before training; stars: the exported (best) model." in page
    assert 'class="sortable trials"' in page or 'class="trials sortable"' in page
    assert "thin in held-out" in page and "too small to split" in page  # warranty is flagged
    assert "stopped early" in page and "best step" in page
    assert "report.md" in page and "a" * 64 in page  # identity: input hashes


def test_training_curves_from_tensorboard_and_json_logs(tmp_path):
    write_tensorboard(tmp_path / "ours")
    curves = training_curves(tmp_path / "ours")
    assert set(curves) == {
        "train/loss",
        "train/lr",
        "validation/loss",
        "validation/loss@base",
        "validation/loss@final",
        "test/perplexity@final",
    }
    assert [s for s, _ in curves["validation/loss"]] == [20, 40, 50] and len(curves["train/loss"]) == 50
    assert curves["validation/loss@base"] == [(0, 6.0)]
    write_tensorboard(tmp_path, hf_names=True)
    curves = training_curves(tmp_path)
    assert set(curves) == {"train/loss", "train/lr", "validation/loss"}

    hf = tmp_path / "hf"
    (hf / "checkpoint-20").mkdir(parents=True)
    history = [{"step": 10, "loss": 2.0, "learning_rate": 1e-3, "epoch": 0.5}, {"step": 20, "eval_loss": 1.5}]
    (hf / "checkpoint-20" / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    assert training_curves(hf) == {
        "train/loss": [(10, 2.0)],
        "train/lr": [(10, 1e-3)],
        "validation/loss": [(20, 1.5)],
    }
    (hf / "log.jsonl").write_text(
        '{"step": 1, "split": "validation", "loss": 3.0}\nnot json\n{"step": 2, "train/loss": 2.5}\n'
    )
    assert training_curves(hf) == {"validation/loss": [(1, 3.0)], "train/loss": [(2, 2.5)]}
    assert training_curves(tmp_path / "missing") == {}


def test_metrics_in_both_shapes():
    today = {
        "initial": {"validation": {"loss": 6.0, "perplexity": 403.4, "tokens": 9}},
        "validation": {"loss": 3.0, "perplexity": 20.1, "tokens": 9},
        "test": {"loss": 3.1, "perplexity": 22.2},
        "train": {"steps": 5, "tokens": 100, "seconds": 1.0, "tokens_per_s": 100.0},
    }
    m = model_metrics(today)
    assert m["base"] == {"validation": {"loss": 6.0, "perplexity": 403.4}}
    assert set(m["final"]) == {"validation", "test"} and m["facts"]["train_steps"] == 5
    m = model_metrics(NEW_METRICS)
    assert m["final"]["validation"] == {"loss": 3.0, "perplexity": 20.1, "token_accuracy": 0.4, "bleu": 0.2, "f1": 0.5}
    assert m["facts"] == {"best_step": 40, "stopped_early": True, "train_tokens": 1000, "tokens_per_s": 250.0}
    assert model_metrics(None) == {"base": {}, "final": {}, "facts": {}}
    grouped = {"loss": 3.0, "by_format": {"chat": {"loss": 2.9, "tokens": 7}}}
    grouped["by_task"] = {"support": {"loss": 2.8, "generation": {"bleu": 4.0, "n": 2}}}
    assert model_metrics({"final": {"test": grouped}})["final"]["test"] == {
        "loss": 3.0,
        "chat: loss": 2.9,
        "task support: loss": 2.8,
        "task support: bleu": 4.0,
    }


def test_shared_ngrams_in_any_reasonable_shape():
    expected = [("b c d", 5), ("a b c", 2)]
    assert shared_ngrams({"top_ngrams": [{"ngram": "a b c", "count": 2}, {"ngram": "b c d", "count": 5}]}) == expected
    assert shared_ngrams({"shared_ngrams": {"a b c": 2, "b c d": 5}}) == expected
    assert shared_ngrams({"ngrams": [["a b c", 2], ["b c d", 5]]}) == expected
    assert shared_ngrams({"top_shared_ngrams": [{"ngram": ["a", "b", "c"], "records": 2}]}) == [("a b c", 2)]
    assert shared_ngrams({"heldout_ngrams": 4058, "flagged": 3}) == []


def test_report_of_todays_training_run_and_of_a_prepare_only_run(tmp_path):
    today = {
        "initial": {"validation": {"loss": 6.0, "perplexity": 403.4}},
        "validation": {"loss": 3.0, "perplexity": 20.1},
        "test": {"loss": 3.1, "perplexity": 22.2},
        "train": {"steps": 5, "tokens": 100, "seconds": 1.0, "tokens_per_s": 100.0},
    }
    stages = [*FULL_STAGES[:3], stage("decontaminate", 7, 6, dropped=1, extra={"flagged": 1}), AUGMENT]
    paths = write_run(tmp_path / "trained", stages=stages, metrics=today)
    page = write_html_report(paths, paths.model / "metrics.json").read_text()
    assert '<section id="training">' in page and "403.4 → 20.1" in page
    assert "Grid-search trials" not in page and "Generated samples" not in page
    assert "records no per-n-gram figures" in page
    assert len(images(page)) == 6  # no curves without logs: funnel, reasons, labels, lengths, aug, base/final

    paths = write_run(tmp_path / "prepared", stages=FULL_STAGES[:2])
    page = write_html_report(paths).read_text()
    assert '<section id="training">' not in page and '<section id="augmentation">' not in page
    assert '<section id="funnel">' in page and '<section id="identity">' in page


def test_report_in_chromium_loads_plots_and_sorts_trials(full_run, tmp_path):
    chromium = require_browser()

    def sort_by_loss(page):
        headers = page.locator("table.trials th")
        column = headers.all_inner_texts().index("validation loss") + 1
        first_cell = f"table.trials tbody tr:first-child td:nth-child({column})"
        for _ in range(2):
            headers.nth(column - 1).click()
            sort_results.append(page.inner_text(first_cell))

    sort_results: list[str] = []
    shot = tmp_path / "full.png"
    check = open_page(full_run.report_html, shot, chromium, full_page=True, actions=sort_by_loss)
    assert check.console_errors == []
    assert check.requests == [full_run.report_html.resolve().as_uri()]
    assert len(check.images) == 9
    for img in check.images:
        assert img["complete"] and img["naturalWidth"] > 0 and img["width"] > 0 and img["height"] > 0, img
    assert sort_results == ["2.9", "4.2"]  # ascending, then descending validation loss
    assert shot.stat().st_size > 10_000


@pytest.mark.slow
def test_demo_report_renders_in_chromium(run_dir, tmp_path):
    """The demo run's report.html in headless Chromium: no console errors, every plot loaded with a size."""
    chromium = require_browser()
    page_file = run_dir / "report.html"
    page = page_file.read_text()
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in page, anchor
    assert 'alt="loss curves over steps"' in page and 'alt="base vs final metrics"' in page
    shot = tmp_path / "demo-top.png"
    check = open_page(page_file, shot, chromium)
    assert check.console_errors == []
    assert check.requests == [page_file.resolve().as_uri()], "report.html must load nothing but itself"
    assert len(check.images) == page.count("<img") >= 8
    for img in check.images:
        assert img["complete"] and img["naturalWidth"] > 0 and img["width"] > 0 and img["height"] > 0, img
    assert check.title.startswith("tuneprep run report")
    assert shot.stat().st_size > 10_000
    if os.environ.get("TUNEPREP_SCREENSHOTS"):  # keep it, e.g. as a CI artifact
        shutil.copy(shot, Path(os.environ["TUNEPREP_SCREENSHOTS"]) / shot.name)


@pytest.mark.slow
def test_flow_publishes_report_artifacts(run_dir):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    keys = ["tuneprep-report", "tuneprep-stage-counts", "tuneprep-output"]
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    by_key = {k: [a for a in found if a.key == k] for k in keys}
    assert all(by_key.values()), by_key
    assert all(a.type == "markdown" and "report.html" in a.data for a in by_key["tuneprep-report"])
    assert all(a.type == "table" and "decontaminate" in str(a.data) for a in by_key["tuneprep-stage-counts"])
    links = by_key["tuneprep-output"]
    assert any(a.data == f"[{run_dir.resolve()}]({run_dir.resolve().as_uri()})" for a in links)  # links are markdown


def test_plots_stay_readable_for_many_labels_and_long_runs():
    from flows import plots

    per_label = {"train": {f"label{i:02d}": 100 - i for i in range(45)}, "validation": {"label00": 3}}
    assert "26 other labels" in plots.label_balance(per_label)  # 19 largest labels + one lumped entry
    steps = 20_000
    long_run = plots.curves({"train/loss": [(i, 1 / (i + 1)) for i in range(steps)]}, "loss", "loss")
    short_run = plots.curves({"train/loss": [(i, 1 / (i + 1)) for i in range(plots.MAX_POINTS)]}, "loss", "loss")
    assert len(long_run) < 1.2 * len(short_run)


def test_cli_report_writes_both_reports_and_opens_the_page(tmp_path, monkeypatch, capsys):
    import webbrowser

    from flows.cli import main

    paths = write_run(tmp_path / "run", metrics=NEW_METRICS)
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    assert main(["report", str(paths.out), "--open"]) == 0
    assert paths.report.exists() and paths.report_html.exists()
    assert opened == [paths.report_html.resolve().as_uri()]
    assert str(paths.report_html) in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no manifest.json" in capsys.readouterr().err

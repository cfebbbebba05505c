from flows.manifest import accounting
from flows.report import histogram, render, word_diff


def stage(name, read, kept, dropped=0, quarantined=0, added=0, reasons=None, **extra):
    return {
        "name": name,
        "read": read,
        "kept": kept,
        "dropped": dropped,
        "quarantined": quarantined,
        "added": added,
        "reasons": reasons or {},
        "seconds": 0.1,
        **extra,
    }


STAGES = [
    stage("load", 10, 8, quarantined=2, reasons={"empty_file": 1, "malformed_json": 1}),
    stage("exact_dedup", 8, 7, dropped=1, reasons={"exact_duplicate": 1}),
    stage(
        "augment",
        7,
        9,
        added=2,
        extra={"examples": [{"kind": "synonym", "source": "the big dog", "variant": "the large dog"}]},
    ),
]


def test_accounting_catches_a_lost_record():
    assert accounting(STAGES)["ok"]
    broken = [*STAGES[:1], stage("exact_dedup", 8, 6, dropped=1)]
    result = accounting(broken)
    assert not result["ok"] and result["stages"][1]["balanced"] is False
    unchained = [*STAGES[:1], stage("exact_dedup", 7, 7)]
    assert accounting(unchained)["stages"][1]["reads_previous_kept"] is False


def test_report_shows_stages_reasons_splits_examples_and_model():
    manifest = {
        "name": "t",
        "inputs": [{"source": "a"}],
        "stages": STAGES,
        "accounting": accounting(STAGES),
        "dropped_by_reason": {"exact_dedup:exact_duplicate": 1},
        "quarantined_by_reason": {"empty_file": 1},
        "splits": {
            "train": {"rows": 7, "tokens": 70},
            "validation": {"rows": 1, "tokens": 9},
            "test": {"rows": 1, "tokens": 8},
        },
        "profile": {"per_split": {"train": {"original": 5, "augmented": 2}}, "per_label": {"train": {"billing": 7}}},
        "tokenizer": {"name": "sp", "vocab_size": 300, "sha256": "abc"},
    }

    def split(loss, ppl, bleu=None):
        m = {"loss": loss, "perplexity": ppl, "token_accuracy": 0.5, "tokens": 9}
        m["by_format"] = {"text": dict(m), "chat": dict(m)}
        if bleu is not None:
            m["generation"] = {"bleu": bleu, "rouge_l": bleu / 100, "f1": 0.3, "n": 4}
        return m

    metrics = {
        "base": {"validation": split(6.0, 403.4, 0.5), "test": split(6.1, 445.9)},
        "final": {"validation": split(3.0, 20.1, 12.5), "test": split(3.1, 22.2)},
        "best_step": 5,
        "stopped_early": True,
        "train_tokens": 100,
        "tokens_per_s": 100.0,
    }
    files = {
        "training": {
            "model": {"source": "scratch", "mode": "from scratch", "parameters": 1000, "trained": 1000},
            "steps": 7,
            "max_steps": 20,
            "device": "cpu",
            "precision": "fp32",
        },
        "samples": [
            {
                "context": [{"role": "user", "content": "where | is it?"}],
                "reference": "here",
                "base": "x",
                "final": "here",
            }
        ],
        "trials": {
            "best_trial": 1,
            "trials": [
                {"trial": 0, "settings": {"lr": 0.1}, "best": False, "metrics": metrics},
                {"trial": 1, "settings": {"lr": 0.01}, "best": True, "metrics": metrics},
            ],
        },
    }
    text = render(manifest, metrics, {"train": [3, 5, 9, 12], "validation": [4], "test": []}, files)
    assert "Accounting (kept + dropped + quarantined = read, at every stage): **OK**" in text
    assert "| exact_dedup:exact_duplicate | 1 |" in text and "`quarantine/load.jsonl`" in text
    assert "validation perplexity **403.4 → 20.1**" in text and "BLEU **0.5 → 12.5**" in text
    assert "| validation | chat | 9 | 6.000 → 3.000 | 403.4 → 20.1 |" in text
    assert "| validation | 4 | 0.50 → 12.50 |" in text and "for 7 of 20 steps (stopped early)" in text
    assert "where \\| is it?" in text and "| 1 | 0.01 | 3 | 20.1 | 12.5 |" in text and "Grid search: 2 trials" in text
    assert "<del>big</del>" in text and "<ins>large</ins>" in text
    assert "| billing | 7 |" in text


def test_histogram_and_word_diff():
    h = histogram([1, 1, 1, 10], bins=3)
    assert h.splitlines()[0].split()[1] == "3" and "█" in h
    left, right = word_diff("keep this word", "keep that word")
    assert left == "keep <del>this</del> word" and right == "keep <ins>that</ins> word"


def test_a_run_from_before_base_final_metrics_still_reports(tmp_path):
    from flows.report import _current_shape

    old = {
        "initial": {"validation": {"loss": 6.0, "perplexity": 403.4, "token_accuracy": 0.1}},
        "validation": {"loss": 3.0, "perplexity": 20.1, "token_accuracy": 0.4},
        "test": {"loss": 3.1, "perplexity": 22.2, "token_accuracy": 0.4},
        "train": {"steps": 5, "tokens": 100, "seconds": 1.0, "tokens_per_s": 100.0},
    }
    new = _current_shape(old)
    assert new["base"]["validation"]["perplexity"] == 403.4 and new["final"]["test"]["loss"] == 3.1
    assert new["best_step"] == 5 and _current_shape(new) is new

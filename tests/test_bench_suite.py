"""The benchmark runner (`make bench`): discovery, headline parsing, statuses and the summary table.

Nothing heavy runs here: stand-in benchmarks are one-line Python commands.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import SKIP_EXIT, Headline, parse_headlines  # noqa: E402
from bench.suite import Bench, Result, discover, outcome, run_one, summary, table  # noqa: E402


class FakeBench(Bench):
    """A benchmark whose command is a Python snippet."""

    def __init__(self, name: str, code: str) -> None:
        super().__init__(name, Path(__file__))
        self.code = code

    def command(self, quick: bool) -> list[str]:
        return [sys.executable, "-c", self.code]


def test_discovers_every_bench_folder_with_a_run_script():
    names = [b.name for b in discover()]
    expected = {p.parent.name for p in (ROOT / "bench").glob("*/run.py")}
    assert set(names) == expected
    assert {"dedup", "extract", "pipeline", "tokenize"} <= set(names)
    assert names == sorted(names)


def test_discovery_finds_a_new_bench_by_its_run_script(tmp_path):
    for name in ("zeta", "alpha", "_private"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.py").write_text('ap.add_argument("--quick")\n' if name == "zeta" else "")
    (tmp_path / "no_script").mkdir()
    found = discover(tmp_path)
    assert [b.name for b in found] == ["alpha", "zeta"]
    assert [b.has_quick for b in found] == [False, True]
    assert found[1].command(quick=True)[-3:] == ["-m", "bench.zeta.run", "--quick"]
    assert "--quick" not in found[0].command(quick=True)


def test_every_bench_prints_a_headline():
    """The convention in bench/README.md: each run.py ends with headline lines (bench.common.headline)."""
    for b in discover():
        text = b.script.read_text(encoding="utf-8")
        assert "headline(" in text or "headline:" in text, f"bench/{b.name}/run.py prints no headline line"


@pytest.mark.parametrize(
    ("line", "expected", "met"),
    [
        (
            "headline: 12.3x tuneprep / datatrove docs/s (target >= 5x)",
            Headline(12.3, "x", "tuneprep / datatrove docs/s", ">=", 5),
            True,
        ),
        (
            "headline: 0.73x tuneprep / raw, text (target >= 0.8x)",
            Headline(0.73, "x", "tuneprep / raw, text", ">=", 0.8),
            False,
        ),
        (
            "headline: 1.10x peak RSS, 2,000 MB / 200 MB (target <= 1.25x)",
            Headline(1.1, "x", "peak RSS, 2,000 MB / 200 MB", "<=", 1.25),
            True,
        ),
        ("headline: -0.012 F1 difference (target >= 0)", Headline(-0.012, "", "F1 difference", ">=", 0), False),
        ("headline: 6,672 docs/s without a target", Headline(6672, "", "docs/s without a target"), None),
        ("headline: 100% facts kept (target ≥ 100%)", Headline(100, "%", "facts kept", "≥", 100), True),
    ],
)
def test_headline_lines_parse(line, expected, met):
    (h,) = parse_headlines(f"some output\n{line}\nmore")
    assert h == expected
    assert h.met is met


def test_headline_round_trips_and_ignores_other_lines():
    h = Headline(4.2, "x", "a / b rows/s", ">=", 5)
    assert parse_headlines(h.line()) == [h]
    assert parse_headlines("headline without colon 3x\nratio: 3x\n  headline: nonsense\n") == []


def test_outcome_statuses():
    assert outcome(0, "headline: 2x a (target >= 1x)") == ("ok", "")
    assert outcome(SKIP_EXIT, "skip: real data not found (x)") == ("skipped", "real data not found (x)")
    assert outcome(0, "skip: nothing to compare") == ("skipped", "nothing to compare")
    assert outcome(1, "Traceback ...\nValueError: boom") == ("failed", "ValueError: boom")
    assert outcome(None, "partial") == ("timeout", "")


def test_run_one_streams_logs_and_parses(tmp_path):
    code = "print('working'); print('headline: 6.00x a / b docs/s (target >= 5x)'); print('headline: 0.5x c (target >= 1x)')"
    res = run_one(FakeBench("fake", code), quick=False, timeout=60, logs=tmp_path)
    assert res.status == "ok"
    assert [(h.figure, h.met) for h in res.headlines] == [(6.0, True), (0.5, False)]
    assert "working" in (tmp_path / "fake.log").read_text()


def test_run_one_reports_skips_failures_and_timeouts(tmp_path):
    skipped = run_one(FakeBench("s", f"print('skip: no data'); raise SystemExit({SKIP_EXIT})"), False, 60, tmp_path)
    failed = run_one(FakeBench("f", "raise RuntimeError('broken baseline')"), False, 60, tmp_path)
    slow = run_one(FakeBench("t", "import time; print('start', flush=True); time.sleep(30)"), False, 1, tmp_path)
    assert (skipped.status, skipped.note) == ("skipped", "no data")
    assert failed.status == "failed" and "broken baseline" in failed.note
    assert slow.status == "timeout" and slow.seconds < 20


def test_summary_table_has_one_row_per_headline():
    results = [
        Result("dedup", "ok", 120.0, False, [Headline(60.1, "x", "tuneprep / datatrove", ">=", 5)]),
        Result(
            "augment", "ok", 60.0, True, [Headline(11, "x", "synonym", ">=", 10), Headline(9.2, "x", "swap", ">=", 10)]
        ),
        Result("extract", "skipped", 0.1, False, note="real data not found"),
    ]
    text = table(results)
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| bench")]
    assert len(rows) == 4
    assert "| dedup | tuneprep / datatrove | 60.1x | >= 5x | yes |" in text
    assert "| augment | swap | 9.20x | >= 10x | **no** | ok (quick) |" in text
    assert "skipped: real data not found" in text
    from datetime import UTC, datetime

    assert summary(results, True, datetime.now(UTC), (1.0, 2.0)).startswith("# Benchmark summary")


def test_cli_lists_the_benches():
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--list"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "pipeline" in out and "dedup" in out


def test_the_project_is_byte_compiled_even_where_python_may_not_write_bytecode(tmp_path, monkeypatch):
    """The baselines load their install-time bytecode; tuneprep's editable modules must have theirs too."""
    import bench.common as common

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("X = 1\n")
    monkeypatch.setattr(common, "ROOT", tmp_path)
    monkeypatch.setattr(common, "PACKAGES", ("pkg",))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    common.compile_project()
    assert [p.name.split(".")[0] for p in (tmp_path / "pkg" / "__pycache__").iterdir()] == ["mod"]

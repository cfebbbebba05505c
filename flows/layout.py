"""Where each artifact of a run lives: the output layout is a contract the README documents."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path


class RunPaths:
    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.work = self.out / "work"
        self.dropped = self.out / "dropped"
        self.quarantine = self.out / "quarantine"
        self.index = self.out / "index"
        self.tokenizer = self.out / "tokenizer"
        self.shards = self.out / "shards"
        self.model = self.out / "model"
        self.manifest = self.out / "manifest.json"
        self.timings = self.out / "timings.json"
        self.report = self.out / "report.md"
        self.report_html = self.out / "report.html"
        self.splits = self.out / "splits.parquet"
        self.heldout_index = self.index / "heldout.idx"

    def stage_file(self, name: str) -> Path:
        return self.work / f"{name}.parquet"

    def make(self) -> RunPaths:
        for d in (self.work, self.dropped, self.quarantine):
            d.mkdir(parents=True, exist_ok=True)
        return self


def default_out(cfg) -> str:
    """``runs/<name>``, or ``runs/<UTC timestamp>`` for a run without a name."""
    stamp = cfg.name or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return str(Path("runs") / stamp)

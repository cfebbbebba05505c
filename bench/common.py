"""What every benchmark shares: where the real data and the outputs live, and the headline line `make bench` reads.

A benchmark ends its stdout with one or more headline lines (``bench/README.md#conventions``)::

    headline: 12.3x tuneprep / datatrove docs/s (target >= 5x)

and, when it cannot run here (no ``../shared/data``, a baseline not installed), prints ``skip: <why>`` and
exits with ``SKIP_EXIT``, so the runner (``python -m bench``) can tell "not measurable here" from "broken".
"""

from __future__ import annotations

import operator
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "bench" / "out"
SKIP_EXIT = 3
PACKAGES = ("augment", "cleaners", "finetune", "flows", "ingest", "shards", "tuneprep")  # tuneprep's own code

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "≥": operator.ge, "≤": operator.le}
_NUM = r"[-+]?\d[\d,]*(?:\.\d+)?"
HEADLINE = re.compile(
    rf"^headline:\s*(?P<figure>{_NUM})(?P<unit>\S*)\s+(?P<what>.*?)"
    rf"(?:\s+\(target\s*(?P<op>>=|<=|≥|≤|>|<)\s*(?P<target>{_NUM})(?P<target_unit>\S*)\))?\s*$"
)


@dataclass(frozen=True)
class Headline:
    """One headline figure of a benchmark: the figure, what it measures and, when there is one, its target."""

    figure: float
    unit: str
    what: str
    op: str | None = None
    target: float | None = None

    @property
    def met(self) -> bool | None:
        """Whether the figure meets its target (None without a target)."""
        return None if self.op is None or self.target is None else _OPS[self.op](self.figure, self.target)

    @property
    def figure_text(self) -> str:
        return f"{_number(self.figure)}{self.unit}"

    @property
    def target_text(self) -> str:
        return "" if self.op is None else f"{self.op} {_number(self.target)}{self.unit}"

    def line(self) -> str:
        target = f" (target {self.target_text})" if self.op else ""
        return f"headline: {self.figure_text} {self.what}{target}"

    def to_dict(self) -> dict:
        return {**asdict(self), "met": self.met}


def compile_project() -> None:
    """Byte-compile tuneprep's own modules before anything is timed, as ``pip install`` does for what it installs.

    The baselines live in site-packages, compiled at install; tuneprep is an editable install, whose modules
    are compiled on first import and cached only where Python may write bytecode. With
    ``PYTHONDONTWRITEBYTECODE`` set (as on these machines) every fresh process would compile them again:
    0.25 s of a 9 s ``prepare``, charged to one side only.
    """
    import compileall

    for package in PACKAGES:
        compileall.compile_dir(ROOT / package, quiet=1)


def _number(x: float | None) -> str:
    """12,345 / 123 / 12.3 / 1.23 / 0.73 / 0.038: enough digits for a ratio or a difference, no noise on a rate."""
    if x is None:
        return ""
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if x == int(x):
        return f"{int(x)}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}" if abs(x) >= 1 else f"{x:.2g}"


def headline(figure: float, unit: str, what: str, op: str | None = None, target: float | None = None) -> Headline:
    """Print one headline line (call these last) and return it; ``unit`` is glued to the figure (``x``, ``MB``)."""
    h = Headline(round(float(figure), 4), unit, what, op, target)
    print(h.line(), flush=True)
    return h


def parse_headlines(text: str) -> list[Headline]:
    """Every well-formed headline line of a benchmark's stdout, in order."""
    found = []
    for line in text.splitlines():
        m = HEADLINE.match(line.strip())
        if m:
            op = m["op"]
            found.append(
                Headline(
                    float(m["figure"].replace(",", "")),
                    m["unit"],
                    m["what"].strip(),
                    op,
                    float(m["target"].replace(",", "")) if op else None,
                )
            )
    return found


def skip(reason: str) -> None:
    """Stop a benchmark that cannot run here, saying why in the form the runner reads."""
    print(f"skip: {reason}", flush=True)
    sys.exit(SKIP_EXIT)


def require_data(*paths: Path) -> None:
    """Skip unless every path exists (real data lives beside the project, in ``../shared/data``)."""
    missing = [p for p in paths if not p.exists()]
    if missing:
        names = ", ".join(str(p) for p in missing)
        skip(f"real data not found ({names}); benchmarks read it from ../shared/data beside the project root")


def require_modules(*modules: str) -> None:
    """Skip unless every baseline module imports; `make bench-setup` installs them."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        skip(f"baseline not installed ({', '.join(missing)}): run `make bench-setup`")

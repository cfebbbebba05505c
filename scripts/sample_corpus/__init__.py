"""Generator of tuneprep's bundled sample corpus (see scripts/make_sample_data.py for what it plants).

Logic lives in the modules (common, articles, web, docs, chats, tickets; plants is the registry of planted
items); every template, word list and article body lives in data/ (JSON tables, HTML/CSS templates, text).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .chats import build_chats
from .docs import build_docs
from .tickets import build_tickets
from .web import build_web


def build(report: dict | None = None) -> dict[str, bytes]:
    """Every file of the sample corpus, relative path -> bytes."""
    report = {} if report is None else report
    files: dict[str, bytes] = {}
    files.update(build_web(report))
    files.update(build_docs(report))
    files.update(build_chats(report))
    files.update(build_tickets(report))
    return dict(sorted(files.items()))


def write(out: Path, files: dict[str, bytes]) -> None:
    """Wipe out/ and write files into it, so no stale file survives a rerun."""
    out.mkdir(parents=True, exist_ok=True)
    for child in sorted(out.iterdir()):
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    for rel, data in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def summarize(files: dict[str, bytes], report: dict) -> str:
    """Sizes per folder plus where the near duplicates and chat/ticket plants landed."""
    groups: dict[str, list[int]] = {}
    for rel, data in files.items():
        groups.setdefault(rel.split("/")[0] if "/" in rel else rel, []).append(len(data))
    lines = [f"{k:22s} {len(v):4d} files {sum(v):9,d} bytes" for k, v in groups.items()]
    lines.append(f"{'total':22s} {len(files):4d} files {sum(map(len, files.values())):9,d} bytes")
    for name, (src, frac, jac) in report.get("near", {}).items():
        lines.append(f"near dup {name} ~ {src}: {frac:.1%} words changed, 3-gram Jaccard {jac}")
    lines.append(f"chat plant lines: {report['chat_lines']}")
    lines.append(f"ticket plants: {report['tickets']}")
    return "\n".join(lines)

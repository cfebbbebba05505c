"""The line clean-up every extractor's text ends with; its own module so both extractor modules share it."""

from __future__ import annotations

PRE_NL = "\ue000"  # a newline inside <pre>, kept through the whitespace tidying


def tidy(text: str) -> str:
    """Lines stripped, runs of blank lines cut to one, ends trimmed; ``PRE_NL`` back to newlines."""
    lines = [ln.strip() for ln in text.split("\n")]
    kept: list[str] = []
    for ln in lines:
        if ln or (kept and kept[-1]):
            kept.append(ln)
    return "\n".join(kept).strip().replace(PRE_NL, "\n")

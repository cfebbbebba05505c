"""Error text for quarantine entries and logs; no heavy imports, so worker processes can use it."""

from __future__ import annotations


def error_summary(e: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, short enough for a quarantine entry or a log line."""
    lines = str(e).strip().splitlines()
    text = f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"

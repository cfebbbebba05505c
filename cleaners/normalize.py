"""Unicode and whitespace normalisation of record text and chat message contents."""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import cache

import ftfy

from cleaners.config import NormalizeConfig
from tuneprep.stage import TextMap

# Small English list so `remove_stopwords` works offline (no nltk corpus download).
_STOPWORDS = """a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves"""
ENGLISH_STOPWORDS = frozenset(_STOPWORDS.split())

_ODD_SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
# Zero-width and soft-hyphen format chars; ZWJ/ZWNJ are kept (emoji sequences, Indic and Persian scripts).
_INVISIBLE = re.compile("[\u00ad\u180e\u200b\u2060\ufeff]")
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_LINE_BREAKS = str.maketrans({"\r": "\n", "\x0b": "\n", "\x0c": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n\n"})
_SPACE_RUN = re.compile(r"[ \t]{2,}|\t")


def _cp1252_table() -> tuple[dict[str, int], str]:
    """Char -> byte for cp1252 as mis-decoded text shows it (undefined bytes appear as C1 controls)."""
    table: dict[str, int] = {}
    for b in range(0x80, 0x100):
        try:
            ch = bytes([b]).decode("cp1252")
        except UnicodeDecodeError:
            ch = chr(b)
        table[ch] = b
    return table, "".join(re.escape(c) for c in table if 0x80 <= table[c] <= 0xBF)


_CP1252, _CONT = _cp1252_table()
# Any UTF-8 lead byte shown as cp1252 followed by a continuation byte: cheap gate before the costly ftfy call.
_MOJIBAKE_HINT = re.compile(
    "[" + "".join(re.escape(c) for c, b in _CP1252.items() if 0xC2 <= b <= 0xF4) + f"][{_CONT}]"
)


def fix_mojibake(text: str) -> str:
    """Repair UTF-8 read as cp1252/latin-1 ("donâ€™t" -> "don’t") with ftfy, behind a cheap regex gate."""
    if not _MOJIBAKE_HINT.search(text):
        return text
    return ftfy.fix_encoding(text)


@cache
def _punct_table() -> dict[int, None]:
    return {cp: None for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)).startswith("P")}


def _collapse(text: str, keep_indent: bool, max_blank: int) -> str:
    out: list[str] = []
    blanks = 0
    for raw in text.split("\n"):
        line = raw.rstrip()
        if not line:
            blanks += 1
            continue
        if out and blanks:
            out.extend([""] * min(blanks, max_blank))
        blanks = 0
        body = line.lstrip(" \t")
        if "  " in body or "\t" in body:
            body = _SPACE_RUN.sub(" ", body)
        out.append(line[: len(line) - len(line.lstrip(" \t"))] + body if keep_indent else body)
    return "\n".join(out)


_DEFAULT = NormalizeConfig()


def normalize_text(text: str | None, cfg: NormalizeConfig | None = None) -> str:
    """One canonical form per text so filters and dedup see through encoding and spacing noise."""
    if not text:
        return ""
    cfg = cfg or _DEFAULT
    ascii_only = text.isascii()  # skips the Unicode-only steps for most English text
    if cfg.fix_mojibake and not ascii_only:
        text = fix_mojibake(text)
    text = text.replace("\r\n", "\n").translate(_LINE_BREAKS)
    if cfg.unicode_form and not ascii_only:
        text = unicodedata.normalize(cfg.unicode_form, text)
    if cfg.normalize_spaces and not ascii_only:
        text = _ODD_SPACES.sub(" ", text)
    if cfg.strip_control_chars:
        text = _CONTROL.sub("", text if ascii_only else _INVISIBLE.sub("", text))
    if cfg.lowercase:
        text = text.lower()
    if cfg.remove_punctuation:
        text = text.translate(_punct_table())
    if cfg.remove_stopwords:
        stop = frozenset(w.lower() for w in cfg.stopwords) if cfg.stopwords is not None else ENGLISH_STOPWORDS
        text = "\n".join(" ".join(w for w in ln.split(" ") if w.lower() not in stop) for ln in text.split("\n"))
    if cfg.collapse_whitespace:
        text = _collapse(text, cfg.keep_indentation, cfg.max_blank_lines)
    else:
        text = "\n".join(ln.rstrip() for ln in text.split("\n")).strip("\n")
    return text


class Normalize(TextMap):
    """Normalises `text` and every chat message `content`; never drops (empty text is the length filter's call)."""

    name = "normalize"

    def __init__(self, cfg: NormalizeConfig | None = None) -> None:
        self.cfg = cfg or NormalizeConfig()

    def map_text(self, text: str, role: str | None) -> str:
        return normalize_text(text, self.cfg)

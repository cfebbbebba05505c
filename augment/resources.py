"""Offline resources for augmentation: WordNet for nltk and the apertium binary.

There is no model or data hub at run time, so WordNet comes from the Debian
``wordnet-base`` package when ``nltk.download`` cannot reach the internet.
"""

from __future__ import annotations

import io
import re
import shutil
import socket
import sys
import threading
import warnings
from pathlib import Path

DEBIAN_WORDNET = Path("/usr/share/wordnet")
DEBIAN_PACKAGE = "wordnet-base"

# WordNet 3.0 lexicographer files, numbered 00..44 (lexnames(5WN)); Debian does not ship this file.
LEXNAMES = [
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
]
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


class WordNetUnavailable(RuntimeError):
    """WordNet could neither be loaded, downloaded nor copied from the Debian package."""


def lexnames_text() -> str:
    """The ``lexnames`` file nltk reads first when it opens WordNet."""
    return "".join(f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))


_DATA_FILES = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}
_SS_TYPE = {"n": 1, "v": 2, "a": 3, "r": 4, "s": 5}


def build_index_sense(source: Path = DEBIAN_WORDNET) -> str:
    """Rebuild ``index.sense`` (sense key -> synset offset) from the data files.

    nltk opens it when it loads WordNet; Debian ships it in a separate package
    (``wordnet-sense-index``), so ``wordnet-base`` alone needs it derived.
    """
    synsets: dict[tuple[str, int], tuple[int, str, list[tuple[str, int]], int | None]] = {}
    for suffix in _DATA_FILES:
        with open(source / f"data.{suffix}", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(" "):
                    continue
                tok = line.split(" | ", 1)[0].split()
                offset, lexfile, ss_type, n_words = int(tok[0]), int(tok[1]), tok[2], int(tok[3], 16)
                words = [
                    (re.sub(r"\(.*\)$", "", tok[4 + 2 * i]).lower(), int(tok[5 + 2 * i], 16)) for i in range(n_words)
                ]
                pos_at = 4 + 2 * n_words
                head = None
                for k in range(int(tok[pos_at])):
                    sym, target = tok[pos_at + 1 + 4 * k], int(tok[pos_at + 2 + 4 * k])
                    if sym == "&" and head is None:
                        head = target
                synsets[(_DATA_FILES[suffix], offset)] = (lexfile, ss_type, words, head)
    senses: dict[tuple[str, str], list[int]] = {}
    for suffix, pos in _DATA_FILES.items():
        with open(source / f"index.{suffix}", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(" "):
                    continue
                tok = line.split()
                n_synsets = int(tok[2])
                senses[(tok[0], pos)] = [int(o) for o in tok[len(tok) - n_synsets :]]
    counts: dict[str, int] = {}
    cntlist = source / "cntlist.rev"
    if cntlist.is_file():
        for line in cntlist.read_text(encoding="utf-8").splitlines():
            key, _, count = line.split()
            counts[key] = int(count)
    lines = []
    for (pos, offset), (lexfile, ss_type, words, head) in synsets.items():
        head_name = head_id = ""
        if ss_type == "s" and head is not None:
            name, lex_id = synsets[("a", head)][2][0]
            head_name, head_id = name, f"{lex_id:02d}"
        for name, lex_id in words:
            key = f"{name}%{_SS_TYPE[ss_type]}:{lexfile:02d}:{lex_id:02d}:{head_name}:{head_id}"
            offsets = senses.get((name, pos), [])
            number = offsets.index(offset) + 1 if offset in offsets else 0
            lines.append(f"{key} {offset:08d} {number} {counts.get(key, 0)}\n")
    return "".join(sorted(lines))


def wordnet_loadable() -> bool:
    """True when ``nltk.corpus.wordnet`` opens and answers a query."""
    try:
        from nltk.corpus import wordnet as wn

        return bool(wn.synsets("dog"))
    except (LookupError, OSError):
        return False


def _try_download(target: Path, timeout: float) -> bool:
    """``nltk.download`` bounded in time: offline DNS can hang longer than a socket timeout."""
    import nltk

    result: list[bool] = []
    sink = io.StringIO()

    def worker() -> None:
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(timeout)
        try:
            result.append(
                bool(
                    nltk.download(
                        "wordnet", download_dir=str(target), quiet=True, raise_on_error=False, print_error_to=sink
                    )
                )
            )
        except Exception:
            result.append(False)
        finally:
            socket.setdefaulttimeout(old)

    thread = threading.Thread(target=worker, daemon=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        thread.start()
        thread.join(timeout * 2)
    return bool(result and result[0]) and wordnet_loadable()


def copy_debian_wordnet(nltk_data_dir: Path, source: Path = DEBIAN_WORDNET) -> Path:
    """Copy the database files (nltk refuses symlinked data) and write ``lexnames`` and ``index.sense``."""
    dest = nltk_data_dir / "corpora" / "wordnet"
    dest.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        if f.is_file():
            shutil.copyfile(f, dest / f.name)
    (dest / "lexnames").write_text(lexnames_text(), encoding="utf-8")
    if not (dest / "index.sense").is_file():
        (dest / "index.sense").write_text(build_index_sense(source), encoding="utf-8")
    return dest


def ensure_wordnet(nltk_data_dir: Path | None = None, try_download: bool = True, timeout: float = 5.0) -> str:
    """Make ``nltk.corpus.wordnet`` loadable offline and say how."""
    import nltk

    if wordnet_loadable():
        return "wordnet: already available to nltk"
    target = Path(nltk_data_dir) if nltk_data_dir is not None else Path(sys.prefix) / "nltk_data"
    if str(target) not in nltk.data.path:
        nltk.data.path.append(str(target))
    if try_download and _try_download(target, timeout):
        return f"wordnet: downloaded with nltk into {target}"
    if not (DEBIAN_WORDNET / "data.noun").is_file():
        raise WordNetUnavailable(
            f"WordNet not found: nltk.download('wordnet') failed and {DEBIAN_WORDNET} is missing; "
            f"install the Debian package: apt-get install {DEBIAN_PACKAGE}"
        )
    dest = copy_debian_wordnet(target)
    if not wordnet_loadable():
        raise WordNetUnavailable(f"copied {DEBIAN_WORDNET} to {dest} but nltk still cannot load WordNet")
    return (
        f"wordnet: copied from {DEBIAN_WORDNET} (Debian {DEBIAN_PACKAGE}) into {dest} and wrote lexnames, index.sense"
    )


def ensure_wordnet_index() -> str:
    """Build (or find) the compact WordNet index synonym swap reads (``augment.wordnet_index``) and say where."""
    from augment.wordnet_index import index_path, load_index

    return f"wordnet index for synonyms: {index_path(load_index().fingerprint)}"


def apertium_available(pair: str = "eng-spa") -> bool:
    """True when the apertium binary exists and, if ``pair`` is given, its mode is installed."""
    exe = shutil.which("apertium")
    if exe is None:
        return False
    if not pair:
        return True
    modes = [Path("/usr/share/apertium/modes"), Path("/usr/local/share/apertium/modes")]
    return any((m / f"{pair}.mode").is_file() for m in modes)


def main() -> None:
    print(ensure_wordnet())
    print(ensure_wordnet_index())
    print(f"apertium eng-spa: {'available' if apertium_available() else 'missing (apt-get install apertium-eng-spa)'}")


if __name__ == "__main__":
    main()

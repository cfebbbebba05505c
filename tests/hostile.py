"""A folder of good files mixed with every kind of hostile input the loader must survive.

Made in a test's tmp_path, not kept in git: FIFOs, sockets, symlink loops and file names that are not
UTF-8 cannot live in a repository. ``build`` returns what each bad entry must become (its quarantine
reason, by source) and the texts of the good records, every one of which must reach the shards.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

# Distinct, plain English, long enough for every filter, and sharing no 13-word run: each must reach the shards.
GOOD_TEXTS = [
    "My order arrived yesterday but the tent poles were bent in two places, so I would like to know how to get a replacement sent out before our trip next weekend.",
    "The checkout page keeps rejecting my card even though the bank says there is nothing wrong with it, and I have tried three different browsers this morning.",
    "Could you tell me whether the hiking boots in the spring catalogue run small, because my last pair from another shop pinched my toes on long walks?",
    "I was charged twice for the same sleeping bag and the second payment has not been reversed after a week, which leaves my account short for rent.",
    "Our club wants to order twenty headlamps for a night orienteering event and we would like to ask whether there is a discount for groups of that size.",
    "The water filter stopped working after two uses and the instructions do not explain how to clean the cartridge, so please advise what I should try next.",
    "When I changed my delivery address the confirmation email still showed the old street, and I am worried the parcel will go to my previous flat.",
    "Is it possible to return a backpack that has been used once on a short day hike if the hip belt turned out to be far too loose for me?",
    "The rain jacket I bought last autumn has started to leak along the shoulder seams, and I would like to find out if the warranty covers that kind of wear.",
    "Please cancel the camping stove on my latest order, as a friend has lent me one and I no longer need it for the festival in August.",
    "Your app logs me out every time I switch to another screen, which makes it impossible to finish writing a review of the trekking poles I bought.",
    "The gift card my sister gave me shows a balance of zero although she paid for it in the store, and the receipt is still in my drawer at home.",
    "Can the climbing rope be shipped to an island address, or do heavy items like that only go to the mainland because of the courier contract?",
    "I received a blue fleece instead of the green one shown on the website, and the packing slip lists the right colour, so something went wrong in the warehouse.",
    "The kayak paddle arrived without the drip rings that are shown in the photos, and the product page clearly says they are included in the box.",
    "My loyalty points from the summer sale never appeared on my profile, even though every purchase was made while I was logged in to the shop.",
]
DEEP_PAGE_TEXT = (
    "This article about repairing a torn tent fly survived a page nested one hundred thousand levels deep, and the "
    "cheap extractor still finds every word of it without parsing the whole tree."
)


@dataclass
class Hostile:
    root: Path
    bad: dict[str, str] = field(default_factory=dict)  # source -> quarantine reason (whole-entry units)
    bad_lines: dict[str, dict[str, str]] = field(default_factory=dict)  # source -> {locator: reason}
    good: list[str] = field(default_factory=list)  # texts that must reach the shards
    line_files: dict[str, int] = field(default_factory=dict)  # JSONL/CSV source -> physical lines


def _chat(user: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def build(root: Path, name: str = "hostile") -> Hostile:
    """Write the folder under ``root/name``; sources are cited as ``name/...``."""
    d = root / name
    d.mkdir(parents=True)
    h = Hostile(d)
    texts = iter(GOOD_TEXTS)

    def good(text: str) -> str:
        h.good.append(text)
        return text

    # Good files of every format.
    (d / "notes.txt").write_text(good(next(texts)))
    (d / "guide.md").write_text("# Care guide\n\n" + good(next(texts)))
    (d / "page.html").write_text(
        f"<html><body><article><h1>Help</h1><p>{good(next(texts))}</p></article></body></html>"
    )
    (d / "items.json").write_text(json.dumps({"records": [{"text": good(next(texts))}, {"body": good(next(texts))}]}))
    # A file name that is not UTF-8 (latin-1 bytes): read, with the name escaped losslessly in `source`.
    (d / os.fsdecode(b"caf\xe9-\xff.txt")).write_text(good(next(texts)))

    # JSONL: good lines around a line nested past Python's recursion limit, a malformed one, a blank one and bad bytes.
    lines = [json.dumps({"text": good(next(texts)), "label": "shipping"}), json.dumps({"text": good(next(texts))})]
    deep_line = '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}"
    raw = (
        "\n".join([lines[0], deep_line, '{"text": "unterminated', "", lines[1]]).encode()
        + b'\n{"text": "caf\xe9"}\n'
        + json.dumps(_chat(good(next(texts)), "Thanks for telling us, we will look into it today.")).encode()
    )  # no newline at the end: the last line still counts
    (d / "mixed.jsonl").write_bytes(raw)
    h.bad_lines["mixed.jsonl"] = {
        "line 2": "nesting_too_deep",
        "line 3": "malformed_json",
        "line 4": "blank_line",
        "line 6": "invalid_utf8",
    }
    h.line_files["mixed.jsonl"] = 7

    # CSV: an unterminated quote, a ragged row, NUL bytes and bad bytes, each costing its own row only.
    a, b, c, e = (good(next(texts)) for _ in range(4))
    rows = [
        "text,label",
        f'"{a}",billing',
        '"this quote never closes,billing',
        f'"{b}",billing',
        "one,two,three",
        "nul\x00in the row,billing",
        f'"{c}\nsecond line of the same cell",returns',
    ]
    h.good[-2] = c + "\nsecond line of the same cell"
    csv_bytes = ("\n".join(rows) + "\n").encode() + b"caf\xe9 row,billing\n" + f'"{e}",billing\n'.encode()
    (d / "tickets.csv").write_bytes(csv_bytes)
    h.bad_lines["tickets.csv"] = {
        "line 3": "unterminated_quote",
        "line 5": "ragged_row",
        "line 6": "nul_byte",
        "line 9": "invalid_utf8",
    }
    h.line_files["tickets.csv"] = 10

    # A page nested 100,000 <div>s deep: the DOM extractors are skipped, the plain-text fallback keeps its text.
    (d / "deep.html").write_text(
        "<html><body>" + "<div>" * 100_000 + f"<p>{DEEP_PAGE_TEXT}</p>" + "</div>" * 100_000 + "</body></html>"
    )
    h.good.append(DEEP_PAGE_TEXT)

    # Whole files that cannot be read, each one quarantine entry naming it.
    (d / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    h.bad["deep.json"] = "nesting_too_deep"
    (d / "empty.txt").write_bytes(b"")
    h.bad["empty.txt"] = "empty_file"
    (d / "latin1.txt").write_bytes("caf\xe9 au lait, not UTF-8".encode("latin-1"))
    h.bad["latin1.txt"] = "invalid_utf8"
    (d / "binary.txt").write_bytes(b"MZ\x00\x00binary\x00junk")
    h.bad["binary.txt"] = "nul_byte"
    (d / "bomb.txt.gz").write_bytes(gzip.compress(b"\0" * 51_000_000, compresslevel=1, mtime=0))
    h.bad["bomb.txt.gz"] = "too_large"
    (d / "bomb.jsonl.gz").write_bytes(gzip.compress(b'{"text": "x"}\n' * 4_000_000, compresslevel=1, mtime=0))
    h.bad["bomb.jsonl.gz"] = "too_large"
    whole = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
    (d / "truncated.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    h.bad["truncated.jsonl.gz"] = "corrupt_compressed"
    (d / "broken.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    h.bad["broken.parquet"] = "unreadable_file"

    # Entries that are not regular files, and links that lead nowhere.
    os.symlink("loop_b.txt", d / "loop_a.txt")
    os.symlink("loop_a.txt", d / "loop_b.txt")
    h.bad["loop_a.txt"] = h.bad["loop_b.txt"] = "symlink_loop"
    os.symlink(".", d / "back")  # a folder link back into the walk
    h.bad["back"] = "symlink_loop"
    os.symlink("nowhere.txt", d / "dangling.txt")
    h.bad["dangling.txt"] = "dangling_symlink"
    os.mkfifo(d / "pipe.jsonl")
    h.bad["pipe.jsonl"] = "not_a_regular_file"
    os.mkfifo(d / "fifo")  # no loadable extension: still reported, never opened
    h.bad["fifo"] = "not_a_regular_file"
    if os.path.exists("/dev/zero"):
        os.symlink("/dev/zero", d / "zeros.txt")
        h.bad["zeros.txt"] = "not_a_regular_file"
    with contextlib.suppress(OSError):  # a socket path must be short; skip where tmp_path is too long
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(d / "s.txt"))
        s.close()
        h.bad["s.txt"] = "not_a_regular_file"
    if os.geteuid() != 0:  # root reads anything: permission errors are tested with a patched open there
        (d / "secret.txt").write_text("unreadable")
        (d / "secret.txt").chmod(0)
        h.bad["secret.txt"] = "permission_denied"
        (d / "locked").mkdir()
        (d / "locked" / "x.txt").write_text("inside a folder that cannot be listed")
        (d / "locked").chmod(0)
        h.bad["locked"] = "permission_denied"

    (d / ".hidden.txt").write_text("hidden files are skipped by design")
    (d / "readme.bin").write_bytes(b"not a loadable extension: skipped and counted")
    return h


def physical_lines(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)

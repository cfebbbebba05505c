"""The bundled sample corpus exists, is reproducible, and carries every planted defect.

Stdlib only: similarity is word 3-gram Jaccard, HTML main text is what sits in <article>
(or <main> when a page has no article).
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import itertools
import json
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "sample_data"

_spec = importlib.util.spec_from_file_location("make_sample_data", ROOT / "scripts" / "make_sample_data.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

NEAR = 0.7  # planted near duplicates score at least this
UNRELATED = 0.55  # everything else scores below this


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def shingles(text: str) -> set[str]:
    w = words(text)
    return {" ".join(w[i : i + 3]) for i in range(max(1, len(w) - 2))}


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def similar_pairs(texts: dict[str, str], threshold: float) -> set[tuple[str, str]]:
    sh = {k: shingles(v) for k, v in texts.items()}
    return {
        (a, b) for a, b in itertools.combinations(sorted(sh), 2) if len(sh[a] & sh[b]) / len(sh[a] | sh[b]) >= threshold
    }


class MainText(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.article: list[str] = []
        self.main: list[str] = []
        self._in = Counter()

    def handle_starttag(self, tag, attrs):
        self._in[tag] += 1

    def handle_endtag(self, tag):
        self._in[tag] -= 1

    def handle_data(self, data):
        if any(self._in[t] for t in ("script", "style", "nav", "form", "button")):
            return
        if self._in["article"]:
            self.article.append(data)
        if self._in["main"]:
            self.main.append(data)


def main_text(html_text: str) -> str:
    p = MainText()
    p.feed(html_text)
    return " ".join(" ".join(p.article or p.main).split())


def web_html(name: str) -> str:
    data = (DATA / "web" / name).read_bytes()
    return (gzip.decompress(data) if name.endswith(".gz") else data).decode("utf-8")


@pytest.fixture(scope="module")
def web_texts() -> dict[str, str]:
    return {f.name: main_text(web_html(f.name)) for f in sorted((DATA / "web").iterdir()) if f.name != gen.WEB_BAD_UTF8}


@pytest.fixture(scope="module")
def chat_lines() -> list[str]:
    return (DATA / "support_chats.jsonl").read_text(encoding="utf-8").split("\n")[:-1]


@pytest.fixture(scope="module")
def tickets() -> list[dict]:
    with open(DATA / "tickets.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------------------- layout
def test_layout_and_size():
    assert sorted(p.name for p in DATA.iterdir()) == ["docs", "support_chats.jsonl", "tickets.csv", "web"]
    web = [f.name for f in (DATA / "web").iterdir()]
    docs = [f.name for f in (DATA / "docs").iterdir()]
    assert 30 <= len(web) <= 40 and 20 <= len(docs) <= 30
    assert all(n.endswith((".html", ".htm", ".html.gz")) for n in web)
    assert all(n.endswith((".txt", ".md")) for n in docs)
    assert not [n for n in web + docs if "readme" in n.lower()]
    total = sum(f.stat().st_size for f in DATA.rglob("*") if f.is_file())
    assert 250_000 <= total <= 450_000


def test_generator_reproduces_sample_data_exactly():
    files = gen.build()
    assert files == gen.build()
    on_disk = {str(f.relative_to(DATA)): f.read_bytes() for f in DATA.rglob("*") if f.is_file()}
    assert sorted(on_disk) == sorted(files)
    for rel, data in files.items():
        if rel.endswith(".gz"):  # zlib builds may differ in compressed bytes, never in content
            assert gzip.decompress(on_disk[rel]) == gzip.decompress(data), rel
        else:
            assert on_disk[rel] == data, f"{rel} is stale: rerun scripts/make_sample_data.py"


# ---------------------------------------------------------------------------------------- web
def test_web_special_files():
    gz = (DATA / "web" / gen.WEB_GZ).read_bytes()
    assert gz[:2] == b"\x1f\x8b" and gz[4:8] == b"\0\0\0\0"  # gzip, mtime 0
    assert (DATA / "web" / gen.WEB_HTM).exists()
    bad = (DATA / "web" / gen.WEB_BAD_UTF8).read_bytes()
    assert b"\xff\xfe" in bad
    with pytest.raises(UnicodeDecodeError):
        bad.decode("utf-8")


def test_web_boilerplate_and_lengths(web_texts):
    for name, text in web_texts.items():
        html_text = web_html(name)
        n = len(words(text))
        if name == gen.WEB_BOILERPLATE_ONLY:
            assert n < 20 and "<article" not in html_text
            continue
        assert 150 <= n <= 600, (name, n)
        if name.endswith("-print.html"):
            continue
        for marker in (
            '<div class="cookie-banner"',
            "Accept all cookies",
            "<nav",
            "<header",
            "<footer",
            "&copy;",
            "<script",
            "<style",
            "<aside",
            'class="breadcrumbs"',
        ):
            assert marker in html_text, (name, marker)


def test_web_duplicates(web_texts):
    for dup, src in gen.WEB_EXACT_DUPS.items():
        assert web_texts[dup] == web_texts[src]
        assert web_html(dup) != web_html(src)  # boilerplate differs
    for dup, src in gen.WEB_NEAR_DUPS.items():
        a, b = web_texts[src], web_texts[dup]
        assert a != b and jaccard(a, b) >= NEAR
    planted = {tuple(sorted(p)) for p in [*gen.WEB_EXACT_DUPS.items(), *gen.WEB_NEAR_DUPS.items()]}
    assert similar_pairs(web_texts, UNRELATED) == planted


# ---------------------------------------------------------------------------------------- docs
def test_docs_bad_records():
    d = DATA / "docs"
    assert (d / gen.DOCS_EMPTY).read_bytes() == b""
    assert len((d / gen.DOCS_TINY).read_text().split()) < 5
    bad = (d / gen.DOCS_BAD_BYTES).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        bad.decode("utf-8")
    assert "café" in bad.decode("latin-1")


def test_docs_mess_and_duplicates():
    d = DATA / "docs"
    raw = {f.name: f.read_bytes() for f in sorted(d.iterdir())}
    texts = {
        n: b.decode("utf-8") for n, b in raw.items() if n not in (gen.DOCS_BAD_BYTES, gen.DOCS_EMPTY, gen.DOCS_TINY)
    }
    joined = "".join(texts.values())
    assert "donâ€™t" in texts[gen.DOCS_MOJIBAKE]
    assert "\u00a0" in joined and "\t" in joined and "\n\n\n" in joined
    assert re.search(r"[ \t]\n", joined) and "\u201c" in joined and "\u2019" in joined
    assert "\r\n" in texts[gen.DOCS_CRLF]
    for name, text in texts.items():
        assert 100 <= len(words(text)) <= 800, name
    for dup, src in gen.DOCS_EXACT_DUPS.items():
        assert raw[dup] == raw[src]
    for dup, src in gen.DOCS_NEAR_DUPS.items():
        assert texts[dup] != texts[src] and jaccard(texts[dup], texts[src]) >= NEAR
    planted = {tuple(sorted(p)) for p in [*gen.DOCS_EXACT_DUPS.items(), *gen.DOCS_NEAR_DUPS.items()]}
    assert similar_pairs(texts, UNRELATED) == planted


def test_no_cross_source_near_duplicates(web_texts):
    docs = {
        f.name: f.read_text(encoding="utf-8")
        for f in (DATA / "docs").iterdir()
        if f.name not in (gen.DOCS_BAD_BYTES, gen.DOCS_EMPTY, gen.DOCS_TINY)
    }
    cross = {(a, b) for a, b in similar_pairs({**web_texts, **docs}, UNRELATED) if (a in docs) != (b in docs)}
    assert not cross


# ---------------------------------------------------------------------------------------- chats
def test_chats_planted_lines(chat_lines):
    assert len(chat_lines) == 107
    assert chat_lines.count("") == 1
    malformed, no_messages, convs = [], [], []
    for line in filter(None, chat_lines):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            malformed.append(line)
            continue
        (convs if "messages" in obj else no_messages).append(obj)
    assert len(malformed) == 1 and len(no_messages) == 1
    assert no_messages[0] == {"conversation_id": "c9999", "label": "refund"}
    no_messages_line = gen.CHAT_NO_MESSAGES_LINE
    counts = Counter(line for line in chat_lines if line)
    assert sorted(counts.values(), reverse=True)[:3] == [2, 2, 1]
    assert len(convs) == 104 and len({c["conversation_id"] for c in convs}) == 102
    # positions documented in the generator's docstring
    at = {n: line for n, line in enumerate(chat_lines, start=1)}
    assert at[35] == "" and at[75] == no_messages_line and at[26] == malformed[0]
    assert at[43] == at[chat_lines.index(at[43]) + 1] and chat_lines.index(at[43]) + 1 < 43
    assert at[94] == at[chat_lines.index(at[94]) + 1] and chat_lines.index(at[94]) + 1 < 94
    assert '"c0101"' in at[54] and '"c0102"' in at[107]


def test_chats_shape_and_entities(chat_lines):
    convs = {}
    for line in filter(None, chat_lines):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "messages" in obj:
            convs[obj["conversation_id"]] = obj
    labels = Counter(c["label"] for c in convs.values())
    assert set(labels) == set(gen.CHAT_INTENT_COUNTS) and min(labels.values()) >= 10
    for c in convs.values():
        msgs = c["messages"]
        if msgs[0]["role"] == "system":
            msgs = msgs[1:]
        assert 2 <= len(msgs) <= 6
        assert [m["role"] for m in msgs] == ["user", "assistant"] * (len(msgs) // 2) + ["user"] * (len(msgs) % 2)
        assert all(m["content"].strip() for m in msgs)
    blob = "\n".join(json.dumps(c) for c in convs.values())
    assert len(re.findall(r"#NW-\d{5}", blob)) >= 30
    assert len(re.findall(r"[\w.]+@[\w.]+\.(?:com|net|org|example)", blob)) >= 20
    assert len(re.findall(r"\$\d+\.\d\d", blob)) >= 20
    texts = {cid: "\n".join(m["content"] for m in c["messages"]) for cid, c in convs.items()}
    planted = {tuple(sorted(p)) for p in gen.CHAT_NEAR_DUPS.items()}
    assert similar_pairs(texts, UNRELATED) == planted
    assert all(jaccard(texts[a], texts[b]) >= NEAR for a, b in planted)


# ---------------------------------------------------------------------------------------- tickets
def test_tickets_shape(tickets):
    with open(DATA / "tickets.csv", encoding="utf-8") as f:
        assert f.readline().strip() == "ticket_id,subject,text,label"
    assert 250 <= len(tickets) <= 350
    assert len({t["ticket_id"] for t in tickets}) == len(tickets)
    assert sum(t["text"] == "" for t in tickets) == gen.TICKET_N_EMPTY
    assert sum("\n" in t["text"] for t in tickets) >= 3
    assert sum("," in t["text"] for t in tickets) >= 10
    labels = Counter(t["label"] for t in tickets if t["text"])
    assert 5 <= len(labels) <= 7
    assert min(labels.values()) <= 20 and max(labels.values()) >= 3 * min(labels.values())


def test_tickets_duplicates_and_split_balance(tickets):
    texts = [t["text"] for t in tickets if t["text"]]
    assert sum(n - 1 for n in Counter(texts).values()) == gen.TICKET_N_EXACT
    unique = {}
    for t in tickets:
        if t["text"]:
            unique.setdefault(t["text"], t)
    by_id = {t["ticket_id"]: t["text"] for t in unique.values()}
    near = similar_pairs(by_id, UNRELATED)
    assert len(near) == gen.TICKET_N_NEAR
    assert all(jaccard(by_id[a], by_id[b]) >= NEAR for a, b in near)
    # after exact + near dedup, a stratified 80/10/10 split leaves >= 1 val and test row per label
    dropped = {b for _a, b in near}
    labels = Counter(t["label"] for t in unique.values() if t["ticket_id"] not in dropped)
    assert min(labels.values()) >= 10
    # ids documented in the generator's docstring
    ids = {t["ticket_id"]: t["text"] for t in tickets}
    assert [i for i, text in ids.items() if text == ""] == ["T-1081", "T-1208"]
    assert all(ids[a] == ids[b] for a, b in [("T-1049", "T-1011"), ("T-1162", "T-1124"), ("T-1275", "T-1237")])
    assert near == {("T-1047", "T-1072"), ("T-1155", "T-1180"), ("T-1268", "T-1293")}

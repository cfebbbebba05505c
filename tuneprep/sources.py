"""Turn files and folders into records, quarantining what cannot be read.

Every raw unit (a file for documents, a line for JSONL, a row for tables) is
counted once: it becomes a record or a quarantine entry with its reason.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from tuneprep.config import LoadConfig
from tuneprep.records import content_key, make_records, record_id

DOC_FORMATS = {".txt": "text", ".md": "text", ".html": "html", ".htm": "html"}


@dataclass
class Quarantined:
    source: str
    locator: str  # line or row number, or "" for a whole file
    reason: str
    detail: str
    raw: str  # a short excerpt of what was read, for a person to look at

    def to_dict(self) -> dict:
        return {"stage": "load", **asdict(self)}


class LoadError(ValueError):
    """A problem with the inputs as a whole (missing path), as opposed to one bad record."""


def _excerpt(raw: bytes | str, n: int = 300) -> str:
    if isinstance(raw, bytes):
        return raw[:n].decode("utf-8", "backslashreplace")
    return raw[:n]


def list_files(inputs: list[str], cfg: LoadConfig) -> list[tuple[Path, str]]:
    """All loadable files under the inputs with the name records cite as ``source``, sorted for determinism.

    The source name is relative to the input's parent folder (``sample_data/web/a.html``), so
    ids do not change with where a checkout lives.
    """
    files: list[tuple[Path, str]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            if (p / "dataset_info.json").exists() or (p / "state.json").exists() or (p / "dataset_dict.json").exists():
                files.append((p, p.name))
                continue
            base = p.resolve().parent
            files.extend(
                (f, f.resolve().relative_to(base).as_posix())
                for f in sorted(p.rglob("*"))
                if f.is_file() and _suffix(f) in cfg.extensions
            )
        elif p.is_file():
            files.append((p, p.name))
        else:
            matches = sorted(Path().glob(item)) if any(c in item for c in "*?[") else []
            if not matches:
                raise LoadError(f"input not found: {item}")
            files.extend((m, m.as_posix()) for m in matches if m.is_file())
    return files


def _suffix(path: Path) -> str:
    """The format suffix, looking through a trailing .gz."""
    suffixes = path.suffixes
    if suffixes and suffixes[-1] == ".gz":
        return suffixes[-2] if len(suffixes) > 1 else ""
    return path.suffix.lower()


def _read_bytes(path: Path, cfg: LoadConfig) -> bytes:
    size = path.stat().st_size
    if size > cfg.max_file_bytes:
        raise ValueError(f"file is {size} bytes, over max_file_bytes={cfg.max_file_bytes}")
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data


def _decode(data: bytes, cfg: LoadConfig) -> str:
    errors = "strict" if cfg.on_decode_error == "quarantine" else "replace"
    text = data.decode("utf-8", errors=errors)
    return text.removeprefix("\ufeff")


def _first(row: dict, names: list[str]):
    for n in names:
        if n in row and row[n] is not None:
            return row[n]
    return None


def _messages(value, cfg: LoadConfig) -> list[dict]:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, list) or not value:
        raise ValueError("messages must be a non-empty list")
    out = []
    for m in value:
        if not isinstance(m, dict) or cfg.role_field not in m or cfg.content_field not in m:
            raise ValueError(f"each message needs '{cfg.role_field}' and '{cfg.content_field}'")
        role, content = str(m[cfg.role_field]).lower(), m[cfg.content_field]
        if role not in ("system", "user", "assistant"):
            raise ValueError(f"unknown role {role!r}")
        if not isinstance(content, str):
            raise ValueError("message content must be a string")
        out.append({"role": role, "content": content})
    return out


class _IdMaker:
    """Content-derived ids, made unique within one source when the same content repeats there."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, source: str, key: str) -> str:
        rid = record_id(source, key)
        n = self.seen.get(rid, 0)
        self.seen[rid] = n + 1
        return rid if n == 0 else record_id(source, key, salt=f"#{n}")


def _row_record(row: dict, source: str, cfg: LoadConfig, ids: _IdMaker) -> dict:
    label = _first(row, cfg.label_fields)
    label = None if label is None or str(label).strip() == "" else str(label)
    msgs = _first(row, cfg.messages_fields)
    if msgs is not None:
        messages = _messages(msgs, cfg)
        return {
            "id": ids(source, content_key(None, messages)),
            "source": source,
            "format": "chat",
            "messages": messages,
            "label": label,
        }
    text = _first(row, cfg.text_fields)
    if text is None:
        raise KeyError(f"no text field (looked for {cfg.text_fields}) and no messages field")
    if not isinstance(text, str):
        text = str(text)
    return {"id": ids(source, text), "source": source, "format": "text", "text": text, "label": label}


def _iter_file(path: Path, source: str, cfg: LoadConfig, ids: _IdMaker) -> Iterator[dict | Quarantined]:
    kind = _suffix(path)
    try:
        if path.is_dir():
            yield from _iter_saved_dataset(path, source, cfg, ids)
            return
        if kind == ".parquet":
            yield from _iter_table_rows(pq.read_table(path).to_pylist(), source, cfg, ids)
            return
        data = _read_bytes(path, cfg)
    except Exception as e:  # noqa: BLE001 - any unreadable file is quarantined, never fatal
        yield Quarantined(source, "", "unreadable_file", f"{type(e).__name__}: {e}", "")
        return
    if not data.strip():
        yield Quarantined(source, "", "empty_file", f"{len(data)} bytes, nothing but whitespace", _excerpt(data))
        return
    try:
        text = _decode(data, cfg)
    except UnicodeDecodeError as e:
        yield Quarantined(source, "", "invalid_utf8", str(e), _excerpt(data[max(0, e.start - 60) : e.end + 60]))
        return
    if kind in DOC_FORMATS:
        yield {"id": ids(source, text), "source": source, "format": DOC_FORMATS[kind], "text": text}
    elif kind == ".jsonl":
        yield from _iter_jsonl(text, source, cfg, ids)
    elif kind == ".csv":
        rows = csv.DictReader(io.StringIO(text, newline=""))
        yield from _iter_table_rows(rows, source, cfg, ids, first_row=2)
    else:
        yield Quarantined(source, "", "unsupported_format", f"no loader for {kind!r}", "")


def _iter_jsonl(text: str, source: str, cfg: LoadConfig, ids: _IdMaker) -> Iterator[dict | Quarantined]:
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            yield Quarantined(source, f"line {n}", "blank_line", "", "")
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError(f"expected a JSON object, got {type(row).__name__}")
            yield _row_record(row, source, cfg, ids)
        except json.JSONDecodeError as e:
            yield Quarantined(source, f"line {n}", "malformed_json", str(e), _excerpt(line))
        except (KeyError, ValueError) as e:
            yield Quarantined(source, f"line {n}", "bad_record", str(e).strip("'\""), _excerpt(line))


def _iter_table_rows(rows, source: str, cfg: LoadConfig, ids: _IdMaker, first_row: int = 0):
    for n, row in enumerate(rows, start=first_row):
        try:
            rec = _row_record(row, source, cfg, ids)
            if rec["format"] == "text" and not rec["text"].strip():
                yield Quarantined(source, f"row {n}", "empty_text", "text field is empty", _excerpt(json.dumps(row)))
                continue
            yield rec
        except (KeyError, ValueError) as e:
            yield Quarantined(
                source, f"row {n}", "bad_record", str(e).strip("'\""), _excerpt(json.dumps(row, default=str))
            )


def _iter_saved_dataset(path: Path, source: str, cfg: LoadConfig, ids: _IdMaker) -> Iterator[dict | Quarantined]:
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        for name, part in ds.items():
            yield from _iter_table_rows(part, f"{source}[{name}]", cfg, ids)
    else:
        yield from _iter_table_rows(ds, source, cfg, ids)


@dataclass
class LoadStats:
    files: int = 0
    read: int = 0
    kept: int = 0
    quarantined: int = 0


def iter_record_batches(
    inputs: list[str], cfg: LoadConfig, batch_size: int = 2048, stats: LoadStats | None = None
) -> Iterator[tuple[pl.DataFrame, list[Quarantined]]]:
    """Yield (records, quarantined) in bounded batches, in a deterministic order."""
    stats = stats if stats is not None else LoadStats()
    files = list_files(inputs, cfg)
    ids = _IdMaker()
    rows: list[dict] = []
    bad: list[Quarantined] = []
    for path, source in files:
        stats.files += 1
        for item in _iter_file(path, source, cfg, ids):
            stats.read += 1
            if isinstance(item, Quarantined):
                stats.quarantined += 1
                bad.append(item)
            else:
                stats.kept += 1
                rows.append(item)
            if len(rows) >= batch_size:
                yield make_records(rows), bad
                rows, bad = [], []
    if rows or bad:
        yield make_records(rows), bad

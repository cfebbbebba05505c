"""Turn files, folders, globs, hub datasets and web pages into records, quarantining what cannot be read.

Every raw unit (a file for documents, a line for JSONL, an item of a JSON array, a row for
tables and datasets, a page for the web) is counted once: it becomes a record or a quarantine
entry with its reason.

Inputs, in any mix:

- a folder (searched recursively; hidden files and folders are skipped), a file, or a glob
  (``data/**/*.jsonl``; ``**`` crosses folders);
- a dataset saved with ``save_to_disk``;
- ``hf://NAME[:CONFIG][@SPLIT][#REVISION]``: a ``datasets`` dataset loaded with
  ``datasets.load_dataset`` through its normal cache, e.g. ``hf://imdb``,
  ``hf://glue:sst2@train``, ``hf://owner/name@train[:1000]``; NAME may also be a local folder
  of data files (``hf:///data/exports``). Without a split every split is read;
- ``http://`` or ``https://`` URLs: pages to scrape (see ``ingest.scrape``).
"""

from __future__ import annotations

import csv
import errno
import glob
import gzip
import json
import os
import stat
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import polars as pl
import pyarrow.parquet as pq

from ingest.config import LoadConfig
from tuneprep.records import Quarantined, content_key, make_records, record_id

if TYPE_CHECKING:
    from ingest.config import ScrapeConfig
    from ingest.scrape import ScrapeStats

DOC_FORMATS = {".txt": "text", ".md": "text", ".html": "html", ".htm": "html"}
SAVED_DATASET_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
HUB_PREFIX = "hf://"
_SPECIAL_FILES = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class LoadError(ValueError):
    """A problem with the inputs as a whole (missing path, unreachable hub), as opposed to one bad record."""


class TooLarge(ValueError):
    """A file, a decompressed stream, a line or a record over ``load.max_file_bytes``."""


class NotRegularFile(OSError):
    """A FIFO, device or socket: reading it could block forever or never end, so it is never opened for reading."""


@dataclass(frozen=True)
class HubInput:
    """A parsed ``hf://NAME[:CONFIG][@SPLIT][#REVISION]`` input."""

    spec: str
    name: str
    config: str | None = None
    split: str | None = None
    revision: str | None = None


PlanItem = tuple[Path, str] | HubInput | Quarantined


def source_name(name: str) -> str:
    """A file or folder name as records cite it: valid Unicode, and lossless.

    Names that are not UTF-8 reach Python with their bad bytes as lone surrogates (PEP 383), which no
    Unicode consumer (polars, JSON files) accepts; each such byte is written ``\\xNN`` and a literal
    backslash ``\\\\``, so two different names never cite the same source.
    """
    if "\\" not in name and not any("\udc80" <= c <= "\udcff" for c in name):
        return name
    out = []
    for c in name:
        if c == "\\":
            out.append("\\\\")
        elif "\udc80" <= c <= "\udcff":
            out.append(f"\\x{ord(c) - 0xDC00:02x}")
        else:
            out.append(c)
    return "".join(out)


def _excerpt(raw: bytes | str, n: int = 300) -> str:
    if isinstance(raw, bytes):
        return raw[:n].decode("utf-8", "backslashreplace")
    return raw[:n].encode("utf-8", "backslashreplace").decode("utf-8")


def _row_excerpt(row: object, n: int = 300) -> str:
    try:
        return _excerpt(json.dumps(row, default=str, ensure_ascii=False), n)
    except (RecursionError, ValueError, TypeError):
        return _excerpt(repr(row)[:n] if not isinstance(row, dict | list) else f"<{type(row).__name__}>", n)


def _os_detail(e: OSError) -> str:
    return e.strerror or str(e) if isinstance(e, OSError) else str(e)


def failure_reason(e: BaseException) -> str:
    """The quarantine reason for an error that stopped reading a file (or a unit of it)."""
    if isinstance(e, TooLarge | MemoryError):
        return "too_large"
    if isinstance(e, RecursionError):
        return "nesting_too_deep"
    if isinstance(e, NotRegularFile):
        return "not_a_regular_file"
    if isinstance(e, PermissionError):
        return "permission_denied"
    if isinstance(e, OSError) and e.errno == errno.ELOOP:
        return "symlink_loop"
    if isinstance(e, FileNotFoundError):
        return "file_not_found"
    if isinstance(e, gzip.BadGzipFile | zlib.error | EOFError):
        return "corrupt_compressed"
    if isinstance(e, UnicodeDecodeError):
        return "invalid_utf8"
    return "unreadable_file"


def _failure_detail(e: BaseException) -> str:
    text = _os_detail(e) if isinstance(e, OSError) and not isinstance(e, NotRegularFile) else str(e)
    text = (text.strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {text}"[:300] if text else type(e).__name__


def is_remote(item: str) -> bool:
    """Whether an input names something other than a local path (a URL or a hub dataset)."""
    return "://" in item


def url_inputs(inputs: Iterable[str]) -> list[str]:
    """The inputs that are pages to scrape: every ``scheme://`` input but ``hf://`` (the scraper rejects non-http)."""
    return [i for i in inputs if is_remote(i) and not i.startswith(HUB_PREFIX)]


def parse_hub_input(item: str) -> HubInput:
    """Split ``hf://NAME[:CONFIG][@SPLIT][#REVISION]``; NAME is ``dataset``, ``owner/dataset`` or a local folder."""
    rest = item[len(HUB_PREFIX) :]
    rest, _, revision = rest.partition("#")
    rest, _, split = rest.partition("@")
    name, _, config = rest.partition(":")
    if not name or (name.count("/") > 1 and not Path(name).is_dir()):
        raise LoadError(
            f"bad hub input {item!r}: expected hf://NAME[:CONFIG][@SPLIT][#REVISION], NAME as owner/dataset"
        )
    return HubInput(item, name, config or None, split or None, revision or None)


def check_inputs(inputs: list[str]) -> None:
    """Fail fast, before anything is read, on an input that names nothing: a missing path, a glob that matches
    nothing, a malformed ``hf://`` spec. Folders are not walked here; what is inside them is judged when read."""
    for item in inputs:
        if item.startswith(HUB_PREFIX):
            parse_hub_input(item)
        elif is_remote(item) or os.path.lexists(item):
            continue
        elif glob.has_magic(item):
            if not any(True for _ in glob.iglob(item, recursive=True)):
                raise LoadError(f"input not found: {item} matches nothing")
        else:
            raise LoadError(f"input not found: {item}")


def _is_saved_dataset(p: Path) -> bool:
    try:
        return any((p / m).exists() for m in SAVED_DATASET_MARKERS)
    except OSError:  # an unreadable folder: listing it says why
        return False


@dataclass
class _Plan:
    items: list[PlanItem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # regular files whose extension is not loadable


def _broken(entry: Path, source: str, e: OSError) -> Quarantined:
    """Why ``stat`` failed on an entry the folder listed: a symlink loop, a dangling link, no permission…"""
    target = ""
    try:
        if entry.is_symlink():
            target = f" -> {source_name(os.readlink(entry))}"
    except OSError:
        pass
    if e.errno == errno.ELOOP:
        return Quarantined(source, "", "symlink_loop", f"symlink loop{target}: {_os_detail(e)}")
    if isinstance(e, FileNotFoundError) and target:
        return Quarantined(source, "", "dangling_symlink", f"symlink{target} points to nothing")
    return Quarantined(source, "", failure_reason(e), _failure_detail(e))


def _entry(
    entry: Path, source: str, cfg: LoadConfig, plan: _Plan, ancestors: frozenset[Path], named: bool = False
) -> Iterator[PlanItem]:
    """One folder entry (or a named input): a loadable file, a folder to walk, or a quarantine entry."""
    try:
        st = entry.stat()  # follows symlinks
    except OSError as e:
        yield _broken(entry, source, e)
        return
    if stat.S_ISDIR(st.st_mode):
        real = entry.resolve()
        if real in ancestors:
            yield Quarantined(source, "", "symlink_loop", "links back to a folder it is inside of; not followed")
        elif _is_saved_dataset(entry):
            yield entry, source
        else:
            yield from _walk(entry, source, cfg, plan, ancestors | {real})
    elif stat.S_ISREG(st.st_mode):
        if named or _suffix(entry) in cfg.extensions:
            yield entry, source
        else:
            plan.skipped.append(source)
    else:
        kind = _SPECIAL_FILES.get(stat.S_IFMT(st.st_mode), "not a regular file")
        yield Quarantined(source, "", "not_a_regular_file", f"{kind}: not read (it could block or never end)")


def _walk(folder: Path, name: str, cfg: LoadConfig, plan: _Plan, ancestors: frozenset[Path]) -> Iterator[PlanItem]:
    """Loadable files under a folder, sorted; a saved dataset inside is one unit and hidden entries are skipped.

    Symlinked files and folders are followed; a link back into a folder being walked, a dangling link,
    a FIFO or device, and a folder that cannot be listed each become one quarantine entry.
    """
    try:
        entries = sorted(folder.iterdir())
    except OSError as e:
        yield Quarantined(name, "", failure_reason(e), f"folder cannot be listed: {_failure_detail(e)}")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        yield from _entry(entry, f"{name}/{source_name(entry.name)}", cfg, plan, ancestors)


def _glob(item: str, cfg: LoadConfig, plan: _Plan) -> Iterator[PlanItem]:
    """Matches of a glob, named relative to the folder above the glob's fixed prefix, like a folder input."""
    parts = Path(item).parts
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    root = Path(*parts[:fixed]) if fixed else Path()
    base = source_name(root.resolve().name)
    for m in sorted(glob.glob(item, recursive=True)):
        mp = Path(m)
        rel = "/".join(source_name(part) for part in mp.relative_to(root).parts)
        source = f"{base}/{rel}" if mp != root else base
        yield from _entry(mp, source, cfg, plan, frozenset())


def _plan(inputs: list[str], cfg: LoadConfig) -> _Plan:
    """Local files, hub datasets and what could not be read, in input order; URLs are left to the scraper.

    Each file appears once (the first name it is found under).
    """
    plan = _Plan()
    seen: set[Path] = set()
    for item in inputs:
        if item.startswith(HUB_PREFIX):
            plan.items.append(parse_hub_input(item))
            continue
        if is_remote(item):
            continue
        p = Path(item)
        if os.path.lexists(p):
            name = source_name(p.resolve().name if p.is_dir() else p.name)
            found = list(_entry(p, name, cfg, plan, frozenset(), named=True))
        elif glob.has_magic(item):
            found = list(_glob(item, cfg, plan))
            if not found:
                raise LoadError(f"input not found: {item} matches no file with a loadable extension {cfg.extensions}")
        else:
            raise LoadError(f"input not found: {item}")
        for unit in found:
            if isinstance(unit, tuple):
                key = unit[0].resolve()
                if key in seen:
                    continue
                seen.add(key)
            plan.items.append(unit)
    return plan


def list_files(inputs: list[str], cfg: LoadConfig) -> list[tuple[Path, str]]:
    """All loadable local files under the inputs with the name records cite as ``source``, in a deterministic order.

    The source name is relative to the input's parent folder (``sample_data/web/a.html`` cites
    ``web/a.html`` for the input ``sample_data/web``, and so does the glob ``sample_data/web/*.html``),
    so ids do not change with where a checkout lives. Hub datasets and URLs are not files and are left out,
    as are entries that cannot be read (``list_inputs`` has them too).
    """
    return [u for u in _plan(inputs, cfg).items if isinstance(u, tuple)]


def list_inputs(inputs: list[str], cfg: LoadConfig) -> list[tuple[Path, str] | Quarantined]:
    """``list_files`` plus one quarantine entry for each entry that cannot be read (loop, FIFO, no permission…)."""
    return [u for u in _plan(inputs, cfg).items if not isinstance(u, HubInput)]


def _suffix(path: Path) -> str:
    """The format suffix, looking through a trailing .gz."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        return suffixes[-2] if len(suffixes) > 1 else ""
    return path.suffix.lower()


def _open_regular(path: Path) -> IO[bytes]:
    """Open a file for reading only if it is a regular file, checked on the open descriptor (no race with the
    plan), and without blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = _SPECIAL_FILES.get(stat.S_IFMT(st.st_mode), "not a regular file")
            raise NotRegularFile(errno.EINVAL, f"{kind}: not read (it could block or never end)")
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_digest(path: Path) -> tuple[int, str]:
    """Size and sha256 of an input file, read through the same guard as loading."""
    import hashlib

    h = hashlib.sha256()
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        while block := f.read(1 << 20):
            h.update(block)
    return size, h.hexdigest()


def _is_gzip(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


def _read_bytes(path: Path, cfg: LoadConfig) -> bytes:
    limit = cfg.max_file_bytes
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise TooLarge(f"file is {size} bytes, over load.max_file_bytes={limit}")
        if not _is_gzip(path):
            data = f.read(limit + 1)
            if len(data) > limit:
                raise TooLarge(f"file grew past load.max_file_bytes={limit} while being read")
            return data
        with gzip.GzipFile(fileobj=f, mode="rb") as z:
            data = z.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"decompresses to more than load.max_file_bytes={limit} (a decompression bomb?)")
    return data


def _check_gzip(path: Path, limit: int) -> None:
    """Decompress a .gz stream to its end without keeping it: a bomb or a corrupt stream is found before any of
    its records is used, so the file is quarantined whole rather than after some records were kept."""
    total = 0
    with _open_regular(path) as f:
        if os.fstat(f.fileno()).st_size > limit:
            raise TooLarge(f"file is over load.max_file_bytes={limit}")
        with gzip.GzipFile(fileobj=f, mode="rb") as z:
            while chunk := z.read(1 << 20):
                total += len(chunk)
                if total > limit:
                    raise TooLarge(f"decompresses to more than load.max_file_bytes={limit} (a decompression bomb?)")


def _open_stream(path: Path, cfg: LoadConfig) -> IO[bytes]:
    """A line-format file opened for streaming; a .gz one is checked whole first (size cap, integrity)."""
    if _is_gzip(path):
        _check_gzip(path, cfg.max_file_bytes)
        return gzip.GzipFile(fileobj=_open_regular(path), mode="rb")
    return _open_regular(path)


_TOO_LONG = object()


def _read_lines(f: IO[bytes], limit: int) -> Iterator[bytes | object]:
    """Physical lines (with their newline); a line over ``limit`` bytes is skipped unread and stands as ``_TOO_LONG``."""
    while raw := f.readline(limit + 1):
        if len(raw) > limit and not raw.endswith(b"\n"):
            while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield _TOO_LONG
        else:
            yield raw


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
    aliases = {k.lower(): v for k, v in cfg.role_aliases.items()}
    out = []
    for i, m in enumerate(value):
        role = _first(m, cfg.role_fields) if isinstance(m, dict) else None
        content = _first(m, cfg.content_fields) if isinstance(m, dict) else None
        if role is None or content is None:
            raise ValueError(f"message {i} needs a role ({cfg.role_fields}) and a content ({cfg.content_fields}) field")
        role = str(role).strip().lower()
        role = aliases.get(role, role)
        if role not in ("system", "user", "assistant"):
            raise ValueError(f"unknown role {role!r} (map it with load.role_aliases)")
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
    instruction, response = _first(row, cfg.instruction_fields), _first(row, cfg.response_fields)
    if instruction is not None and response is not None:
        extra = _first(row, cfg.input_fields)
        prompt = f"{instruction}\n\n{extra}" if extra not in (None, "") else str(instruction)
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": str(response)}]
        if not prompt.strip() or not str(response).strip():
            raise ValueError("instruction or response is empty")
        return {
            "id": ids(source, content_key(None, messages)),
            "source": source,
            "format": "chat",
            "messages": messages,
            "label": label,
        }
    text = _first(row, cfg.text_fields)
    if text is None:
        raise KeyError(
            f"no text field (looked for {cfg.text_fields}), no messages field ({cfg.messages_fields}) "
            f"and no instruction/response pair"
        )
    if not isinstance(text, str):
        text = str(text)
    return {"id": ids(source, text), "source": source, "format": "text", "text": text, "label": label}


def _checked(rec: dict, cfg: LoadConfig) -> dict:
    """A record bigger than a whole file may be is refused like the file would be (a Parquet cell bomb, say)."""
    size = len(rec["text"]) if rec.get("text") is not None else sum(len(m["content"]) for m in rec["messages"])
    if size > cfg.max_file_bytes:
        raise TooLarge(f"record text is {size} characters, over load.max_file_bytes={cfg.max_file_bytes}")
    return rec


def _unit(row: object, source: str, locator: str, cfg: LoadConfig, ids: _IdMaker) -> dict | Quarantined:
    """One row, line or item as a record, or its quarantine entry; nothing it holds can raise past here."""
    try:
        if not isinstance(row, dict):
            raise ValueError(f"expected a JSON object, got {type(row).__name__}")
        rec = _checked(_row_record(row, source, cfg, ids), cfg)
    except (KeyError, ValueError) as e:
        reason = "too_large" if isinstance(e, TooLarge) else "bad_record"
        return Quarantined(source, locator, reason, str(e).strip("'\""), _row_excerpt(row))
    except Exception as e:  # noqa: BLE001 - RecursionError and the like: this unit only
        return Quarantined(source, locator, failure_reason(e), _failure_detail(e), _row_excerpt(row))
    return rec


@dataclass
class FileLedger:
    """What became of one input's units; line formats also count their lines, which must all be accounted for."""

    records: int = 0
    quarantined: int = 0
    lines: int | None = None  # physical lines read (JSONL, CSV)
    unread_rest: bool = False  # reading stopped midway; the rest of the file is one quarantine entry
    covered: int = 0  # lines that belong to a unit (a record, a quarantine entry, the CSV header): equals ``lines``

    def to_dict(self) -> dict:
        out = {"records": self.records, "quarantined": self.quarantined}
        if self.lines is not None:
            out["lines"] = self.lines
        if self.unread_rest:
            out["unread_rest"] = True
        return out


def _iter_file(
    path: Path, source: str, cfg: LoadConfig, ids: _IdMaker, ledger: FileLedger
) -> Iterator[dict | Quarantined]:
    """Every unit of one file. A failure before the first unit quarantines the file whole; one after it (a read
    error midway) quarantines only the unread rest, so records already kept are never contradicted."""
    units = 0
    try:
        for item in _file_units(path, source, cfg, ids, ledger):
            units += 1
            yield item
    except Exception as e:  # noqa: BLE001 - any unreadable file is quarantined, never fatal
        if units == 0:
            yield Quarantined(source, "", failure_reason(e), _failure_detail(e), "")
        else:
            ledger.unread_rest = True
            detail = f"{_failure_detail(e)}; the rest of the file after unit {units} could not be read"
            yield Quarantined(source, f"after unit {units}", failure_reason(e), detail, "")


def _file_units(
    path: Path, source: str, cfg: LoadConfig, ids: _IdMaker, ledger: FileLedger
) -> Iterator[dict | Quarantined]:
    kind = _suffix(path)
    if path.is_dir():
        yield from _iter_saved_dataset(path, source, cfg, ids)
        return
    if kind == ".parquet":
        with _open_regular(path) as f:
            yield from _iter_table_rows(_parquet_rows(f), source, cfg, ids)
        return
    if kind == ".jsonl":  # line-oriented: streamed, never read whole
        yield from _iter_jsonl(path, source, cfg, ids, ledger)
        return
    if kind == ".csv":
        yield from _iter_csv(path, source, cfg, ids, ledger)
        return
    data = _read_bytes(path, cfg)
    if not data.strip():
        yield Quarantined(source, "", "empty_file", f"{len(data)} bytes, nothing but whitespace", _excerpt(data))
        return
    try:
        text = _decode(data, cfg)
    except UnicodeDecodeError as e:
        yield Quarantined(source, "", "invalid_utf8", str(e), _excerpt(data[max(0, e.start - 60) : e.end + 60]))
        return
    if kind in DOC_FORMATS:
        if "\x00" in text:
            yield Quarantined(source, "", "nul_byte", "a text file holding NUL bytes is binary", _excerpt(text))
            return
        yield {"id": ids(source, text), "source": source, "format": DOC_FORMATS[kind], "text": text}
    elif kind == ".json":
        yield from _iter_json(text, source, cfg, ids)
    else:
        yield Quarantined(source, "", "unsupported_format", f"no loader for {kind!r}", "")


def _parquet_rows(f: IO[bytes]) -> Iterator[dict]:
    for batch in pq.ParquetFile(f, pre_buffer=False).iter_batches(batch_size=1024):
        yield from batch.to_pylist()


def _read_error(source: str, n: int, e: Exception, ledger: FileLedger) -> Quarantined:
    ledger.unread_rest = True
    detail = f"{_failure_detail(e)}; lines from {n} on could not be read"
    return Quarantined(source, f"line {n}", failure_reason(e), detail, "")


def _iter_jsonl(
    path: Path, source: str, cfg: LoadConfig, ids: _IdMaker, ledger: FileLedger
) -> Iterator[dict | Quarantined]:
    """One record per line, decoded line by line, so one bad line costs one record and every line is one unit."""
    errors = "strict" if cfg.on_decode_error == "quarantine" else "replace"
    n = 0
    with _open_stream(path, cfg) as f:
        lines = _read_lines(f, cfg.max_file_bytes)
        while True:
            try:
                raw = next(lines, None)
            except Exception as e:  # noqa: BLE001 - an I/O error midway: the unread rest is one entry
                yield _read_error(source, n + 1, e, ledger)
                break
            if raw is None:
                break
            n += 1
            ledger.lines = n
            ledger.covered += 1
            locator = f"line {n}"
            if raw is _TOO_LONG:
                yield Quarantined(source, locator, "too_large", f"line over load.max_file_bytes={cfg.max_file_bytes}")
                continue
            try:
                line = raw.decode("utf-8", errors=errors)
            except UnicodeDecodeError as e:
                yield Quarantined(source, locator, "invalid_utf8", str(e), _excerpt(raw))
                continue
            if n == 1:
                line = line.removeprefix("\ufeff")
            if not line.strip():
                yield Quarantined(source, locator, "blank_line", "", "")
                continue
            try:
                row = json.loads(line)
            except RecursionError:
                yield Quarantined(source, locator, "nesting_too_deep", "JSON nested deeper than Python can parse")
                continue
            except ValueError as e:  # JSONDecodeError, and numbers too long to convert
                yield Quarantined(source, locator, "malformed_json", str(e), _excerpt(line))
                continue
            yield _unit(row, source, locator, cfg, ids)
    ledger.lines = n
    if n == 0 and not ledger.unread_rest:
        yield Quarantined(source, "", "empty_file", "0 bytes", "")


def _iter_json(text: str, source: str, cfg: LoadConfig, ids: _IdMaker) -> Iterator[dict | Quarantined]:
    """A JSON array of objects, an object holding one under a ``json_list_keys`` key, or one object as one record."""
    try:
        doc = json.loads(text)
    except RecursionError:
        yield Quarantined(source, "", "nesting_too_deep", "JSON nested deeper than Python can parse", _excerpt(text))
        return
    except json.JSONDecodeError as e:
        yield Quarantined(source, f"line {e.lineno}", "malformed_json", str(e), _excerpt(text[max(0, e.pos - 60) :]))
        return
    except ValueError as e:
        yield Quarantined(source, "", "malformed_json", str(e), _excerpt(text))
        return
    if isinstance(doc, dict):
        key = next((k for k in cfg.json_list_keys if isinstance(doc.get(k), list)), None)
        if key is None:
            yield from _iter_table_rows([doc], source, cfg, ids, unit="object")
            return
        yield from _iter_table_rows(doc[key], source, cfg, ids, unit=f"{key} item")
    elif isinstance(doc, list):
        yield from _iter_table_rows(doc, source, cfg, ids, unit="item")
    else:
        detail = f"expected a JSON array or object, got {type(doc).__name__}"
        yield Quarantined(source, "", "bad_record", detail, _excerpt(text))


class _LineSource:
    """Physical lines of a CSV file, numbered, with push-back: after a failed multi-line row every line but its
    first is read again. Bytes are decoded with ``surrogateescape`` so a bad byte costs its row, not the file."""

    def __init__(self, f: IO[bytes], limit: int) -> None:
        self.lines = _read_lines(f, limit)
        self.n = 0
        self.back: list[tuple[int, str | object]] = []
        self.taken: list[tuple[int, str | object]] = []  # the lines of the row being parsed

    def __iter__(self) -> _LineSource:
        return self

    def __next__(self) -> str:
        if self.back:
            item = self.back.pop()
        else:
            raw = next(self.lines, None)
            if raw is None:
                raise StopIteration
            self.n += 1
            item = (self.n, raw if raw is _TOO_LONG else raw.decode("utf-8", "surrogateescape"))
        self.taken.append(item)
        if item[1] is _TOO_LONG:
            raise TooLarge("line over load.max_file_bytes")
        return item[1]

    def push_back(self, items: list[tuple[int, str | object]]) -> None:
        self.back.extend(reversed(items))


def _has_bad_bytes(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def _csv_rows(src: _LineSource) -> Iterator[tuple[int, int, list[str] | None, str, str, str]]:
    """(first line, last line, fields, reason, detail, raw) per row, strictly parsed: a row that fails is one bad
    unit, and every physical line belongs to exactly one row."""
    reader = csv.reader(src, strict=True)
    while True:
        src.taken = []
        fields: list[str] | None = None
        error = ""
        try:
            fields = next(reader)
        except StopIteration:
            if not src.taken:
                return
            error = "unexpected end of data"
        except csv.Error as e:
            error = str(e)
        except TooLarge:
            error = "too_large"
        taken = src.taken
        first = taken[0][0]
        raw = "".join(t for _, t in taken if isinstance(t, str))
        if error and len(taken) > 1 and taken[-1][1] is not _TOO_LONG:
            # Only an open quote makes a row span lines: the row is the first line, the rest is read again.
            src.push_back(taken[1:])
            detail = f"a quoted field opened on line {first} never closes"
            yield first, first, None, "unterminated_quote", detail, taken[0][1]
        elif error == "too_large":
            yield first, taken[-1][0], None, "too_large", "a line over load.max_file_bytes", ""
        elif error:
            yield first, taken[-1][0], None, "malformed_csv", error, raw
        else:
            yield first, taken[-1][0], fields, "", "", raw


def _iter_csv(
    path: Path, source: str, cfg: LoadConfig, ids: _IdMaker, ledger: FileLedger
) -> Iterator[dict | Quarantined]:
    """Rows parsed strictly (quoted newlines and commas are fine). An unterminated quote, a row with the wrong
    number of fields, NUL bytes or bad UTF-8 cost that row (quarantined with its line), never the rows around it."""
    if csv.field_size_limit() < cfg.max_file_bytes:
        csv.field_size_limit(cfg.max_file_bytes)  # a long document in one cell is not an error
    replace = cfg.on_decode_error == "replace"
    with _open_stream(path, cfg) as f:
        src = _LineSource(f, cfg.max_file_bytes)
        rows = _csv_rows(src)
        header: list[str] | None = None
        while True:
            try:
                item = next(rows, None)
            except Exception as e:  # noqa: BLE001 - an I/O error midway: the unread rest is one entry
                ledger.lines = src.n
                yield _read_error(source, src.n + 1, e, ledger)
                break
            ledger.lines = src.n
            if item is None:
                break
            line, last, fields, reason, detail, raw = item
            ledger.covered += last - line + 1
            locator = f"line {line}"
            if header is None:
                if fields and fields[0].startswith("\ufeff"):
                    fields[0] = fields[0][1:]
                if reason or not fields or "\x00" in raw or (_has_bad_bytes(raw) and not replace):
                    why = reason or ("nul_byte" if "\x00" in raw else "invalid_utf8" if fields else "empty_file")
                    yield Quarantined(
                        source, "", why, f"the header row cannot be read ({detail or why})", _excerpt(raw)
                    )
                    ledger.unread_rest = True
                    return
                header = [_fix_bytes(h) for h in fields]
                continue
            if reason:
                yield Quarantined(source, locator, reason, detail, _excerpt(raw))
            elif not fields:
                yield Quarantined(source, locator, "blank_line", "", "")
            elif "\x00" in raw:
                yield Quarantined(source, locator, "nul_byte", "the row holds NUL bytes", _excerpt(raw))
            elif _has_bad_bytes(raw) and not replace:
                yield Quarantined(source, locator, "invalid_utf8", "the row is not valid UTF-8", _excerpt(raw))
            elif len(fields) != len(header):
                detail = f"{len(fields)} fields where the header has {len(header)}"
                yield Quarantined(source, locator, "ragged_row", detail, _excerpt(raw))
            else:
                row = dict(zip(header, (_fix_bytes(v) for v in fields), strict=True))
                rec = _unit(row, source, locator, cfg, ids)
                if isinstance(rec, dict) and rec["format"] == "text" and not rec["text"].strip():
                    rec = Quarantined(source, locator, "empty_text", "text field is empty", _excerpt(raw))
                yield rec
    if header is None and not ledger.unread_rest:
        yield Quarantined(source, "", "empty_file", "no header row", "")


def _fix_bytes(text: str) -> str:
    """Undecodable bytes (kept as surrogates while parsing) become U+FFFD, as ``on_decode_error: replace`` asks."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if _has_bad_bytes(text) else text


def _iter_table_rows(
    rows: Iterable, source: str, cfg: LoadConfig, ids: _IdMaker, first_row: int = 0, unit: str = "row"
) -> Iterator[dict | Quarantined]:
    for n, row in enumerate(rows, start=first_row):
        locator = f"{unit} {n}"
        rec = _unit(row, source, locator, cfg, ids)
        if isinstance(rec, dict) and rec["format"] == "text" and not rec["text"].strip():
            rec = Quarantined(source, locator, "empty_text", "text field is empty", _row_excerpt(row))
        yield rec


def _dataset_rows(ds) -> Iterator[dict]:
    """Rows of a ``datasets.Dataset`` with class-label ints turned back into their names."""
    import datasets

    names = {c: f for c, f in ds.features.items() if isinstance(f, datasets.ClassLabel)}
    for row in ds:
        for c, f in names.items():
            if row.get(c) is not None and row[c] >= 0:
                row[c] = f.int2str(row[c])
        yield row


def _iter_dataset(ds, source: str, cfg: LoadConfig, ids: _IdMaker) -> Iterator[dict | Quarantined]:
    import datasets

    if isinstance(ds, datasets.DatasetDict):
        for name, part in ds.items():
            yield from _iter_table_rows(_dataset_rows(part), f"{source}[{name}]", cfg, ids)
    else:
        yield from _iter_table_rows(_dataset_rows(ds), source, cfg, ids)


def _iter_saved_dataset(path: Path, source: str, cfg: LoadConfig, ids: _IdMaker) -> Iterator[dict | Quarantined]:
    import datasets

    yield from _iter_dataset(datasets.load_from_disk(str(path)), source, cfg, ids)


def open_hub_dataset(hub: HubInput, cfg: LoadConfig):
    """``datasets.load_dataset`` with its normal cache; any failure is one clear ``LoadError`` line."""
    import datasets
    from datasets.exceptions import DatasetNotFoundError

    try:
        return datasets.load_dataset(
            hub.name, hub.config, split=hub.split, revision=hub.revision, cache_dir=cfg.hub_cache_dir
        )
    except DatasetNotFoundError as e:
        raise LoadError(f"hub dataset {hub.name!r} not found (nor in the local cache): {_one_line(e)}") from e
    except (ConnectionError, TimeoutError) as e:
        if datasets.config.HF_HUB_OFFLINE:
            why, fix = "offline mode is on (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE)", "fetch it once with network access"
        else:
            why = _one_line(e)
            fix = "fetch it once with network access, or if it is cached set HF_DATASETS_OFFLINE=1"
        raise LoadError(
            f"hub dataset {hub.name!r} is not in the local cache and the Hugging Face Hub is unreachable ({why}); {fix}"
        ) from e
    except Exception as e:  # noqa: BLE001 - datasets raises many kinds; the run needs one readable line
        raise LoadError(f"hub dataset {hub.spec!r} could not be loaded: {type(e).__name__}: {_one_line(e)}") from e


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


@dataclass
class LoadStats:
    files: int = 0  # files, saved datasets and hub datasets
    read: int = 0
    kept: int = 0
    quarantined: int = 0
    scrape: ScrapeStats | None = None  # requests, retries, bytes… when web pages were fetched
    per_input: dict[str, FileLedger] = field(default_factory=dict)  # by source: what became of each input's units
    skipped: list[str] = field(default_factory=list)  # files under input folders with no loadable extension


def iter_record_batches(
    inputs: list[str],
    cfg: LoadConfig,
    batch_size: int = 2048,
    stats: LoadStats | None = None,
    *,
    scrape: ScrapeConfig | None = None,
    raw_dir: str | Path | None = None,
) -> Iterator[tuple[pl.DataFrame, list[Quarantined]]]:
    """Yield (records, quarantined) in bounded batches, in a deterministic order.

    Files and hub datasets come first, in input order; then web pages from URL inputs and from
    ``scrape.urls``/``scrape.sitemaps``, fetched politely with each page kept under ``raw_dir``.
    Hub datasets are opened before anything is read, so an unreachable hub fails the run at once.
    Entries that cannot be read at all (symlink loops, FIFOs, folders without permission) are units too,
    each one quarantine entry.
    """
    stats = stats if stats is not None else LoadStats()
    plan = _plan(inputs, cfg)
    stats.skipped = plan.skipped
    urls = url_inputs(inputs)
    web = bool(urls) or (scrape is not None and bool(scrape.urls or scrape.sitemaps))
    if web and raw_dir is None:
        raise LoadError("web inputs need raw_dir, the folder fetched pages are kept in")
    hubs = {u.spec: open_hub_dataset(u, cfg) for u in plan.items if isinstance(u, HubInput)}
    ids = _IdMaker()

    def units() -> Iterator[dict | Quarantined]:
        for unit in plan.items:
            stats.files += 1
            ids.seen.clear()  # ids are salted with their source, so uniqueness only matters within one
            if isinstance(unit, Quarantined):
                stats.per_input.setdefault(unit.source, FileLedger())
                yield unit
            elif isinstance(unit, HubInput):
                stats.per_input.setdefault(unit.spec, FileLedger())
                yield from _iter_dataset(hubs[unit.spec], unit.spec, cfg, ids)
            else:
                ledger = stats.per_input.setdefault(unit[1], FileLedger())
                yield from _iter_file(unit[0], unit[1], cfg, ids, ledger)
        if web:
            from ingest.config import ScrapeConfig
            from ingest.scrape import ScrapeStats, scrape_records

            stats.scrape = ScrapeStats()
            yield from scrape_records(scrape or ScrapeConfig(), Path(raw_dir), stats.scrape, urls=urls)

    rows: list[dict] = []
    bad: list[Quarantined] = []
    for item in units():
        stats.read += 1
        if isinstance(item, Quarantined):
            stats.quarantined += 1
            bad.append(item)
            if item.source in stats.per_input:
                stats.per_input[item.source].quarantined += 1
        else:
            stats.kept += 1
            rows.append(item)
            if item["source"] in stats.per_input:
                stats.per_input[item["source"]].records += 1
        if len(rows) >= batch_size:
            yield make_records(rows), bad
            rows, bad = [], []
    if rows or bad:
        yield make_records(rows), bad

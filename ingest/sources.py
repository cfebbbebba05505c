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
import glob
import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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


class LoadError(ValueError):
    """A problem with the inputs as a whole (missing path, unreachable hub), as opposed to one bad record."""


@dataclass(frozen=True)
class HubInput:
    """A parsed ``hf://NAME[:CONFIG][@SPLIT][#REVISION]`` input."""

    spec: str
    name: str
    config: str | None = None
    split: str | None = None
    revision: str | None = None


def _excerpt(raw: bytes | str, n: int = 300) -> str:
    if isinstance(raw, bytes):
        return raw[:n].decode("utf-8", "backslashreplace")
    return raw[:n]


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


def _is_saved_dataset(p: Path) -> bool:
    return any((p / m).exists() for m in SAVED_DATASET_MARKERS)


def _walk(folder: Path, name: str, cfg: LoadConfig) -> Iterator[tuple[Path, str]]:
    """Loadable files under a folder, sorted; a saved dataset inside is one unit, hidden entries and symlinked folders are skipped."""
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        source = f"{name}/{entry.name}"
        if entry.is_dir():
            if entry.is_symlink():
                continue
            if _is_saved_dataset(entry):
                yield entry, source
            else:
                yield from _walk(entry, source, cfg)
        elif entry.is_file() and _suffix(entry) in cfg.extensions:
            yield entry, source


def _expand(p: Path, source: str, cfg: LoadConfig) -> Iterator[tuple[Path, str]]:
    if p.is_dir() and not _is_saved_dataset(p):
        yield from _walk(p, source, cfg)
    else:
        yield p, source


def _glob(item: str, cfg: LoadConfig) -> Iterator[tuple[Path, str]]:
    """Matches of a glob, named relative to the folder above the glob's fixed prefix, like a folder input."""
    parts = Path(item).parts
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    root = Path(*parts[:fixed]) if fixed else Path()
    base = root.resolve().name
    for m in sorted(glob.glob(item, recursive=True)):
        mp = Path(m)
        source = f"{base}/{mp.relative_to(root).as_posix()}" if mp != root else base
        if mp.is_dir():
            yield from _expand(mp, source, cfg)
        elif mp.is_file() and _suffix(mp) in cfg.extensions:
            yield mp, source


def _plan(inputs: list[str], cfg: LoadConfig) -> list[tuple[Path, str] | HubInput]:
    """Local files and hub datasets in input order; URLs are left to the scraper. Each file appears once."""
    plan: list[tuple[Path, str] | HubInput] = []
    seen: set[Path] = set()
    for item in inputs:
        if item.startswith(HUB_PREFIX):
            plan.append(parse_hub_input(item))
            continue
        if is_remote(item):
            continue
        p = Path(item)
        if p.is_dir():
            found = list(_expand(p, p.resolve().name, cfg))
        elif p.is_file():
            found = [(p, p.name)]
        elif glob.has_magic(item):
            found = list(_glob(item, cfg))
            if not found:
                raise LoadError(f"input not found: {item} matches no file with a loadable extension {cfg.extensions}")
        else:
            raise LoadError(f"input not found: {item}")
        for f, source in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                plan.append((f, source))
    return plan


def list_files(inputs: list[str], cfg: LoadConfig) -> list[tuple[Path, str]]:
    """All loadable local files under the inputs with the name records cite as ``source``, in a deterministic order.

    The source name is relative to the input's parent folder (``sample_data/web/a.html`` cites
    ``web/a.html`` for the input ``sample_data/web``, and so does the glob ``sample_data/web/*.html``),
    so ids do not change with where a checkout lives. Hub datasets and URLs are not files and are left out.
    """
    return [u for u in _plan(inputs, cfg) if isinstance(u, tuple)]


def _suffix(path: Path) -> str:
    """The format suffix, looking through a trailing .gz."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        return suffixes[-2] if len(suffixes) > 1 else ""
    return path.suffix.lower()


def _read_bytes(path: Path, cfg: LoadConfig) -> bytes:
    size = path.stat().st_size
    if size > cfg.max_file_bytes:
        raise ValueError(f"file is {size} bytes, over max_file_bytes={cfg.max_file_bytes}")
    if path.suffix.lower() != ".gz":
        return path.read_bytes()
    with gzip.open(path, "rb") as f:
        data = f.read(cfg.max_file_bytes + 1)
    if len(data) > cfg.max_file_bytes:
        raise ValueError(f"decompresses to more than max_file_bytes={cfg.max_file_bytes}")
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


def _iter_file(path: Path, source: str, cfg: LoadConfig, ids: _IdMaker) -> Iterator[dict | Quarantined]:
    kind = _suffix(path)
    try:
        if path.is_dir():
            yield from _iter_saved_dataset(path, source, cfg, ids)
            return
        if kind == ".parquet":
            yield from _iter_table_rows(_parquet_rows(path), source, cfg, ids)
            return
        if kind in (".jsonl", ".csv"):  # line-oriented: streamed, never read whole
            yield from (_iter_jsonl if kind == ".jsonl" else _iter_csv)(path, source, cfg, ids)
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
    elif kind == ".json":
        yield from _iter_json(text, source, cfg, ids)
    else:
        yield Quarantined(source, "", "unsupported_format", f"no loader for {kind!r}", "")


def _parquet_rows(path: Path) -> Iterator[dict]:
    for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=1024):
        yield from batch.to_pylist()


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")  # noqa: SIM115


def _iter_jsonl(path: Path, source: str, cfg: LoadConfig, ids: _IdMaker) -> Iterator[dict | Quarantined]:
    """One record per line, decoded line by line, so one bad line costs one record."""
    errors = "strict" if cfg.on_decode_error == "quarantine" else "replace"
    seen_any = False
    with _open_binary(path) as f:
        for n, raw in enumerate(f, start=1):
            seen_any = True
            try:
                line = raw.decode("utf-8", errors=errors)
            except UnicodeDecodeError as e:
                yield Quarantined(source, f"line {n}", "invalid_utf8", str(e), _excerpt(raw))
                continue
            if n == 1:
                line = line.removeprefix("\ufeff")
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
    if not seen_any:
        yield Quarantined(source, "", "empty_file", "0 bytes", "")


def _iter_json(text: str, source: str, cfg: LoadConfig, ids: _IdMaker) -> Iterator[dict | Quarantined]:
    """A JSON array of objects, an object holding one under a ``json_list_keys`` key, or one object as one record."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        yield Quarantined(source, f"line {e.lineno}", "malformed_json", str(e), _excerpt(text[max(0, e.pos - 60) :]))
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


def _iter_csv(path: Path, source: str, cfg: LoadConfig, ids: _IdMaker) -> Iterator[dict | Quarantined]:
    """Rows streamed through ``csv`` (quoted newlines and commas are fine); a broken file stops where it breaks."""
    if csv.field_size_limit() < cfg.max_file_bytes:
        csv.field_size_limit(cfg.max_file_bytes)  # a long document in one cell is not an error
    errors = "strict" if cfg.on_decode_error == "quarantine" else "replace"
    with io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", errors=errors, newline="") as f:
        reader = csv.DictReader(f)
        try:
            if reader.fieldnames is None:
                yield Quarantined(source, "", "empty_file", "no header row", "")
                return
            yield from _iter_table_rows(reader, source, cfg, ids, first_row=2)
        except csv.Error as e:
            yield Quarantined(
                source, f"line {reader.line_num}", "malformed_csv", f"{e}; the rest of the file is skipped", ""
            )
        except UnicodeDecodeError as e:
            yield Quarantined(
                source, f"line {reader.line_num}", "invalid_utf8", f"{e}; the rest of the file is skipped", ""
            )


def _iter_table_rows(
    rows: Iterable, source: str, cfg: LoadConfig, ids: _IdMaker, first_row: int = 0, unit: str = "row"
) -> Iterator[dict | Quarantined]:
    for n, row in enumerate(rows, start=first_row):
        locator = f"{unit} {n}"
        try:
            if not isinstance(row, dict):
                raise ValueError(f"expected an object, got {type(row).__name__}")
            rec = _row_record(row, source, cfg, ids)
            if rec["format"] == "text" and not rec["text"].strip():
                yield Quarantined(source, locator, "empty_text", "text field is empty", _excerpt(json.dumps(row)))
                continue
            yield rec
        except (KeyError, ValueError) as e:
            raw = _excerpt(json.dumps(row, default=str))
            yield Quarantined(source, locator, "bad_record", str(e).strip("'\""), raw)


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
    """
    stats = stats if stats is not None else LoadStats()
    plan = _plan(inputs, cfg)
    urls = url_inputs(inputs)
    web = bool(urls) or (scrape is not None and bool(scrape.urls or scrape.sitemaps))
    if web and raw_dir is None:
        raise LoadError("web inputs need raw_dir, the folder fetched pages are kept in")
    hubs = {u.spec: open_hub_dataset(u, cfg) for u in plan if isinstance(u, HubInput)}
    ids = _IdMaker()

    def units() -> Iterator[dict | Quarantined]:
        for unit in plan:
            stats.files += 1
            ids.seen.clear()  # ids are salted with their source, so uniqueness only matters within one
            if isinstance(unit, HubInput):
                yield from _iter_dataset(hubs[unit.spec], unit.spec, cfg, ids)
            else:
                yield from _iter_file(unit[0], unit[1], cfg, ids)
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
        else:
            stats.kept += 1
            rows.append(item)
        if len(rows) >= batch_size:
            yield make_records(rows), bad
            rows, bad = [], []
    if rows or bad:
        yield make_records(rows), bad

"""Readers that turn dataset files into plain records, each tagged with the file and index it came from.

Records stay plain dicts here; turning them into Examples is the converters' job. Every parse failure
names the file and the line (and column, where the parser knows it) so the user can open and fix it.
A failure that concerns one record raises at once, unless the caller passes an ``errors`` list: then it
is appended there and reading goes on, so `genie data check` can list every bad record in one run.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from genie_core.data.registry import (
    DATA_SUFFIXES,
    DATASET_INFO,
    DatasetAttr,
    dataset_files,
    dataset_path,
    is_saved_dataset,
)
from genie_core.extras.errors import ConfigError, DataError
from genie_core.extras.logging import get_logger

logger = get_logger(__name__)


class Record(NamedTuple):
    """One raw record and where it came from, so any later error can point the user at it."""

    file: str  # as shown to the user
    index: int  # position within that file, counting records that failed to parse
    record: dict[str, Any]
    line: int | None = None  # 1-based line, for line-based files (JSON Lines, CSV)


@dataclass
class BadRecord:
    """A record that failed validation, kept (with its line when known) instead of stopping the read."""

    error: DataError
    line: int | None = None

    def __str__(self) -> str:
        text = str(self.error)
        where = f"{self.error.file}:{self.error.index}"
        if self.line is None or self.error.index is None or not text.startswith(where):
            return text
        return f"{where} (line {self.line}){text[len(where) :]}"


def _reject(errors: list[BadRecord] | None, error: DataError) -> None:
    """Fail fast (training) or keep the error and go on (`genie data check`); the message already names the line."""
    if errors is None:
        raise error
    errors.append(BadRecord(error))


def read_records(
    attr: DatasetAttr, dataset_dir: str | Path, limit: int | None = None, errors: list[BadRecord] | None = None
) -> list[Record]:
    """All records of one dataset in file order; `limit` stops early (max_samples).

    With ``errors`` given, records that cannot be parsed are added to it and left out; other failures
    (an unreadable file, a missing folder) still raise.
    """
    if attr.load_from in ("hf_hub", "script"):
        return _read_with_datasets(attr, dataset_dir, limit)
    root = Path(dataset_dir)
    path = dataset_path(attr, root)
    if path.is_dir() and is_saved_dataset(path):
        return _take(_read_saved(path, attr, _display(path, root)), limit)
    records: list[Record] = []
    for file in dataset_files(attr, root):
        shown = _display(file, root)
        if attr.file_sha1 and path.is_file():
            _verify_sha1(file, attr.file_sha1, shown)
        reader = _READERS.get(file.suffix.lower())
        if reader is None:
            raise DataError(f"unsupported file type '{file.suffix}'; use one of {', '.join(DATA_SUFFIXES)}", shown)
        records.extend(reader(file, shown, errors))
        if limit is not None and len(records) >= limit:
            break
    return _take(records, limit)


def _take(records: list[Record], limit: int | None) -> list[Record]:
    return records if limit is None else records[:limit]


def _display(path: Path, root: Path) -> str:
    """The name a user recognises: relative to dataset_dir when inside it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _verify_sha1(path: Path, expected: str, shown: str) -> None:
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != expected.lower():
        logger.warning(
            "%s: SHA-1 %s does not match file_sha1 %s in %s; the file may have changed.",
            shown,
            digest.hexdigest(),
            expected,
            DATASET_INFO,
        )


def _read_text(path: Path, shown: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"file is not valid UTF-8 ({err.reason} at byte {err.start})", shown) from None


def _numbered(items: list[dict[str, Any]], shown: str) -> list[Record]:
    return [Record(shown, i, item) for i, item in enumerate(items)]


def _check_objects(items: list[Any], shown: str, errors: list[BadRecord] | None) -> list[Record]:
    records = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            records.append(Record(shown, i, item))
        else:
            _reject(errors, DataError(f"each record must be a JSON object, got {type(item).__name__}", shown, i))
    return records


def read_json(path: Path, shown: str, errors: list[BadRecord] | None = None) -> list[Record]:
    """A JSON array of objects (a .json file holding JSON Lines is accepted too)."""
    text = _read_text(path, shown)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":  # one object per line in a .json file
            try:
                return _parse_lines(text, shown, None)  # a bad line means it may not be JSON Lines at all
            except DataError:
                pass
        raise DataError(f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}", shown) from None
    if not isinstance(data, list):
        hint = " (records nested under a key must be moved to the top level)" if isinstance(data, dict) else ""
        raise DataError(f"expected a JSON array of records, got {type(data).__name__}{hint}", shown)
    return _check_objects(data, shown, errors)


def read_jsonl(path: Path, shown: str, errors: list[BadRecord] | None = None) -> list[Record]:
    return _parse_lines(_read_text(path, shown), shown, errors)


def _parse_lines(text: str, shown: str, errors: list[BadRecord] | None) -> list[Record]:
    """One record per non-blank line; a bad line keeps its index so later records keep theirs."""
    records = []
    numbered = [(lineno, line) for lineno, line in enumerate(text.splitlines(), start=1) if line.strip()]
    for index, (lineno, line) in enumerate(numbered):
        # a collected error also names the record; the fail-fast message stays as it always was
        at = None if errors is None else index
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            _reject(errors, DataError(f"invalid JSON at line {lineno}, column {err.colno}: {err.msg}", shown, at))
            continue
        if not isinstance(item, dict):
            message = f"line {lineno}: each line must be a JSON object, got {type(item).__name__}"
            _reject(errors, DataError(message, shown, at))
            continue
        records.append(Record(shown, index, item, lineno))
    return records


def read_csv(path: Path, shown: str, errors: list[BadRecord] | None = None) -> list[Record]:
    """Header row gives the column names; every value is a string (an empty cell is "")."""
    records = []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        try:
            for index, row in enumerate(reader):
                if None in row:
                    at = None if errors is None else index
                    _reject(errors, DataError(f"line {reader.line_num}: more values than header columns", shown, at))
                    continue
                values = {k: ("" if v is None else v) for k, v in row.items()}
                records.append(Record(shown, index, values, reader.line_num))
        except csv.Error as err:
            raise DataError(f"line {reader.line_num}: malformed CSV ({err})", shown) from None
        except UnicodeDecodeError as err:
            raise DataError(f"file is not valid UTF-8 ({err.reason})", shown) from None
    return records


def read_txt(path: Path, shown: str, errors: list[BadRecord] | None = None) -> list[Record]:
    """Plain text for pre-training: one record per non-empty line, in column `text`."""
    return _numbered([{"text": line} for line in _read_text(path, shown).splitlines() if line.strip()], shown)


def read_parquet(path: Path, shown: str, errors: list[BadRecord] | None = None) -> list[Record]:
    import pyarrow.parquet as pq

    try:
        return _numbered(pq.read_table(path).to_pylist(), shown)
    except Exception as err:  # pyarrow raises several unrelated types for a damaged file
        raise DataError(f"cannot read Parquet file: {err}", shown) from None


def read_arrow(path: Path, shown: str, errors: list[BadRecord] | None = None) -> list[Record]:
    """An Arrow IPC file: the stream format `datasets` writes, or the random-access file format."""
    import pyarrow as pa

    failures = []
    for opener in (pa.ipc.open_stream, pa.ipc.open_file):
        try:
            with pa.memory_map(str(path)) as source:
                return _numbered(opener(source).read_all().to_pylist(), shown)
        except Exception as err:  # try the other IPC flavour
            failures.append(str(err))
    raise DataError(f"cannot read Arrow file: {failures[-1]}", shown)


# reader(path, name shown to the user, errors or None to fail fast) -> records
_READERS: dict[str, Callable[[Path, str, list[BadRecord] | None], list[Record]]] = {
    ".json": read_json,
    ".jsonl": read_jsonl,
    ".csv": read_csv,
    ".parquet": read_parquet,
    ".txt": read_txt,
    ".arrow": read_arrow,
}


def _read_saved(folder: Path, attr: DatasetAttr, shown: str) -> list[Record]:
    """A folder written by save_to_disk; for a DatasetDict the entry's split (default train) is used."""
    from datasets import DatasetDict, load_from_disk

    try:
        data = load_from_disk(str(folder))
    except Exception as err:
        raise DataError(f"cannot load saved dataset: {err}", shown) from None
    if isinstance(data, DatasetDict):
        split = attr.split or "train"
        if split not in data:
            raise DataError(
                f"split '{split}' not found; available: {', '.join(data)} (set \"split\" in {DATASET_INFO})", shown
            )
        data = data[split]
    return _numbered(data.to_list(), shown)


def _read_with_datasets(attr: DatasetAttr, dataset_dir: str | Path, limit: int | None) -> list[Record]:
    """Hub ids and local script/folder entries go through `datasets.load_dataset`."""
    from datasets import load_dataset

    split = attr.split or "train"
    if attr.load_from == "hf_hub":
        path, shown = attr.dataset_name, attr.dataset_name
    else:
        local = Path(dataset_dir) / attr.dataset_name
        path = str(local) if local.exists() else attr.dataset_name
        shown = _display(Path(path), Path(dataset_dir))
    try:
        data = load_dataset(path, name=attr.subset, split=split)
    except Exception as err:
        raise ConfigError(_hub_failure(attr, err)) from err
    if limit is not None:
        data = data.select(range(min(limit, len(data))))
    return _numbered(data.to_list(), shown)


def _hub_failure(attr: DatasetAttr, err: Exception) -> str:
    text = f"{type(err).__name__}: {err}"
    offline_words = ("offline", "connection", "couldn't reach", "resolve", "timed out", "network", "unreachable")
    unreachable = any(word in text.lower() for word in offline_words)
    head = (
        f"dataset '{attr.name}': the Hugging Face Hub is unreachable, so '{attr.dataset_name}' could not be loaded"
        if unreachable
        else f"dataset '{attr.name}': could not load '{attr.dataset_name}' with datasets"
    )
    fix = (
        f"To use it without the Hub, download it where the Hub is reachable, save it under dataset_dir as a "
        f'.json/.jsonl/.parquet file (or a save_to_disk folder), and replace "{_source_key(attr)}" with '
        f'"file_name" in {DATASET_INFO}.'
    )
    if attr.load_from == "script":
        fix += " Note that recent `datasets` versions no longer run loading scripts; point at data files instead."
    return f"{head} ({text}). {fix}"


def _source_key(attr: DatasetAttr) -> str:
    return "hf_hub_url" if attr.load_from == "hf_hub" else "script_url"

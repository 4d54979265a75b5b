"""The dataset registry: `dataset_info.json` entries turned into typed, validated attributes.

Everything is checked here, before any data is read, so a typo in the registry is reported
against the registry file and not as a confusing error deep inside a loader.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from genie_core.extras.errors import ConfigError, DataError
from genie_core.extras.logging import get_logger

logger = get_logger(__name__)

DATASET_INFO = "dataset_info.json"
FORMATTINGS = ("alpaca", "sharegpt")
# suffix -> reader kind; a folder must hold files of a single kind
DATA_SUFFIXES: dict[str, str] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".txt": "txt",
    ".arrow": "arrow",
}

COLUMN_KEYS = (
    "prompt",
    "query",
    "response",
    "history",
    "system",
    "messages",
    "tools",
    "chosen",
    "rejected",
    "kto_tag",
)
TAG_KEYS = ("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag")
_SOURCE_KEYS = ("hf_hub_url", "script_url", "file_name")  # in order of precedence
_ENTRY_KEYS = {
    *_SOURCE_KEYS,
    "file_sha1",
    "formatting",
    "ranking",
    "subset",
    "split",
    "columns",
    "tags",
    "extra_columns",
}
# keys found in registries written for other tools: accepted so such files load, but not used
_FOREIGN_KEYS = {"ms_hub_url", "om_hub_url", "num_samples", "folder"}
_FOREIGN_COLUMNS = {"images", "videos", "audios"}


@dataclass
class DatasetAttr:
    """One registry entry with every default filled in, so converters never guess."""

    name: str
    load_from: Literal["file", "hf_hub", "script"]
    dataset_name: str  # file or folder relative to dataset_dir, hub id, or script/folder path
    file_sha1: str | None = None
    formatting: Literal["alpaca", "sharegpt"] = "alpaca"
    ranking: bool = False
    subset: str | None = None
    split: str | None = None  # None: the loader falls back to DataArguments.split
    # columns (alpaca)
    prompt: str | None = "instruction"
    query: str | None = "input"
    response: str | None = "output"
    history: str | None = None
    # columns (both)
    system: str | None = None
    tools: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    kto_tag: str | None = None  # a boolean column: true marks a desirable reply, false an undesirable one (stage kto)
    # columns (sharegpt)
    messages: str | None = "conversations"
    # tags (sharegpt)
    role_tag: str = "from"
    content_tag: str = "value"
    user_tag: str = "human"
    assistant_tag: str = "gpt"
    observation_tag: str = "observation"
    function_tag: str = "function_call"
    system_tag: str = "system"
    # column roles spelled out in dataset_info.json: only these (and the main text column) must exist in a record
    explicit_columns: tuple[str, ...] = field(default_factory=tuple)
    # record columns carried through to grpo/rloo reward functions as keyword arguments: kwarg name -> column
    extra_columns: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.name} ({self.load_from}: {self.dataset_name})"


def load_dataset_info(dataset_dir: str | Path) -> dict[str, Any]:
    """Read and shape-check the registry; every failure names the file to fix."""
    root = Path(dataset_dir)
    path = root / DATASET_INFO
    if not root.is_dir():
        raise DataError(
            f"dataset_dir '{root}' does not exist or is not a folder; set `dataset_dir` to the folder "
            f"holding {DATASET_INFO}.",
            str(path),
        )
    if not path.is_file():
        raise DataError(
            f"{DATASET_INFO} not found in '{root}'; create it or point `dataset_dir` at the right folder.", str(path)
        )
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}", str(path)) from None
    except UnicodeDecodeError as err:
        raise DataError(f"file is not valid UTF-8 ({err.reason} at byte {err.start})", str(path)) from None
    if not isinstance(info, dict):
        raise DataError(
            f"expected a JSON object mapping dataset names to entries, got {type(info).__name__}", str(path)
        )
    for name, entry in info.items():
        if not isinstance(entry, dict):
            raise DataError(f"entry must be an object, got {type(entry).__name__}", str(path), field=name)
    return info


def get_dataset_attrs(names: list[str], dataset_dir: str | Path) -> list[DatasetAttr]:
    """Resolve dataset names against the registry; an unknown name suggests the closest known ones."""
    if not names:
        return []
    info = load_dataset_info(dataset_dir)
    info_path = str(Path(dataset_dir) / DATASET_INFO)
    attrs = []
    for name in names:
        if name not in info:
            close = difflib.get_close_matches(name, list(info), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            known = ", ".join(sorted(info)) or "(none)"
            raise ConfigError(f"dataset '{name}' is not defined in {info_path}.{hint} Known datasets: {known}.")
        attrs.append(parse_entry(name, info[name], info_path))
    return attrs


def parse_entry(name: str, entry: dict[str, Any], info_path: str = DATASET_INFO) -> DatasetAttr:
    """Turn one registry entry into a DatasetAttr, rejecting unknown keys (they are almost always typos)."""

    def fail(message: str, key: str | None = None) -> DataError:
        return DataError(message, info_path, field=f"{name}.{key}" if key else name)

    unknown = set(entry) - _ENTRY_KEYS - _FOREIGN_KEYS
    if unknown:
        raise fail(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(_ENTRY_KEYS)}")
    source = next((key for key in _SOURCE_KEYS if entry.get(key)), None)
    if source is None:
        raise fail(f"needs one of {', '.join(_SOURCE_KEYS)}")
    load_from = {"hf_hub_url": "hf_hub", "script_url": "script", "file_name": "file"}[source]
    if not isinstance(entry[source], str):
        raise fail("must be a string", source)

    formatting = entry.get("formatting", "alpaca")
    if formatting not in FORMATTINGS:
        raise fail(
            f"'{formatting}' is not a known formatting; use one of {', '.join(FORMATTINGS)} "
            "(OpenAI-style messages are sharegpt with role/content tags)",
            "formatting",
        )
    ranking = entry.get("ranking", False)
    if not isinstance(ranking, bool):
        raise fail(f"must be true or false, got {ranking!r}", "ranking")

    attr = DatasetAttr(
        name=name, load_from=load_from, dataset_name=entry[source], formatting=formatting, ranking=ranking
    )
    for key in ("file_sha1", "subset", "split"):
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            raise fail(f"must be a string, got {value!r}", key)
        setattr(attr, key, value)

    columns = _mapping(entry, "columns", fail)
    bad = set(columns) - set(COLUMN_KEYS) - _FOREIGN_COLUMNS
    if bad:
        raise fail(f"unknown column role(s) {sorted(bad)}; allowed: {', '.join(COLUMN_KEYS)}", "columns")
    ignored = sorted(set(columns) & _FOREIGN_COLUMNS)
    if ignored:
        logger.warning("Dataset '%s': column(s) %s are not supported and will be ignored.", name, ignored)
    if formatting == "sharegpt" and ranking:
        attr.chosen, attr.rejected = "chosen", "rejected"
    for key in COLUMN_KEYS:
        if key in columns:
            setattr(attr, key, columns[key])
    attr.explicit_columns = tuple(sorted(key for key in COLUMN_KEYS if columns.get(key)))
    if attr.kto_tag and ranking:
        raise fail("a dataset is either ranking (chosen/rejected pairs) or tagged (kto_tag), not both", "columns")

    tags = _mapping(entry, "tags", fail)
    bad = set(tags) - set(TAG_KEYS)
    if bad:
        raise fail(f"unknown tag(s) {sorted(bad)}; allowed: {', '.join(TAG_KEYS)}", "tags")
    for key in TAG_KEYS:
        if key in tags:
            setattr(attr, key, tags[key])
    attr.extra_columns = _extra_columns(entry.get("extra_columns"), fail)
    return attr


# names the reward-function call already uses (TRL's and ours): a column under one of them would be shadowed
RESERVED_KWARGS = {"prompt", "prompts", "completion", "completions", "completion_ids", "source", "reference"}
RESERVED_KWARGS |= {"trainer_state", "log_extra", "log_metric", "environments"}


def _extra_columns(value: Any, fail) -> dict[str, str]:
    """``["answer"]`` or ``{"answer": "final_answer"}`` -> {kwarg name: record column}."""
    if value is None:
        return {}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = {v: v for v in value}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise fail('must be a list of column names or an object {"name": "column"}', "extra_columns")
    bad = sorted(k for k in value if not str(k).isidentifier() or k in RESERVED_KWARGS)
    if bad:
        raise fail(
            f"{bad} cannot be a reward-function keyword (not an identifier, or already used: "
            f'{", ".join(sorted(RESERVED_KWARGS))}); map it to another name, e.g. {{"gold": "{bad[0]}"}}',
            "extra_columns",
        )
    return dict(value)


def _mapping(entry: dict[str, Any], key: str, fail) -> dict[str, str]:
    value = entry.get(key) or {}
    if not isinstance(value, dict):
        raise fail(f"must be an object, got {type(value).__name__}", key)
    for sub, text in value.items():
        if text is not None and not isinstance(text, str):
            raise fail(f"must be a string, got {text!r}", f"{key}.{sub}")
    return value


def dataset_path(attr: DatasetAttr, dataset_dir: str | Path) -> Path:
    """Where a local dataset lives (file_name may be absolute)."""
    return Path(dataset_dir) / attr.dataset_name


def is_saved_dataset(folder: Path) -> bool:
    """A folder written by `datasets`' save_to_disk (a Dataset or a DatasetDict)."""
    return (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()


def dataset_files(attr: DatasetAttr, dataset_dir: str | Path) -> list[Path]:
    """The files a local dataset is read from, sorted, so a content fingerprint sees every byte that matters.

    Hub datasets have no local files and give an empty list; a script entry gives the script or folder files.
    """
    if attr.load_from == "hf_hub":
        return []
    path = dataset_path(attr, dataset_dir)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(
            f"dataset '{attr.name}': file or folder not found (check `file_name` in {DATASET_INFO} and `dataset_dir`)",
            str(path),
        )
    if attr.load_from == "script" or is_saved_dataset(path):
        return sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path))
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    data = [p for p in files if p.suffix.lower() in DATA_SUFFIXES]
    if not data:
        raise DataError(
            f"dataset '{attr.name}': folder holds no data files (supported: {', '.join(DATA_SUFFIXES)})", str(path)
        )
    kinds = {DATA_SUFFIXES[p.suffix.lower()] for p in data}
    if len(kinds) > 1:
        raise DataError(
            f"dataset '{attr.name}': folder mixes file types {sorted(kinds)}; keep one type per folder", str(path)
        )
    return data


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)

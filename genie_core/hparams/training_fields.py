"""The fields of transformers' ``Seq2SeqTrainingArguments`` without importing transformers.

Importing it pulls torch, peft and bitsandbytes: about 9 s here, which a config typo should not cost. The table
(name, kind, default, choices) is built once per installed transformers version by importing the class, and kept
as a small JSON file under ``$GENIE_HOME/meta``; every later parse reads the file. Within a process that has
already imported transformers, building it is instant.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal, Union

from genie_core.extras.env import genie_home

_SCHEMA = 1  # bump when the table's format changes


@dataclass(frozen=True)
class TrainingField:
    """What the parent needs to know about one training argument: how to coerce it and what it defaults to.

    ``kind`` is bool, int, float or str for plain fields, ``stringy`` for unions that accept a string (enums,
    ``str | list``), ``other`` for anything else (left as the user wrote it).
    """

    name: str
    kind: str
    default: Any = None
    choices: tuple[str, ...] = ()
    help: str = ""


def _kind(tp: Any) -> tuple[str, tuple[str, ...]]:
    options = [a for a in typing.get_args(tp) if a is not type(None)] if _is_union(tp) else [tp]
    if len(options) == 1 and options[0] in (bool, int, float, str):
        return options[0].__name__, ()
    choices: list[str] = []
    for option in options:
        if isinstance(option, type) and issubclass(option, enum.Enum):
            choices += [str(member.value) for member in option]  # transformers converts the string to the enum
        elif typing.get_origin(option) is Literal and str not in options:
            choices += [str(c) for c in typing.get_args(option)]
    if choices or str in options:
        return "stringy", tuple(choices)
    return "other", ()


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None
    return value


def _build() -> dict[str, dict[str, Any]]:
    from transformers import Seq2SeqTrainingArguments

    try:
        hints = typing.get_type_hints(Seq2SeqTrainingArguments)
    except Exception:  # an annotation we cannot resolve: fall back to the raw ones
        hints = {f.name: f.type for f in dataclasses.fields(Seq2SeqTrainingArguments)}
    table = {}
    for f in dataclasses.fields(Seq2SeqTrainingArguments):
        if not f.init or f.name.startswith("_"):
            continue
        kind, choices = _kind(hints.get(f.name, f.type))
        default = f.default if f.default is not dataclasses.MISSING else None
        table[f.name] = {
            "kind": kind,
            "default": _jsonable(default),
            "choices": list(choices),
            "help": str(f.metadata.get("help", ""))[:300],
        }
    return table


def _cache_path() -> Path:
    return genie_home() / "meta" / f"training_fields-{version('transformers')}-v{_SCHEMA}.json"


@lru_cache(maxsize=1)
def training_fields() -> dict[str, TrainingField]:
    """Every ``Seq2SeqTrainingArguments`` field of the installed transformers, from the cache when it exists."""
    path = _cache_path()
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        table = _build()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(table, sort_keys=True), encoding="utf-8")
            tmp.replace(path)
        except OSError:  # a read-only home still parses, just without the shortcut next time
            pass
    return {
        name: TrainingField(name, v["kind"], v["default"], tuple(v["choices"]), v["help"]) for name, v in table.items()
    }

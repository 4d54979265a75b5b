"""``genie train --help``: every config key, grouped by the dataclass that owns it, in argparse's layout.

The trainer's fields come from the cached table in ``training_fields``, so printing the help never imports torch
or transformers (the table is built once per installed transformers version, by whichever command needs it first).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import typing
from typing import Any, Literal

from genie_core.hparams.parser import (
    ALIASES,
    OWN_DATACLASSES,
    SWITCH_VALUES,
    TRAINING_DEFAULTS,
    _unwrap_optional,
    field_default,
)
from genie_core.hparams.training_fields import training_fields

USAGE_TRAIN = """genie train CONFIG.yaml [key=value ...] [--key value ...] [--no-launch]
   or: genie train --stage sft --model_name_or_path PATH --dataset NAME --template T --output_dir DIR --do_train ...
Later overrides win over the file. --no-launch runs the stage in this process (for debugging)."""

TRAINER_GROUP = "Seq2SeqTrainingArguments"
ALIAS_GROUP = "Aliases"
_MAX_WIDTH = 119


@dataclasses.dataclass(frozen=True)
class HelpRow:
    """One option as the help shows it."""

    name: str
    metavar: str | None
    choices: tuple[str, ...]
    default: Any
    help: str


def _describe_type(tp: Any) -> tuple[str | None, tuple[str, ...]]:
    """(metavar, choices) for a dataclass field's annotation: ``{a,b}`` for Literals, the type name otherwise."""
    tp = _unwrap_optional(tp)
    if typing.get_origin(tp) is Literal:
        return None, tuple(str(c) for c in typing.get_args(tp))
    return (tp.__name__ if isinstance(tp, type) else "value"), ()


def dataclass_rows(cls: type) -> list[HelpRow]:
    """The init fields of one of our argument dataclasses."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if not f.init or f.name.startswith("_"):
            continue
        metavar, choices = _describe_type(hints.get(f.name, f.type))
        rows.append(HelpRow(f.name, metavar, choices, field_default(f), str(f.metadata.get("help", ""))))
    return rows


def trainer_rows() -> list[HelpRow]:
    """The trainer's fields from the cached table, with the defaults this project changes applied."""
    rows = []
    for name, spec in training_fields().items():
        metavar = {"stringy": "str", "other": "value"}.get(spec.kind, spec.kind)
        default = TRAINING_DEFAULTS.get(name, spec.default)
        rows.append(HelpRow(name, None if spec.choices else metavar, spec.choices, default, spec.help))
    return rows


def alias_rows() -> list[HelpRow]:
    return [HelpRow(alias, "value", (), None, _alias_help(key)) for alias, key in sorted(ALIASES.items())]


def _alias_help(key: str) -> str:
    if key not in SWITCH_VALUES:
        return f"Alias of --{key}."
    values = SWITCH_VALUES[key]
    return f"true/false: --{key} {values[True]} / {values[False]}."


def help_groups() -> list[tuple[str, list[HelpRow]]]:
    """Groups in display order; a key several dataclasses read (``seed``) is listed once, under its first owner."""
    groups = [(cls.__name__, dataclass_rows(cls)) for cls in OWN_DATACLASSES]
    groups.append((TRAINER_GROUP, trainer_rows()))
    owners: dict[str, list[str]] = {}
    for title, rows in groups:
        for row in rows:
            owners.setdefault(row.name, []).append(title)
    deduped = []
    for title, rows in groups:
        kept = [_note_other_owners(row, owners[row.name][1:]) for row in rows if owners[row.name][0] == title]
        deduped.append((title, kept))
    deduped.append((ALIAS_GROUP, alias_rows()))
    return deduped


def _note_other_owners(row: HelpRow, others: list[str]) -> HelpRow:
    if not others:
        return row
    return dataclasses.replace(
        row, help=f"{row.help.rstrip()} Also sets {', '.join(f'{o}.{row.name}' for o in others)}."
    )


def _escape(text: str) -> str:
    """argparse %-formats help strings; transformers' help texts are already escaped for it, ours are not."""
    return text.replace("%%", "%").replace("%", "%%")


def _help_text(row: HelpRow, show_default: bool) -> str:
    text = row.help.strip()
    return _escape(f"{text} (default: {row.default!r})" if show_default else text)


def _width() -> int:
    return min(shutil.get_terminal_size().columns - 2, _MAX_WIDTH)


def format_train_help() -> str:
    """The text ``genie train --help`` prints: the usage lines, then each group's options with type and default."""
    parser = argparse.ArgumentParser(
        usage=argparse.SUPPRESS,
        add_help=False,
        formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=32, width=_width()),
    )
    for title, rows in help_groups():
        group = parser.add_argument_group(title)
        for row in rows:
            group.add_argument(
                f"--{row.name}",
                metavar=row.metavar,
                choices=row.choices or None,
                help=_help_text(row, show_default=title != ALIAS_GROUP),
            )
    return f"usage: {USAGE_TRAIN}\n\n{parser.format_help().strip()}\n"

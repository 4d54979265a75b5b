"""Alpaca and ShareGPT records -> the internal Example schema.

Two kinds of problems are told apart on purpose:
* a record whose *shape* is wrong (a registered column is missing, a value has the wrong type, a role is
  unknown) means the registry or the file is wrong for every record, so it raises DataError at once;
* a record that is well-formed but unusable (empty text, roles out of order, nothing to learn) is
  returned as Dropped, so one bad row does not stop a run and is still reported by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from genie_core.data.registry import DATASET_INFO, DatasetAttr
from genie_core.extras.errors import DataError
from genie_core.hparams.stages import STAGE_TABLE
from genie_core.schema import Example, Message

PROMPT_ROLES = ("user", "observation")
RESPONSE_ROLES = ("assistant", "function")


@dataclass
class Dropped:
    """A record left out, with the reason shown to the user as `file:index: reason`."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass
class _Where:
    file: str
    index: int

    def error(self, message: str, field: str | None = None) -> DataError:
        return DataError(message, self.file, self.index, field)

    def drop(self, reason: str) -> Dropped:
        return Dropped(f"{self.file}:{self.index}", reason)


def convert_record(
    record: dict[str, Any], attr: DatasetAttr, file: str, index: int, data_args: Any = None, stage: str = "sft"
) -> Example | Dropped:
    """Convert one record; `stage` only relaxes what counts as complete (pt/ppo need no response)."""
    where = _Where(file, index)
    if not isinstance(record, dict):
        raise where.error(f"record must be an object, got {type(record).__name__}")
    _require_columns(record, attr, where)
    convert = _convert_sharegpt if attr.formatting == "sharegpt" else _convert_alpaca
    result = convert(record, attr, where, stage)
    if isinstance(result, Dropped):
        return result
    column_system = _text(record, attr.system, where)  # type-checked even when a system turn wins
    result.system = result.system or column_system
    result.tools = _tools(record, attr.tools, where)
    if attr.kto_tag:
        result.desirable = _kto_tag(record, attr.kto_tag, where)
        if result.desirable is None:
            return where.drop(f"no kto_tag value in column '{attr.kto_tag}'")
    result.source = f"{file}:{index}"
    result.extra = {"dataset": attr.name}
    if attr.extra_columns:
        result.extra["columns"] = _extra_columns(record, attr, where)
    if data_args is not None:
        _fill_self_cognition(result, data_args)
    return result


def _require_columns(record: dict[str, Any], attr: DatasetAttr, where: _Where) -> None:
    main = "messages" if attr.formatting == "sharegpt" else "prompt"
    used = _ALPACA_COLUMNS if attr.formatting == "alpaca" else _SHAREGPT_COLUMNS
    for role in sorted({main, *attr.explicit_columns} & used):
        column = getattr(attr, role)
        if column and column not in record:
            keys = ", ".join(sorted(map(str, record))) or "none"
            raise where.error(
                f"column '{column}' (the {role} column of dataset '{attr.name}' in {DATASET_INFO}) "
                f"is missing from the record; the record has: {keys}",
                column,
            )


_ALPACA_COLUMNS = {"prompt", "query", "response", "history", "system", "tools", "chosen", "rejected", "kto_tag"}
_SHAREGPT_COLUMNS = {"messages", "system", "tools", "chosen", "rejected", "kto_tag"}
_KTO_TAGS = {"true": True, "1": True, "false": False, "0": False}


def _text(record: dict[str, Any], column: str | None, where: _Where) -> str:
    """A string column; absent or null reads as "" (optional columns, empty CSV/Parquet cells)."""
    if not column:
        return ""
    value = record.get(column)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise where.error(f"expected a string, got {_kind(value)}", column)
    return value


def _tools(record: dict[str, Any], column: str | None, where: _Where) -> str:
    value = record.get(column) if column else None
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    raise where.error(f"expected a JSON string, list or object of tool definitions, got {_kind(value)}", column)


def _kto_tag(record: dict[str, Any], column: str, where: _Where) -> bool | None:
    """A boolean (JSON), or 0/1 and "true"/"false" as CSV and Parquet files spell it; None when the cell is empty."""
    value = record.get(column)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, str)) and str(value).strip().lower() in _KTO_TAGS:
        return _KTO_TAGS[str(value).strip().lower()]
    raise where.error(f"kto_tag must be true (a desirable reply) or false (an undesirable one), got {value!r}", column)


def _prompt_only(stage: str) -> bool:
    """Stages that sample their own replies (ppo, grpo, rloo) keep records whose reply is empty."""
    return stage in STAGE_TABLE and STAGE_TABLE[stage].data == "prompt"


def _extra_columns(record: dict[str, Any], attr: DatasetAttr, where: _Where) -> dict[str, Any]:
    """The registry's extra_columns (answers, solutions, test cases...) for reward functions; missing is a shape
    error, since a reward function would then fail on every record."""
    values = {}
    for name, column in attr.extra_columns.items():
        if column not in record:
            keys = ", ".join(sorted(map(str, record))) or "none"
            raise where.error(
                f"column '{column}' (extra_columns.{name} of dataset '{attr.name}' in {DATASET_INFO}) is missing "
                f"from the record; the record has: {keys}",
                column,
            )
        values[name] = record[column]
    return values


def _kind(value: Any) -> str:
    return {list: "a list", dict: "an object", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _msg(role: str, content: str) -> Message:
    return {"role": role, "content": content}  # type: ignore[typeddict-item]


# --- alpaca -------------------------------------------------------------------------------------------------


def _convert_alpaca(record: dict[str, Any], attr: DatasetAttr, where: _Where, stage: str) -> Example | Dropped:
    instruction = _text(record, attr.prompt, where)
    query = _text(record, attr.query, where)
    content = "\n".join(part for part in (instruction, query) if part)
    prompt: list[Message] = []
    for turn, (old_query, old_response) in enumerate(_history(record, attr.history, where)):
        if not old_query.strip() or not old_response.strip():
            return where.drop(f"empty turn in history (pair {turn})")
        prompt += [_msg("user", old_query), _msg("assistant", old_response)]
    if not content.strip():
        return where.drop("empty prompt")
    prompt.append(_msg("user", content))

    if attr.ranking:
        pair = _alpaca_pair(record, attr, where)
        return _ranked(prompt, *pair, where)
    response = _text(record, attr.response, where)
    if stage == "pt":
        return Example(prompt=prompt, response=[])
    if not response.strip():
        if _prompt_only(stage):
            return Example(prompt=prompt, response=[])
        return where.drop("empty response")
    return Example(prompt=prompt, response=[_msg("assistant", response)])


def _history(record: dict[str, Any], column: str | None, where: _Where) -> list[tuple[str, str]]:
    value = record.get(column) if column else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise where.error(f"expected a list of [query, response] pairs, got {_kind(value)}", column)
    pairs = []
    for turn, pair in enumerate(value):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise where.error(f"pair {turn} must be [query, response] with two strings, got {pair!r}", column)
        pairs.append((pair[0], pair[1]))
    return pairs


def _alpaca_pair(record: dict[str, Any], attr: DatasetAttr, where: _Where) -> tuple[str, str]:
    """chosen/rejected columns when registered (or present), else the response column as [chosen, rejected]."""
    chosen_col, rejected_col = attr.chosen, attr.rejected
    if not chosen_col and "chosen" in record and "rejected" in record:
        chosen_col, rejected_col = "chosen", "rejected"
    if chosen_col:
        if not rejected_col:
            raise where.error(
                f"dataset '{attr.name}' names a chosen column but no rejected column in {DATASET_INFO}", "rejected"
            )
        for column in (chosen_col, rejected_col):
            if column not in record:
                raise where.error(f"column '{column}' is missing from the record", column)
        return _text(record, chosen_col, where), _text(record, rejected_col, where)
    value = record.get(attr.response) if attr.response else None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, (str, type(None))) for v in value)):
        raise where.error(
            f"a ranking record needs chosen/rejected columns or a [chosen, rejected] list, got "
            f"{_kind(value) if value is not None else 'nothing'}",
            attr.response or "chosen",
        )
    return value[0] or "", value[1] or ""


def _ranked(prompt: list[Message], chosen: str | Message, rejected: str | Message, where: _Where) -> Example | Dropped:
    chosen_msg = chosen if isinstance(chosen, dict) else _msg("assistant", chosen)
    rejected_msg = rejected if isinstance(rejected, dict) else _msg("assistant", rejected)
    if not chosen_msg["content"].strip():
        return where.drop("empty chosen response")
    if not rejected_msg["content"].strip():
        return where.drop("empty rejected response")
    if chosen_msg == rejected_msg:
        return where.drop("chosen and rejected responses are identical")
    return Example(prompt=prompt, response=[chosen_msg, rejected_msg])


# --- sharegpt -----------------------------------------------------------------------------------------------


def _role_map(attr: DatasetAttr) -> dict[str, str]:
    return {
        attr.user_tag: "user",
        attr.assistant_tag: "assistant",
        attr.observation_tag: "observation",
        attr.function_tag: "function",
        attr.system_tag: "system",
    }


def _turn(value: Any, attr: DatasetAttr, roles: dict[str, str], where: _Where, field: str) -> Message:
    if not isinstance(value, dict):
        raise where.error(
            f"a turn must be an object with '{attr.role_tag}' and '{attr.content_tag}', got {_kind(value)}", field
        )
    for tag in (attr.role_tag, attr.content_tag):
        if tag not in value:
            keys = ", ".join(map(str, value)) or "none"
            raise where.error(
                f"turn has no '{tag}' key (it has: {keys}); set the tags of dataset '{attr.name}' in "
                f"{DATASET_INFO} if the data uses other names",
                field,
            )
    role = value[attr.role_tag]
    if role not in roles:
        raise where.error(
            f"unknown role {role!r}; expected one of {', '.join(map(repr, roles))} (change `tags` in "
            f"{DATASET_INFO} if the data uses other role names)",
            field,
        )
    content = value[attr.content_tag]
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise where.error(f"'{attr.content_tag}' must be a string, got {_kind(content)}", field)
    return _msg(roles[role], content)


def _convert_sharegpt(record: dict[str, Any], attr: DatasetAttr, where: _Where, stage: str) -> Example | Dropped:
    column = attr.messages or "conversations"
    raw = record.get(column)
    if not isinstance(raw, list):
        raise where.error(f"expected a list of turns, got {_kind(raw) if raw is not None else 'null'}", column)
    roles = _role_map(attr)
    turns = [_turn(value, attr, roles, where, f"{column}[{i}]") for i, value in enumerate(raw)]

    system_turn = None
    if turns and turns[0]["role"] == "system":
        system_turn, turns = turns[0], turns[1:]
    offset = 1 if system_turn else 0
    for i, turn in enumerate(turns):
        position = i + offset
        if turn["role"] == "system":
            return where.drop(f"system turn at position {position} (only the first turn may be system)")
        expected = PROMPT_ROLES if i % 2 == 0 else RESPONSE_ROLES
        if turn["role"] not in expected:
            return where.drop(
                f"roles do not alternate: turn {position} is {turn['role']}, expected {' or '.join(expected)}"
            )
        if not turn["content"].strip():
            return where.drop(f"empty {turn['role']} turn at position {position}")
    if not turns:
        return where.drop("empty conversation")

    if attr.ranking:
        if len(turns) % 2 == 0:
            return where.drop("a ranking prompt must end with a user or observation turn")
        chosen = _ranked_turn(record, attr.chosen or "chosen", attr, roles, where)
        rejected = _ranked_turn(record, attr.rejected or "rejected", attr, roles, where)
        for name, turn in (("chosen", chosen), ("rejected", rejected)):
            if turn["role"] not in RESPONSE_ROLES:
                return where.drop(f"{name} turn has role {turn['role']}, expected assistant or function")
        example = _ranked(turns, chosen, rejected, where)
    elif turns[-1]["role"] in RESPONSE_ROLES:
        example = Example(prompt=turns[:-1], response=turns[-1:])
    elif _prompt_only(stage) or stage == "pt":
        example = Example(prompt=turns, response=[])
    else:
        return where.drop("conversation does not end with an assistant turn")
    if isinstance(example, Example) and system_turn is not None:
        example.system = system_turn["content"]
    return example


def _ranked_turn(record: dict[str, Any], column: str, attr: DatasetAttr, roles: dict[str, str], where: _Where):
    if column not in record:
        raise where.error(
            f"column '{column}' is missing from the record (ranking sharegpt data needs chosen and rejected turns)",
            column,
        )
    value = record[column]
    if isinstance(value, str):
        return _msg("assistant", value)
    return _turn(value, attr, roles, where, column)


# --- self-cognition -----------------------------------------------------------------------------------------


def _fill_self_cognition(example: Example, data_args: Any) -> None:
    """Replace {{name}} / {{author}} so one identity dataset serves any model name."""
    name = getattr(data_args, "self_cognition_name", None)
    author = getattr(data_args, "self_cognition_author", None)

    def fill(text: str) -> str:
        if "{{" not in text:
            return text
        if name is not None:
            text = text.replace("{{name}}", name)
        if author is not None:
            text = text.replace("{{author}}", author)
        return text

    for message in [*example.prompt, *example.response]:
        message["content"] = fill(message["content"])
    example.system = fill(example.system)

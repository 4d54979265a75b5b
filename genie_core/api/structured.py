"""What a chat request asks of its reply's form (``tool_choice``, ``response_format``) and how that is enforced.

Where a grammar can state the rule, decoding is constrained (``genie_core.chat.constrain``): ``json_object`` and
``json_schema`` replies are JSON objects, and a call that ``tool_choice`` requires is ``{"name": <an allowed
function>, "arguments": {...}}`` inside the template's call markers, so these are well formed by construction
(unless ``max_tokens`` is too small to finish them). What the grammar does not state is checked after generation:
a ``json_schema``'s own rules and a ``strict`` function's parameters. A reply that fails is generated again, up to
``attempts`` times for sampling requests (a greedy one would repeat itself, so it gets one); if none passes, the
request is answered 422 ``invalid_model_output`` rather than with a reply in the wrong form.

A reply cut by ``max_tokens`` is returned as it is (``finish_reason: length``), as OpenAI does for JSON modes; a
required tool call that was cut is a 422, since a reply that is not a call must not stand in for one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genie_core.api.errors import ApiError
from genie_core.api.protocol import ChatCompletionRequest, JsonObjectFormat, JsonSchemaFormat, NamedToolChoice
from genie_core.chat.grammar import JsonObject, Machine
from genie_core.chat.tools import call_affixes, call_grammar, parse_tool_calls, tools_to_text
from genie_core.extras.errors import GenieError

Check = Callable[[str, str], "str | None"]  # (text, finish_reason) -> what is wrong, or None


@dataclass
class OutputPlan:
    tools_text: str  # the tools offered in the prompt ("" for none)
    constraint: Callable[[], Machine] | None = None
    check: Check | None = None  # None: the grammar (or nothing) is all there is to enforce
    single_call: bool = False  # parallel_tool_calls: false


def plan_output(req: ChatCompletionRequest, template: Any) -> OutputPlan:
    """The prompt's tools text, grammar and after-the-fact check of a chat request; 400 for a bad combination."""
    tools = req.tools or []
    choice = req.tool_choice if req.tool_choice is not None else ("auto" if tools else "none")
    names = [tool.function.name for tool in tools]
    if choice == "required" or isinstance(choice, NamedToolChoice):
        if not tools:
            raise ApiError(400, "tool_choice: a required or named tool call needs `tools`.", param="tool_choice")
        if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
            raise ApiError(
                400,
                f"tool_choice names the function {choice.function.name!r}, which is not among tools "
                f"({', '.join(map(repr, names))}).",
                param="tool_choice",
            )
    try:
        tools_text = "" if choice == "none" else tools_to_text(_tool_dicts(tools))
    except GenieError as exc:
        raise ApiError(400, str(exc), param="tools") from None
    single = req.parallel_tool_calls is False
    strict = {
        tool.function.name: schema_checker(tool.function.parameters or {}, f"tools[{i}].function.parameters")
        for i, tool in enumerate(tools)
        if getattr(tool.function, "strict", None) is True and choice != "none"
    }
    if choice == "required" or isinstance(choice, NamedToolChoice):
        allowed = [choice.function.name] if isinstance(choice, NamedToolChoice) else list(dict.fromkeys(names))
        affixes = call_affixes(template)
        return OutputPlan(tools_text, lambda: call_grammar(allowed, affixes), _call_check(allowed, strict), single)
    constraint: Callable[[], Machine] | None = None
    text_check: Check | None = None
    fmt = req.response_format
    if isinstance(fmt, JsonSchemaFormat):
        schema = fmt.json_schema.schema_ or {}
        checker = schema_checker(schema, "response_format.json_schema.schema")
        kind = schema.get("type", "object")
        if kind != "object" and kind != ["object"]:  # the grammar makes an object
            raise ApiError(
                400,
                f"response_format.json_schema.schema must describe an object (type: object), got type {kind!r}.",
                param="response_format",
            )
        constraint, text_check = JsonObject, _json_check(checker)
    elif isinstance(fmt, JsonObjectFormat):
        constraint = JsonObject
    if strict:  # auto: a reply may be text or a call; a call to a strict function must fit its parameters
        return OutputPlan(tools_text, constraint, _either(_call_check(names, strict), text_check), single)
    return OutputPlan(tools_text, constraint, text_check, single)


def _tool_dicts(tools) -> list[dict[str, Any]] | None:
    """Tools as the client sent them (extra function keys kept), for the prompt."""
    return [tool.model_dump(exclude_unset=True) for tool in tools] if tools else None


def _call_check(allowed: list[str], strict: dict[str, Callable[[Any], str | None]]) -> Check:
    def check(text: str, reason: str) -> str | None:
        _, calls = parse_tool_calls(text)
        if not calls:
            if reason == "length":
                return "max_tokens ran out before the tool call was complete"
            return "the reply is not a tool call"
        for call in calls:
            if call.name not in allowed:
                return f"the reply calls {call.name!r}, which is not among the functions allowed"
            if call.name in strict:
                try:
                    arguments = json.loads(call.arguments)
                except ValueError:
                    return f"the arguments of {call.name!r} are not JSON"
                problem = strict[call.name](arguments)
                if problem:
                    return f"the arguments of {call.name!r} do not match its parameters: {problem}"
        return None

    return check


def _either(call_check: Check, text_check: Check | None) -> Check:
    """``call_check`` for a reply that is a tool call, ``text_check`` (if any) for one that is not."""

    def check(text: str, reason: str) -> str | None:
        if parse_tool_calls(text)[1]:
            return call_check(text, reason)
        return text_check(text, reason) if text_check is not None else None

    return check


def _json_check(checker: Callable[[Any], str | None]) -> Check:
    def check(text: str, reason: str) -> str | None:
        if reason == "length":
            return None  # cut short: returned as it is, as OpenAI does
        try:
            value = json.loads(text)
        except ValueError as exc:
            return f"the reply is not JSON ({exc})"
        problem = checker(value)
        return f"the reply does not match the schema: {problem}" if problem else None

    return check


# ---- JSON Schema ------------------------------------------------------------------------------------------------

_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "strict"}
)
_LITE_KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties", "items", "enum", "const"})
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and v.is_integer(),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def schema_checker(schema: dict[str, Any], param: str) -> Callable[[Any], str | None]:
    """A check of values against ``schema`` (what is wrong, or None); a 400 naming ``param`` if the schema is bad.

    Uses the ``jsonschema`` package when it is installed (any draft; references only within the schema); without
    it, a small checker that knows type, properties, required, additionalProperties, items, enum and const, and
    refuses schemas that need more rather than skip their rules.
    """
    field = param.split(".", 1)[0].split("[", 1)[0]
    try:
        import jsonschema
        from referencing import Registry
    except ImportError:
        _check_lite_schema(schema, param, field)
        return lambda value: _lite_problem(schema, value, "")
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        validator = cls(schema, registry=Registry())  # no retrieval: a $ref must point inside the schema
        list(validator.iter_errors({}))  # references at the top resolve now, not after generating
    except jsonschema.SchemaError as exc:
        raise ApiError(400, f"{param} is not a valid JSON Schema: {exc.message}", param=field) from None
    except Exception as exc:  # unresolvable references, bad patterns, absurd nesting
        raise ApiError(400, f"{param} cannot be used: {type(exc).__name__}: {exc}", param=field) from None

    def check(value: Any) -> str | None:
        try:
            error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        except Exception as exc:
            return f"the schema could not be applied ({type(exc).__name__}: {exc})"
        if error is None:
            return None
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        return f"{where.lstrip('.') or 'the object'}: {error.message}"

    return check


def _check_lite_schema(schema: Any, param: str, field: str) -> None:
    if not isinstance(schema, dict):
        raise ApiError(400, f"{param} must be an object.", param=field)
    unknown = set(schema) - _LITE_KEYWORDS - _ANNOTATIONS
    if unknown:
        raise ApiError(
            400,
            f"{param} uses {', '.join(sorted(unknown))}, which this server checks only with the jsonschema package "
            "installed.",
            param=field,
        )
    kinds = schema.get("type", [])
    for kind in kinds if isinstance(kinds, list) else [kinds]:
        if kind not in _TYPES:
            raise ApiError(400, f"{param}.type: unknown type {kind!r}.", param=field)
    for name, sub in (schema.get("properties") or {}).items():
        _check_lite_schema(sub, f"{param}.properties.{name}", field)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _check_lite_schema(schema[key], f"{param}.{key}", field)


def _lite_problem(schema: dict[str, Any], value: Any, path: str) -> str | None:
    where = path or "the object"
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(_TYPES[k](value) for k in kinds):
            return f"{where}: {value!r} is not of type {' or '.join(kinds)}"
    if "const" in schema and value != schema["const"]:
        return f"{where}: {value!r} is not {schema['const']!r}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: {value!r} is not one of {schema['enum']!r}"
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value:
                return f"{where}: {name!r} is a required property"
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            sub = properties.get(name, extra)
            if sub is False:
                return f"{where}: additional property {name!r} is not allowed"
            if isinstance(sub, dict):
                problem = _lite_problem(sub, item, f"{path}.{name}".lstrip("."))
                if problem:
                    return problem
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problem = _lite_problem(schema["items"], item, f"{path}[{i}]")
            if problem:
                return problem
    return None

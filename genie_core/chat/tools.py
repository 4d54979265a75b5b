"""Tool calling: tool definitions into the template's tools text, and a model's reply back into structured calls.

Training data stores a call as ``{"name": ..., "arguments": {...}}`` (a list for several calls) and the template
wraps it in the family's markers; so a reply is parsed by removing those markers and reading the JSON:

- chatml: the bare JSON object (or list);
- qwen: one ``<tool_call>\\n{...}\\n</tool_call>`` block per call;
- llama3: the bare JSON object, with ``parameters`` in place of ``arguments``;
- mistral: ``[TOOL_CALLS]`` followed by a JSON list.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from genie_core.chat.grammar import Choice, JsonObject, Literal, Sequence
from genie_core.extras.errors import GenieError

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
_MARKERS = ("[TOOL_CALLS]", "<|python_tag|>")


@dataclass
class ToolCall:
    name: str
    arguments: str  # a JSON object as text, which is how the OpenAI API carries it
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = f"call_{uuid.uuid4().hex[:24]}"


def tools_to_text(tools: list[dict[str, Any]] | None) -> str:
    """OpenAI ``tools`` (``{"type": "function", "function": {...}}``) as the JSON list of functions training used."""
    if not tools:
        return ""
    functions = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise GenieError(f"tools[{i}] must be an object.")
        if tool.get("type", "function") != "function":
            raise GenieError(f"tools[{i}].type must be 'function', got {tool.get('type')!r}.")
        function = tool.get("function", tool)
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise GenieError(f"tools[{i}].function needs a 'name'.")
        functions.append(function)
    return json.dumps(functions, ensure_ascii=False)


def calls_to_text(calls: list[dict[str, Any]]) -> str:
    """OpenAI ``tool_calls`` of an assistant message as the content of a function turn (the training format)."""
    out = []
    for i, call in enumerate(calls):
        function = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise GenieError(f"tool_calls[{i}].function needs a 'name'.")
        args = function.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except ValueError:
                raise GenieError(f"tool_calls[{i}].function.arguments is not valid JSON: {args[:80]!r}") from None
        out.append({"name": function["name"], "arguments": args})
    return json.dumps(out[0] if len(out) == 1 else out, ensure_ascii=False)


def _as_calls(value: Any) -> list[ToolCall] | None:
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return None
        args = item.get("arguments", item.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                pass
        calls.append(ToolCall(item["name"], args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)))
    return calls or None


def _loads(text: str) -> Any:
    fenced = _FENCE.match(text.strip())
    try:
        return json.loads(fenced.group(1) if fenced else text)
    except ValueError:
        return None


def parse_tool_calls(text: str) -> tuple[str, list[ToolCall]]:
    """``(content, calls)``: calls found in a reply, and the text outside them; no calls leaves the text as is."""
    stripped = text.strip()
    if "<tool_call>" in stripped:
        calls: list[ToolCall] = []
        for block in _TAGGED.findall(stripped):
            parsed = _as_calls(_loads(block))
            if parsed is None:
                return text, []
            calls += parsed
        return _TAGGED.sub("", stripped).strip(), calls
    body = stripped
    for marker in _MARKERS:
        if body.startswith(marker):
            body = body[len(marker) :].strip()
    parsed = _as_calls(_loads(body)) if body[:1] in "{[`" else None
    return ("", parsed) if parsed else (text, [])


def may_be_tool_call(text: str) -> bool:
    """Whether a reply that starts with ``text`` could turn out to be a tool call (so streaming should wait)."""
    head = text.lstrip()
    if not head:
        return True
    candidates = ("<tool_call>", "```", *_MARKERS)
    return head[0] in "{[" or any(c.startswith(head[: len(c)]) for c in candidates)


def call_affixes(template: Any) -> tuple[str, str]:
    """The text a template writes before and after a call's JSON (qwen: ``<tool_call>\\n`` and ``\\n</tool_call>``).

    Read from its ``function_format`` up to the end-of-turn marker; a format whose markers are special slots or
    that ``parse_tool_calls`` would not read back, or a template rendered by the tokenizer's own chat template,
    gives ``("", "")``: the bare JSON, which ``parse_tool_calls`` reads in every family's output.
    """
    fmt = getattr(template, "function_format", None)
    if type(template).__name__ == "TokenizerTemplate" or not isinstance(fmt, str) or "{{content}}" not in fmt:
        return "", ""
    before, after = fmt.split("{{content}}", 1)
    after = after.split("{{", 1)[0]
    for word in getattr(template, "stop_words", None) or []:
        after = after.split(word, 1)[0]
    if "{{" in before:
        return "", ""
    _, calls = parse_tool_calls(f'{before}{{"name": "f", "arguments": {{}}}}{after}')
    return (before, after) if [c.name for c in calls] == ["f"] else ("", "")


def call_grammar(names: list[str], affixes: tuple[str, str] = ("", "")) -> Sequence:
    """A grammar for one call to one of ``names`` in the training format: ``{"name": ..., "arguments": {...}}``."""
    before, after = affixes
    return Sequence(
        [
            Literal(f'{before}{{"name": '.encode()),
            Choice([json.dumps(name, ensure_ascii=False).encode() for name in names]),
            Literal(b', "arguments": '),
            JsonObject(),
            Literal(f"}}{after}".encode()),
        ]
    )

"""What the chat and the plain completion routes share: door checks, sampling options, disconnects, SSE docs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Optional, TypeVar

from fastapi import Request

from genie_core.api.errors import ApiError, model_not_found
from genie_core.chat.batcher import Completion, Event

T = TypeVar("T")


@dataclass
class ApiSettings:  # Optional, not `X | None`: the command-line parser reads typing.Union
    api_key: Optional[str] = field(
        default=None, metadata={"help": "Require `Authorization: Bearer KEY` (default: $GENIE_API_KEY; unset: open)."}
    )
    served_model_name: Optional[str] = field(
        default=None,
        metadata={"help": "The model id clients send and /v1/models lists (default: the model directory's name)."},
    )
    max_tokens_limit: int = field(default=2048, metadata={"help": "Largest max_tokens a request may ask for."})
    max_body_bytes: int = field(default=1 << 20, metadata={"help": "Largest request body accepted, in bytes."})
    max_stop: int = field(default=4, metadata={"help": "Most stop strings per request."})
    structured_attempts: int = field(
        default=3,
        metadata={"help": "Generations a sampled reply gets to match a json_schema or a strict tool's parameters."},
    )


def check_model(name: str | None, served: str) -> None:
    """404 ``model_not_found`` unless ``name`` is the served id (or left out: the one model served)."""
    if name is not None and name != served:
        raise model_not_found(name)


def bad_unicode(value: Any, path: str) -> str | None:
    """Where ``value`` holds text that is not valid Unicode, in words.

    JSON's ``"\\ud800"`` escape decodes to a lone surrogate, which no tokenizer (nor a UTF-8 response) can take.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (
                f"{path} is not valid Unicode: it holds a lone surrogate (U+{ord(value[exc.start]):04X}) at "
                f"character {exc.start}; send text as UTF-8 and escape only whole surrogate pairs."
            )
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"
        found = bad_unicode(key, f"a key in {path}") or bad_unicode(item, where)
        if found:
            return found
    return None


def check_unicode(req) -> None:
    for name, value in req.model_dump(exclude_none=True, by_alias=True).items():
        problem = bad_unicode(value, name)
        if problem:
            raise ApiError(400, problem, param=name)


def sampling_options(req, max_tokens: int | None, vocab_size: int) -> dict[str, Any]:
    """Generation options of a chat or completion request; its ranges were checked by the request model.

    ``max_tokens`` is the request's own (None: the engine's default); ``logit_bias`` ids are checked against the
    vocabulary here so that the 400 names the field.
    """
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    do_sample = req.do_sample
    if do_sample is None and req.temperature is not None:
        do_sample = req.temperature > 0
    bias = {int(token): value for token, value in (req.logit_bias or {}).items()}
    outside = sorted(t for t in bias if t >= vocab_size)
    if outside:
        raise ApiError(
            400,
            f"logit_bias: token id {outside[0]} is not in the vocabulary (0 to {vocab_size - 1}).",
            param="logit_bias",
        )
    return {
        "max_new_tokens": max_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "top_k": req.top_k,
        "repetition_penalty": req.repetition_penalty,
        "presence_penalty": req.presence_penalty,
        "frequency_penalty": req.frequency_penalty,
        "logit_bias": bias or None,
        "seed": req.seed,
        "do_sample": do_sample,
        "n": req.n,
        "stop": [s for s in stop if s],
    }


def finish_reason(reason: str) -> str:
    return "stop" if reason in ("cancelled", "error") else reason


async def _disconnected(request: Request) -> None:
    """Return once the client has gone away (ASGI ``http.disconnect``; the body was already read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> tuple[bool, T | None]:
    """``(True, result)`` of ``work``, or ``(False, None)`` as soon as the client disconnects."""
    job, gone = asyncio.ensure_future(work), asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
        return (True, job.result()) if job.done() else (False, None)
    finally:
        gone.cancel()
        job.cancel()


class Replay:
    """Finished completions as a request handle's events, so checked replies stream like fresh ones."""

    def __init__(self, completions: list[Completion], prompt_tokens: int):
        self.completions, self.prompt_tokens = completions, prompt_tokens
        self.n = len(completions)

    async def __aiter__(self):
        for i, c in enumerate(self.completions):
            yield Event(i, c.text, c.finish_reason, c.completion_tokens, tuple(c.logprobs))

    def cancel(self) -> None:
        pass


def sse_doc(chunk_schema: str) -> dict[str, Any]:
    """The OpenAPI ``200`` entry of a route that streams ``chunk_schema`` events when asked to."""
    json_in_event = {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": {
            "anyOf": [
                {"$ref": f"#/components/schemas/{chunk_schema}"},
                {"$ref": "#/components/schemas/ErrorResponse"},
            ]
        },
    }
    # Open API 3.1 reads an event stream's `schema` as the schema of each event (fields data, event, id, retry)
    event = {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"anyOf": [{"const": "[DONE]"}, json_in_event]}},
    }
    description = (
        f"A completion; with `stream: true`, server-sent events instead: each event's `data` is a `{chunk_schema}` "
        "as JSON (or an `ErrorResponse` if generation fails), and the last one is `[DONE]`."
    )
    return {"description": description, "content": {"text/event-stream": {"schema": event}}}

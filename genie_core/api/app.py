"""The OpenAI-compatible FastAPI app over a ``ChatEngine``.

Every refusal is an OpenAI-style error body (``{"error": {"message", "type", "param", "code"}}``) so official
clients raise their usual exceptions: a bad body is 400 and names the field, a missing or wrong key is 401, a body
over the size limit is 413, a full queue is 503 with ``Retry-After``. The OpenAPI document says the same (400, not
FastAPI's 422; this server's limits as the schema's bounds). Generation itself runs on the engine's batching thread,
so concurrent requests share batches and the event loop never blocks on the model; a client that goes away cancels
its request, so its rows leave the batch at the next step.
"""

# no `from __future__ import annotations`: the chat route's body model is built per app, and FastAPI resolves
# string annotations against module globals only

import asyncio
import hmac
import json
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Optional, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic.json_schema import models_json_schema
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from genie_core import __version__
from genie_core.api.protocol import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessageIn,
    ChatMessageOut,
    Choice,
    Delta,
    ErrorResponse,
    FunctionCall,
    ModelCard,
    ModelList,
    ScoreEvaluationRequest,
    ScoreEvaluationResponse,
    StreamChoice,
    ToolCallOut,
    Usage,
    allowed_range,
    limited_chat_request,
)
from genie_core.chat.batcher import EngineBusy
from genie_core.chat.tools import ToolCall, calls_to_text, may_be_tool_call, parse_tool_calls, tools_to_text
from genie_core.data.schema import Message
from genie_core.extras.errors import GenieError
from genie_core.extras.logging import get_logger

logger = get_logger(__name__)
T = TypeVar("T")
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_ERROR_DOCS = {
    400: "The request is invalid; `error.param` names the field and `error.message` says what is wrong.",
    401: "The API key is missing or wrong.",
    413: "The request body is larger than this server accepts.",
    501: "This server's model cannot do this.",
    503: "The request queue is full; retry after `Retry-After` seconds.",
}
_STREAM_DOC = (
    "A completion; with `stream: true`, server-sent events instead: each event's `data` is a `ChatCompletionChunk` "
    "as JSON (or an `ErrorResponse` if generation fails), and the last one is `[DONE]`."
)
_JSON_IN_EVENT = {
    "type": "string",
    "contentMediaType": "application/json",
    "contentSchema": {
        "anyOf": [{"$ref": "#/components/schemas/ChatCompletionChunk"}, {"$ref": "#/components/schemas/ErrorResponse"}]
    },
}
# Open API 3.1 reads an event stream's `schema` as the schema of each event (fields data, event, id, retry)
_SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"anyOf": [{"const": "[DONE]"}, _JSON_IN_EVENT]}},
}


@dataclass
class ApiSettings:
    api_key: Optional[str] = field(
        default=None, metadata={"help": "Require `Authorization: Bearer KEY` (default: $GENIE_API_KEY; unset: open)."}
    )
    served_model_name: Optional[str] = field(
        default=None, metadata={"help": "Model id reported by /v1/models (default: the model directory's name)."}
    )
    max_tokens_limit: int = field(default=2048, metadata={"help": "Largest max_tokens a request may ask for."})
    max_body_bytes: int = field(default=1 << 20, metadata={"help": "Largest request body accepted, in bytes."})
    max_stop: int = field(default=4, metadata={"help": "Most stop strings per request."})


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param


def _error(status: int, message: str, kind: str, param: str | None = None, headers=None) -> JSONResponse:
    # a message may quote the request, and text that is not valid Unicode cannot be encoded into a response
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of the error statuses a route can answer."""
    docs: dict[int | str, dict[str, Any]] = {c: {"model": ErrorResponse, "description": _ERROR_DOCS[c]} for c in codes}
    if 503 in docs:
        docs[503]["headers"] = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}}
    return docs


def _path(loc) -> str:
    """``("messages", 0, "content")`` as ``messages[0].content``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def _describe(err: dict[str, Any], model) -> str:
    """One validation error in words: what is wrong and where; a range error states the allowed range."""
    kind, loc = err.get("type"), [p for p in err.get("loc", ()) if p != "body"]
    if kind == "json_invalid":
        return f"body is not valid JSON: {err.get('ctx', {}).get('error', 'cannot parse it')} (at character {loc[0]})"
    if not loc and kind in ("model_attributes_type", "model_type", "dict_type"):
        return "body must be a JSON object (sent with Content-Type: application/json)"
    if kind in _RANGE_ERRORS and len(loc) == 1 and model is not None:
        allowed = allowed_range(model, str(loc[0]))
        if allowed:
            return f"{loc[0]} must be {allowed}, got {err.get('input')!r}"
    return f"{_path(loc) or 'body'}: {err.get('msg', 'invalid')}"


def _bad_unicode(value: Any, path: str) -> str | None:
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
        found = _bad_unicode(key, f"a key in {path}") or _bad_unicode(item, where)
        if found:
            return found
    return None


def _check_unicode(req) -> None:
    for name, value in req.model_dump(exclude_none=True).items():
        problem = _bad_unicode(value, name)
        if problem:
            raise ApiError(400, problem, param=name)


async def _disconnected(request: Request) -> None:
    """Return once the client has gone away (ASGI ``http.disconnect``; the body was already read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> tuple[bool, T | None]:
    """``(True, result)`` of ``work``, or ``(False, None)`` as soon as the client disconnects."""
    job, gone = asyncio.ensure_future(work), asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
        return (True, job.result()) if job.done() else (False, None)
    finally:
        gone.cancel()
        job.cancel()


class BodyLimit:
    """Reads the whole request body up front and refuses it (413) past ``max_bytes``; JSON bodies are small."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = declared is not None and declared.isdigit() and int(declared) > self.max_bytes
        body, more = b"", not too_big
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                too_big = True
                break
        if too_big:
            response = _error(413, f"request body exceeds {self.max_bytes} bytes", "invalid_request_error")
            return await response(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


def to_conversation(messages: list[ChatMessageIn]) -> tuple[list[Message], str | None]:
    """OpenAI messages -> our turns (user/assistant/observation/function) and the system prompt."""
    system_parts: list[str] = []
    turns: list[Message] = []
    for i, msg in enumerate(messages):
        text = _text_of(msg, i)
        if msg.role in ("system", "developer"):
            if turns:
                raise ApiError(400, f"messages[{i}]: system messages must come before the others.", param="messages")
            system_parts.append(text)
            continue
        if msg.role == "assistant" and msg.tool_calls:
            try:
                role, text = "function", calls_to_text([c.model_dump(exclude_none=True) for c in msg.tool_calls])
            except GenieError as exc:
                raise ApiError(400, f"messages[{i}].{exc}", param="messages") from None
        else:
            role = {"user": "user", "assistant": "assistant", "tool": "observation", "function": "observation"}[
                msg.role
            ]
        user_side = role in ("user", "observation")
        if turns and (turns[-1]["role"] in ("user", "observation")) == user_side:
            if turns[-1]["role"] != role:
                raise ApiError(
                    400,
                    f"messages[{i}]: a {msg.role} message cannot follow a {turns[-1]['role']} turn directly.",
                    param="messages",
                )
            joiner = "\n" if role == "observation" else "\n\n"
            turns[-1] = {"role": role, "content": turns[-1]["content"] + joiner + text}
            continue
        if not turns and not user_side:
            raise ApiError(400, f"messages[{i}]: the conversation must start with a user message.", param="messages")
        turns.append({"role": role, "content": text})  # type: ignore[typeddict-item]
    if not turns or turns[-1]["role"] not in ("user", "observation"):
        raise ApiError(400, "messages: the last message must be from the user or a tool.", param="messages")
    return turns, "\n\n".join(system_parts) if system_parts else None


def _text_of(msg: ChatMessageIn, i: int) -> str:
    if msg.content is None:
        return ""
    if isinstance(msg.content, str):
        return msg.content
    return "".join(part.text for part in msg.content)  # the schema admits text parts only


def _generation(req: ChatCompletionRequest, settings: ApiSettings, engine) -> dict[str, Any]:
    """Generation options of a request; its ranges (max_tokens, n, stop count) were checked by the request model."""
    max_tokens = req.max_completion_tokens or req.max_tokens
    if max_tokens is None:
        max_tokens = min(engine.generating.max_new_tokens, settings.max_tokens_limit)
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    do_sample = req.do_sample
    if do_sample is None and req.temperature is not None:
        do_sample = req.temperature > 0
    return {
        "max_new_tokens": max_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "top_k": req.top_k,
        "repetition_penalty": req.repetition_penalty,
        "do_sample": do_sample,
        "n": req.n,
        "stop": [s for s in stop if s],
    }


def _tool_calls_out(calls: list[ToolCall]) -> list[ToolCallOut]:
    return [ToolCallOut(id=c.id, function=FunctionCall(name=c.name, arguments=c.arguments)) for c in calls]


def _finish(reason: str) -> str:
    return "stop" if reason in ("cancelled", "error") else reason


def create_app(engine, settings: ApiSettings | None = None) -> FastAPI:
    """The API app around a loaded engine (``ChatEngine``)."""
    settings = settings or ApiSettings()
    model_id = settings.served_model_name or engine.model_name
    app = FastAPI(title="LLM-Genie API", version=__version__, description="OpenAI-compatible chat completions.")
    app.state.engine, app.state.settings = engine, settings
    chat_request = limited_chat_request(
        settings.max_tokens_limit, engine.batcher.config.max_batch_size, settings.max_stop
    )
    body_models = {"/v1/chat/completions": chat_request, "/v1/score/evaluation": ScoreEvaluationRequest}
    _fix_openapi(app)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _error(exc.status, exc.message, exc.kind, exc.param)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        model = body_models.get(request.url.path)
        message = "; ".join(_describe(err, model) for err in errors[:5]) or "invalid request body"
        first = errors[0] if errors else {}
        param = None
        if first.get("type") != "json_invalid":
            param = next((str(p) for p in first.get("loc", ()) if p != "body"), None)
        return _error(400, message, "invalid_request_error", param)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        message = str(exc.detail)
        if isinstance(exc.__cause__, UnicodeDecodeError):
            message = f"body is not valid JSON: it is not UTF-8 text ({exc.__cause__.reason})"
        return _error(exc.status_code, message, "invalid_request_error", headers=exc.headers)

    @app.exception_handler(EngineBusy)
    async def _busy(request: Request, exc: EngineBusy):
        return _error(503, f"server busy: {exc}", "server_busy", headers={"Retry-After": "1"})

    @app.exception_handler(GenieError)
    async def _genie_error(request: Request, exc: GenieError):
        return _error(400, str(exc), "invalid_request_error")

    async def check_key(request: Request) -> None:
        if not settings.api_key:
            return
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(token.encode(), settings.api_key.encode()):
            raise ApiError(
                401, "invalid or missing API key; send `Authorization: Bearer KEY`.", "authentication_error"
            )

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, Any]:
        batcher = engine.batcher
        return {"status": "ok", "queued": batcher.queued, "running": batcher.running, **batcher.stats}

    @app.get("/v1/models", response_model=ModelList, dependencies=[Depends(check_key)], responses=_errors(401))
    async def list_models() -> ModelList:
        return ModelList(data=[ModelCard(id=model_id)])

    @app.post(
        "/v1/chat/completions",
        response_model=ChatCompletionResponse,
        dependencies=[Depends(check_key)],
        responses={
            200: {"description": _STREAM_DOC, "content": {"text/event-stream": {"schema": _SSE_EVENT}}},
            **_errors(400, 401, 413, 503),
        },
    )
    async def chat_completions(req: chat_request, request: Request):  # type: ignore[valid-type]
        _check_unicode(req)
        messages, system = to_conversation(req.messages)
        tools = "" if req.tool_choice == "none" else tools_to_text(_tool_dicts(req.tools))
        options = _generation(req, settings, engine)
        handle = engine.submit(messages, system, tools, loop=asyncio.get_running_loop(), **options)
        if req.stream:  # sse-starlette watches for the disconnect; _stream's cleanup cancels the request
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return EventSourceResponse(_stream(handle, model_id, bool(tools), include_usage), ping=15)
        try:
            finished, completions = await _unless_disconnected(request, handle.aresult())
        finally:
            handle.cancel()  # a no-op once finished; otherwise the client left and its rows leave the batch
        if not finished or completions is None:
            return Response(status_code=499)  # nginx's "client closed request": nobody is there to read it
        choices, used = [], 0
        for i, c in enumerate(completions):
            reply = engine.to_reply(c.text, c.finish_reason, handle.prompt_tokens, c.completion_tokens, tools)
            message = ChatMessageOut(content=reply.text if not reply.tool_calls else (reply.text or None))
            if reply.tool_calls:
                message.tool_calls = _tool_calls_out(reply.tool_calls)
            choices.append(Choice(index=i, message=message, finish_reason=_finish(reply.finish_reason)))
            used += c.completion_tokens
        prompt = handle.prompt_tokens
        usage = Usage(prompt_tokens=prompt, completion_tokens=used, total_tokens=prompt + used)
        return ChatCompletionResponse(model=model_id, choices=choices, usage=usage)

    @app.post(
        "/v1/score/evaluation",
        response_model=ScoreEvaluationResponse,
        dependencies=[Depends(check_key)],
        responses=_errors(400, 401, 413, 501),
    )
    async def score_evaluation(req: ScoreEvaluationRequest):
        _check_unicode(req)
        if not engine.can_score:
            raise ApiError(
                501,
                "this server's model is not a reward model; start `genie api` with the output "
                "directory of an rm stage as checkpoint_dir to score.",
                "not_implemented",
            )
        scores = await asyncio.to_thread(engine.score, req.messages, req.max_length)
        return ScoreEvaluationResponse(model=model_id, scores=scores)

    return app


def _tool_dicts(tools) -> list[dict[str, Any]] | None:
    """Tools as the client sent them (extra function keys kept), for the prompt."""
    return [tool.model_dump(exclude_unset=True) for tool in tools] if tools else None


def _fix_openapi(app: FastAPI) -> None:
    """Make the OpenAPI document say what the server does: validation errors are 400 with ``ErrorResponse`` (not
    FastAPI's 422), and the streamed ``ChatCompletionChunk`` (no route returns it, so FastAPI leaves it out) is in."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            for operations in spec.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            _, chunk = models_json_schema(
                [(ChatCompletionChunk, "serialization")], ref_template="#/components/schemas/{model}"
            )
            for name, schema in chunk["$defs"].items():
                schemas.setdefault(name, schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def wrap_limits(app: FastAPI, settings: ApiSettings):
    """The ASGI app to serve: ``app`` behind the body-size limit."""
    return BodyLimit(app, settings.max_body_bytes)


async def _stream(handle, model_id: str, has_tools: bool, include_usage: bool):
    """SSE data lines: a role chunk per choice, content deltas, a finish chunk per choice, usage, then [DONE]."""
    chunk_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    n = handle.request.n

    def chunk(index: int, delta: Delta, finish: str | None = None, usage: Usage | None = None) -> str:
        choices = [] if usage else [StreamChoice(index=index, delta=delta, finish_reason=finish)]
        body = ChatCompletionChunk(id=chunk_id, created=created, model=model_id, choices=choices, usage=usage)
        return body.model_dump_json(exclude_none=True)

    buffers = [""] * n
    holding = [has_tools] * n  # with tools, a reply that may be a call is held until it is complete
    used = 0
    try:
        for i in range(n):
            yield chunk(i, Delta(role="assistant", content=""))
        async for event in handle:
            i = event.index
            text = event.text
            if holding[i]:
                buffers[i] += text
                if may_be_tool_call(buffers[i]) and event.finish_reason is None:
                    continue
                holding[i], text = False, buffers[i]
                if event.finish_reason is not None:
                    content, calls = parse_tool_calls(text)
                    if calls:
                        used += event.completion_tokens
                        deltas = [{"index": k, **call.model_dump()} for k, call in enumerate(_tool_calls_out(calls))]
                        yield chunk(i, Delta(content=content or None, tool_calls=deltas))
                        yield chunk(i, Delta(), "tool_calls")
                        continue
            if text:
                yield chunk(i, Delta(content=text))
            if event.finish_reason is not None:
                used += event.completion_tokens
                yield chunk(i, Delta(), _finish(event.finish_reason))
        if include_usage:
            usage = Usage(
                prompt_tokens=handle.prompt_tokens, completion_tokens=used, total_tokens=handle.prompt_tokens + used
            )
            yield chunk(0, Delta(), usage=usage)
        yield "[DONE]"
    except GenieError as exc:
        yield json.dumps({"error": {"message": str(exc), "type": "server_error", "param": None, "code": None}})
        yield "[DONE]"
    finally:
        handle.cancel()  # also when the client goes away mid-stream: its rows leave the batch

"""``POST /v1/chat/completions``: OpenAI messages through the chat template, whole replies or server-sent events.

A reply whose form must be checked after generation (``structured``) is generated, checked and, if asked to
stream, streamed once it has passed: its events arrive together instead of token by token. Every other reply
streams as it is generated; with tools offered, text that may turn out to be a tool call is held until it is
clear either way.
"""

# no `from __future__ import annotations`: the route's body model is built per app, and FastAPI resolves string
# annotations against module globals only

import asyncio
import json
import time
import uuid
from typing import Any, Optional

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from genie_core.api.access import count_tokens
from genie_core.api.common import (
    ApiSettings,
    Replay,
    check_model,
    check_unicode,
    finish_reason,
    sampling_options,
    sse_doc,
    unless_disconnected,
)
from genie_core.api.errors import ApiError, error_body, error_docs
from genie_core.api.logprobs import chat_logprobs
from genie_core.api.protocol import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessageIn,
    ChatMessageOut,
    Choice,
    Delta,
    FunctionCall,
    StreamChoice,
    ToolCallOut,
    Usage,
)
from genie_core.api.structured import Check, OutputPlan, plan_output
from genie_core.chat.batcher import Completion
from genie_core.chat.tools import ToolCall, calls_to_text, may_be_tool_call, parse_tool_calls
from genie_core.extras.errors import GenieError
from genie_core.schema import Message


def add_chat_route(app: FastAPI, engine, settings: ApiSettings, model_id: str, body_model, check_key) -> None:
    """Register the chat route; ``body_model`` is ``ChatCompletionRequest`` with this server's limits."""

    @app.post(
        "/v1/chat/completions",
        response_model=ChatCompletionResponse,
        dependencies=[Depends(check_key)],
        responses={200: sse_doc("ChatCompletionChunk"), **error_docs(400, 401, 404, 413, 422, 503)},
    )
    async def chat_completions(req: body_model, request: Request):  # type: ignore[valid-type]
        check_model(req.model, model_id)
        check_unicode(req)
        if req.top_logprobs is not None and not req.logprobs:
            raise ApiError(400, "top_logprobs needs logprobs: true.", param="top_logprobs")
        messages, system = to_conversation(req.messages)
        plan = plan_output(req, engine.template)
        limit = req.max_completion_tokens or req.max_tokens
        options = sampling_options(
            req, limit or min(engine.generating.max_new_tokens, settings.max_tokens_limit), engine.vocab_size
        )
        n = options.pop("n")
        logprobs = (req.top_logprobs or 0) if req.logprobs else None
        prompt_ids = engine.encode(messages, system, plan.tools_text)
        loop = asyncio.get_running_loop()
        count_tokens(request.scope, prompt=len(prompt_ids))

        def submit(rows: int, attempt: int = 0):
            seed = options["seed"]  # a retry of a seeded request draws other (still reproducible) samples
            again = {**options, "seed": None if seed is None else seed + attempt * n}
            return engine.submit_ids(
                prompt_ids, n=rows, loop=loop, logprobs=logprobs, constraint=plan.constraint, **again
            )

        view = _ChatView(model_id, engine, plan, logprobs is not None, request.scope)
        if plan.check is not None:
            greedy = engine.sampling(**{k: v for k, v in options.items() if k != "stop"})[0].greedy
            attempts = 1 if greedy else max(1, settings.structured_attempts)
            completions = await _checked(request, submit, n, plan.check, attempts, greedy)
            if completions is None:
                return Response(status_code=499)  # nginx's "client closed request": nobody is there to read it
            if req.stream:
                return EventSourceResponse(view.stream(Replay(completions, len(prompt_ids)), req), ping=15)
            return view.response(completions, len(prompt_ids))
        handle = submit(n)
        if req.stream:  # sse-starlette watches for the disconnect; the stream's cleanup cancels the request
            return EventSourceResponse(view.stream(handle, req), ping=15)
        try:
            finished, completions = await unless_disconnected(request, handle.aresult())
        finally:
            handle.cancel()  # a no-op once finished; otherwise the client left and its rows leave the batch
        if not finished or completions is None:
            return Response(status_code=499)
        return view.response(completions, handle.prompt_tokens)


async def _checked(
    request: Request, submit, n: int, check: Check, attempts: int, greedy: bool = False
) -> Optional[list[Completion]]:
    """``n`` replies that pass ``check``, regenerating the ones that fail; None if the client left; else a 422."""
    results: list[Optional[Completion]] = [None] * n
    problems: dict[int, str] = {}
    todo = list(range(n))
    for attempt in range(attempts):
        handle = submit(len(todo), attempt)
        try:
            finished, got = await unless_disconnected(request, handle.aresult())
        finally:
            handle.cancel()
        if not finished or got is None:
            return None
        for i, completion in zip(todo, got):
            results[i] = completion
            problem = check(completion.text, completion.finish_reason)
            if problem is None:
                problems.pop(i, None)
            else:
                problems[i] = problem
        todo = sorted(problems)
        if not todo:
            return [r for r in results if r is not None]
    first = todo[0]
    tries = f"{attempts} attempts" if attempts > 1 else "1 attempt"
    if greedy:
        tries += " (greedy decoding would only repeat the reply; sample, e.g. temperature > 0, to allow retries)"
    raise ApiError(
        422,
        f"choice {first}: {problems[first]}; gave up after {tries}.",
        kind="invalid_request_error",
        code="invalid_model_output",
    )


class _ChatView:
    """Completions as OpenAI's chat response or chunks (tool calls parsed, log-probs rendered, tokens counted)."""

    def __init__(self, model_id: str, engine, plan: OutputPlan, logprobs: bool, scope: dict[str, Any]):
        self.model_id, self.engine, self.plan, self.scope = model_id, engine, plan, scope
        self.table = engine.token_table if logprobs else None

    def _calls(self, calls: list[ToolCall]) -> list[ToolCall]:
        return calls[:1] if self.plan.single_call else calls

    def _logprobs(self, entries) -> Any:
        return chat_logprobs(entries, self.table) if self.table is not None else None

    def response(self, completions: list[Completion], prompt_tokens: int) -> ChatCompletionResponse:
        choices, used = [], 0
        for i, c in enumerate(completions):
            reply = self.engine.to_reply(
                c.text, c.finish_reason, prompt_tokens, c.completion_tokens, self.plan.tools_text
            )
            calls = self._calls(reply.tool_calls)
            message = ChatMessageOut(content=reply.text if not calls else (reply.text or None))
            if calls:
                message.tool_calls = _tool_calls_out(calls)
            reason = finish_reason(reply.finish_reason)
            choices.append(Choice(index=i, message=message, finish_reason=reason, logprobs=self._logprobs(c.logprobs)))
            used += c.completion_tokens
        count_tokens(self.scope, completion=used)
        usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=used, total_tokens=prompt_tokens + used)
        return ChatCompletionResponse(model=self.model_id, choices=choices, usage=usage)

    async def stream(self, handle, req: ChatCompletionRequest):
        """SSE data lines: a role chunk per choice, content deltas, a finish chunk per choice, usage, then [DONE]."""
        chunk_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        n = req.n
        include_usage = bool(req.stream_options and req.stream_options.include_usage)

        def chunk(index: int, delta: Delta, finish=None, usage=None, logprobs=None) -> str:
            choices = (
                [] if usage else [StreamChoice(index=index, delta=delta, finish_reason=finish, logprobs=logprobs)]
            )
            body = ChatCompletionChunk(id=chunk_id, created=created, model=self.model_id, choices=choices, usage=usage)
            return body.model_dump_json(exclude_none=True)

        texts, held = [""] * n, [[] for _ in range(n)]
        holding = [bool(self.plan.tools_text)] * n  # with tools, a reply that may be a call is held until complete
        used = 0
        try:
            for i in range(n):
                yield chunk(i, Delta(role="assistant", content=""))
            async for event in handle:
                i, text, entries = event.index, event.text, list(event.logprobs)
                if event.finish_reason is not None:
                    used += event.completion_tokens
                    count_tokens(self.scope, completion=event.completion_tokens)
                if holding[i]:
                    texts[i] += text
                    held[i] += entries
                    if may_be_tool_call(texts[i]) and event.finish_reason is None:
                        continue
                    holding[i], text, entries = False, texts[i], held[i]
                    if event.finish_reason is not None:
                        content, calls = parse_tool_calls(text)
                        calls = self._calls(calls)
                        if calls:
                            out = _tool_calls_out(calls)
                            deltas = [{"index": k, **call.model_dump()} for k, call in enumerate(out)]
                            yield chunk(
                                i, Delta(content=content or None, tool_calls=deltas), logprobs=self._logprobs(entries)
                            )
                            yield chunk(i, Delta(), "tool_calls")
                            continue
                if text or (entries and self.table is not None):
                    yield chunk(i, Delta(content=text), logprobs=self._logprobs(entries))
                if event.finish_reason is not None:
                    yield chunk(i, Delta(), finish_reason(event.finish_reason))
            if include_usage:
                prompt = handle.prompt_tokens
                yield chunk(
                    0, Delta(), usage=Usage(prompt_tokens=prompt, completion_tokens=used, total_tokens=prompt + used)
                )
            yield "[DONE]"
        except GenieError as exc:
            yield json.dumps(error_body(str(exc), "server_error"))
            yield "[DONE]"
        finally:
            handle.cancel()  # also when the client goes away mid-stream: its rows leave the batch


def _tool_calls_out(calls: list[ToolCall]) -> list[ToolCallOut]:
    return [ToolCallOut(id=c.id, function=FunctionCall(name=c.name, arguments=c.arguments)) for c in calls]


def to_conversation(messages: list[ChatMessageIn]) -> tuple[list[Message], Optional[str]]:
    """OpenAI messages -> our turns (user/assistant/observation/function) and the system prompt."""
    system_parts: list[str] = []
    turns: list[Message] = []
    for i, msg in enumerate(messages):
        text = _text_of(msg)
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


def _text_of(msg: ChatMessageIn) -> str:
    if msg.content is None:
        return ""
    if isinstance(msg.content, str):
        return msg.content
    return "".join(part.text for part in msg.content)  # the schema admits text parts only

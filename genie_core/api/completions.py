"""``POST /v1/completions``: OpenAI's plain (legacy) completions, the prompt continued as it is, no chat template.

Each prompt of a list is its own batcher request with ``n`` rows, so they share batches with everything else;
choice ``k * n + j`` is prompt ``k``'s ``j``-th reply, as OpenAI numbers them. ``echo`` puts the prompt in front of
the reply; log-probs of the prompt's own tokens are not computed, so ``echo`` with ``logprobs`` is refused.
"""

# no `from __future__ import annotations`: the route's body model is built per app (see chat.py)

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
    check_model,
    check_unicode,
    finish_reason,
    sampling_options,
    sse_doc,
    unless_disconnected,
)
from genie_core.api.errors import ApiError, error_body, error_docs
from genie_core.api.logprobs import completion_logprobs
from genie_core.api.protocol import CompletionChoice, CompletionRequest, CompletionResponse, Usage
from genie_core.extras.errors import GenieError

DEFAULT_MAX_TOKENS = 16  # OpenAI's default for this endpoint


def add_completion_route(app: FastAPI, engine, settings: ApiSettings, model_id: str, body_model, check_key) -> None:
    """Register the completions route; ``body_model`` is ``CompletionRequest`` with this server's limits."""

    @app.post(
        "/v1/completions",
        response_model=CompletionResponse,
        dependencies=[Depends(check_key)],
        responses={200: sse_doc("CompletionResponse"), **error_docs(400, 401, 404, 413, 503)},
    )
    async def completions(req: body_model, request: Request):  # type: ignore[valid-type]
        check_model(req.model, model_id)
        check_unicode(req)
        if req.echo and req.logprobs is not None:
            raise ApiError(
                400,
                "logprobs with echo is not supported: the prompt's own log-probs are not computed.",
                "invalid_request_error",
                "logprobs",
            )
        prompts = [req.prompt] if isinstance(req.prompt, str) else list(req.prompt)
        encoded = []
        for k, prompt in enumerate(prompts):
            try:
                encoded.append(engine.encode_text(prompt))
            except GenieError as exc:
                where = "prompt" if isinstance(req.prompt, str) else f"prompt[{k}]"
                raise ApiError(400, f"{where}: {exc}", param="prompt") from None
        options = sampling_options(
            req, req.max_tokens or min(DEFAULT_MAX_TOKENS, settings.max_tokens_limit), engine.vocab_size
        )
        n = options.pop("n")
        loop = asyncio.get_running_loop()
        handles = []
        try:
            for ids in encoded:
                handles.append(engine.submit_ids(ids, n=n, loop=loop, logprobs=req.logprobs, **options))
        except Exception:
            for handle in handles:
                handle.cancel()
            raise
        prompt_tokens = sum(len(ids) for ids in encoded)
        count_tokens(request.scope, prompt=prompt_tokens)
        view = _CompletionView(model_id, engine, req, prompts, request.scope)
        if req.stream:
            return EventSourceResponse(view.stream(handles, prompt_tokens), ping=15)
        try:
            finished, results = await unless_disconnected(request, asyncio.gather(*(h.aresult() for h in handles)))
        finally:
            for handle in handles:
                handle.cancel()
        if not finished or results is None:
            return Response(status_code=499)  # nginx's "client closed request"
        return view.response(results, prompt_tokens)


class _CompletionView:
    """Completions as OpenAI's text_completion objects, whole or as chunks."""

    def __init__(self, model_id: str, engine, req: CompletionRequest, prompts: list[str], scope: dict[str, Any]):
        self.model_id, self.req, self.prompts, self.scope = model_id, req, prompts, scope
        self.table = engine.token_table if req.logprobs is not None else None
        self.n = req.n

    def _logprobs(self, entries, offset: int):
        return completion_logprobs(entries, self.table, offset) if self.table is not None else None

    def response(self, results, prompt_tokens: int) -> CompletionResponse:
        choices, used = [], 0
        for k, completions in enumerate(results):
            echo = self.prompts[k] if self.req.echo else ""
            for j, c in enumerate(completions):
                choices.append(
                    CompletionChoice(
                        index=k * self.n + j,
                        text=echo + c.text,
                        logprobs=self._logprobs(c.logprobs, len(echo)),
                        finish_reason=finish_reason(c.finish_reason),
                    )
                )
                used += c.completion_tokens
        count_tokens(self.scope, completion=used)
        usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=used, total_tokens=prompt_tokens + used)
        return CompletionResponse(model=self.model_id, choices=choices, usage=usage)

    async def stream(self, handles, prompt_tokens: int):
        """SSE data lines: the echoed prompt, text pieces (the last one with its finish_reason), usage, [DONE]."""
        chunk_id, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())

        def chunk(choices: list[CompletionChoice], usage: Optional[Usage] = None) -> str:
            body = CompletionResponse(id=chunk_id, created=created, model=self.model_id, choices=choices, usage=usage)
            return body.model_dump_json(exclude_none=True)

        offsets = [len(self.prompts[k]) if self.req.echo else 0 for k in range(len(handles)) for _ in range(self.n)]
        used = 0
        try:
            if self.req.echo:
                for index in range(len(offsets)):
                    yield chunk([CompletionChoice(index=index, text=self.prompts[index // self.n])])
            async for k, event in _merged(handles):
                index = k * self.n + event.index
                logprobs = self._logprobs(event.logprobs, offsets[index])
                offsets[index] += sum(len(t) for t in logprobs.tokens) if logprobs else 0
                reason = None
                if event.finish_reason is not None:
                    used += event.completion_tokens
                    count_tokens(self.scope, completion=event.completion_tokens)
                    reason = finish_reason(event.finish_reason)
                if event.text or reason or logprobs:
                    yield chunk(
                        [CompletionChoice(index=index, text=event.text, logprobs=logprobs, finish_reason=reason)]
                    )
            if self.req.stream_options and self.req.stream_options.include_usage:
                yield chunk(
                    [], Usage(prompt_tokens=prompt_tokens, completion_tokens=used, total_tokens=prompt_tokens + used)
                )
            yield "[DONE]"
        except GenieError as exc:
            yield json.dumps(error_body(str(exc), "server_error"))
            yield "[DONE]"
        finally:
            for handle in handles:
                handle.cancel()  # also when the client goes away mid-stream: the rows leave the batch


async def _merged(handles):
    """``(k, event)`` from all handles as the events arrive; a failed request raises its error here."""
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(k: int, handle) -> None:
        try:
            async for event in handle:
                await queue.put((k, event))
            await queue.put((k, None))
        except GenieError as exc:
            await queue.put((k, exc))

    tasks = [asyncio.ensure_future(pump(k, h)) for k, h in enumerate(handles)]
    open_handles = len(handles)
    try:
        while open_handles:
            k, item = await queue.get()
            if item is None:
                open_handles -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield k, item
    finally:
        for task in tasks:
            task.cancel()

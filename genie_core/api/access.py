"""One log line per request: method, path, status, latency and the tokens it used.

``RequestLog`` wraps the whole ASGI app (so refusals before routing, such as 413, are logged too) and writes the
line when the response is over: for a stream, after its last event, with the tokens counted so far. Routes report
tokens with ``count_tokens``; uvicorn's own access log is switched off by ``genie api`` so each request logs once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from genie_core.extras.logging import get_logger

logger = get_logger(__name__)
_KEY = "genie.tokens"


@dataclass
class TokenCount:
    prompt: int = 0
    completion: int = 0


def count_tokens(scope: dict[str, Any], prompt: int = 0, completion: int = 0) -> None:
    """Add to the request's token counts (a no-op outside ``RequestLog``)."""
    counts = scope.get(_KEY)
    if counts is not None:
        counts.prompt += prompt
        counts.completion += completion


class RequestLog:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500  # what the client sees if the app raises before answering
        counts = scope[_KEY] = TokenCount()

        async def watch(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            logger.info(
                "%s %s %d %.1f ms prompt_tokens=%d completion_tokens=%d",
                scope.get("method", "-"),
                scope.get("path", "-"),
                status,
                (time.perf_counter() - start) * 1000,
                counts.prompt,
                counts.completion,
            )

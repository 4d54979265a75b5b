"""The OpenAI-compatible FastAPI app over a ``ChatEngine``.

Every refusal is an OpenAI-style error body (``{"error": {"message", "type", "param", "code"}}``) so official
clients raise their usual exceptions: a bad body is 400 and names the field, a missing or wrong key is 401, a model
this server does not serve is 404 ``model_not_found``, a body over the size limit is 413, a reply that could not be
brought into the required form is 422, a full queue is 503 with ``Retry-After``. The OpenAPI document says the same
(400, not FastAPI's 422 for validation; this server's model id and limits in the schemas). Generation itself runs on
the engine's batching thread, so concurrent requests share batches and the event loop never blocks on the model; a
client that goes away cancels its request, so its rows leave the batch at the next step.
"""

# no `from __future__ import annotations`: route body models are built per app, and FastAPI resolves string
# annotations against module globals only

import asyncio
import hmac
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException

from genie_core import __version__
from genie_core.api.access import RequestLog
from genie_core.api.chat import add_chat_route, to_conversation
from genie_core.api.common import ApiSettings, check_model, check_unicode
from genie_core.api.completions import add_completion_route
from genie_core.api.errors import ApiError, error_docs, error_response, model_not_found
from genie_core.api.protocol import (
    REFUSED,
    ChatCompletionChunk,
    ChatCompletionRequest,
    CompletionRequest,
    ModelCard,
    ModelList,
    ScoreEvaluationRequest,
    ScoreEvaluationResponse,
    allowed_range,
    served_model,
)
from genie_core.chat.batcher import EngineBusy
from genie_core.extras.errors import GenieError
from genie_core.extras.logging import get_logger

__all__ = ["ApiSettings", "create_app", "to_conversation", "wrap_limits"]

logger = get_logger(__name__)
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


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
    if loc and loc[0] in REFUSED and model is not None and loc[0] in model.model_fields:
        return f"{loc[0]}: {REFUSED[loc[0]]}."
    if kind in _RANGE_ERRORS and len(loc) == 1 and model is not None:
        allowed = allowed_range(model, str(loc[0]))
        if allowed:
            return f"{loc[0]} must be {allowed}, got {err.get('input')!r}"
    return f"{_path(loc) or 'body'}: {err.get('msg', 'invalid')}"


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
            response = error_response(413, f"request body exceeds {self.max_bytes} bytes", "invalid_request_error")
            return await response(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


def create_app(engine, settings: ApiSettings | None = None) -> FastAPI:
    """The API app around a loaded engine (``ChatEngine``)."""
    settings = settings or ApiSettings()
    model_id = settings.served_model_name or engine.model_name
    app = FastAPI(
        title="LLM-Genie API", version=__version__, description="OpenAI-compatible chat and plain completions."
    )
    app.state.engine, app.state.settings = engine, settings
    limits = {
        "max_tokens": settings.max_tokens_limit,
        "max_n": engine.batcher.config.max_batch_size,
        "max_stop": settings.max_stop,
    }
    chat_request = served_model(ChatCompletionRequest, model_id, **limits)
    completion_request = served_model(CompletionRequest, model_id, **limits)
    score_request = served_model(ScoreEvaluationRequest, model_id)
    body_models = {
        "/v1/chat/completions": chat_request,
        "/v1/completions": completion_request,
        "/v1/score/evaluation": score_request,
    }
    _fix_openapi(app)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.kind, exc.param, code=exc.code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        model = body_models.get(request.url.path)
        message = "; ".join(_describe(err, model) for err in errors[:5]) or "invalid request body"
        first = errors[0] if errors else {}
        param = None
        if first.get("type") != "json_invalid":
            param = next((str(p) for p in first.get("loc", ()) if p != "body"), None)
        return error_response(400, message, "invalid_request_error", param)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        message = str(exc.detail)
        if isinstance(exc.__cause__, UnicodeDecodeError):
            message = f"body is not valid JSON: it is not UTF-8 text ({exc.__cause__.reason})"
        return error_response(exc.status_code, message, "invalid_request_error", headers=exc.headers)

    @app.exception_handler(EngineBusy)
    async def _busy(request: Request, exc: EngineBusy):
        return error_response(503, f"server busy: {exc}", "server_busy", headers={"Retry-After": "1"})

    @app.exception_handler(GenieError)
    async def _genie_error(request: Request, exc: GenieError):
        return error_response(400, str(exc), "invalid_request_error")

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
    @app.get("/v1/health", include_in_schema=False)
    async def health() -> dict[str, Any]:
        """For load balancers: no key, no model call, only counters the batcher already keeps."""
        batcher = engine.batcher
        return {"status": "ok", "queued": batcher.queued, "running": batcher.running, **batcher.stats}

    card = ModelCard(id=model_id)

    @app.get("/v1/models", response_model=ModelList, dependencies=[Depends(check_key)], responses=error_docs(401))
    async def list_models() -> ModelList:
        return ModelList(data=[card])

    @app.get(
        "/v1/models/{model:path}",
        response_model=ModelCard,
        dependencies=[Depends(check_key)],
        responses=error_docs(401, 404),
    )
    async def get_model(model: str) -> ModelCard:
        if model != model_id:
            raise model_not_found(model)
        return card

    add_chat_route(app, engine, settings, model_id, chat_request, check_key)
    add_completion_route(app, engine, settings, model_id, completion_request, check_key)

    @app.post(
        "/v1/score/evaluation",
        response_model=ScoreEvaluationResponse,
        dependencies=[Depends(check_key)],
        responses=error_docs(400, 401, 404, 413, 501),
    )
    async def score_evaluation(req: score_request):  # type: ignore[valid-type]
        check_model(req.model, model_id)
        check_unicode(req)
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


def _fix_openapi(app: FastAPI) -> None:
    """Make the OpenAPI document say what the server does: validation errors are 400 with ``ErrorResponse`` (not
    FastAPI's 422), and the streamed ``ChatCompletionChunk`` (no route returns it, so FastAPI leaves it out) is in."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            for operations in spec.get("paths", {}).values():
                for operation in operations.values():
                    responses = operation.get("responses", {})
                    if responses.get("422", {}).get("description") == "Validation Error":
                        del responses["422"]  # FastAPI's own; a route's documented 422 stays
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
    """The ASGI app to serve: ``app`` behind the body-size limit, every request logged once."""
    return RequestLog(BodyLimit(app, settings.max_body_bytes))

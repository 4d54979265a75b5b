"""OpenAI-style errors: ``{"error": {"message", "type", "param", "code"}}``, so official clients raise their usual
exceptions (400 ``BadRequestError``, 404 ``NotFoundError``, 422 ``UnprocessableEntityError``, ...)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from genie_core.api.protocol import ErrorResponse

ERROR_DOCS = {
    400: "The request is invalid; `error.param` names the field and `error.message` says what is wrong.",
    401: "The API key is missing or wrong.",
    404: "No such model (`error.code` is `model_not_found`); this server serves one, listed by `/v1/models`.",
    413: "The request body is larger than this server accepts.",
    422: (
        "The model did not produce a reply in the required form (`response_format`, or a tool call that "
        "`tool_choice` requires) within the attempts allowed; `error.code` is `invalid_model_output`."
    ),
    501: "This server's model cannot do this.",
    503: "The request queue is full; retry after `Retry-After` seconds.",
}


class ApiError(Exception):
    """A refusal with its HTTP status; raised anywhere in a route, answered by the app's handler."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code


def error_response(
    status: int, message: str, kind: str, param: str | None = None, headers=None, code: str | None = None
) -> JSONResponse:
    return JSONResponse(error_body(message, kind, param, code), status_code=status, headers=headers)


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    # a message may quote the request, and text that is not valid Unicode cannot be encoded into a response
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_docs(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of the error statuses a route can answer."""
    docs: dict[int | str, dict[str, Any]] = {c: {"model": ErrorResponse, "description": ERROR_DOCS[c]} for c in codes}
    if 503 in docs:
        docs[503]["headers"] = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}}
    return docs


def model_not_found(name: str) -> ApiError:
    """OpenAI's (and vLLM's) answer to a model it does not serve."""
    return ApiError(
        404,
        f"The model `{name}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )

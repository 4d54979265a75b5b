"""Request and response bodies of the OpenAI-compatible API (the subset a chat model serves).

Requests ignore fields they do not know, as OpenAI's own clients send newer fields freely; fields they do know are
checked strictly (no "yes" for a boolean, no "5" for a number) so that the OpenAPI document, generated from these
models, says exactly what the server accepts; a wrong type or range is answered with a 400 that names the field.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal, Optional, Union

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def _whole(value: Any) -> Any:
    """JSON Schema counts 39.0 as an integer, so the server does too (strings and booleans stay refused)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class FunctionCall(BaseModel):
    name: str
    arguments: str


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class TextPart(_Request):
    type: Literal["text"]
    text: str


class FunctionCallIn(_Request):
    name: str
    arguments: Union[str, dict[str, Any]] = "{}"


class ToolCallIn(_Request):
    id: Optional[str] = None
    type: Literal["function"] = "function"
    function: FunctionCallIn


class FunctionDef(_Request):
    """A tool's function; keys beyond these (``strict``, ...) are kept, as they reach the prompt."""

    model_config = ConfigDict(extra="allow", strict=True)
    name: str
    description: Optional[str] = None
    parameters: Optional[dict[str, Any]] = None


class ToolDef(_Request):
    type: Literal["function"] = "function"
    function: FunctionDef


class ChatMessageIn(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Optional[Union[str, list[TextPart]]] = None
    name: Optional[str] = None
    tool_calls: Optional[list[ToolCallIn]] = None
    tool_call_id: Optional[str] = None


class StreamOptions(_Request):
    include_usage: bool = False


class ChatCompletionRequest(_Request):
    model: str = ""
    messages: list[ChatMessageIn] = Field(min_length=1)
    temperature: Optional[float] = Field(default=None, ge=0, le=2)
    top_p: Optional[float] = Field(default=None, gt=0, le=1)
    n: int = Field(default=1, ge=1)
    max_tokens: Optional[int] = Field(default=None, ge=1)
    max_completion_tokens: Optional[int] = Field(default=None, ge=1)
    stop: Optional[Union[str, list[str]]] = None
    stream: bool = False
    stream_options: Optional[StreamOptions] = None
    tools: Optional[list[ToolDef]] = None
    tool_choice: Optional[Union[str, dict[str, Any]]] = None
    # extensions beyond OpenAI's fields, named as in the generating arguments
    top_k: Optional[int] = Field(default=None, ge=0, le=1_000_000, description="0 keeps every token.")
    repetition_penalty: Optional[float] = Field(default=None, ge=0.01, le=100)
    do_sample: Optional[bool] = None

    _whole_numbers = field_validator("n", "max_tokens", "max_completion_tokens", "top_k", mode="before")(_whole)


def limited_chat_request(max_tokens: int, max_n: int, max_stop: int) -> type[ChatCompletionRequest]:
    """``ChatCompletionRequest`` with one server's limits, so validation and the OpenAPI document state them alike."""
    tokens = (Optional[int], Field(default=None, ge=1, le=max_tokens))
    return create_model(
        "ChatCompletionRequest",
        __base__=ChatCompletionRequest,
        __module__=__name__,
        n=(int, Field(default=1, ge=1, le=max_n)),
        max_tokens=tokens,
        max_completion_tokens=tokens,
        stop=(Optional[Union[str, Annotated[list[str], Field(max_length=max_stop)]]], None),
    )


def allowed_range(model: type[BaseModel], name: str) -> str | None:
    """The bounds of a numeric field as text (``in [0, 2]``, ``in (0, 1]``, ``>= 1``), for error messages."""
    info = model.model_fields.get(name)
    if info is None:
        return None
    low = high = None
    for bound in info.metadata:
        if isinstance(bound, annotated_types.Ge):
            low = f"[{bound.ge}"
        elif isinstance(bound, annotated_types.Gt):
            low = f"({bound.gt}"
        elif isinstance(bound, annotated_types.Le):
            high = f"{bound.le}]"
        elif isinstance(bound, annotated_types.Lt):
            high = f"{bound.lt})"
    if low and high:
        return f"in {low}, {high}"
    if low:
        return f"{'>=' if low[0] == '[' else '>'} {low[1:]}"
    if high:
        return f"{'<=' if high[-1] == ']' else '<'} {high[:-1]}"
    return None


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: Optional[str] = None
    tool_calls: Optional[list[ToolCallOut]] = None


class Choice(BaseModel):
    index: int
    message: ChatMessageOut
    finish_reason: Optional[str] = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionResponse(BaseModel):
    id: str = Field(default_factory=lambda: _id("chatcmpl"))
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage


class Delta(BaseModel):
    role: Optional[Literal["assistant"]] = None
    content: Optional[str] = None
    tool_calls: Optional[list[dict[str, Any]]] = None


class StreamChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: Optional[str] = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[StreamChoice]
    usage: Optional[Usage] = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "llm-genie"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ScoreEvaluationRequest(_Request):
    model: str = ""
    messages: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    max_length: Optional[int] = Field(default=None, ge=1)

    _whole_numbers = field_validator("max_length", mode="before")(_whole)


class ScoreEvaluationResponse(BaseModel):
    id: str = Field(default_factory=lambda: _id("scoreval"))
    object: Literal["score.evaluation"] = "score.evaluation"
    model: str
    scores: list[float]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: Optional[str] = None
    code: Optional[str] = None


class ErrorResponse(BaseModel):
    error: ErrorBody

"""Request and response bodies of the OpenAI-compatible API (the subset a chat model serves).

Requests ignore fields they do not know, as OpenAI's own clients send newer fields freely; fields they do know are
checked strictly (no "yes" for a boolean, no "5" for a number) so that the OpenAPI document, generated from these
models, says exactly what the server accepts; a wrong type or range is answered with a 400 that names the field.
OpenAI fields this server cannot honour are declared too, so that setting one is a 400 saying why (``REFUSED``)
instead of being silently ignored.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal, Optional, TypeVar, Union

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model, field_validator


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
    name: Optional[str] = Field(
        default=None, description="Accepted; chat templates have no place for it, so the model does not see it."
    )
    tool_calls: Optional[list[ToolCallIn]] = None
    tool_call_id: Optional[str] = Field(
        default=None, description="Accepted; tool results answer the calls in order, as in the training format."
    )


class StreamOptions(_Request):
    include_usage: bool = False


class NamedFunction(_Request):
    name: str


class NamedToolChoice(_Request):
    type: Literal["function"]
    function: NamedFunction


class TextFormat(_Request):
    type: Literal["text"]


class JsonObjectFormat(_Request):
    type: Literal["json_object"]


class JsonSchemaSpec(_Request):
    name: str = Field(min_length=1, max_length=64)
    description: Optional[str] = None
    schema_: Optional[dict[str, Any]] = Field(
        default=None, alias="schema", description="A JSON Schema for an object (`type: object`, or no type)."
    )
    strict: Optional[bool] = None


class JsonSchemaFormat(_Request):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[Union[TextFormat, JsonObjectFormat, JsonSchemaFormat], Field(discriminator="type")]

# OpenAI fields this server cannot honour: declared so that using one is refused with the reason, not ignored
REFUSED = {
    "audio": "audio output is not supported; this server replies with text",
    "functions": "the deprecated `functions` is not supported; send `tools`",
    "function_call": "the deprecated `function_call` is not supported; send `tool_choice`",
    "metadata": "completions are not stored here, so there is nothing to attach metadata to",
    "store": "completions are not stored here; only false is accepted",
    "modalities": 'only ["text"] is supported',
    "prediction": "predicted outputs are not supported",
    "reasoning_effort": "the served model has no reasoning-effort setting",
    "verbosity": "the served model has no verbosity setting",
    "web_search_options": "web search is not supported",
    "service_tier": "there is one service tier here; only auto and default are accepted",
    "moderation": "moderation is not supported",
    "suffix": "inserting text before a suffix is not supported",
    "best_of": "only best_of 1 is supported; ask for n choices instead",
}
_ACCEPTED = "Accepted for compatibility; it does not change the reply."


def _refused(name: str) -> Any:
    return Field(default=None, description=f"Not supported: {REFUSED[name]}.")


_TOKEN_ID = r"^[0-9]{1,9}$"
_BIAS = {"type": "number", "minimum": -100, "maximum": 100}
_LogitBias = Annotated[
    dict[Annotated[str, Field(pattern=_TOKEN_ID)], Annotated[float, Field(ge=-100, le=100)]],
    WithJsonSchema({"type": "object", "propertyNames": {"pattern": _TOKEN_ID}, "additionalProperties": _BIAS}),
]


class _Sampling(_Request):
    """Sampling fields shared by chat and plain completions."""

    model: Optional[str] = Field(default=None, description="The served model's id; left out, the served model.")
    temperature: Optional[float] = Field(default=None, ge=0, le=2)
    top_p: Optional[float] = Field(default=None, gt=0, le=1)
    n: int = Field(default=1, ge=1)
    max_tokens: Optional[int] = Field(default=None, ge=1)
    stop: Optional[Union[str, list[str]]] = None
    stream: bool = False
    stream_options: Optional[StreamOptions] = None
    presence_penalty: Optional[float] = Field(default=None, ge=-2, le=2)
    frequency_penalty: Optional[float] = Field(default=None, ge=-2, le=2)
    logit_bias: Optional[_LogitBias] = Field(
        default=None, description="Token id (as text) -> bias added to its logit before sampling."
    )
    seed: Optional[int] = Field(
        default=None,
        ge=-(2**63),
        le=2**63 - 1,
        description="A sampled reply repeats for the same seed and request (best effort, as OpenAI's).",
    )
    user: Optional[str] = Field(default=None, description=_ACCEPTED)
    # extensions beyond OpenAI's fields, named as in the generating arguments
    top_k: Optional[int] = Field(default=None, ge=0, le=1_000_000, description="0 keeps every token.")
    repetition_penalty: Optional[float] = Field(default=None, ge=0.01, le=100)
    do_sample: Optional[bool] = None

    _whole_numbers = field_validator("n", "max_tokens", "top_k", "seed", mode="before")(_whole)


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessageIn] = Field(min_length=1)
    max_completion_tokens: Optional[int] = Field(default=None, ge=1)
    tools: Optional[list[ToolDef]] = None
    tool_choice: Optional[Union[Literal["none", "auto", "required"], NamedToolChoice]] = Field(
        default=None, description="Default: auto with tools, none without."
    )
    parallel_tool_calls: Optional[bool] = Field(default=None, description="false: at most one tool call per reply.")
    response_format: Optional[ResponseFormat] = None
    logprobs: Optional[bool] = None
    top_logprobs: Optional[int] = Field(default=None, ge=0, le=20, description="Needs `logprobs: true`.")
    prompt_cache_key: Optional[str] = Field(default=None, description=_ACCEPTED)
    safety_identifier: Optional[str] = Field(default=None, description=_ACCEPTED)
    store: Optional[Literal[False]] = _refused("store")
    modalities: Optional[list[Literal["text"]]] = _refused("modalities")
    service_tier: Optional[Literal["auto", "default"]] = _refused("service_tier")
    audio: None = _refused("audio")
    functions: None = _refused("functions")
    function_call: None = _refused("function_call")
    metadata: None = _refused("metadata")
    prediction: None = _refused("prediction")
    reasoning_effort: None = _refused("reasoning_effort")
    verbosity: None = _refused("verbosity")
    web_search_options: None = _refused("web_search_options")
    moderation: None = _refused("moderation")

    _whole_numbers_too = field_validator("max_completion_tokens", "top_logprobs", mode="before")(_whole)


class CompletionRequest(_Sampling):
    prompt: Union[str, list[str]] = Field(description="A text, or several (each gets `n` choices).")
    max_tokens: Optional[int] = Field(default=None, ge=1, description="Default 16, as OpenAI's.")
    echo: bool = False
    logprobs: Optional[int] = Field(
        default=None, ge=0, le=5, description="Log-probs of each token and of the `logprobs` most likely ones."
    )
    suffix: None = _refused("suffix")
    best_of: Optional[Literal[1]] = _refused("best_of")

    _whole_numbers_too = field_validator("logprobs", mode="before")(_whole)


_R = TypeVar("_R", bound=BaseModel)


def served_model(model: type[_R], model_id: str, **limits: Any) -> type[_R]:
    """``model`` for one server: its model id and limits in the schema, so validation and the document agree.

    ``limits``: ``max_tokens``, ``max_n`` and ``max_stop`` for the sampling requests. The id is documented as
    the one value of ``model``; validation still takes any text, so that another id is answered 404.
    """
    served = Annotated[str, WithJsonSchema({"type": "string", "enum": [model_id]})]
    fields: dict[str, Any] = {
        "model": (Optional[served], Field(default=None, description="The served model's id; left out, that one."))
    }
    if limits:
        fields["n"] = (int, Field(default=1, ge=1, le=limits["max_n"]))
        for name in ("max_tokens", "max_completion_tokens"):
            if name in model.model_fields:
                about = model.model_fields[name].description
                fields[name] = (Optional[int], Field(default=None, ge=1, le=limits["max_tokens"], description=about))
        stop = Optional[Union[str, Annotated[list[str], Field(max_length=limits["max_stop"])]]]
        fields["stop"] = (stop, None)
        if "prompt" in model.model_fields:
            prompts = Annotated[list[str], Field(min_length=1, max_length=limits["max_n"])]
            fields["prompt"] = (Union[str, prompts], Field(description=model.model_fields["prompt"].description))
    return create_model(model.__name__, __base__=model, __module__=__name__, **fields)


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


class TopLogprob(BaseModel):
    token: str
    logprob: float = Field(description="-9999.0 stands for a token the sampler could not pick.")
    bytes: Optional[list[int]] = None


class TokenLogprobOut(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    content: Optional[list[TokenLogprobOut]] = None
    refusal: Optional[list[TokenLogprobOut]] = None


class Choice(BaseModel):
    index: int
    message: ChatMessageOut
    finish_reason: Optional[str] = None
    logprobs: Optional[ChoiceLogprobs] = None


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
    logprobs: Optional[ChoiceLogprobs] = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[StreamChoice]
    usage: Optional[Usage] = None


class CompletionLogprobs(BaseModel):
    """OpenAI's legacy layout: parallel lists, one entry per token."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: Optional[CompletionLogprobs] = None
    finish_reason: Optional[str] = None


class CompletionResponse(BaseModel):
    """A plain completion, and (without ``usage`` unless asked for) each streamed chunk of one."""

    id: str = Field(default_factory=lambda: _id("cmpl"))
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
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
    model: Optional[str] = None
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

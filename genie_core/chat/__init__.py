"""Chat engine: a model with its adapters and training template, batched streaming generation, tool calls."""

from genie_core.chat.batcher import Batcher, BatcherConfig, EngineBusy, GenerationRequest, RequestHandle
from genie_core.chat.engine import ChatEngine, Reply
from genie_core.chat.sampling import SamplingParams
from genie_core.chat.tools import ToolCall, parse_tool_calls, tools_to_text

__all__ = [
    "Batcher",
    "BatcherConfig",
    "ChatEngine",
    "EngineBusy",
    "GenerationRequest",
    "Reply",
    "RequestHandle",
    "SamplingParams",
    "ToolCall",
    "parse_tool_calls",
    "tools_to_text",
]

"""Chat engine: a model with its adapters and training template, batched streaming generation, tool calls.

The names below load on first use (PEP 562), so a light submodule (``chat.args``, used by the export command)
does not import torch through this package.
"""

from __future__ import annotations

import importlib

_NAMES = {
    "Batcher": "batcher",
    "BatcherConfig": "batcher",
    "EngineBusy": "batcher",
    "GenerationRequest": "batcher",
    "RequestHandle": "batcher",
    "ChatEngine": "engine",
    "Reply": "engine",
    "SamplingParams": "sampling",
    "ToolCall": "tools",
    "parse_tool_calls": "tools",
    "tools_to_text": "tools",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)

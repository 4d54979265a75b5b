"""Model side of the library: family facts, tokenizer/model loading, adapters and pullable demo models.

Names load on first use (PEP 562), so ``genie_core.model.pull`` and the family tables can be read by a parent
process that validates a config without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "find_decoder_layers": "adapter",
    "find_linear_modules": "adapter",
    "init_adapter": "adapter",
    "resolve_lora_targets": "adapter",
    "GENERIC": "families",
    "ModelFamily": "families",
    "get_family": "families",
    "get_family_by_name": "families",
    "list_families": "families",
    "register_family": "families",
    "count_parameters": "loader",
    "load_model": "loader",
    "load_tokenizer": "loader",
    "resolve_dtype": "loader",
    "resolve_model_path": "loader",
    "PULLABLE": "pull",
    "pull_smollm2": "pull",
    "smollm2_dir": "pull",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value

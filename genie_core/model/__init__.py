"""Model side of the library: family facts, tokenizer/model loading, adapters and pullable demo models."""

from genie_core.model.adapter import find_decoder_layers, find_linear_modules, init_adapter, resolve_lora_targets
from genie_core.model.families import (
    GENERIC,
    ModelFamily,
    get_family,
    get_family_by_name,
    list_families,
    register_family,
)
from genie_core.model.loader import (
    count_parameters,
    load_model,
    load_tokenizer,
    resolve_dtype,
    resolve_model_path,
)
from genie_core.model.pull import PULLABLE, pull_smollm2, smollm2_dir

__all__ = [
    "GENERIC",
    "PULLABLE",
    "ModelFamily",
    "count_parameters",
    "find_decoder_layers",
    "find_linear_modules",
    "get_family",
    "get_family_by_name",
    "init_adapter",
    "list_families",
    "load_model",
    "load_tokenizer",
    "pull_smollm2",
    "register_family",
    "resolve_dtype",
    "resolve_lora_targets",
    "resolve_model_path",
    "smollm2_dir",
]

"""Model families: one registry, filled by family group (``native`` ships with transformers, ``remote`` with the
checkpoint). ``get_family`` recognises a model; ``format_family_table`` is what `genie models list` prints."""

from genie_core.model.families import native, remote  # noqa: F401  (registers the families)
from genie_core.model.families.registry import (
    BASE_TEMPLATES,
    GENERIC,
    ModelFamily,
    format_family_table,
    get_family,
    get_family_by_name,
    list_families,
    register_family,
)

__all__ = [
    "BASE_TEMPLATES",
    "GENERIC",
    "ModelFamily",
    "format_family_table",
    "get_family",
    "get_family_by_name",
    "list_families",
    "register_family",
]

"""The model-family record and its registry: what the loader, the adapters and `genie models list` know per family.

Families are keyed by ``config.model_type`` so one entry covers every checkpoint of an architecture; the class names
in ``config.architectures`` recognise checkpoints whose ``model_type`` is unusual. Anything unknown falls back to
``GENERIC``, whose defaults are worked out from the model itself (see ``adapter.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genie_core.extras.errors import ConfigError

BASE_TEMPLATES = ("default", "alpaca", "vicuna")


@dataclass(frozen=True)
class ModelFamily:
    """One architecture and the facts fine-tuning needs about it.

    ``lora_targets`` is the default of ``lora_target``; ``lora_all`` is what ``lora_target: all`` expands to (every
    linear layer of a decoder block, never the LM head). ``layer_pattern`` is a regex matched (as a whole dotted
    suffix) against the name of the ``nn.ModuleList`` that holds the decoder layers; empty means "the longest
    ModuleList". ``freeze_modules`` are the sub-modules of a decoder layer that ``name_module_trainable`` can name,
    feed-forward first; ``module_aliases`` maps the usual names (``mlp``, ``self_attn``) to this family's own, so one
    freeze config works across families. ``template`` is the chat format of the family's chat checkpoints (``None``:
    base checkpoints only, so any of ``default/alpaca/vicuna``); ``other_templates`` are formats of other releases
    that share the architecture. ``quirks`` are what a user must know and what genie does about each.
    """

    name: str
    model_types: tuple[str, ...]
    lora_targets: list[str] = field(default_factory=list)
    template: str | None = None
    layer_pattern: str = ""
    trust_remote_code: bool = False
    notes: str = ""
    architectures: tuple[str, ...] = ()
    lora_all: tuple[str, ...] = ()
    freeze_modules: tuple[str, ...] = ()
    module_aliases: Mapping[str, str] = field(default_factory=dict)
    other_templates: tuple[str, ...] = ()
    quirks: tuple[str, ...] = ()

    @property
    def templates(self) -> tuple[str, ...]:
        """Every format named for this family, chat ones first; base-only families list the base formats."""
        chat = tuple(t for t in (self.template, *self.other_templates) if t)
        return chat or BASE_TEMPLATES


_FAMILIES: dict[str, ModelFamily] = {}
_BY_MODEL_TYPE: dict[str, ModelFamily] = {}
_BY_ARCHITECTURE: dict[str, ModelFamily] = {}

GENERIC = ModelFamily(
    name="generic",
    model_types=(),
    lora_targets=[],
    template=None,
    layer_pattern="",
    notes="Fallback: LoRA on q_proj,v_proj when both exist, else every linear layer; layers = longest ModuleList.",
)


def register_family(family: ModelFamily) -> ModelFamily:
    """Add a family; a second family with the same name, model_type or architecture is a bug, so it raises."""
    if family.name in _FAMILIES or family.name == GENERIC.name:
        raise ValueError(f"Model family '{family.name}' is already registered.")
    for model_type in family.model_types:
        if model_type in _BY_MODEL_TYPE:
            owner = _BY_MODEL_TYPE[model_type].name
            raise ValueError(f"model_type '{model_type}' already belongs to family '{owner}'.")
    for arch in family.architectures:
        if arch in _BY_ARCHITECTURE:
            raise ValueError(f"architecture '{arch}' already belongs to family '{_BY_ARCHITECTURE[arch].name}'.")
    _FAMILIES[family.name] = family
    _BY_MODEL_TYPE.update(dict.fromkeys(family.model_types, family))
    _BY_ARCHITECTURE.update(dict.fromkeys(family.architectures, family))
    return family


def _config_fields(config_or_model: Any) -> tuple[str | None, list[str]]:
    """(model_type, architectures) of a model, a config, a config.json dict or a bare model_type string."""
    if isinstance(config_or_model, str):
        return config_or_model, []
    if isinstance(config_or_model, Mapping):
        return config_or_model.get("model_type"), list(config_or_model.get("architectures") or [])
    config = getattr(config_or_model, "config", config_or_model)
    return getattr(config, "model_type", None), list(getattr(config, "architectures", None) or [])


def get_family(config_or_model: Any) -> ModelFamily:
    """Family for a model (peft-wrapped or not), a config, a config.json dict or a ``model_type``; else ``GENERIC``."""
    model_type, architectures = _config_fields(config_or_model)
    if model_type in _BY_MODEL_TYPE:
        return _BY_MODEL_TYPE[model_type]
    for arch in architectures:
        if arch in _BY_ARCHITECTURE:
            return _BY_ARCHITECTURE[arch]
    return GENERIC


def get_family_by_name(name: str) -> ModelFamily:
    if name == GENERIC.name:
        return GENERIC
    if name not in _FAMILIES:
        raise ConfigError(f"Unknown model family '{name}'. Known: {', '.join(sorted(_FAMILIES))}.")
    return _FAMILIES[name]


def list_families() -> list[ModelFamily]:
    return list(_FAMILIES.values())


def format_family_table(families: list[ModelFamily] | None = None) -> str:
    """The table `genie models list` prints: one row per family, then its `all` expansion, freeze names and quirks."""
    families = list_families() if families is None else families
    rows = [("family", "model_type", "lora_target", "template", "remote code")]
    for fam in families:
        chat = "|".join(t for t in (fam.template, *fam.other_templates) if t)
        template = chat or f"{'/'.join(BASE_TEMPLATES)} (base)"
        lora = ",".join(fam.lora_targets) or "q_proj,v_proj or all"
        rows.append((fam.name, ",".join(fam.model_types), lora, template, "yes" if fam.trust_remote_code else "no"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1]

    out = [line(rows[0]), line(tuple("-" * len(c) for c in rows[0]))]
    for fam, row in zip(families, rows[1:]):
        out.append(line(row))
        details = [("all", ",".join(fam.lora_all)), ("freeze", ",".join(fam.freeze_modules))]
        details.append(("layers", fam.layer_pattern.replace("\\", "")))
        out.append("    " + "   ".join(f"{key}: {value}" for key, value in details if value))
        out.extend(f"    - {text}" for text in (fam.notes, *fam.quirks) if text)
    return "\n".join(out)

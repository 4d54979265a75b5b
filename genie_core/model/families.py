"""Per-architecture facts the loader needs: default LoRA targets, chat template and where the decoder layers live.

Families are keyed by ``config.model_type`` so one entry covers every checkpoint of an architecture. Anything not
listed falls back to ``GENERIC``, whose defaults are worked out from the model itself (see ``adapter.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genie_core.extras.errors import ConfigError


@dataclass(frozen=True)
class ModelFamily:
    """One architecture.

    ``layer_pattern`` is a regex matched (as a whole dotted suffix) against the name of the ``nn.ModuleList`` that
    holds the decoder layers, e.g. ``model.layers`` or ``transformer(\\.encoder)?\\.layers``. An empty pattern means
    "the longest ModuleList". ``template`` is the chat-template name for the family's chat checkpoints; ``None`` means
    base checkpoints have none, so callers should prefer the tokenizer's own chat template.
    """

    name: str
    model_types: tuple[str, ...]
    lora_targets: list[str] = field(default_factory=list)
    template: str | None = None
    layer_pattern: str = ""
    trust_remote_code: bool = False
    notes: str = ""


_FAMILIES: dict[str, ModelFamily] = {}
_BY_MODEL_TYPE: dict[str, ModelFamily] = {}

GENERIC = ModelFamily(
    name="generic",
    model_types=(),
    lora_targets=[],
    template=None,
    layer_pattern="",
    notes="Fallback: LoRA on q_proj,v_proj when both exist, else every linear layer; layers = longest ModuleList.",
)


def register_family(family: ModelFamily) -> ModelFamily:
    """Add a family; a second family with the same name or model_type is a bug, so it raises."""
    if family.name in _FAMILIES or family.name == GENERIC.name:
        raise ValueError(f"Model family '{family.name}' is already registered.")
    for model_type in family.model_types:
        if model_type in _BY_MODEL_TYPE:
            owner = _BY_MODEL_TYPE[model_type].name
            raise ValueError(f"model_type '{model_type}' already belongs to family '{owner}'.")
    _FAMILIES[family.name] = family
    for model_type in family.model_types:
        _BY_MODEL_TYPE[model_type] = family
    return family


def _model_type_of(config_or_model: Any) -> str | None:
    if isinstance(config_or_model, str):
        return config_or_model
    config = getattr(config_or_model, "config", config_or_model)
    return getattr(config, "model_type", None)


def get_family(config_or_model: Any) -> ModelFamily:
    """Family for a config, a model (wrapped or not) or a bare ``model_type`` string; ``GENERIC`` if unknown."""
    return _BY_MODEL_TYPE.get(_model_type_of(config_or_model) or "", GENERIC)


def get_family_by_name(name: str) -> ModelFamily:
    if name == GENERIC.name:
        return GENERIC
    if name not in _FAMILIES:
        raise ConfigError(f"Unknown model family '{name}'. Known: {', '.join(sorted(_FAMILIES))}.")
    return _FAMILIES[name]


def list_families() -> list[ModelFamily]:
    return list(_FAMILIES.values())


_QV = ["q_proj", "v_proj"]
_REMOTE = "Needs trust_remote_code: the modeling code ships with the checkpoint."

for _family in (
    ModelFamily(
        "llama",
        ("llama",),
        _QV,
        None,
        r"model\.layers",
        notes="Base LLaMA has no chat format: use template llama2 for Llama-2-chat, llama3 for Llama-3-Instruct; "
        "SmolLM2 is also llama and carries its own ChatML template in the tokenizer.",
    ),
    ModelFamily("mistral", ("mistral",), _QV, "mistral", r"model\.layers"),
    ModelFamily("qwen2", ("qwen2",), _QV, "qwen", r"model\.layers", notes="Qwen1.5 and Qwen2/2.5 (ChatML)."),
    ModelFamily("qwen3", ("qwen3",), _QV, "qwen3", r"model\.layers"),
    ModelFamily("gemma", ("gemma", "gemma2"), _QV, "gemma", r"model\.layers"),
    ModelFamily("phi3", ("phi3",), ["qkv_proj"], "phi", r"model\.layers", notes="q, k and v are one fused qkv_proj."),
    ModelFamily(
        "falcon",
        ("falcon", "RefinedWeb", "RefinedWebModel"),
        ["query_key_value"],
        "falcon",
        r"transformer\.h",
        notes="q, k and v are one fused query_key_value.",
    ),
    ModelFamily("bloom", ("bloom",), ["query_key_value"], None, r"transformer\.h", notes="BLOOMZ has no chat format."),
    ModelFamily(
        "baichuan",
        ("baichuan",),
        ["W_pack"],
        "baichuan",
        r"model\.layers",
        trust_remote_code=True,
        notes=_REMOTE + " Baichuan2 shares the model_type; use template baichuan2 for it.",
    ),
    ModelFamily(
        "qwen",
        ("qwen",),
        ["c_attn"],
        "qwen",
        r"transformer\.h",
        trust_remote_code=True,
        notes=_REMOTE + " First-generation Qwen; c_attn is the fused qkv.",
    ),
    ModelFamily(
        "chatglm",
        ("chatglm",),
        ["query_key_value"],
        "chatglm3",
        r"transformer(\.encoder)?\.layers",
        trust_remote_code=True,
        notes=_REMOTE + " ChatGLM2/3 (use template chatglm2 for ChatGLM2) and the remote-code GLM-4 releases.",
    ),
    ModelFamily(
        "internlm",
        ("internlm",),
        _QV,
        "intern",
        r"model\.layers",
        trust_remote_code=True,
        notes=_REMOTE,
    ),
    ModelFamily(
        "internlm2",
        ("internlm2",),
        ["wqkv"],
        "intern2",
        r"model\.layers",
        trust_remote_code=True,
        notes=_REMOTE + " wqkv is the fused qkv.",
    ),
    ModelFamily("xverse", ("xverse",), _QV, "xverse", r"model\.layers", trust_remote_code=True, notes=_REMOTE),
    ModelFamily("glm4", ("glm4", "glm"), _QV, "glm4", r"model\.layers", notes="Native transformers GLM-4 (-hf)."),
):
    register_family(_family)

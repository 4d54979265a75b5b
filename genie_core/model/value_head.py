"""A scalar value head on a causal LM: what turns a policy into a reward model (rm) or a critic (ppo).

The head is a ``Linear(hidden_size, 1)`` kept in float32 whatever the base dtype, because rewards and values are
compared and whitened across a batch and half precision loses the small differences that matter. It is saved on its
own (``value_head.safetensors``) next to the LoRA adapter or full model it belongs to, so a reward model directory is
"adapter or model files + value head" and a later stage can load the adapter onto the base it already holds.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from genie_core.extras.errors import ConfigError
from genie_core.extras.logging import get_logger

logger = get_logger(__name__)

VALUE_HEAD_FILE = "value_head.safetensors"
_ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
_MODEL_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


class ValueHead(nn.Module):
    """Hidden states ``[B, T, H]`` -> one float32 value per position ``[B, T]``."""

    def __init__(self, hidden_size: int, dropout: float = 0.0):
        super().__init__()
        self.hidden_size = hidden_size
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.summary = nn.Linear(hidden_size, 1, dtype=torch.float32)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        weight = self.summary.weight
        with torch.autocast(device_type=weight.device.type, enabled=False):  # mixed precision would make it bf16
            hidden = self.dropout(hidden_states.to(weight.device, weight.dtype))
            return self.summary(hidden).squeeze(-1)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The transformers model under DDP/DeepSpeed and peft wrappers (or the model itself)."""
    while isinstance(getattr(model, "module", None), nn.Module):
        model = model.module
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def hidden_size_of(model: nn.Module) -> int:
    config = unwrap_model(model).config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    size = getattr(text_config, "hidden_size", None) or getattr(text_config, "n_embd", None)
    if not size:
        raise ConfigError(f"Cannot tell the hidden size of {type(model).__name__} to size a value head.")
    return int(size)


def attach_value_head(model: nn.Module, init_std: float | None = None, dropout: float = 0.0) -> ValueHead:
    """Create a trainable head sized to ``model`` and register it as ``model.v_head`` (on the peft wrapper if any).

    ``init_std`` draws the weights from N(0, init_std) with a zero bias; None keeps torch's default Linear init.
    """
    head = ValueHead(hidden_size_of(model), dropout=dropout)
    if init_std is not None:
        nn.init.normal_(head.summary.weight, std=init_std)
        nn.init.zeros_(head.summary.bias)
    device = unwrap_model(model).get_input_embeddings().weight.device
    head.to(device)
    head.requires_grad_(True)
    model.v_head = head
    return head


def save_value_head(head: ValueHead, output_dir: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``VALUE_HEAD_FILE`` into ``output_dir`` atomically (temp file + rename); returns its path."""
    from safetensors.torch import save_file

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"hidden_size": str(head.hidden_size), "format": "pt"}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in head.state_dict().items()}
    fd, tmp = tempfile.mkstemp(prefix=".value_head-", suffix=".tmp", dir=out)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, out / VALUE_HEAD_FILE)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out / VALUE_HEAD_FILE


def _head_file(path_or_dir: str | Path) -> Path:
    path = Path(path_or_dir)
    return path / VALUE_HEAD_FILE if path.is_dir() else path


def read_value_head_metadata(path_or_dir: str | Path) -> dict[str, str]:
    """The string metadata saved with the head (hidden_size, base model, merged adapters...)."""
    from safetensors import safe_open

    with safe_open(str(_head_file(path_or_dir)), framework="pt") as f:
        return dict(f.metadata() or {})


def load_value_head(path_or_dir: str | Path, hidden_size: int | None = None) -> ValueHead:
    """Load a head saved by ``save_value_head``; ``hidden_size`` (the model's) is checked when given."""
    from safetensors.torch import load_file

    file = _head_file(path_or_dir)
    if not file.is_file():
        raise ConfigError(f"{path_or_dir} holds no {VALUE_HEAD_FILE}; run --stage rm first to train a reward model.")
    tensors = load_file(str(file))
    saved_size = int(tensors["summary.weight"].shape[-1])
    if hidden_size is not None and hidden_size != saved_size:
        raise ConfigError(
            f"{file} was trained on a model with hidden size {saved_size}, but this model has {hidden_size}; "
            "use a reward model trained from the same base model."
        )
    head = ValueHead(saved_size)
    head.load_state_dict(tensors)
    return head


def _missing_reward_parts(path: str | Path) -> list[str]:
    root = Path(path)
    if not root.is_dir():
        return [f"the directory itself ({root} does not exist)"]
    missing = []
    if not (root / VALUE_HEAD_FILE).is_file():
        missing.append(VALUE_HEAD_FILE)
    is_adapter = (root / "adapter_config.json").is_file()
    if is_adapter and not any((root / name).is_file() for name in _ADAPTER_WEIGHTS):
        missing.append("adapter weights (adapter_model.safetensors)")
    if not is_adapter:
        if not (root / "config.json").is_file():
            missing.append("adapter_config.json (LoRA reward model) or config.json (full reward model)")
        elif not any((root / name).is_file() for name in _MODEL_WEIGHTS):
            missing.append("model weights (model.safetensors)")
    return missing


def is_reward_model_dir(path: str | Path) -> bool:
    """True for an rm stage output: LoRA adapter files or a full model, plus ``VALUE_HEAD_FILE``."""
    return not _missing_reward_parts(path)


def reward_model_kind(path: str | Path) -> str:
    """``lora`` when the reward model is an adapter over a base, else ``full``."""
    return "lora" if (Path(path) / "adapter_config.json").is_file() else "full"


def assert_reward_model_dir(path: str | Path, key: str = "reward_model") -> None:
    """Raise ``ConfigError`` naming the path and what it lacks, before any model is loaded."""
    missing = _missing_reward_parts(path)
    if missing:
        raise ConfigError(
            f"{key}: {path} is not a reward model; it lacks {', '.join(missing)}. "
            "Run --stage rm first and pass its output_dir."
        )


def forward_accepts(model: nn.Module, name: str) -> bool:
    """Whether the wrapped model's ``forward`` takes keyword ``name`` (remote code may predate it)."""
    import inspect

    try:
        return name in inspect.signature(unwrap_model(model).forward).parameters
    except (TypeError, ValueError):
        return False


def keeps_logit_positions(model: nn.Module) -> bool:
    """Whether ``logits_to_keep`` may be an index tensor: transformers' own models take one, remote code a count."""
    native = type(unwrap_model(model)).__module__.startswith("transformers.")
    return native and forward_accepts(model, "logits_to_keep")


def last_hidden_and_values(
    model: nn.Module,
    head: ValueHead,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    return_logits: bool = True,
    **forward_kwargs,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """One forward pass -> ``(logits or None, values[B, T])``.

    The call goes through ``model`` itself (so DDP and LoRA hooks see it). With ``return_logits=False`` the LM head
    projects only the last position (``logits_to_keep=1``), which saves a ``[B, T, vocab]`` tensor a reward model
    never reads.
    """
    if not return_logits and forward_accepts(model, "logits_to_keep"):
        forward_kwargs.setdefault("logits_to_keep", 1)
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        output_hidden_states=True,
        use_cache=False,
        **forward_kwargs,
    )
    return (out.logits if return_logits else None), head(out.hidden_states[-1])


def sequence_scores(values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The value at each row's last non-padding token (works for right and left padding) -> ``[B]``."""
    positions = torch.arange(attention_mask.shape[-1], device=attention_mask.device)
    last = (attention_mask.long() * (positions + 1)).argmax(dim=-1)
    return values.gather(-1, last.unsqueeze(-1)).squeeze(-1)


def head_metadata(model_args, finetuning_args) -> dict[str, str]:
    """What a later stage needs to put the reward model on the right base: base model and merged adapters."""
    merged = list(model_args.adapter_dirs or []) if finetuning_args.finetuning_type == "lora" else []
    if finetuning_args.resume_lora_training and merged:
        merged = merged[:-1]  # the last adapter kept training: it is the reward model's own adapter
    return {
        "base_model": str(model_args.model_name_or_path),
        "finetuning_type": finetuning_args.finetuning_type,
        "merged_adapters": json.dumps([str(Path(p).resolve()) for p in merged]),
    }


def init_value_head(model: nn.Module, model_args, finetuning_args, is_trainable: bool) -> ValueHead:
    """Attach ``model.v_head``: restored from the directory the weights came from when it holds one, else new.

    Training resumes a head saved next to a resumed adapter (or full checkpoint); inference requires one, because a
    freshly initialised head would score every answer at random.
    """
    dirs = list(model_args.adapter_dirs or [])
    source = None
    keeps_last = finetuning_args.finetuning_type != "lora" or finetuning_args.resume_lora_training
    if dirs and (not is_trainable or keeps_last):
        source = dirs[-1]
    elif not dirs and (Path(str(model_args.model_name_or_path)) / VALUE_HEAD_FILE).is_file():
        source = str(model_args.model_name_or_path)  # a full reward model given as the model itself
    if source and (Path(source) / VALUE_HEAD_FILE).is_file():
        saved = load_value_head(source, hidden_size=hidden_size_of(model))
        head = attach_value_head(model)
        head.load_state_dict(saved.state_dict())
        return head
    if not is_trainable:
        where = source or model_args.model_name_or_path
        raise ConfigError(
            f"checkpoint_dir: {where} holds no {VALUE_HEAD_FILE}, so it is not a reward model; "
            "run --stage rm first and pass its output_dir."
        )
    return attach_value_head(model)


def reward_checkpoint_chain(dirs: list[str]) -> list[str]:
    """Put the adapters a LoRA reward model was trained over in front of it, unless the user already listed them."""
    if not dirs or not (Path(dirs[-1]) / VALUE_HEAD_FILE).is_file() or reward_model_kind(dirs[-1]) != "lora":
        return dirs
    merged = json.loads(read_value_head_metadata(dirs[-1]).get("merged_adapters", "[]") or "[]")
    if merged and len(dirs) == 1:
        logger.info("Reward model %s was trained over %s; merging those first.", dirs[-1], ", ".join(merged))
        return [*merged, dirs[-1]]
    return dirs

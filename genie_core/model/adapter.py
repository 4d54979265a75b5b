"""Decide which parameters train: everything (full), a few decoder layers (freeze) or LoRA adapters (lora/QLoRA).

Every name a user gives (LoRA targets, freeze sub-modules, extra modules to save) is checked against the model before
training starts, and a mismatch raises ``ConfigError`` listing the names that do exist.
"""

from __future__ import annotations

import os
import re

import torch
from torch import nn

from genie_core.extras.errors import ConfigError
from genie_core.extras.logging import get_logger
from genie_core.model.families import ModelFamily, get_family

logger = get_logger(__name__)

# Heads that map hidden states to the vocabulary (or a score); LoRA "all" leaves them alone.
_OUTPUT_HEAD_NAMES = {"lm_head", "output_layer", "embed_out", "output", "score", "v_head"}


def _linear_types() -> tuple[type, ...]:
    types: list[type] = [nn.Linear]
    try:
        from transformers.pytorch_utils import Conv1D

        types.append(Conv1D)
    except ImportError:  # pragma: no cover - depends on the transformers build
        pass
    return tuple(types)


def is_quantized(model: nn.Module) -> bool:
    return bool(
        getattr(model, "is_loaded_in_4bit", False)
        or getattr(model, "is_loaded_in_8bit", False)
        or getattr(model, "hf_quantizer", None) is not None
    )


def find_linear_modules(model: nn.Module, include_output_head: bool = False) -> list[str]:
    """Sorted leaf names (``q_proj``, ``down_proj``...) of linear layers, bitsandbytes ones included."""
    linear_types = _linear_types()
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names: set[str] = set()
    for full_name, module in model.named_modules():
        if not isinstance(module, linear_types):
            continue
        leaf = full_name.split(".")[-1]
        if not include_output_head and (module is head or leaf in _OUTPUT_HEAD_NAMES):
            continue
        names.add(leaf)
    return sorted(names)


def _matches(full_name: str, target: str) -> bool:
    """peft's rule for list targets: the module name equals the target or ends with ``.target``."""
    return full_name == target or full_name.endswith("." + target)


def resolve_lora_targets(model: nn.Module, targets: list[str], family: ModelFamily | None = None) -> list[str]:
    """Expand ``all`` and family defaults, then make sure each target names a linear (or embedding) module."""
    family = family or get_family(model)
    available = find_linear_modules(model)
    source = "lora_target"
    if not targets:
        source = f"default LoRA targets of the {family.name} family (set lora_target to override)"
        if family.lora_targets:
            targets = list(family.lora_targets)
        elif {"q_proj", "v_proj"} <= set(available):
            targets = ["q_proj", "v_proj"]
        else:
            targets = ["all"]
    if any(t.lower() == "all" for t in targets):
        if not available:
            raise ConfigError("lora_target=all: the model has no linear layers to adapt.")
        # the family table names a block's linear layers; anything else linear (a vision tower, a projector) stays out
        listed = [name for name in family.lora_all if name in available]
        if listed and set(listed) != set(available):
            logger.info("lora_target=all: %s per the %s family table", ",".join(listed), family.name)
        return listed or available

    adaptable = [
        name for name, module in model.named_modules() if isinstance(module, (*_linear_types(), nn.Embedding))
    ]
    missing = [t for t in targets if not any(_matches(name, t) for name in adaptable)]
    if missing:
        raise ConfigError(
            f"{source}: {', '.join(missing)} matches no linear module of this {type(model).__name__}. "
            f"Linear modules: {', '.join(available)} (or use `all`)."
        )
    return targets


def find_decoder_layers(model: nn.Module, family: ModelFamily | None = None) -> tuple[str, nn.ModuleList]:
    """The ModuleList of decoder layers: the family's pattern first, else the longest ModuleList."""
    family = family or get_family(model)
    lists = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    if family.layer_pattern:
        pattern = re.compile(rf"(?:^|\.)(?:{family.layer_pattern})$")
        for name, layers in lists:
            if pattern.search(name):
                return name, layers
    if not lists:
        raise ConfigError(f"Could not find the decoder layers of {type(model).__name__}; freeze tuning needs them.")
    return max(lists, key=lambda item: len(item[1]))


def _upcast_trainable(model: nn.Module) -> None:
    """fp16 master weights break optimizer steps, so trainable fp16 weights become fp32 (autocast bridges the rest).

    On CPU there is usually no autocast and half math is slow, so the whole model goes to fp32 there.
    """
    for param in model.parameters():
        half = param.dtype in (torch.float16, torch.bfloat16)
        if half and (param.device.type == "cpu" or (param.requires_grad and param.dtype == torch.float16)):
            param.data = param.data.to(torch.float32)


def _setup_full(model: nn.Module) -> nn.Module:
    model.requires_grad_(True)
    _upcast_trainable(model)
    return model


def _setup_freeze(model: nn.Module, finetuning_args) -> nn.Module:
    layer_list_name, layers = find_decoder_layers(model)
    n_layers, n = len(layers), finetuning_args.num_layer_trainable
    if n == 0:
        raise ConfigError(
            f"num_layer_trainable=0 trains nothing; use 1..{n_layers} (last layers) or -1..-{n_layers} (first layers)."
        )
    if abs(n) > n_layers:
        # The default (3) exceeds tiny models' depth; training every layer is what such a request can mean.
        logger.warning("num_layer_trainable=%d but the model has %d layers: training all of them.", n, n_layers)
        n = n_layers if n > 0 else -n_layers
    chosen = range(n_layers - n, n_layers) if n > 0 else range(-n)
    names = [m.strip() for m in finetuning_args.name_module_trainable.split(",") if m.strip()]
    if not names:
        raise ConfigError("name_module_trainable is empty; name sub-modules such as mlp,self_attn or use `all`.")
    train_all = any(name.lower() == "all" for name in names)

    sample = layers[chosen[0]]
    if not train_all:
        rel_params = [f".{rel}." for rel, _ in sample.named_parameters()]
        aliases = get_family(model).module_aliases  # e.g. mlp -> feed_forward, so one config fits every family
        names = [
            aliases[name] if name in aliases and not any(f".{name}." in rel for rel in rel_params) else name
            for name in names
        ]
        missing = [name for name in names if not any(f".{name}." in rel for rel in rel_params)]
        if missing:
            children = sorted(name for name, _ in sample.named_children())
            inner = sorted({name.split(".")[-1] for name, _ in sample.named_modules() if name.count(".") >= 1})
            raise ConfigError(
                f"name_module_trainable: {', '.join(missing)} matches nothing in a decoder layer "
                f"({type(sample).__name__}). Sub-modules: {', '.join(children)}; inside them: {', '.join(inner)}; "
                f"or use `all`."
            )

    model.requires_grad_(False)
    for idx in chosen:
        for rel, param in layers[idx].named_parameters():
            if train_all or any(f".{name}." in f".{rel}." for name in names):
                param.requires_grad_(True)
    _upcast_trainable(model)
    layer_ids = ",".join(str(i) for i in chosen)
    logger.info("Freeze tuning: %s[%s], modules %s", layer_list_name, layer_ids, ",".join(names))
    return model


def _check_adapter_dirs(dirs: list[str]) -> None:
    for path in dirs:
        if not os.path.isfile(os.path.join(path, "adapter_config.json")):
            raise ConfigError(f"checkpoint_dir: {path} holds no adapter_config.json, so it is not a LoRA adapter.")


def _setup_lora(model: nn.Module, model_args, finetuning_args, is_trainable: bool) -> nn.Module:
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training

    adapters = model_args.adapter_dirs
    _check_adapter_dirs(adapters)
    quantized = is_quantized(model)
    resume = adapters[-1] if adapters and is_trainable and finetuning_args.resume_lora_training else None
    to_merge = adapters[:-1] if resume else list(adapters)

    if quantized and to_merge:
        if not is_trainable and len(adapters) == 1:
            # Inference on a quantized base: keep the adapter beside the base instead of merging into it.
            model = PeftModel.from_pretrained(model, adapters[0], is_trainable=False)
            logger.info("Loaded adapter %s unmerged (quantized base)", adapters[0])
            return model
        raise ConfigError(
            "LoRA adapters cannot be merged into a 4/8-bit base. With quantization_bit, give exactly one "
            "checkpoint_dir and resume_lora_training=true (or one adapter for inference), or export a merged "
            f"full-precision model first. Got {len(adapters)} adapter(s): {', '.join(adapters)}."
        )

    for path in to_merge:
        model = PeftModel.from_pretrained(model, path).merge_and_unload()
    if to_merge:
        logger.info("Merged %d adapter(s) into the base: %s", len(to_merge), ", ".join(to_merge))

    if not is_trainable:
        return model

    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)

    if resume:
        if finetuning_args.lora_target or finetuning_args.additional_target:
            logger.warning("Resuming %s: its own targets apply; lora_target/additional_target are ignored.", resume)
        model = PeftModel.from_pretrained(model, resume, is_trainable=True)
        logger.info("Resumed LoRA adapter %s", resume)
        return model

    targets = resolve_lora_targets(model, finetuning_args.lora_targets)
    extra = [m.strip() for m in (finetuning_args.additional_target or "").split(",") if m.strip()]
    module_names = [name for name, _ in model.named_modules()]
    unknown = [m for m in extra if not any(_matches(name, m) for name in module_names)]
    if unknown:
        top = sorted({name.split(".")[-1] for name in module_names if name and not name.split(".")[-1].isdigit()})
        raise ConfigError(
            f"additional_target: {', '.join(unknown)} matches no module. Module names: {', '.join(top)}."
        )
    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=finetuning_args.lora_rank,
        lora_alpha=finetuning_args.lora_alpha,
        lora_dropout=finetuning_args.lora_dropout,
        target_modules=targets,
        modules_to_save=extra or None,
    )
    model = get_peft_model(model, config)
    logger.info("New LoRA adapter (r=%d) on %s", finetuning_args.lora_rank, ",".join(targets))
    return model


def init_adapter(model: nn.Module, model_args, finetuning_args, is_trainable: bool) -> nn.Module:
    """Set ``requires_grad`` (and wrap in peft for LoRA) according to ``finetuning_type``."""
    kind = finetuning_args.finetuning_type
    if kind == "lora":
        return _setup_lora(model, model_args, finetuning_args, is_trainable)
    if not is_trainable:
        return model
    if kind == "full":
        return _setup_full(model)
    if kind == "freeze":
        return _setup_freeze(model, finetuning_args)
    raise ConfigError(f"finetuning_type must be full, freeze or lora, got '{kind}'.")

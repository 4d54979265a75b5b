"""Defaults that depend on the device, chosen in the child (the parent validates without importing torch).

Only what the user left unset is chosen, and every choice is logged with the key that undoes it:

- mixed precision: bf16 on a GPU that supports it, else fp16 (LoRA and inference bases load in that dtype there;
  full and freeze tuning load float32 and train under autocast);
- gradient checkpointing: on only when a training step would not fit the device's free memory without it
  (weights, gradients and Adam state of what trains, plus activations: about 34 bytes per hidden unit per token
  per layer in 16-bit, twice that in fp32, with SDPA or flash attention);
- PPO's own optimizer uses fused AdamW on CUDA (the Trainer's default optimizer already is ``adamw_torch_fused``);
- batches copy to the GPU without blocking the host (pinned memory, ``accelerator_config.non_blocking``): a
  blocking copy per tensor drains the queue each step, and a step whose kernels are launched about as fast as
  they run (a 1B model, LoRA, 8k tokens) then leaves the GPU waiting for the host;
- the Trainer's NaN/inf loss filter is off on CUDA: it reads each step's loss on the host between backward and
  the optimizer step, a sync that stalls the GPU the same way; it only kept a bad step's loss out of the logged
  average (unfiltered, one NaN step makes that window's loss and the run's train_loss NaN; the update is the same).
"""

from __future__ import annotations

import torch

from genie_core.extras.logging import get_logger

logger = get_logger(__name__)

_ACTIVATION_BYTES = 34  # per hidden unit, token and layer, 16-bit (Korthikanti et al., 2022, without the s^2 term)
_HEADROOM = 0.85  # allocator fragmentation and temporary buffers


def free_memory_bytes(device: torch.device) -> int | None:
    """What the device can still hold: free GPU memory, or MemAvailable for the CPU; None when unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def training_memory_bytes(config, n_params: int, trainable: int, dtype_bytes: int, tokens: int) -> int:
    """Rough peak of one training step without checkpointing: weights, grads + Adam state, activations."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden = int(getattr(text, "hidden_size", 0) or getattr(text, "n_embd", 0) or 0)
    layers = int(getattr(text, "num_hidden_layers", 0) or getattr(text, "n_layer", 0) or 0)
    activations = _ACTIVATION_BYTES * (dtype_bytes / 2) * hidden * layers * tokens
    return int(n_params * dtype_bytes + trainable * 16 + activations)


def resolve_mixed_precision(args) -> str | None:
    """On CUDA with fp16/bf16 unset and the default weight dtype: bf16 where supported, else fp16."""
    t, raw = args.training, args.raw
    if not torch.cuda.is_available() or t.fp16 or t.bf16 or {"fp16", "bf16"} & set(raw):
        return None
    if args.model.compute_dtype not in (None, "auto"):
        return None
    if torch.cuda.is_bf16_supported():
        t.bf16 = True
        return "bf16 mixed precision (the GPU supports it; set bf16: false to turn it off)"
    t.fp16 = True
    return "fp16 mixed precision (no bf16 on this GPU; set fp16: false to turn it off)"


def resolve_gradient_checkpointing(args, trainer_args, model, tokens_per_step: int) -> str | None:
    """Turn checkpointing on in ``trainer_args`` when the step would not fit in free memory; else None."""
    asked = {"gradient_checkpointing", "activation_checkpointing"} & set(args.raw)
    on = any(getattr(trainer_args, key, None) for key in ("activation_checkpointing", "gradient_checkpointing"))
    if asked or on or not args.training.do_train:
        return None
    first = next(model.parameters())
    free = free_memory_bytes(first.device)
    if free is None:
        return None
    n_params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    need = training_memory_bytes(model.config, n_params, trainable, first.element_size(), tokens_per_step)
    if need <= _HEADROOM * free:
        return None
    for key in ("activation_checkpointing", "gradient_checkpointing"):
        if hasattr(trainer_args, key):
            setattr(trainer_args, key, True)
    gib = 1024**3
    return (
        f"gradient checkpointing on: a step needs about {need / gib:.1f} GiB without it and {free / gib:.1f} GiB is "
        "free (set gradient_checkpointing: false to keep it off)"
    )


def step_tokens(args) -> int:
    """Tokens one training step holds at most: a batch of cutoff_len rows, both sides of each pair."""
    pairs = 2 if args.finetuning.stage in ("rm", "dpo", "kto") else 1
    return int(args.training.per_device_train_batch_size or 1) * int(args.data.cutoff_len) * pairs


def resolve_non_blocking_copies(args) -> bool:
    """On CUDA with neither pinning nor the accelerator config chosen: pin batches and copy them without blocking.
    (genie's own default leaves batches unpinned: pinning only helps a GPU.)"""
    t, raw = args.training, args.raw
    if not torch.cuda.is_available() or {"accelerator_config", "dataloader_pin_memory"} & set(raw):
        return False
    config = getattr(t, "accelerator_config", None)
    if config is None or not hasattr(config, "non_blocking"):
        return False
    t.dataloader_pin_memory = True
    config.non_blocking = True
    return True


def resolve_nan_filter(args) -> bool:
    """On CUDA with ``logging_nan_inf_filter`` unset: turn it off (see the module docstring)."""
    t = args.training
    if not torch.cuda.is_available() or "logging_nan_inf_filter" in args.raw or not t.logging_nan_inf_filter:
        return False
    t.logging_nan_inf_filter = False
    return True


def apply_device_defaults(args) -> None:
    """The device-dependent choices that do not need the model; logged."""
    note = resolve_mixed_precision(args)
    if note:
        logger.info("Device default: %s.", note)
    if resolve_non_blocking_copies(args):
        logger.info("Device default: pinned batches copied without blocking the host (accelerator_config chooses).")
    if resolve_nan_filter(args):
        logger.info("Device default: no NaN filter on the logged loss, a host sync per step (logging_nan_inf_filter).")

"""Load the tokenizer and the model every stage trains or evaluates, then hand the model to ``init_adapter``.

dtype rule (``compute_dtype``): ``auto`` means float32 on CPU, and on CUDA bfloat16 when the GPU supports it, else
float16, except that full and freeze tuning load float32 to train: the models are placed on the GPU by the
Trainer, so ``init_adapter`` sees them on the CPU and would make the whole model float32 anyway, after a 16-bit
load had rounded a float32 checkpoint's frozen layers. LoRA weights are float32 (peft's default). Quantized (4/8-bit)
bases compute in the same dtype.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from torch import nn

from genie_core.extras.errors import ConfigError
from genie_core.extras.logging import get_logger
from genie_core.extras.notices import release_bitsandbytes_notices
from genie_core.model.adapter import init_adapter
from genie_core.model.families import get_family
from genie_core.model.merged import cached_merge, keep_merged, merge_key
from genie_core.model.pull import PULLABLE, strip_quantizer

logger = get_logger(__name__)

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16}
_DTYPES.update({"bfloat16": torch.bfloat16, "bf16": torch.bfloat16})


def resolve_model_path(name_or_path: str) -> tuple[str, str | None]:
    """Turn what the user wrote into ``(directory or hub id, gguf file name or None)``.

    A pullable name such as ``smollm2`` is pulled on first use; a path to a ``.gguf`` file splits into its
    directory and file name, which is how transformers' GGUF loader wants it.
    """
    if not name_or_path:
        raise ConfigError("model_name_or_path is required.")
    path = Path(name_or_path).expanduser()
    if name_or_path.lower() in PULLABLE and not path.exists():
        return str(PULLABLE[name_or_path.lower()]()), None
    if name_or_path.lower().endswith(".gguf"):
        if not path.is_file():
            raise ConfigError(f"model_name_or_path: GGUF file {name_or_path} does not exist.")
        return str(path.resolve().parent), path.name
    return str(path) if path.exists() else name_or_path, None


def _source(model_args) -> tuple[str, str | None]:
    path, gguf_file = resolve_model_path(model_args.model_name_or_path)
    return path, model_args.gguf_file or gguf_file


def resolve_dtype(compute_dtype: str | torch.dtype | None) -> torch.dtype:
    """``compute_dtype`` as a torch dtype; see the module docstring for what ``auto`` picks."""
    if isinstance(compute_dtype, torch.dtype):
        return compute_dtype
    if compute_dtype in (None, "auto"):
        if torch.cuda.is_available():
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if compute_dtype not in _DTYPES:
        raise ConfigError(f"compute_dtype must be auto, float32, float16 or bfloat16, got '{compute_dtype}'.")
    return _DTYPES[compute_dtype]


def load_tokenizer(model_args):
    """Tokenizer padded on the right (what training collators expect); a missing pad token reuses EOS."""
    from transformers import AutoTokenizer

    path, gguf_file = _source(model_args)
    check_remote_code(path, model_args.trust_remote_code)
    kwargs = {"trust_remote_code": model_args.trust_remote_code, "cache_dir": model_args.cache_dir}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    else:
        kwargs["revision"] = model_args.model_revision
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="right", **kwargs)
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            # e.g. first-generation Qwen: the template's stop word becomes eos and pad (Template.fix_tokenizer)
            logger.warning("The tokenizer of %s has no pad, eos or unk token; the template must provide one", path)
            return tokenizer
        # Reusing an existing token keeps the vocabulary (and the embedding matrix) unchanged.
        tokenizer.pad_token = fallback
        logger.info("Tokenizer has no pad token; using %s", fallback)
    return tokenizer


def check_remote_code(path: str, trust_remote_code: bool) -> None:
    """Refuse early, by name, a local checkpoint whose architecture only exists in code shipped beside it."""
    config_file = Path(path) / "config.json"
    if trust_remote_code or not config_file.is_file():
        return
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # transformers reports an unreadable config itself
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    model_type = config.get("model_type")
    if config.get("auto_map") and model_type not in CONFIG_MAPPING:
        family = get_family(config)
        what = f"a {family.name} checkpoint" if family.trust_remote_code else f"a '{model_type}' checkpoint"
        raise ConfigError(
            f"model_name_or_path: {path} is {what} whose modeling code ships with it (auto_map in config.json); "
            "set trust_remote_code: true to run that code."
        )


def _quantization_config(model_args, dtype: torch.dtype):
    from transformers import BitsAndBytesConfig

    release_bitsandbytes_notices()  # this run uses bitsandbytes' kernels: what they said at import matters now
    if model_args.quantization_bit == 4:
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_compute_dtype=dtype,
            bnb_4bit_quant_type=model_args.quantization_type,
            bnb_4bit_use_double_quant=model_args.double_quantization,
        )
    return BitsAndBytesConfig(load_in_8bit=True)  # 4 or 8 only: ModelArguments checks it


def _full_checkpoint(model_args, finetuning_args) -> str | None:
    """For full/freeze, ``checkpoint_dir`` is a whole model to start from instead of the base."""
    if finetuning_args.finetuning_type == "lora" or not model_args.adapter_dirs:
        return None
    dirs = model_args.adapter_dirs  # one entry for full/freeze: the config validation checks it
    if os.path.isfile(os.path.join(dirs[0], "adapter_config.json")):
        raise ConfigError(f"checkpoint_dir: {dirs[0]} is a LoRA adapter; use finetuning_type=lora to load it.")
    if not os.path.isfile(os.path.join(dirs[0], "config.json")):
        raise ConfigError(f"checkpoint_dir: {dirs[0]} holds no config.json, so it is not a model checkpoint.")
    return dirs[0]


def _first_merged_adapter(model_args, finetuning_args, is_trainable: bool) -> str | None:
    """The adapter merged first into the base (LoRA), the one ``merge_cache_dir`` keeps; None when none is merged."""
    adapters = model_args.adapter_dirs
    if finetuning_args.finetuning_type != "lora" or not adapters:
        return None
    resume = is_trainable and finetuning_args.resume_lora_training
    return adapters[0] if len(adapters) > (1 if resume else 0) else None


def load_model(
    tokenizer,
    model_args,
    finetuning_args,
    is_trainable: bool,
    add_valuehead: bool = False,
) -> nn.Module:
    """Load the causal LM (quantized, from GGUF or from a full checkpoint as asked) and prepare what trains."""
    from transformers import AutoModelForCausalLM, GgufConfig

    quantized = model_args.quantization_bit is not None  # with LoRA only: the config validation checks it

    if is_trainable and tokenizer.pad_token_id is None:
        raise ConfigError(
            "The tokenizer has no pad, eos or unk token, and the template gave it none; set `template` to one with a "
            "stop word (see `genie templates`) so the stop word can pad."
        )
    path, gguf_file = _source(model_args)
    check_remote_code(path, model_args.trust_remote_code)
    checkpoint = _full_checkpoint(model_args, finetuning_args)
    if checkpoint:
        path, gguf_file = checkpoint, None
        logger.info("Loading %s weights from checkpoint %s", finetuning_args.finetuning_type, checkpoint)

    dtype = resolve_dtype(model_args.compute_dtype)
    auto = model_args.compute_dtype in (None, "auto")
    if auto and is_trainable and finetuning_args.finetuning_type in ("full", "freeze"):
        dtype = torch.float32  # trained under autocast with float32 master weights (see the module docstring)
    adapter_args, keep_key = model_args, None
    first = _first_merged_adapter(model_args, finetuning_args, is_trainable)
    if first and model_args.merge_cache_dir and not quantized:
        key = merge_key(path, gguf_file, first, dtype, len(tokenizer))
        rest = model_args.adapter_dirs[1:]
        adapter_args = dataclasses.replace(model_args, checkpoint_dir=",".join(rest) or None)
        kept = cached_merge(model_args.merge_cache_dir, key)
        if kept:
            logger.info("Loading the base with %s already merged: %s", first, kept)
            path, gguf_file = str(kept), None
        else:
            keep_key = key
    kwargs: dict = {"dtype": dtype, "trust_remote_code": model_args.trust_remote_code}
    kwargs["cache_dir"] = model_args.cache_dir
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    if gguf_file:
        if quantized:
            raise ConfigError("quantization_bit cannot be combined with a GGUF model; GGUF weights are dequantized.")
        kwargs.update(gguf_file=gguf_file, quantization_config=GgufConfig(dequantize=True))
    else:
        kwargs["revision"] = model_args.model_revision
    if quantized:
        kwargs["quantization_config"] = _quantization_config(model_args, dtype)
        if torch.cuda.is_available():
            kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}

    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if gguf_file:
        strip_quantizer(model)

    vocab = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > vocab:
        model.resize_token_embeddings(len(tokenizer))
        logger.info("Resized embeddings %d -> %d for the tokenizer's added tokens", vocab, len(tokenizer))
        if finetuning_args.finetuning_type == "lora" and not finetuning_args.additional_target:
            logger.warning("New token embeddings stay untrained with LoRA unless additional_target includes them.")

    if is_trainable:
        model.config.use_cache = False  # the KV cache only costs memory during training
    if keep_key:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, first).merge_and_unload()
        logger.info("Merged 1 adapter(s) into the base: %s", first)
        keep_merged(model, model_args.merge_cache_dir, keep_key, first)
    model = init_adapter(model, adapter_args, finetuning_args, is_trainable)
    if add_valuehead:
        from genie_core.model.value_head import init_value_head

        init_value_head(model, model_args, finetuning_args, is_trainable)  # registered as model.v_head

    if is_trainable:
        model.train()
    else:
        model.requires_grad_(False)
        model.eval()

    trainable, total = count_parameters(model)
    logger.info(
        "trainable params: %d || all params: %d || trainable%%: %.4f",
        trainable,
        total,
        100 * trainable / max(total, 1),
    )
    family = get_family(model)
    logger.debug("Model family %s (template %s)", family.name, family.template)
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)``; 4-bit weights are packed two per byte, so count them unpacked."""
    trainable = total = 0
    for param in model.parameters():
        n = getattr(param, "ds_numel", 0) or param.numel()
        if param.__class__.__name__ == "Params4bit":
            n *= 2 * param.element_size()
        total += n
        if param.requires_grad:
            trainable += n
    return trainable, total

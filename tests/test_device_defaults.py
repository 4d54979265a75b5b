"""Device-dependent defaults: mixed precision on a GPU, gradient checkpointing only when memory needs it.

No GPU exists here: where a test needs one, ``torch.cuda.is_available`` / ``is_bf16_supported`` are patched to say
there is one (nothing runs on it; only the choice is checked). Free memory is patched to force each outcome.
"""

from __future__ import annotations

import types

import pytest
import torch
from helpers import stage_config, write_registry

from genie_core.hparams import get_args
from genie_core.stages import device_defaults


@pytest.fixture()
def data_dir(tmp_path):
    return write_registry(tmp_path / "data")


def _args(tiny_model_dir, data_dir, tmp_path, **overrides):
    return get_args(None, stage_config(tiny_model_dir, data_dir, tmp_path / "out", **overrides))


@pytest.mark.parametrize("bf16_ok, expected", [(True, "bf16"), (False, "fp16")])
def test_a_gpu_gets_mixed_precision_unless_the_user_chose(
    tiny_model_dir, data_dir, tmp_path, monkeypatch, bf16_ok, expected
):
    args = _args(tiny_model_dir, data_dir, tmp_path)
    user_off = _args(tiny_model_dir, data_dir, tmp_path, bf16=False)
    pinned = _args(tiny_model_dir, data_dir, tmp_path, compute_dtype="float32")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # stands in for a GPU
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_ok)
    note = device_defaults.resolve_mixed_precision(args)
    assert note.startswith(expected) and getattr(args.training, expected) is True
    assert device_defaults.resolve_mixed_precision(user_off) is None
    assert device_defaults.resolve_mixed_precision(pinned) is None and not pinned.training.bf16


def test_the_cpu_keeps_fp32(tiny_model_dir, data_dir, tmp_path):
    args = _args(tiny_model_dir, data_dir, tmp_path)
    assert torch.cuda.is_available() or device_defaults.resolve_mixed_precision(args) is None
    assert not args.training.bf16 and not args.training.fp16


def test_gradient_checkpointing_turns_on_only_when_the_step_does_not_fit(
    tiny_model_dir, data_dir, tmp_path, monkeypatch
):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    args = _args(tiny_model_dir, data_dir, tmp_path)
    tokens = device_defaults.step_tokens(args)
    assert tokens == 4 * 64
    need = device_defaults.training_memory_bytes(model.config, 10, 10, 4, tokens)
    assert need == 10 * 4 + 10 * 16 + 34 * 2 * 32 * 2 * tokens  # fp32 activations: twice the 16-bit bytes

    def trainer_args():
        return types.SimpleNamespace(activation_checkpointing=False, gradient_checkpointing=False)

    monkeypatch.setattr(device_defaults, "free_memory_bytes", lambda device: 64 * 1024**3)
    roomy = trainer_args()
    assert device_defaults.resolve_gradient_checkpointing(args, roomy, model, tokens) is None
    assert not roomy.activation_checkpointing

    monkeypatch.setattr(device_defaults, "free_memory_bytes", lambda device: 1024)
    tight = trainer_args()
    note = device_defaults.resolve_gradient_checkpointing(args, tight, model, tokens)
    assert "gradient checkpointing on" in note and "gradient_checkpointing: false" in note
    assert tight.activation_checkpointing and tight.gradient_checkpointing

    chosen = _args(tiny_model_dir, data_dir, tmp_path, gradient_checkpointing=False)
    kept = trainer_args()
    assert device_defaults.resolve_gradient_checkpointing(chosen, kept, model, tokens) is None
    assert not kept.activation_checkpointing
    pairs = types.SimpleNamespace(finetuning=types.SimpleNamespace(stage="rm"), training=args.training, data=args.data)
    assert device_defaults.step_tokens(pairs) == 2 * tokens


def test_a_gpu_step_needs_no_host_sync_unless_the_user_chose(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    """Blocking batch copies and the NaN filter's read of each loss are host syncs per step; on a GPU both go."""
    args = _args(tiny_model_dir, data_dir, tmp_path)
    chose = _args(tiny_model_dir, data_dir, tmp_path, logging_nan_inf_filter=True, dataloader_pin_memory=False)
    cpu = _args(tiny_model_dir, data_dir, tmp_path)
    assert device_defaults.resolve_non_blocking_copies(cpu) is torch.cuda.is_available()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # stands in for a GPU
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    device_defaults.apply_device_defaults(args)
    assert args.training.accelerator_config.non_blocking and not args.training.logging_nan_inf_filter
    device_defaults.apply_device_defaults(chose)
    assert not chose.training.accelerator_config.non_blocking and chose.training.logging_nan_inf_filter


def test_sft_on_a_gpu_groups_by_length_instead_of_packing_under_a_dense_mask(
    tiny_model_dir, data_dir, tmp_path, monkeypatch
):
    """Measured on an H200, SDPA packed rows ran slower than length-grouped batches; flash attention's varlen
    kernels keep packing. The model is still on the CPU when this is chosen (the Trainer moves it), so the choice
    follows the training device: ``is_available`` is patched to stand in for a GPU; nothing runs on it."""
    from genie_core.stages.packing import choose_batching, packing_is_slower

    def model(attn):
        return types.SimpleNamespace(config=types.SimpleNamespace(_attn_implementation=attn))

    assert "dense mask" in packing_is_slower(model("sdpa"), on_gpu=True)
    assert packing_is_slower(model("sdpa"), on_gpu=False) is None
    assert packing_is_slower(model("flash_attention_2"), on_gpu=True) is None
    assert packing_is_slower(model("paged|flash_attention_2"), on_gpu=True) is None
    args = _args(tiny_model_dir, data_dir, tmp_path)
    chose = _args(tiny_model_dir, data_dir, tmp_path, packing=False)
    written = {**stage_config(tiny_model_dir, data_dir, tmp_path / "out"), "packing": None}  # `packing: null`
    unset = get_args(None, written)
    assert "packing" in unset.raw
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_batching(args, model("sdpa")) is False and args.data.group_by_length
    assert choose_batching(chose, model("sdpa")) is False and not chose.data.group_by_length
    assert choose_batching(unset, model("sdpa")) is False and unset.data.group_by_length

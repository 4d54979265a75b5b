"""sft packs by default where it is exact: the same per-step losses as padded batches, and a clear log either way."""

from __future__ import annotations

import json
import logging

import pytest
from helpers import stage_config, write_registry

from genie_core.extras.errors import ConfigError
from genie_core.hparams import get_args
from genie_core.stages import run_stage


@pytest.fixture()
def data_dir(tmp_path):
    return write_registry(tmp_path / "data")


def _tiny_llama(hidden: int = 32):
    """A seeded two-layer llama with random weights, for the probes."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(
        "llama", vocab_size=600, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2,
    )  # fmt: skip
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config)


def _losses(out) -> list[float]:
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


@pytest.fixture()
def genie_log():
    """Messages of genie's loggers during the test (whatever handlers earlier tests left on them)."""
    messages: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("genie")
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


def test_sft_packs_by_default_with_the_padded_losses(tmp_path, tiny_model_dir, data_dir, genie_home, genie_log):
    """Full tuning (no random adapter init): packed and padded runs see the same tokens, so the same losses."""
    cfg = dict(finetuning_type="full", learning_rate=1e-3, max_steps=3)
    run_stage(get_args(None, stage_config(tiny_model_dir, data_dir, tmp_path / "packed", **cfg)))
    assert any("Packing examples into rows" in m for m in genie_log)
    genie_log.clear()
    run_stage(get_args(None, stage_config(tiny_model_dir, data_dir, tmp_path / "padded", packing=False, **cfg)))
    assert any("Padded batches (packing: false)" in m for m in genie_log)
    packed, padded = _losses(tmp_path / "packed"), _losses(tmp_path / "padded")
    assert len(packed) == len(padded) == 3
    assert packed == pytest.approx(padded, rel=1e-3, abs=1e-4)


def test_packing_true_is_refused_where_it_is_not_exact(monkeypatch):
    from genie_core.stages import packing

    monkeypatch.setattr(packing, "packing_probe", lambda model: "ToyModel ignores restarted position ids")
    with pytest.raises(ConfigError, match="packing: true is not exact for this model: ToyModel"):
        packing.resolve_packing(True, model=None)
    assert packing.resolve_packing(None, model=None) is False  # unset: padded, and the log says why


@pytest.mark.parametrize("model_type, packs", [("llama", True), ("bloom", False)])
def test_probe_tells_half_precision_rounding_from_a_leak(model_type, packs):
    """In bf16 a packed example's logits differ from its logits alone by a unit in the last place (0.002 on a
    logit of 0.4), which a fixed float32 tolerance took for a leak; BLOOM's ALiBi does leak and stays refused."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from genie_core.model.packed import packing_probe

    tiny = dict(vocab_size=600, hidden_size=32, num_attention_heads=4, max_position_embeddings=128)
    extra = {"llama": dict(intermediate_size=64, num_hidden_layers=2, num_key_value_heads=2), "bloom": {"n_layer": 2}}
    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, **tiny, **extra[model_type])
    model = AutoModelForCausalLM.from_config(config).to(torch.bfloat16)  # llama: sdpa; bloom: eager (its only one)
    problem = packing_probe(model)
    if packs:
        assert problem is None
    else:
        assert problem and "attend to each other" in problem


def test_pair_probe_catches_a_branch_that_sees_the_other(monkeypatch):
    """In bf16 the tree-vs-alone comparison allows for rounding; a leak between the chosen and rejected branches
    is caught anyway, with identical shapes. A forward that drops the tree mask stands in for such a model."""
    import torch

    from genie_core.model import pair_packing

    model = _tiny_llama().to(torch.bfloat16)
    assert pair_packing._probe(model) is None
    monkeypatch.setattr(
        pair_packing,
        "_hidden",
        lambda m, row: m(input_ids=row.input_ids, use_cache=False, output_hidden_states=True).hidden_states[-1][0],
    )
    problem = pair_packing._probe(model)
    assert problem and "rejected branch moved" in problem


def test_rounding_tolerance_follows_autocast():
    """Inside a Trainer's forward the weights are float32 but the math bf16: the tolerance is bf16's."""
    import torch
    from torch import nn

    from genie_core.model.packed import _ATOL, rounding_tolerance

    model, logits = nn.Linear(2, 2), torch.full((3,), 0.4)
    assert rounding_tolerance(model, logits) == _ATOL
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert rounding_tolerance(model, logits) > 2 * _ATOL


def test_flash_attention_is_probed_on_the_gpu_it_will_train_on(monkeypatch):
    """sft chooses its batching before the Trainer moves the model to the GPU, and flash attention has no CPU
    kernels: probed on the CPU, every flash model lost packing. No GPU here: ``is_available`` stands in for one,
    the model's move is recorded instead of made, and an attention named like flash's (SDPA underneath) checks
    that every forward of the probe ran while the model was "on the GPU"."""
    import torch
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    from genie_core.model.packed import packing_probe

    where = {"device": "cpu", "moves": [], "forwards": []}

    def standin(module, query, *args, **kwargs):
        where["forwards"].append(where["device"])
        return sdpa_attention_forward(module, query, *args, **kwargs)

    AttentionInterface.register("flash_standin", standin)
    AttentionMaskInterface.register("flash_standin", sdpa_mask)
    model = _tiny_llama()
    model.config._attn_implementation = "flash_standin"  # set_attn_implementation would look for a hub kernel

    def move(device):
        where["device"] = str(device)
        where["moves"].append(str(device))
        return model

    model.to = move
    assert packing_probe(model) is None and where["moves"] == [] and set(where["forwards"]) == {"cpu"}  # no GPU
    where["forwards"].clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert packing_probe(model) is None
    assert where["moves"] == ["cuda", "cpu"] and set(where["forwards"]) == {"cuda"}


@pytest.mark.parametrize("threshold", [6.0, 1.0, 0.3])
def test_probe_lets_llm_int8_round_across_examples_but_not_leak(tmp_path, threshold):
    """LLM.int8 sends every hidden column where any token has an outlier through float16, so changing one packed
    example changes how the next is rounded (by 0.0013-0.0022 here) without any attention between them. A low
    outlier threshold makes this tiny random llama have outliers as real checkpoints do; the 8-bit kernels run
    on the CPU. An attention that ignores the restarted positions is still refused."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from genie_core.model import pair_packing
    from genie_core.model.packed import packing_probe

    _tiny_llama(hidden=64).save_pretrained(tmp_path)
    quantized = BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=threshold)
    model = AutoModelForCausalLM.from_pretrained(tmp_path, quantization_config=quantized, device_map="cpu")
    assert model.is_loaded_in_8bit
    assert packing_probe(model) is None
    assert pair_packing._probe(model) is None
    model.config._attn_implementation = "eager"  # eager on a packed row without a mask: one causal row, leaking
    original = model.model.forward

    def without_restarts(*args, position_ids=None, **kwargs):
        if position_ids is not None:
            position_ids = torch.arange(position_ids.shape[-1]).expand_as(position_ids)
        return original(*args, position_ids=position_ids, **kwargs)

    model.model.forward = without_restarts
    assert "attend to each other" in packing_probe(model)

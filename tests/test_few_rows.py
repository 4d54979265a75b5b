"""Decode-step matmuls in the swapped layout: same numbers as ``F.linear``, only inside the block, only where plain."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from genie_core.model import few_rows
from genie_core.model.few_rows import ENV_LAYOUT, few_row_linears, swapped_is_faster, swapped_linear


@pytest.fixture()
def layout(monkeypatch):
    """Force a layout for one test; the per-process measurement is forgotten before and after."""

    def force(name: str) -> None:
        monkeypatch.setenv(ENV_LAYOUT, name)
        swapped_is_faster.cache_clear()

    yield force
    swapped_is_faster.cache_clear()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 24), (2, 24), (4, 1, 24), (8, 3, 24), (64, 24), (65, 24), (3, 0, 24)])
def test_swapped_linear_equals_linear(shape, bias):
    torch.manual_seed(0)
    layer = nn.Linear(24, 40, bias=bias)
    x = torch.randn(*shape)
    out = swapped_linear(layer, x)
    assert out.shape == (*shape[:-1], 40) and out.is_contiguous()
    torch.testing.assert_close(out, F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-6)


def test_swapped_linear_keeps_gradients():
    torch.manual_seed(0)
    layer = nn.Linear(16, 8)
    x = torch.randn(4, 16, requires_grad=True)
    swapped_linear(layer, x).square().sum().backward()
    grads = [x.grad.clone(), layer.weight.grad.clone(), layer.bias.grad.clone()]
    x.grad = None
    layer.zero_grad()
    F.linear(x, layer.weight, layer.bias).square().sum().backward()
    for got, want in zip(grads, [x.grad, layer.weight.grad, layer.bias.grad]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def _greedy(model, ids, mask):
    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=6,
        do_sample=False,
        pad_token_id=0,
        return_dict_in_generate=True,
        output_logits=True,
    )
    return out.sequences, torch.stack(out.logits, 1)


def test_generation_is_unchanged_and_the_model_restored(tiny_model_dir, layout):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    layout("swapped")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).eval()
    ids = torch.randint(3, 100, (5, 7))
    mask = torch.ones_like(ids)
    mask[0, :3] = 0  # one left-padded prompt
    plain_tokens, plain_logits = _greedy(model, ids, mask)
    linears = [m for m in model.modules() if type(m) is nn.Linear]
    with few_row_linears(model) as taken:
        assert taken == len(linears) > 0  # base layers, LoRA A/B and the head
        assert all("forward" in m.__dict__ for m in linears)
        tokens, logits = _greedy(model, ids, mask)
    assert not any("forward" in m.__dict__ for m in linears)
    assert torch.equal(tokens, plain_tokens)
    torch.testing.assert_close(logits, plain_logits, rtol=1e-5, atol=1e-5)


def test_plain_layout_and_foreign_forwards_are_left_alone(tiny_model_dir, layout):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    layout("plain")
    with few_row_linears(model) as taken:
        assert taken == 0
        assert not any("forward" in m.__dict__ for m in model.modules())
    layout("swapped")
    theirs = model.lm_head.forward = lambda x: F.linear(x, model.lm_head.weight)  # e.g. an offloading hook
    with few_row_linears(model) as outer:
        with few_row_linears(model) as inner:  # nested: the outer block's forwards stay until it ends
            assert inner == 0
        assert all("forward" in m.__dict__ for m in model.modules() if type(m) is nn.Linear)
    assert outer == sum(1 for m in model.modules() if type(m) is nn.Linear) - 1
    assert model.lm_head.__dict__["forward"] is theirs
    assert sum("forward" in m.__dict__ for m in model.modules()) == 1


def test_the_layout_is_measured_once_and_logged(monkeypatch, genie_logs):
    monkeypatch.delenv(ENV_LAYOUT, raising=False)
    monkeypatch.setattr(few_rows, "_PROBE_SHAPE", (512, 256))  # a small probe: only the bookkeeping is under test
    swapped_is_faster.cache_clear()
    try:
        with genie_logs.at_level(logging.INFO, logger="genie"):
            first = swapped_is_faster()
            assert swapped_is_faster() is first
        lines = [r.getMessage() for r in genie_logs.records if "Decoding matmuls" in r.getMessage()]
        assert len(lines) == 1 and "x @ W.T" in lines[0] and " ms" in lines[0]
        assert ("W @ x.T for 2-64 rows" in lines[0]) is first
    finally:
        swapped_is_faster.cache_clear()


def test_a_forward_replaced_meanwhile_is_not_removed(tiny_model_dir, layout):
    """Another block (another thread) may replace a forward while this one runs: leaving, this one removes only
    the forwards that are still its own."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    layout("swapped")
    with few_row_linears(model):
        theirs = model.lm_head.forward = lambda x: F.linear(x, model.lm_head.weight)
    assert model.lm_head.__dict__["forward"] is theirs
    assert sum("forward" in m.__dict__ for m in model.modules()) == 1

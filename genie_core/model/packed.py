"""Padding-free forwards: sequences of different lengths in one row, position ids restarting at each.

transformers builds a block-diagonal causal mask from restarting position ids (when no attention mask and no KV
cache is passed), so no sequence sees another. Training packs this way (sft); scoring uses it too: a left-padded
batch of 48 held-out prompts of 16-84 tokens is 4,032 tokens for 1,355 real ones. A model that ignores restarted
positions (BLOOM's ALiBi, older remote code) would let sequences attend across the boundary, so every use first
asks ``packs_exactly``, which runs the model once on two short sequences, packed and alone.

Rows are capped at ``ROW_BUDGET`` tokens: on CPU, SDPA still computes the dense T x T mask, and a 2,100-token row
costs 1.3x per token what a 512-token row does (4,100 tokens: 1.9x).
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from genie_core.extras.logging import get_logger
from genie_core.model.value_head import forward_accepts, unwrap_model

logger = get_logger(__name__)

ROW_BUDGET = 512
_PROBE_LENGTHS = (5, 7)
_ATOL = 1e-3  # float32 forwards of the same tokens in different shapes agree to about this
_HALF_ULPS = 4  # 16-bit ones to a few units in the last place of the largest logit (bf16: 3% of it; loose,
# which is why a leak is judged separately, with identical shapes: see leak_tolerance)
_INT8_UNITS = 2  # LLM.int8's outlier columns span the input, so one example changes how another is rounded
_VERDICTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def rounding_tolerance(model: nn.Module, reference: torch.Tensor) -> float:
    """How far two forwards of the same tokens may drift from rounding alone.

    Packed and alone are different shapes, so they take different kernels and summation orders: in float32 that
    moves logits by well under ``_ATOL``; in bf16 by a unit in the last place, 0.002 on a logit of 0.4, which a
    fixed 1e-3 would call a leak and so turn packing off on every GPU.
    """
    param = next(model.parameters())
    dtype = param.dtype
    if torch.is_autocast_enabled(param.device.type):  # e.g. inside a Trainer's forward: float32 weights, bf16 math
        dtype = torch.get_autocast_dtype(param.device.type)
    if getattr(model, "is_loaded_in_8bit", False):  # LLM.int8: a unit of its int8 rounding, 1/127 of the range
        return max(_ATOL, _INT8_UNITS * reference.abs().max().item() / 127)
    if dtype.is_floating_point and torch.finfo(dtype).bits <= 16:
        return max(_ATOL, _HALF_ULPS * torch.finfo(dtype).eps * reference.abs().max().item())
    return _ATOL


def leak_tolerance(model: nn.Module, reference: torch.Tensor) -> float:
    """How far a change to one packed example may move another's logits without a leak.

    Exactly nothing for most models (``_ATOL`` for the order of summation). LLM.int8 (8-bit bitsandbytes) is
    coupled across the whole input by itself: it sends every hidden column where any token has an outlier through
    float16 instead of int8, so changing one example changes how the others are rounded. That moves their logits
    by a fraction of an int8 rounding (up to 0.002 on a tiny llama with a low outlier threshold, whose logits reach
    0.54), which it may; the same llama attending across the examples moved them by 0.54.
    """
    return rounding_tolerance(model, reference) if getattr(model, "is_loaded_in_8bit", False) else _ATOL


def packing_probe(model) -> str | None:
    """None when packed rows give each example the logits it gets alone; else why not, in words for the log.

    Two checks: changing the first example must leave the second's logits as they were (same shapes, so no
    rounding excuse, except LLM.int8's own: ``leak_tolerance``), and the second's logits must match a forward of
    it alone up to rounding.
    """
    with _on_probe_device(model):
        return _packing_probe(model)


@contextlib.contextmanager
def _on_probe_device(model: nn.Module) -> Iterator[None]:
    """The model where the probe can run. Flash attention's kernels exist only on a GPU, while sft chooses its
    batching with the model still on the CPU (the Trainer moves it later): probed there, every flash model would
    fail and lose packing, the batching its variable-length kernels make fastest. Such a model visits the GPU."""
    device = next(model.parameters()).device
    attn = getattr(model.config, "_attn_implementation", None) or ""
    if "flash" not in attn or device.type != "cpu" or not torch.cuda.is_available():
        yield
        return
    model.to("cuda")
    try:
        yield
    finally:
        model.to(device)


def _packing_probe(model: nn.Module) -> str | None:
    device = next(model.parameters()).device
    vocab = int(getattr(model.config, "vocab_size", 0) or 32)
    generator = torch.Generator().manual_seed(0)
    rows = [torch.randint(3, max(4, min(vocab, 1000)), (n,), generator=generator) for n in _PROBE_LENGTHS]
    other = torch.randint(3, max(4, min(vocab, 1000)), (_PROBE_LENGTHS[0],), generator=generator)
    packed = torch.cat(rows).unsqueeze(0).to(device)
    changed = torch.cat([other, rows[1]]).unsqueeze(0).to(device)
    positions = torch.cat([torch.arange(len(r)) for r in rows]).unsqueeze(0).to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            together = model(input_ids=packed, position_ids=positions, use_cache=False).logits[0].float()
            moved = model(input_ids=changed, position_ids=positions, use_cache=False).logits[0].float()
            second = model(input_ids=rows[1].unsqueeze(0).to(device), use_cache=False).logits[0].float()
    except (TypeError, ValueError, RuntimeError) as exc:
        return f"{type(model).__name__} cannot take packed rows ({type(exc).__name__}: {str(exc)[:120]})"
    finally:
        model.train(was_training)
    attn = getattr(model.config, "_attn_implementation", None) or "default"
    tail = together[_PROBE_LENGTHS[0] :]
    leak = (tail - moved[_PROBE_LENGTHS[0] :]).abs().max().item()
    if leak > leak_tolerance(model, tail):
        return (
            f"{type(model).__name__} (attention: {attn}) ignores restarted position ids, so packed examples would "
            f"attend to each other (changing one moved the next one's logits by {leak:.3g})"
        )
    gap = (tail - second).abs().max().item()
    if gap > rounding_tolerance(model, second):
        return (
            f"{type(model).__name__} (attention: {attn}) ignores restarted position ids: a packed example does not "
            f"get the logits it gets alone (gap {gap:.3g})"
        )
    return None


def packs_exactly(model: nn.Module) -> bool:
    """Whether scoring may pack sequences for this model; probed once per model object.

    Under ZeRO-3 the weights are partitioned outside a trainer's forward, so nothing is probed and scoring pads.
    """
    if os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3":
        return False
    return probed_once(_VERDICTS, model, packing_probe, "Scoring with padded batches")


def probed_once(verdicts: weakref.WeakKeyDictionary, model: nn.Module, probe, refusal: str) -> bool:
    """``probe`` (None when the model qualifies, else why not) run once per model; a refusal is logged once."""
    inner = unwrap_model(model)  # DDP/DeepSpeed and peft wrappers share the verdict of the model inside
    verdict = verdicts.get(inner)
    if verdict is None:
        problem = probe(inner)
        if problem:
            logger.info("%s: %s.", refusal, problem)
        verdict = verdicts[inner] = problem is None
    return verdict


@dataclass
class PackedRow:
    """Some sequences back to back: ``members[k]`` starts at column ``starts[k]``."""

    members: list[int]
    starts: list[int]
    input_ids: torch.Tensor  # [1, T]
    position_ids: torch.Tensor  # [1, T]


def pack_rows(sequences: list[torch.Tensor], budget: int | None = None) -> list[PackedRow]:
    """Sequences in order, as few rows of at most ``budget`` tokens as a greedy fill gives (a longer one alone)."""
    budget = budget or ROW_BUDGET
    groups: list[list[int]] = []
    used = budget
    for i, seq in enumerate(sequences):
        n = int(seq.numel())
        if used + n > budget:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += n
    rows = []
    for members in groups:
        parts = [sequences[i] for i in members]
        starts, offset = [], 0
        for part in parts:
            starts.append(offset)
            offset += int(part.numel())
        positions = torch.cat([torch.arange(int(p.numel()), device=p.device) for p in parts])
        rows.append(PackedRow(members, starts, torch.cat(parts).unsqueeze(0), positions.unsqueeze(0)))
    return rows


def real_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
    """Each row's tokens without its padding (left, right or both)."""
    return [ids[mask.bool()] for ids, mask in zip(input_ids, attention_mask)]


def packed_last_values(model: nn.Module, head: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """``head`` at each row's last real token ``[N]``, from padding-free rows: a reward model's score of a batch."""
    sequences = real_tokens(input_ids, attention_mask)
    scores: dict[int, torch.Tensor] = {}
    for row in pack_rows(sequences):
        out = model(
            input_ids=row.input_ids,
            position_ids=row.position_ids,
            use_cache=False,
            output_hidden_states=True,
            **({"logits_to_keep": 1} if forward_accepts(model, "logits_to_keep") else {}),
        )
        ends = torch.tensor(
            [start + int(sequences[m].numel()) - 1 for m, start in zip(row.members, row.starts)],
            device=row.input_ids.device,
        )
        values = head(out.hidden_states[-1][0, ends])
        for k, member in enumerate(row.members):
            scores[member] = values[k]
    return torch.stack([scores[i] for i in range(len(sequences))])

"""Linear layers for decoding on a CPU: a few rows at a time against weights that stream from memory.

A decode step multiplies 2-64 rows (one per sequence) by every weight of the model, and the weights do not fit in
the cache, so the step is bound by how fast the matmul streams a weight. ``F.linear`` computes ``x @ W.T``; for
so few rows MKL's sgemm streams ``W`` in that layout far below what the memory gives on some CPUs (AMD EPYC, 2
cores: 2.7-4 GB/s), while the same products written as ``(W @ x.T).T`` run at 5.5-6 GB/s. That made whole
``generate`` calls 2x faster at 4 rows, 1.5x at 8 and 1.15x at 48 there, with the same tokens.

The faster layout depends on the CPU and its BLAS, so it is measured once per process on a weight larger than any
cache (``swapped_is_faster``) and used only where it wins; on an accelerator nothing changes. It is applied only
inside ``few_row_linears`` (around generation), so training forwards keep ``F.linear``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time

import torch
from torch import nn
from torch.nn import functional as F

from genie_core.extras.logging import get_logger

logger = get_logger(__name__)

# decode steps of up to this many rows take the swapped layout; from about 128 rows on it is no faster (measured)
MAX_ROWS = 64
# the probe's weight: 64 MB of float32, larger than the last-level caches of the CPUs we run on
_PROBE_SHAPE = (4096, 4096)
_PROBE_ROWS = 8
# the swapped layout has to win by this much to be used: a tie is not worth a second code path
_MIN_GAIN = 1.1
# "swapped" or "plain" forces a layout (benchmarks, tests); anything else: measure
ENV_LAYOUT = "GENIE_DECODE_LAYOUT"


@functools.cache
def swapped_is_faster() -> bool:
    """Whether ``(W @ x.T).T`` beats ``F.linear`` for a few rows on this CPU (measured once per process)."""
    forced = os.environ.get(ENV_LAYOUT, "").strip().lower()
    if forced in ("swapped", "plain"):
        return forced == "swapped"
    weight = torch.full(_PROBE_SHAPE, 0.01)
    rows = torch.full((_PROBE_ROWS, _PROBE_SHAPE[1]), 0.5)
    plain, swapped = float("inf"), float("inf")
    with torch.no_grad():
        for _ in range(3):  # interleaved, best of three: a busy neighbour slows both the same way
            tick = time.perf_counter()
            F.linear(rows, weight)
            plain = min(plain, time.perf_counter() - tick)
            tick = time.perf_counter()
            torch.mm(weight, rows.t()).t().contiguous()
            swapped = min(swapped, time.perf_counter() - tick)
    faster = plain > _MIN_GAIN * swapped
    logger.info(
        "Decoding matmuls: %s (x @ W.T %.1f ms, W @ x.T %.1f ms for %d rows of a %d MB weight)",
        f"W @ x.T for 2-{MAX_ROWS} rows" if faster else "F.linear", plain * 1e3, swapped * 1e3, _PROBE_ROWS,
        weight.numel() * 4 // 2**20,
    )  # fmt: skip
    return faster


def swapped_linear(module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``module(x)``, computed as ``(W @ x.T).T`` when ``x`` has 2 to ``MAX_ROWS`` rows."""
    rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
    if not 2 <= rows <= MAX_ROWS:
        return F.linear(x, module.weight, module.bias)
    flat = x.reshape(rows, x.shape[-1])
    if module.bias is None:
        out = torch.mm(module.weight, flat.t())
    else:
        out = torch.addmm(module.bias.unsqueeze(1), module.weight, flat.t())
    return out.t().contiguous().view(*x.shape[:-1], module.out_features)


def _swappable(module: nn.Module) -> bool:
    """A plain float32 ``nn.Linear`` on the CPU that no other wrapper has taken over (quantized layers subclass
    ``nn.Linear``; accelerate's offloading hooks replace ``forward``)."""
    return (
        type(module) is nn.Linear
        and module.weight.device.type == "cpu"
        and module.weight.dtype == torch.float32
        and "forward" not in module.__dict__
        and not hasattr(module, "_hf_hook")
    )


@contextlib.contextmanager
def few_row_linears(model: nn.Module):
    """Within the block, the model's Linear layers take the faster layout for few rows where this CPU has one."""
    taken: list[tuple[nn.Module, functools.partial]] = []
    try:
        if any(_swappable(m) for m in model.modules()) and swapped_is_faster():
            for module in model.modules():
                if _swappable(module):
                    module.forward = functools.partial(swapped_linear, module)
                    taken.append((module, module.forward))
        yield len(taken)
    finally:
        for module, ours in taken:  # only what is still ours: another block (another thread) may have replaced it
            if module.__dict__.get("forward") is ours:
                del module.__dict__["forward"]

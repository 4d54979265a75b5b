"""Whether packed rows are exact for this model: packing is on by default only where it changes no example's loss.

A packed row holds several examples with position ids restarting at each one; transformers turns that into a
block-diagonal causal mask for its own models (SDPA, eager and flash attention alike), so no example sees another.
A model that ignores restarted positions (older remote code, a custom attention) would let examples attend across
the boundary and change their loss. Rather than keep a list of such models, the stage runs the model once on two
short examples, packed and alone, and packs only when the logits agree.

On a GPU, exact is not enough: SDPA and eager attention run a packed row under a dense block-diagonal mask, so
each example pays for the whole row, while flash attention's variable-length kernels skip the others. Measured on
an H200 (1B llama, LoRA, 8 x 1024-token rows of 75-1000-token examples, SDPA): padded batches grouped by length
49.5k real tokens/s, plain padded 37.3k, packed 33.2k. There, with no batching chosen, sft groups by length.
"""

from __future__ import annotations

import os

from genie_core.extras.logging import get_logger
from genie_core.model.packed import packing_probe

logger = get_logger(__name__)


_BATCHING_KEYS = {"packing", "group_by_length", "train_sampling_strategy"}  # disable_shuffling arrives renamed


def packing_is_slower(model, on_gpu: bool) -> str | None:
    """Why packed rows are the slower batching for this model when it trains on a GPU (``on_gpu``), or None.

    Flash attention (any ``flash`` implementation: its variable-length kernels) keeps packing."""
    attn = getattr(model.config, "_attn_implementation", None) or "eager"
    if not on_gpu or "flash" in attn:
        return None
    return f"on a GPU {attn} attention runs a packed row under a dense mask, so packing is slower here"


def trains_on_gpu(training) -> bool:
    """Where the Trainer will put the model; the model itself is still on the CPU when the batching is chosen."""
    import torch

    return torch.cuda.is_available() and not getattr(training, "use_cpu", False)


def choose_batching(args, model) -> bool:
    """Whether sft packs; with no batching chosen on a GPU without variable-length attention it groups instead."""
    data = args.data
    chosen = {key for key in _BATCHING_KEYS if args.raw.get(key) is not None}  # `packing: null` chooses nothing
    if args.training.do_train and not chosen:
        why = packing_is_slower(model, trains_on_gpu(args.training))
        if why:
            logger.info("Padded batches grouped by length: %s (set packing: true to pack anyway).", why)
            data.group_by_length = True
            return False
    return resolve_packing(data.packing, model, data.group_by_length, args.training.do_train)


def resolve_packing(requested: bool | None, model, group_by_length: bool = False, training: bool = True) -> bool:
    """``packing`` unset: on where exact. ``true``: on, refused where it is not exact. ``false``: padded batches.

    ``group_by_length: true`` asks for padded batches of similar length, so it keeps packing off unless packing is
    asked for too (which is refused: the two are different batchings). Nothing is probed when nothing trains, or
    under DeepSpeed ZeRO-3, whose partitioned weights cannot run a forward before the trainer gathers them.
    """
    if requested is False:
        logger.info("Padded batches (packing: false).")
        return False
    if group_by_length:
        if requested:
            from genie_core.extras.errors import ConfigError

            raise ConfigError("packing: true and group_by_length: true are two ways to batch; choose one.")
        logger.info("Padded batches grouped by length (group_by_length: true; packing stays off).")
        return False
    if not training:
        return bool(requested)
    if os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3":
        logger.info("Packing %s under ZeRO-3 as set (not probed).", "on" if requested else "off")
        return bool(requested)
    problem = packing_probe(model)
    if problem is None:
        logger.info("Packing examples into rows without cross-example attention (set packing: false for padding).")
        return True
    if requested:
        from genie_core.extras.errors import ConfigError

        raise ConfigError(f"packing: true is not exact for this model: {problem}. Set packing: false.")
    logger.info("Packing off: %s. Padded batches instead.", problem)
    return False

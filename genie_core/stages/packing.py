"""Whether packed rows are exact for this model: packing is on by default only where it changes no example's loss.

A packed row holds several examples with position ids restarting at each one; transformers turns that into a
block-diagonal causal mask for its own models (SDPA, eager and flash attention alike), so no example sees another.
A model that ignores restarted positions (older remote code, a custom attention) would let examples attend across
the boundary and change their loss. Rather than keep a list of such models, the stage runs the model once on two
short examples, packed and alone, and packs only when the logits agree.
"""

from __future__ import annotations

import os

from genie_core.extras.logging import get_logger
from genie_core.model.packed import packing_probe

logger = get_logger(__name__)


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

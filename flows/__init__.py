"""Prefect flows chaining stage tasks into pipelines.

``from flows import rlhf_pipeline`` works, but Prefect is imported only then: the ``genie`` entry point lives
in this package too, and ``genie train`` should not pay for it.
"""

from __future__ import annotations

_FLOWS = ("pipeline", "rlhf_pipeline", "sft_dpo_pipeline", "pt_sft_pipeline", "sft_pipeline", "run_pipeline")
__all__ = list(_FLOWS)


def __getattr__(name: str):
    if name in _FLOWS:
        from flows import pipelines

        return getattr(pipelines, name)
    raise AttributeError(f"module 'flows' has no attribute {name!r}")

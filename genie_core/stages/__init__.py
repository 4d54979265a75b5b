"""One ``run_<stage>(args)`` per stage; ``run_stage`` dispatches on ``args.finetuning.stage``."""

from __future__ import annotations

from genie_core.extras.errors import ConfigError


def run_stage(args) -> dict:
    stage = args.finetuning.stage
    if stage == "pt":
        from genie_core.stages.pt import run_pt

        return run_pt(args)
    if stage == "sft":
        from genie_core.stages.sft import run_sft

        return run_sft(args)
    raise ConfigError(f"stage '{stage}' is not available yet; use pt or sft.")

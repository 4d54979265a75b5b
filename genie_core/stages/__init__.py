"""One ``run_<stage>(args)`` per stage; ``run_stage`` dispatches on ``args.finetuning.stage``."""

from __future__ import annotations

import importlib

from genie_core.extras.errors import ConfigError

STAGES = {
    "pt": "genie_core.stages.pt:run_pt",
    "sft": "genie_core.stages.sft:run_sft",
    "rm": "genie_core.stages.rm:run_rm",
    "ppo": "genie_core.stages.ppo:run_ppo",
    "dpo": "genie_core.stages.dpo:run_dpo",
}


def run_stage(args) -> dict:
    """Import the stage lazily (each pulls different heavy libraries) and run it."""
    if args.eval.compare_models:  # an evaluate step: score a chain of models instead of running the stage
        from genie_core.eval.compare import run_compare

        return run_compare(args)
    stage = args.finetuning.stage
    if stage not in STAGES:
        raise ConfigError(f"unknown stage '{stage}'; choose from {', '.join(STAGES)}.")
    module_name, func_name = STAGES[stage].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ConfigError(f"stage '{stage}' is not available in this version.") from None
        raise
    return getattr(module, func_name)(args)

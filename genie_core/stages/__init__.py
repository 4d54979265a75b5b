"""One ``run_<stage>(args)`` per stage; ``run_stage`` dispatches on ``args.finetuning.stage``."""

from __future__ import annotations

import importlib

from genie_core.extras.errors import ConfigError
from genie_core.hparams.stages import STAGE_TABLE


def run_stage(args) -> dict:
    """Import the stage lazily (each pulls different heavy libraries) and run it, seeded from the config."""
    from genie_core.stages.common import seed_run
    from genie_core.stages.device_defaults import apply_device_defaults

    seed_run(args)
    apply_device_defaults(args)
    if args.eval.compare_models:  # an evaluate step: score a chain of models instead of running the stage
        from genie_core.stages.compare import run_compare

        return run_compare(args)
    stage = args.finetuning.stage
    if stage not in STAGE_TABLE:
        raise ConfigError(f"unknown stage '{stage}'; choose from {', '.join(STAGE_TABLE)}.")
    module_name, func_name = STAGE_TABLE[stage].runner.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ConfigError(f"stage '{stage}' is not available in this version.") from None
        raise
    return getattr(module, func_name)(args)

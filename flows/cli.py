"""The `genie` console entry point: pipeline commands here, everything else in genie_core.cli.

It lives in flows/ because pipelines import Prefect, which genie_core never does.
"""

from __future__ import annotations

import importlib
import sys

from genie_core import cli as core_cli

# command -> ("module:function", help); each function takes argv and returns an exit code
PIPELINE_COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("flows.run:main", "Run a pipeline YAML (e.g. SFT -> RM -> PPO) as a Prefect flow."),
    "deploy": ("flows.deploy:main", "Register the scheduled deployments in deployments/prefect.yaml."),
    "ui": ("flows.ui:main", "Start the MLflow (and Prefect) UI on 127.0.0.1 and print the URLs."),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    core_cli.EXTRA_HELP.update({name: desc for name, (_, desc) in PIPELINE_COMMANDS.items()})
    if argv and argv[0] in PIPELINE_COMMANDS:
        core_cli.apply_quiet_env()
        module_name, func_name = PIPELINE_COMMANDS[argv[0]][0].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                print(f"error: `genie {argv[0]}` is not available in this version.", file=sys.stderr)
                return 2
            raise
        from genie_core.extras.errors import GenieError

        try:
            return int(getattr(module, func_name)(argv[1:]) or 0)
        except GenieError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return core_cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())

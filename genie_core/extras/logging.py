"""Readable, rank-aware logging for the library and the training child."""

from __future__ import annotations

import logging
import os
import sys

_FORMAT = "[%(asctime)s %(levelname)s %(name)s] %(message)s"
_configured = False


def get_logger(name: str) -> logging.Logger:
    """Return a logger under the ``genie`` namespace, configuring the root handler once."""
    global _configured
    if not _configured:
        root = logging.getLogger("genie")
        if not root.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
            root.addHandler(handler)
        root.setLevel(os.environ.get("GENIE_LOG_LEVEL", "INFO").upper())
        root.propagate = False
        _configured = True
    short = name.removeprefix("genie_core.")
    return logging.getLogger(f"genie.{short}")


def is_main_process() -> bool:
    """True on rank 0 (or when not distributed)."""
    return int(os.environ.get("RANK", "0")) == 0 and int(os.environ.get("LOCAL_RANK", "0")) in (0, -1)

"""Merged bases kept for reuse: the first adapter of a chain merged into the base once, then loaded as a model.

In a pipeline the SFT adapter is merged again by every later stage (rm, ppo, each model of the comparison, the
reward model, the export). With ``merge_cache_dir`` set (pipelines set it when two or more steps merge the same
first adapter), the first stage to merge it saves base + adapter to ``<merge_cache_dir>/<key>`` and the others load
that instead. The key hashes the inputs: the base model's files, the adapter's files, the dtype and the vocabulary
size, so a retrained adapter or another base gets a new entry. Saves go to a temporary directory first, and a
directory lock keeps two stages from writing the same entry.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from genie_core.data.fingerprint import digest_json, file_digest, model_fingerprint
from genie_core.extras.logging import get_logger

logger = get_logger(__name__)

_DONE = "genie_merged.json"
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def merge_key(base: str, gguf_file: str | None, adapter: str, dtype: torch.dtype, vocab: int) -> str:
    """What decides the merged weights: the base's files, the adapter's files, the dtype, the vocabulary size."""
    files = {name: file_digest(Path(adapter) / name) for name in _ADAPTER_FILES if (Path(adapter) / name).is_file()}
    identity = {"base": model_fingerprint(base), "gguf": gguf_file, "adapter": files, "dtype": str(dtype)}
    return digest_json({**identity, "vocab": vocab})[:20]


def cached_merge(cache_dir: str | None, key: str) -> Path | None:
    """The kept base + adapter under ``key``, or None."""
    if not cache_dir:
        return None
    entry = Path(cache_dir) / key
    return entry if (entry / _DONE).is_file() else None


def keep_merged(model, cache_dir: str, key: str, adapter: str) -> None:
    """Save ``model`` (base + ``adapter``, merged) for later stages; a failure only costs the reuse."""
    import json

    from genie_core.extras.locks import DirLock, DirLocked

    root = Path(cache_dir)
    entry = root / key
    tmp = root / f".tmp-{key}-{os.getpid()}"
    try:
        with DirLock(root):
            if (entry / _DONE).is_file():
                return
            shutil.rmtree(tmp, ignore_errors=True)
            model.save_pretrained(tmp)
            (tmp / _DONE).write_text(json.dumps({"adapter": str(Path(adapter).resolve())}), encoding="utf-8")
            shutil.rmtree(entry, ignore_errors=True)
            tmp.rename(entry)
        logger.info("Kept the base with %s merged for later stages: %s", adapter, entry)
    except DirLocked:
        logger.info("Another stage is keeping a merged base in %s; this one merges on its own.", root)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        logger.warning("Could not keep the merged base for reuse (%s); later stages merge it again.", exc)

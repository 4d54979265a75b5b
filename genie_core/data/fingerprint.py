"""Content fingerprints: what a cache key must see so a stale cache is never reused.

The one place that hashes what stages read: files by their bytes, folders by their files, datasets by registry entry
and files, tokenizers by what changes the ids, templates by their definition. Both the tokenized-data cache and the
pipeline's stage keys use these. sha256 of a large file costs about a third of a second per half gigabyte, so file
digests are remembered in ``<runs_dir>/.digests.json`` keyed by (path, size, mtime); an edited file gets a new
mtime and is hashed again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from genie_core.extras.env import runs_dir

_CHUNK = 1 << 20


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def digest_json(obj: Any) -> str:
    """Stable sha256 of a JSON-able object (keys sorted; unknown objects by repr)."""
    text = json.dumps(obj, sort_keys=True, default=repr, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Vocabulary, merges, normalizer and special tokens: anything that changes the ids."""
    parts: dict[str, Any] = {"class": type(tokenizer).__name__}
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is not None and hasattr(backend, "to_str"):
        parts["backend"] = hashlib.sha256(backend.to_str().encode("utf-8")).hexdigest()
    else:
        parts["vocab"] = digest_json(sorted(tokenizer.get_vocab().items()))
    parts["special"] = {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())}
    parts["added"] = sorted(str(t) for t in tokenizer.get_added_vocab())
    parts["chat_template"] = getattr(tokenizer, "chat_template", None)
    parts["bos_eos_pad"] = [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id]
    return digest_json(parts)


def template_fingerprint(template: Any) -> str:
    """A template object by its definition; a name by the registered template's (`auto` is carried by the
    tokenizer files, which the model fingerprint covers)."""
    if template is None or isinstance(template, str):
        from genie_core.template import TEMPLATES

        key = (template or "auto").strip().lower()
        if key not in TEMPLATES:
            return key
        template = TEMPLATES[key]
    state = {k: v for k, v in sorted(vars(template).items()) if not k.startswith("_")}
    return digest_json({"class": type(template).__name__, "state": state})


_MEMO: dict[str, str] | None = None
_DIRTY = False


def _memo_path() -> Path:
    return runs_dir() / ".digests.json"


def _memo() -> dict[str, str]:
    global _MEMO
    if _MEMO is None:
        try:
            _MEMO = json.loads(_memo_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            _MEMO = {}
    return _MEMO


def save_memo() -> None:
    """Write the digest memo (temp file + rename); called once a pipeline is planned."""
    global _DIRTY
    if not _DIRTY or _MEMO is None:
        return
    path = _memo_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(_MEMO), encoding="utf-8")
    tmp.replace(path)
    _DIRTY = False


def reset_memo() -> None:
    """Forget remembered digests (the runs directory changed, e.g. between tests)."""
    global _MEMO, _DIRTY
    _MEMO, _DIRTY = None, False


def content_digest(path: str | Path) -> str:
    """sha256 of a file's bytes, remembered by (path, size, mtime_ns)."""
    global _DIRTY
    path = Path(path).resolve()
    st = path.stat()
    memo_key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    memo = _memo()
    if memo_key not in memo:
        memo[memo_key] = file_digest(path)
        _DIRTY = True
    return memo[memo_key]


def path_fingerprint(path: str | Path) -> str:
    """A file by content; a folder by the names and contents of its top-level files (model and adapter dirs)."""
    path = Path(path)
    if path.is_file():
        return content_digest(path)
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    return digest_json({p.name: content_digest(p) for p in files})


def model_fingerprint(name_or_path: str | None, revision: str | None = None) -> dict[str, Any]:
    """Weights and tokenizer files of a local model; a hub id or pullable name (`smollm2`) by name and revision."""
    if not name_or_path:
        return {}
    path = Path(str(name_or_path)).expanduser()
    if path.exists():
        return {"content": path_fingerprint(path)}
    return {"name": str(name_or_path), "revision": revision or "main"}


def dataset_fingerprint(names: list[str], dataset_dir: str) -> dict[str, Any]:
    """Each dataset's registry entry and the digest of every file it is read from.

    Raises the registry's own errors (unknown dataset, missing file), which name the file to fix.
    """
    from genie_core.data.registry import dataset_files, get_dataset_attrs

    out: dict[str, Any] = {}
    for attr in get_dataset_attrs(names, dataset_dir):
        files = {Path(p).name: content_digest(p) for p in dataset_files(attr, dataset_dir)}
        out[attr.name] = {"entry": digest_json(dataclasses.asdict(attr)), "files": files}
    return out

"""Content fingerprints: what a cache key must see so a stale cache is never reused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

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
    state = {k: v for k, v in sorted(vars(template).items()) if not k.startswith("_")}
    return digest_json({"class": type(template).__name__, "state": state})

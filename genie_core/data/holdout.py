"""The held-out split (`eval_split`): which prompts no stage may train on, decided by content, not by position.

A prompt is held out when a seeded hash of its content (system prompt and every turn before the response) falls
below ``eval_split``. The decision needs nothing but the prompt, so it is the same in every stage and every run,
does not move when ``max_samples``, file order or the mix of datasets change, and a prompt that appears in two
datasets (an sft set and a preference set) is held out of both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Literal

from genie_core.schema import Example

Part = Literal["all", "train", "heldout"]
_SCALE = float(1 << 64)


def prompt_key(example: Example) -> str:
    """sha256 of the prompt side of a record: system prompt and the turns before the response."""
    turns = [[m["role"], m["content"]] for m in example.prompt]
    text = json.dumps([example.system, turns], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_held_out(example: Example, fraction: float, seed: int) -> bool:
    """Whether ``example``'s prompt belongs to the held-out part of size ``fraction`` under ``seed``."""
    if fraction <= 0:
        return False
    h = hashlib.sha256(f"{seed}:{prompt_key(example)}".encode()).digest()
    return int.from_bytes(h[:8], "big") / _SCALE < fraction


def select_part(examples: Iterable[Example], fraction: float, seed: int, part: Part) -> list[Example]:
    """The examples of one part; ``all`` (or no split) keeps everything, in input order."""
    if part == "all" or fraction <= 0:
        return list(examples)
    keep_held = part == "heldout"
    return [ex for ex in examples if is_held_out(ex, fraction, seed) == keep_held]


def split_digest(examples: Iterable[Example]) -> str:
    """One digest for a set of prompts (order-free): two evaluations compare only when theirs agree."""
    keys = sorted({prompt_key(ex) for ex in examples})
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]

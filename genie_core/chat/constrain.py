"""Constrained decoding: which tokens may come next so that a reply stays inside a grammar (``grammar.Machine``).

Candidates are tried in the order the sampler ranks them, so the common case (the model's favourite token fits)
costs one check, and a sampling row only looks at the tokens its top-k / top-p left in play (at most
``CHECK_LIMIT``), not the whole vocabulary. A token is allowed when the machine accepts its bytes and the reply can
still be completed within the tokens left (one token per closing byte, the worst case); special tokens never are,
and the batcher ends the row as soon as the machine is complete.
"""

from __future__ import annotations

import json
import re
from typing import Any

import torch

from genie_core.chat.grammar import Machine, feed_all

CHECK_LIMIT = 1024  # candidates looked at per step for a sampling row
_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, inverted: the character a byte-level token uses for each byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def _decoder_kind(tokenizer: Any) -> str:
    """``byte_level`` (GPT-2 style), ``metaspace`` (sentencepiece style, "▁" and <0xNN> byte tokens) or ``other``."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    try:
        decoder = json.loads(backend.to_str()).get("decoder") or {} if backend is not None else {}
    except (AttributeError, ValueError, TypeError):
        return "other"
    kinds = {decoder.get("type")} | {d.get("type") for d in decoder.get("decoders") or []}
    if "ByteLevel" in kinds:
        return "byte_level"
    if kinds & {"Metaspace", "ByteFallback", "Replace"}:
        return "metaspace"
    return "other"


class TokenTable:
    """The bytes each token id stands for, its text, and which ids are special (never part of a reply's text)."""

    def __init__(self, tokenizer: Any, size: int):
        kind = _decoder_kind(tokenizer)
        pieces = tokenizer.convert_ids_to_tokens(list(range(min(size, len(tokenizer)))))
        added = {i: t.content for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items()}
        byte_of = _byte_decoder() if kind == "byte_level" else {}
        self.data: list[bytes] = []
        for i, piece in enumerate(pieces):
            if i in added or piece is None:
                data = (added.get(i) or "").encode()
            elif kind == "byte_level" and all(ch in byte_of for ch in piece):
                data = bytes(byte_of[ch] for ch in piece)
            elif kind == "metaspace":
                match = _BYTE_TOKEN.fullmatch(piece)
                data = bytes([int(match.group(1), 16)]) if match else piece.replace("\u2581", " ").encode()
            else:
                data = tokenizer.decode([i]).encode()
            self.data.append(data)
        self.data += [b""] * (size - len(self.data))  # embedding rows past the tokenizer: never text
        self.special = frozenset(int(i) for i in tokenizer.all_special_ids)

    def bytes_of(self, token: int) -> bytes:
        return self.data[token] if 0 <= token < len(self.data) else b""

    def text_of(self, token: int) -> str:
        """The token as text; a piece of a multi-byte character shows as U+FFFD (its bytes say which piece)."""
        return self.bytes_of(token).decode("utf-8", errors="replace")


def allowed_tokens(
    machine: Machine,
    table: TokenTable,
    scores: torch.Tensor,
    fallback: torch.Tensor,
    remaining: int,
    first_only: bool,
) -> tuple[list[int], bool]:
    """Tokens that may come next, best first, and whether they came from ``fallback`` (their ``scores`` are -inf).

    ``scores`` is the row's sampling distribution (tokens out of play at -inf); when none of the tokens in play
    fits, the best-ranked fitting tokens by ``fallback`` (the row's logits) are taken, so a row never runs dry while
    any token fits. ``first_only`` stops at the first fit (a greedy row that reports no log-probs).
    """
    in_play = int(torch.isfinite(scores).sum())
    found = _scan(machine, table, scores, min(in_play, CHECK_LIMIT), remaining, 1 if first_only else CHECK_LIMIT)
    if found:
        return found, False
    found = _scan(machine, table, fallback, fallback.shape[-1], remaining, 1)
    if found:
        return found, True
    # past the budget (max_tokens too small for the format): take the token that gets closest to complete
    closing = machine.closing()
    best = max(
        (t for t, data in enumerate(table.data) if data and t not in table.special and closing.startswith(data)),
        key=lambda t: len(table.data[t]),
        default=None,
    )
    return ([best], True) if best is not None else ([], True)


def _scan(
    machine: Machine, table: TokenTable, ranking: torch.Tensor, count: int, remaining: int, want: int
) -> list[int]:
    """Up to ``want`` fitting tokens among the ``count`` best of ``ranking``, checked best first in chunks."""
    found: list[int] = []
    need = len(machine.closing())
    checked, chunk = 0, 64
    while checked < count and len(found) < want:
        top = min(count, checked + chunk)
        ids = torch.topk(ranking, top).indices[checked:top].tolist()
        for token in ids:
            if token in table.special:
                continue
            data = table.bytes_of(token)
            if data and _fits(machine, data, need, remaining):
                found.append(token)
                if len(found) >= want:
                    break
        checked, chunk = top, chunk * 4
    return found


def _fits(machine: Machine, data: bytes, need: int, remaining: int) -> bool:
    """Whether ``data`` can follow and the output can still be completed in ``remaining - 1`` more tokens."""
    trial = machine.copy()
    if not feed_all(trial, data):
        return False
    if trial.done or remaining - 1 >= need + 4 * len(data) + 8:  # far from the budget: no need to measure
        return True
    return len(trial.closing()) <= remaining - 1

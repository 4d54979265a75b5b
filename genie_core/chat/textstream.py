"""Turn a growing list of token ids into text deltas, cut at stop strings.

Decoding token by token breaks multi-byte characters (a Chinese character is often two byte-level tokens), so a
delta is only released once it no longer ends in an incomplete character. Text that could be the beginning of a
stop string is held back until it is clear either way, so a streamed reply never shows part of a stop string.
"""

from __future__ import annotations

from typing import Any

_INCOMPLETE = "\ufffd"


class TextStream:
    """One reply: feed token ids with ``push``; read the releasable text with ``take``."""

    def __init__(self, tokenizer: Any, stop: list[str] | None = None):
        self.tokenizer = tokenizer
        self.stop = [s for s in (stop or []) if s]
        self.ids: list[int] = []
        self.text = ""
        self.sent = 0
        self.stopped = False
        self._prefix_offset = 0
        self._read_offset = 0

    def push(self, token_id: int) -> None:
        """Add one generated token; sets ``stopped`` (and trims the text) when a stop string appears."""
        if self.stopped:
            return
        self.ids.append(token_id)
        after = self._decode(self.ids[self._prefix_offset :])
        if not after.endswith(_INCOMPLETE):
            self._append(len(self.ids))

    def _append(self, upto: int) -> None:
        before = self._decode(self.ids[self._prefix_offset : self._read_offset])
        after = self._decode(self.ids[self._prefix_offset : upto])
        if len(after) <= len(before):
            return
        start = max(len(self.text) - max((len(s) for s in self.stop), default=0), 0)
        self.text += after[len(before) :]
        self._prefix_offset, self._read_offset = self._read_offset, upto
        self._cut_at_stop(start)

    def take(self, final: bool = False) -> str:
        """Text not handed out yet; without ``final`` a possible stop-string prefix at the end is held back."""
        if final and not self.stopped and self._read_offset < len(self.ids):
            self._append(len(self.ids))  # the reply ended inside a character: release what there is
        end = len(self.text) if final or self.stopped else len(self.text) - self._held_back()
        if end <= self.sent:
            return ""
        delta = self.text[self.sent : end]
        self.sent = end
        return delta

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True) if ids else ""

    def _cut_at_stop(self, start: int) -> None:
        hits = [pos for pos in (self.text.find(s, start) for s in self.stop) if pos >= 0]
        if hits:
            self.text = self.text[: min(hits)]
            self.stopped = True

    def _held_back(self) -> int:
        for size in range(min(max((len(s) for s in self.stop), default=1) - 1, len(self.text)), 0, -1):
            tail = self.text[-size:]
            if any(s.startswith(tail) for s in self.stop):
                return size
        return 0

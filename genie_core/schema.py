"""The one internal conversation schema every dataset format is converted into."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, TypedDict

Role = Literal["user", "assistant", "observation", "function"]
ROLES: tuple[str, ...] = ("user", "assistant", "observation", "function")


class Message(TypedDict):
    role: Role  # user | assistant | observation (tool result) | function (assistant's tool call)
    content: str


@dataclass
class Example:
    """One training record after conversion.

    prompt:   the turns before the response, alternating (user|observation) and (assistant|function),
              starting and ending with a user/observation turn. For pt, prompt[0]["content"] is the text.
    response: sft/ppo: [the assistant reply] (ppo may leave it empty); rm/dpo: [chosen, rejected]; pt: [].
    source:   "file:index" so any later problem can name the record.
    desirable: kto only: the record's kto_tag, True for a reply to learn from, False for one to move away from.
    """

    prompt: list[Message]
    response: list[Message]
    system: str = ""
    tools: str = ""
    source: str = ""
    extra: dict = field(default_factory=dict)
    desirable: bool | None = None

    def to_dict(self) -> dict:
        return asdict(self)

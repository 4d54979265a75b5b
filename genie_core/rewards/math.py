"""Verifiable rewards for arithmetic answers (the ``arith_demo`` dataset): is the final number right?

Use them as ``reward_funcs: genie_core.rewards.math:correct,genie_core.rewards.math:answer_format`` (they read the
dataset's ``answer`` column), or as the rule ``rule:arith_correct``, which compares with the last number of the
reference reply instead and so also works in a pipeline's evaluate step.
"""

from __future__ import annotations

import re
from typing import Any

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_ANSWER_END = re.compile(r"The answer is -?\d+(?:\.\d+)?\.?$")


def last_number(text: str) -> float | None:
    """The last number written in ``text`` (commas in 1,000 ignored), or None."""
    found = _NUMBER.findall(str(text).replace(",", ""))
    return float(found[-1]) if found else None


def is_correct(completion: str, answer: Any) -> bool:
    """True when the completion's last number equals the answer (a number or text ending in one)."""
    got = last_number(completion)
    want = answer if isinstance(answer, (int, float)) else last_number(str(answer))
    return got is not None and want is not None and abs(got - float(want)) < 1e-6


def correct(prompts: list[str], completions: list[str], answer: list[Any], **kwargs: Any) -> list[float]:
    """1.0 when a completion's last number equals the row's ``answer``, else 0.0."""
    return [1.0 if is_correct(c, a) else 0.0 for c, a in zip(completions, answer)]


def answer_format(prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
    """0.2 when a completion ends with ``The answer is <number>.``, the shape the demo solutions teach."""
    return [0.2 if _ANSWER_END.search(c.strip()) else 0.0 for c in completions]

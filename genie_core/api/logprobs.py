"""The batcher's token log-probs in OpenAI's two layouts: chat's ``logprobs.content`` and the legacy completions one.

JSON has no -inf; a token the sampler could not pick (filtered by top-k, top-p or a grammar) is reported as -9999.0,
the value OpenAI uses for "very unlikely".
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from genie_core.api.protocol import ChoiceLogprobs, CompletionLogprobs, TokenLogprobOut, TopLogprob
from genie_core.chat.batcher import TokenLogprob
from genie_core.chat.constrain import TokenTable

FLOOR = -9999.0


def _value(logprob: float) -> float:
    return logprob if math.isfinite(logprob) and logprob > FLOOR else FLOOR


def chat_logprobs(entries: Iterable[TokenLogprob], table: TokenTable) -> ChoiceLogprobs:
    def top(token: int, logprob: float) -> TopLogprob:
        return TopLogprob(token=table.text_of(token), logprob=_value(logprob), bytes=list(table.bytes_of(token)))

    content = [
        TokenLogprobOut(**top(e.token, e.logprob).model_dump(), top_logprobs=[top(t, lp) for t, lp in e.top])
        for e in entries
    ]
    return ChoiceLogprobs(content=content)


def completion_logprobs(entries: Iterable[TokenLogprob], table: TokenTable, offset: int = 0) -> CompletionLogprobs:
    """``text_offset`` counts characters from ``offset`` (the echoed prompt's length); each top-logprobs dict has
    the chosen token too, so it holds up to ``logprobs + 1`` entries, as OpenAI's does."""
    out = CompletionLogprobs(tokens=[], token_logprobs=[], top_logprobs=[], text_offset=[])
    for entry in entries:
        text = table.text_of(entry.token)
        out.tokens.append(text)
        out.token_logprobs.append(_value(entry.logprob))
        best = {table.text_of(t): _value(lp) for t, lp in entry.top}
        best.setdefault(text, _value(entry.logprob))
        out.top_logprobs.append(best)
        out.text_offset.append(offset)
        offset += len(text)
    return out

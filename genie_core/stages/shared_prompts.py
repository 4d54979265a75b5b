"""Scoring several sets of answers to the same prompts while running the prompts once.

The comparison has every model answer the same held-out prompts, and then the reward model reads every model's
answers and the KL reference every other model's. A held-out prompt is longer than its answer (28 tokens on
average in the demo against at most 24), so most of those forwards would repeat the prompts. Here a scorer
prefills the prompts once (``prefill.prompt_prefix``) and continues that cache with each set of answers: the last
prompt token, then the answer, exactly the positions a full forward over prompt + answer would score.
"""

from __future__ import annotations

import torch

from genie_core.stages.ppo_core import logprobs_from_logits
from genie_core.stages.ppo_rollout import Rollout, response_logprobs, value_scores
from genie_core.stages.prefill import PromptPrefix

# rows continued per forward: bounds the [rows, answer, vocabulary] logits (16 x 25 x 49k floats = 79 MB)
ROWS_PER_PASS = 16


@torch.no_grad()
def continued_logprobs(model, prefix: PromptPrefix, batch: Rollout, temperature: float = 1.0) -> torch.Tensor:
    """Log-probs ``[N, R]`` of the answer tokens, as ``response_logprobs`` gives them (zeros past each answer)."""
    width_r = batch.responses.shape[1]
    taken = torch.zeros(batch.responses.shape, dtype=torch.float32, device=batch.responses.device)
    for rows, out in _continue(model, prefix, batch, logits_to_keep=width_r + 1):
        width = out.logits.shape[1] - 1  # this pass's longest answer
        logits = out.logits[:, :width].float() / temperature  # position j (last prompt token first) predicts j
        taken[rows, :width] = logprobs_from_logits(logits, batch.responses[rows, :width])
    return taken


@torch.no_grad()
def continued_values(model, head, prefix: PromptPrefix, batch: Rollout) -> torch.Tensor:
    """A reward model's score ``[N]`` of each prompt + answer (its head at the last real token): ``value_scores``."""
    lengths = batch.response_mask.sum(-1)  # the last real token sits at that position of the continuation
    scores = torch.zeros(len(batch), dtype=torch.float32, device=lengths.device)
    for rows, out in _continue(model, prefix, batch, logits_to_keep=1, output_hidden_states=True):
        hidden = out.hidden_states[-1]
        scores[rows] = head(hidden[torch.arange(len(rows), device=hidden.device), lengths[rows]]).float()
    return scores


def answer_logprobs(model, prefix: PromptPrefix | None, batch: Rollout, temperature: float = 1.0) -> torch.Tensor:
    """``continued_logprobs`` where the prompts' cache exists, else a forward over prompt + answer."""
    if prefix is None:
        return response_logprobs(model, batch, temperature)
    return continued_logprobs(model, prefix, batch, temperature)


def answer_values(model, head, prefix: PromptPrefix | None, batch: Rollout) -> torch.Tensor:
    """``continued_values`` where the prompts' cache exists, else a forward over prompt + answer."""
    if prefix is None:
        return value_scores(model, head, batch)
    return continued_values(model, head, prefix, batch)


def _continue(model, prefix: PromptPrefix, batch: Rollout, **kwargs):
    """``(rows, output)`` per pass: the last prompt token and the answer over the cache.

    A pass takes up to ``ROWS_PER_PASS`` rows of similar answer length (shortest first) and is only as wide as its
    longest answer, so short answers are not padded to the batch's longest.
    """
    lengths = batch.response_mask.sum(-1)
    inputs = torch.cat([batch.queries[:, -1:], batch.responses], dim=1)
    mask = torch.cat([batch.query_mask, batch.response_mask], dim=1)
    start = batch.query_mask.sum(-1, keepdim=True) - 1  # the last prompt token's position
    positions = start + torch.arange(inputs.shape[1], device=inputs.device)
    order = torch.argsort(lengths, stable=True)
    width_q = batch.queries.shape[1]
    for first in range(0, len(batch), ROWS_PER_PASS):
        rows = order[first : first + ROWS_PER_PASS]
        width = int(lengths[rows].max()) + 1
        out = model(
            input_ids=inputs[rows, :width],
            attention_mask=mask[rows, : width_q + width - 1],
            position_ids=positions[rows, :width],
            cache=prefix.cache(rows),
            use_cache=True,
            **kwargs,
        )
        yield rows, out

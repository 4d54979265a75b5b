"""Choose the next token for every row of a batch, each row with its own sampling settings.

Rows of one batch come from different requests, so temperature, top-k, top-p and the repetition penalty are
per-row tensors here instead of the single values ``model.generate`` takes. The order follows transformers'
(penalty, temperature, top-k, top-p); a greedy row takes the arg-max of the penalized logits. A row whose settings
(or model) yield no valid distribution is reported instead of sampled, so it cannot fail the rows beside it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingParams:
    """How one request picks tokens; ``temperature`` 0 or ``do_sample`` False means greedy."""

    do_sample: bool = True
    temperature: float = 0.95
    top_p: float = 0.7
    top_k: int = 50
    repetition_penalty: float = 1.0

    @property
    def greedy(self) -> bool:
        return not self.do_sample or self.temperature <= 0.0


class BatchSampler:
    """Per-row sampling state for one batch: the settings as tensors and which tokens each row has seen."""

    def __init__(self, params: list[SamplingParams], prompts: list[list[int]], vocab_size: int, device):
        self.device = device
        self.greedy = torch.tensor([p.greedy for p in params], device=device)
        self.temperature = torch.tensor([max(p.temperature, 1e-5) for p in params], device=device).unsqueeze(1)
        # k past the vocabulary keeps every token, as k = 0 does; clamping also keeps huge k inside int64
        top_k = [min(p.top_k, vocab_size) if p.top_k > 0 else vocab_size for p in params]
        self.top_k = torch.tensor(top_k, device=device)
        self.top_p = torch.tensor([p.top_p for p in params], device=device).unsqueeze(1)
        self.penalty = torch.tensor([p.repetition_penalty for p in params], device=device).unsqueeze(1)
        self.seen = None
        if any(p.repetition_penalty != 1.0 for p in params):
            self.seen = torch.zeros(len(params), vocab_size, dtype=torch.bool, device=device)
            for row, ids in enumerate(prompts):
                self.seen[row, torch.tensor(ids, dtype=torch.long, device=device)] = True

    def select(self, rows: torch.Tensor) -> None:
        """Keep only ``rows`` (finished rows leave the batch)."""
        self.greedy, self.temperature, self.top_k = self.greedy[rows], self.temperature[rows], self.top_k[rows]
        self.top_p, self.penalty = self.top_p[rows], self.penalty[rows]
        if self.seen is not None:
            self.seen = self.seen[rows]

    def row(self, i: int) -> BatchSampler:
        """A sampler for row ``i`` alone (to retry rows one by one when the batch could not sample)."""
        single = copy.copy(self)
        single.select(torch.tensor([i], device=self.device))
        return single

    def extend(self, other: BatchSampler) -> None:
        """Append the rows of ``other`` (requests joining a running batch)."""
        self.greedy = torch.cat([self.greedy, other.greedy])
        self.temperature = torch.cat([self.temperature, other.temperature])
        self.top_k = torch.cat([self.top_k, other.top_k])
        self.top_p = torch.cat([self.top_p, other.top_p])
        self.penalty = torch.cat([self.penalty, other.penalty])
        if self.seen is not None or other.seen is not None:
            vocab = (self.seen if self.seen is not None else other.seen).shape[1]
            mine = self.seen if self.seen is not None else self._no_seen(len(self.greedy) - len(other.greedy), vocab)
            theirs = other.seen if other.seen is not None else self._no_seen(len(other.greedy), vocab)
            self.seen = torch.cat([mine, theirs])

    def _no_seen(self, rows: int, vocab: int) -> torch.Tensor:
        return torch.zeros(rows, vocab, dtype=torch.bool, device=self.device)

    def observe(self, tokens: torch.Tensor) -> None:
        if self.seen is not None:
            self.seen[torch.arange(tokens.shape[0], device=self.device), tokens] = True

    def __call__(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Next token per row from the last position's logits ``[batch, vocab]``, and whether each row could sample.

        A row is invalid when its scores hold NaN or +inf or its distribution has no finite mass (e.g. a
        repetition penalty that underflows to 0); its token is meaningless and the caller must drop the row.
        """
        logits = logits.float()
        vocab = logits.shape[-1]
        if self.seen is not None:
            seen = self.seen[:, :vocab]
            penalized = torch.where(logits < 0, logits * self.penalty, logits / self.penalty)
            logits = torch.where(seen, penalized, logits)
        valid = _usable(logits)
        greedy_tokens = logits.argmax(dim=-1)
        if bool(self.greedy.all()):
            return greedy_tokens, valid
        scores = logits / self.temperature
        scores = _top_k(scores, self.top_k.clamp(max=vocab))
        scores = _top_p(scores, self.top_p)
        probs = torch.softmax(scores, dim=-1)
        sampled_ok = torch.isfinite(probs).all(dim=-1) & (probs.sum(dim=-1) > 0)
        valid = valid & (self.greedy | sampled_ok)
        # multinomial refuses (or on CUDA, asserts on) a bad row, so bad rows draw from a harmless stand-in
        probs = torch.where(valid.unsqueeze(1), probs, torch.ones_like(probs))
        sampled = torch.multinomial(probs, num_samples=1).squeeze(1)
        return torch.where(self.greedy, greedy_tokens, sampled), valid


def _usable(scores: torch.Tensor) -> torch.Tensor:
    """Rows with no NaN or +inf score and at least one finite one (-inf only masks a token out)."""
    broken = torch.isnan(scores) | (scores == float("inf"))
    return ~broken.any(dim=-1) & torch.isfinite(scores).any(dim=-1)


def _top_k(scores: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    k_max = int(k.max())
    if k_max >= scores.shape[-1]:
        if bool((k >= scores.shape[-1]).all()):
            return scores
        k_max = scores.shape[-1]
    top = torch.topk(scores, k_max, dim=-1).values
    threshold = top.gather(1, (k - 1).unsqueeze(1))
    return scores.masked_fill(scores < threshold, float("-inf"))


def _top_p(scores: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    if bool((top_p >= 1.0).all()):
        return scores
    sorted_scores, order = torch.sort(scores, descending=True, dim=-1)
    probs = torch.softmax(sorted_scores, dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    remove_sorted = mass_before > top_p  # the most likely token always stays
    remove = remove_sorted.scatter(1, order, remove_sorted)
    return scores.masked_fill(remove, float("-inf"))

"""Choose the next token for every row of a batch, each row with its own sampling settings.

Rows of one batch come from different requests, so every setting is a per-row tensor here instead of the single
values ``model.generate`` takes. ``process`` turns the model's logits into the scores a row draws from, in this
order: logit bias, repetition penalty (transformers' rule, over prompt and reply), presence and frequency penalties
(OpenAI's rule, over the reply's tokens), then, for sampling rows only, temperature, top-k and top-p (tokens left
out at -inf). A greedy row takes the arg-max of its penalized logits; ``choose`` picks the tokens. A row whose
settings (or model) yield no valid distribution is reported instead of sampled, so it cannot fail the rows beside
it. Log-probabilities reported to clients are the log-softmax of exactly these scores.
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
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias added to its logit)
    seed: int | None = None  # a sampling row with a seed draws from its own generator: replies repeat

    @property
    def greedy(self) -> bool:
        return not self.do_sample or self.temperature <= 0.0


class BatchSampler:
    """Per-row sampling state for one batch: the settings as tensors and which tokens each row has seen."""

    def __init__(
        self,
        params: list[SamplingParams],
        prompts: list[list[int]],
        vocab_size: int,
        device,
        generated: list[list[int]] | None = None,
    ):
        """``prompts`` are every token a row has seen; ``generated`` the reply tokens among them (a resumed row)."""
        self.device = device
        rows = len(params)
        self.greedy = torch.tensor([p.greedy for p in params], device=device)
        self.temperature = torch.tensor([max(p.temperature, 1e-5) for p in params], device=device).unsqueeze(1)
        # k past the vocabulary keeps every token, as k = 0 does; clamping also keeps huge k inside int64
        top_k = [min(p.top_k, vocab_size) if p.top_k > 0 else vocab_size for p in params]
        self.top_k = torch.tensor(top_k, device=device)
        self.top_p = torch.tensor([p.top_p for p in params], device=device).unsqueeze(1)
        self.penalty = torch.tensor([p.repetition_penalty for p in params], device=device).unsqueeze(1)
        self.presence = torch.tensor([p.presence_penalty for p in params], device=device).unsqueeze(1)
        self.frequency = torch.tensor([p.frequency_penalty for p in params], device=device).unsqueeze(1)
        self.seen: torch.Tensor | None = None
        if any(p.repetition_penalty != 1.0 for p in params):
            self.seen = torch.zeros(rows, vocab_size, dtype=torch.bool, device=device)
            for row, ids in enumerate(prompts):
                self.seen[row, torch.tensor(ids, dtype=torch.long, device=device)] = True
        self.counts: torch.Tensor | None = None  # how often each row's reply used each token
        if any(p.presence_penalty or p.frequency_penalty for p in params):
            self.counts = torch.zeros(rows, vocab_size, device=device)
            for row, ids in enumerate(generated or []):
                for token in ids:
                    self.counts[row, token] += 1
        self.bias: torch.Tensor | None = None
        if any(p.logit_bias for p in params):
            self.bias = torch.zeros(rows, vocab_size, device=device)
            for row, p in enumerate(params):
                for token, value in p.logit_bias:
                    self.bias[row, token] = value
        self.generators: list[torch.Generator | None] = [None] * rows
        for row, p in enumerate(params):
            if p.seed is not None and not p.greedy:
                self.generators[row] = torch.Generator(device=device).manual_seed(p.seed % 2**64)

    def select(self, rows: torch.Tensor) -> None:
        """Keep only ``rows`` (finished rows leave the batch)."""
        self.greedy, self.temperature, self.top_k = self.greedy[rows], self.temperature[rows], self.top_k[rows]
        self.top_p, self.penalty = self.top_p[rows], self.penalty[rows]
        self.presence, self.frequency = self.presence[rows], self.frequency[rows]
        for name in ("seen", "counts", "bias"):
            table = getattr(self, name)
            if table is not None:
                setattr(self, name, table[rows])
        self.generators = [self.generators[i] for i in rows.tolist()]

    def row(self, i: int) -> BatchSampler:
        """A sampler for row ``i`` alone (to retry rows one by one when the batch could not sample)."""
        single = copy.copy(self)
        single.select(torch.tensor([i], device=self.device))
        return single

    def extend(self, other: BatchSampler) -> None:
        """Append the rows of ``other`` (requests joining a running batch)."""
        mine, theirs = len(self.greedy), len(other.greedy)
        for name in ("greedy", "temperature", "top_k", "top_p", "penalty", "presence", "frequency"):
            setattr(self, name, torch.cat([getattr(self, name), getattr(other, name)]))
        for name in ("seen", "counts", "bias"):
            a, b = getattr(self, name), getattr(other, name)
            if a is None and b is None:
                continue
            like = a if a is not None else b
            a = a if a is not None else torch.zeros(mine, like.shape[1], dtype=like.dtype, device=self.device)
            b = b if b is not None else torch.zeros(theirs, like.shape[1], dtype=like.dtype, device=self.device)
            setattr(self, name, torch.cat([a, b]))
        self.generators = self.generators + other.generators

    def observe(self, tokens: torch.Tensor) -> None:
        rows = torch.arange(tokens.shape[0], device=self.device)
        if self.seen is not None:
            self.seen[rows, tokens] = True
        if self.counts is not None:
            self.counts[rows, tokens] += 1

    def __call__(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Next token per row from the last position's logits ``[batch, vocab]``, and whether each row could sample."""
        scores, valid = self.process(logits)
        return self.choose(scores, valid)

    def process(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The scores each row draws from, and whether its logits are usable at all.

        A row is unusable when its scores hold NaN or +inf or have no finite entry (e.g. a repetition penalty
        that underflows to 0); the caller must drop it.
        """
        logits = logits.float()
        vocab = logits.shape[-1]
        if self.bias is not None:
            logits = logits + self.bias[:, :vocab]
        if self.seen is not None:
            seen = self.seen[:, :vocab]
            penalized = torch.where(logits < 0, logits * self.penalty, logits / self.penalty)
            logits = torch.where(seen, penalized, logits)
        if self.counts is not None:
            counts = self.counts[:, :vocab]
            logits = logits - self.frequency * counts - self.presence * (counts > 0)
        valid = _usable(logits)
        if bool(self.greedy.all()):
            return logits, valid
        scores = logits / self.temperature
        scores = _top_k(scores, self.top_k.clamp(max=vocab))
        scores = _top_p(scores, self.top_p)
        return torch.where(self.greedy.unsqueeze(1), logits, scores), valid

    def choose(self, scores: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy rows take the arg-max of ``scores``, the others draw from their softmax; also which rows could."""
        greedy_tokens = scores.argmax(dim=-1)
        if bool(self.greedy.all()):
            return greedy_tokens, valid
        probs = torch.softmax(scores, dim=-1)
        sampled_ok = torch.isfinite(probs).all(dim=-1) & (probs.sum(dim=-1) > 0)
        valid = valid & (self.greedy | sampled_ok)
        # multinomial refuses (or on CUDA, asserts on) a bad row, so bad rows draw from a harmless stand-in
        probs = torch.where(valid.unsqueeze(1), probs, torch.ones_like(probs))
        sampled = torch.multinomial(probs, num_samples=1).squeeze(1)
        for i, generator in enumerate(self.generators):
            if generator is not None:  # its own draw, so a seeded reply does not depend on the batch around it
                sampled[i] = torch.multinomial(probs[i], num_samples=1, generator=generator)[0]
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

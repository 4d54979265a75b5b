"""ORPO and SimPO: preference losses on the policy's own log-probabilities, with no reference model.

Both score a reply by its mean per-token log-probability (the sum would favour short replies):

* ORPO (Hong et al., 2024): ``nll(chosen) - beta * log sigmoid(log odds(chosen) - log odds(rejected))`` with
  ``odds(y) = p(y) / (1 - p(y))``; the SFT term is part of the loss, so ORPO can start from a base model.
* SimPO (Meng et al., 2024): ``-log sigmoid(beta * (chosen - rejected) - gamma)``, a margin of at least
  ``gamma / beta`` nats per token.

The formulas follow TRL's CPO/ORPO trainers and LLaMA-Factory's ``pref_loss: orpo|simpo``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

REFERENCE_FREE = ("orpo", "simpo")


def orpo_loss(chosen: torch.Tensor, rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair ORPO loss and log odds ratio, from mean per-token log-probs (each < 0)."""
    chosen, rejected = chosen.float(), rejected.float()
    # log(1 - p) = log(-expm1(log p)); a mean log-prob of exactly 0 (p = 1) would make it -inf
    log_odds = (chosen - rejected) - (_log1m_exp(chosen) - _log1m_exp(rejected))
    return -chosen - beta * F.logsigmoid(log_odds), log_odds


def simpo_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, beta: float, gamma: float, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Per-pair SimPO loss from mean per-token log-probs; label smoothing as in the robust DPO loss."""
    logits = beta * (chosen.float() - rejected.float()) - gamma
    return -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)


def _log1m_exp(logp: torch.Tensor) -> torch.Tensor:
    return torch.log(-torch.expm1(logp.clamp(max=-1e-6)))

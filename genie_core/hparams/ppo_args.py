"""Arguments for the PPO stage (rollouts, KL control, optimisation)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PPOArguments:
    """Filled in by the PPO stage; every field has help metadata."""

"""Arguments for the PPO stage (rollouts, KL control, optimisation).

Batch sizes come from the training arguments, as for every stage: each PPO step samples
``per_device_train_batch_size * gradient_accumulation_steps * ppo_buffer_size`` prompts, then runs ``ppo_epochs``
passes over those rollouts in micro-batches of ``per_device_train_batch_size``, with one optimizer step per
``gradient_accumulation_steps`` micro-batches. ``max_steps`` counts PPO steps. Generation (``max_new_tokens``,
``temperature``, ``top_p``, ``top_k``, ``do_sample``) comes from the generating arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class PPOArguments:
    """Every field has help metadata; cross-field rules raise ``ConfigError`` naming what to change."""

    ppo_epochs: int = field(default=4, metadata={"help": "Optimisation passes over each batch of rollouts."})
    ppo_buffer_size: int = field(
        default=1,
        metadata={
            "help": "Rollout batches (each per_device_train_batch_size * gradient_accumulation_steps prompts) "
            "collected before every PPO update."
        },
    )
    init_kl_coef: float = field(
        default=0.05, metadata={"help": "Initial (or, without adap_kl_ctrl, fixed) per-token KL penalty coefficient."}
    )
    adap_kl_ctrl: bool = field(
        default=True, metadata={"help": "Adapt the KL coefficient so the measured KL tracks target_kl."}
    )
    target_kl: float = field(
        default=6.0, metadata={"help": "Adaptive KL control: the per-sequence KL (nats) to aim for."}
    )
    kl_horizon: int = field(
        default=10000, metadata={"help": "Adaptive KL control: rollouts over which the coefficient adapts."}
    )
    gamma: float = field(default=1.0, metadata={"help": "Discount factor over response tokens."})
    lam: float = field(default=0.95, metadata={"help": "GAE lambda: bias/variance trade-off of the advantages."})
    cliprange: float = field(default=0.2, metadata={"help": "Clip range of the policy probability ratio."})
    cliprange_value: float = field(default=0.2, metadata={"help": "Clip range of value predictions around old ones."})
    vf_coef: float = field(default=0.1, metadata={"help": "Weight of the value loss in the total loss."})
    whiten_rewards: bool = field(
        default=False, metadata={"help": "Scale per-token rewards to unit variance within each batch before GAE."}
    )
    ppo_score_norm: bool = field(
        default=False, metadata={"help": "Normalise reward scores with their running mean and std across steps."}
    )
    score_clip: Optional[float] = field(
        default=None, metadata={"help": "Clip reward scores to [-score_clip, score_clip] (after normalisation)."}
    )
    value_head_init_std: Optional[float] = field(
        default=0.01, metadata={"help": "Std of the new value head's weights (small: values start near zero)."}
    )

    def __post_init__(self) -> None:
        from genie_core.extras.errors import ConfigError

        for key in ("ppo_epochs", "ppo_buffer_size", "kl_horizon"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}.")
        for key in ("init_kl_coef", "cliprange", "cliprange_value", "vf_coef"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)}.")
        if self.target_kl <= 0:
            raise ConfigError(f"target_kl must be > 0, got {self.target_kl}.")
        if not (0.0 <= self.gamma <= 1.0 and 0.0 <= self.lam <= 1.0):
            raise ConfigError(f"gamma and lam must lie in [0, 1], got gamma={self.gamma}, lam={self.lam}.")
        if self.score_clip is not None and self.score_clip <= 0:
            raise ConfigError(f"score_clip must be > 0 (or unset), got {self.score_clip}.")

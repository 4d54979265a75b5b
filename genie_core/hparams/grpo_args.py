"""Arguments of the grpo and rloo stages: groups of sampled replies per prompt, scored by a list of reward functions.

Each optimisation step samples ``num_generations`` replies for each of
``per_device_train_batch_size * gradient_accumulation_steps * world_size / num_generations`` prompts, scores every
reply with ``reward_funcs`` (plus ``reward_model`` when set), and pushes up the replies that beat their group.
Names follow TRL's ``GRPOConfig`` / ``RLOOConfig``; the ones that would clash with other stages' keys carry a
``grpo_`` prefix and apply to rloo as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional


@dataclass
class GRPOArguments:
    """Every field has help metadata; cross-field rules raise ``ConfigError`` naming what to change."""

    reward_funcs: Optional[str] = field(
        default=None,
        metadata={
            "help": "grpo/rloo: comma-separated (or a YAML list of) scorers, summed with reward_weights: "
            "rule:<name>[:<arg>] (see genie_core.rewards.rules), module:function or path/to/file.py:function "
            "(called as fn(prompts, completions, **columns) -> list[float]), or an rm stage's output directory."
        },
    )
    reward_weights: Optional[str] = field(
        default=None,
        metadata={
            "help": "grpo/rloo: one weight per scorer (reward_funcs, then reward_model), comma-separated; "
            "default 1 each."
        },
    )
    num_generations: int = field(
        default=8,
        metadata={
            "help": "grpo/rloo: replies sampled per prompt (at least 2). per_device_train_batch_size * "
            "gradient_accumulation_steps * number of processes must be a multiple of it."
        },
    )
    max_completion_length: int = field(default=256, metadata={"help": "grpo/rloo: most tokens sampled per reply."})
    grpo_beta: Optional[float] = field(
        default=None,
        metadata={
            "help": "grpo/rloo: KL coefficient to the reference model (TRL's beta). 0 loads no reference; "
            "default: TRL's (0.0 for grpo, 0.05 for rloo)."
        },
    )
    grpo_loss_type: Literal["dapo", "grpo", "dr_grpo", "bnpo", "cispo", "sapo", "luspo", "vespo"] = field(
        default="dapo",
        metadata={
            "help": "grpo: how token losses are aggregated (TRL's loss_type): dapo (tokens of the whole batch), "
            "grpo (per sequence, length-biased), dr_grpo (a constant), bnpo, cispo, sapo, luspo or vespo."
        },
    )
    grpo_epsilon: float = field(
        default=0.2, metadata={"help": "grpo/rloo: clip range of the probability ratio (TRL's epsilon)."}
    )
    grpo_epsilon_high: Optional[float] = field(
        default=None, metadata={"help": "grpo/rloo: upper clip range (DAPO suggests 0.28); default grpo_epsilon."}
    )
    num_iterations: int = field(
        default=1, metadata={"help": "grpo/rloo: optimisation passes over each batch of sampled replies (mu)."}
    )
    scale_rewards: Literal["group", "batch", "none"] = field(
        default="group",
        metadata={
            "help": "grpo: divide advantages by the reward std of each prompt's group, of the whole batch, or not "
            "at all (Dr. GRPO)."
        },
    )

    def __post_init__(self) -> None:
        from genie_core.extras.errors import ConfigError

        if self.num_generations < 2:
            raise ConfigError(
                f"num_generations must be >= 2 (advantages compare replies to the same prompt), got "
                f"{self.num_generations}."
            )
        for key in ("max_completion_length", "num_iterations"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}.")
        if self.grpo_beta is not None and self.grpo_beta < 0:
            raise ConfigError(f"grpo_beta must be >= 0 (0 disables the KL term), got {self.grpo_beta}.")
        if self.grpo_epsilon < 0 or (self.grpo_epsilon_high is not None and self.grpo_epsilon_high < 0):
            raise ConfigError("grpo_epsilon and grpo_epsilon_high must be >= 0.")
        _parse_weights(self.reward_weights)  # a bad number is reported with the config

    @property
    def reward_specs(self) -> list[str]:
        return [s.strip() for s in (self.reward_funcs or "").split(",") if s.strip()]

    @property
    def weights(self) -> list[float] | None:
        return _parse_weights(self.reward_weights)


def _parse_weights(value: str | None) -> list[float] | None:
    from genie_core.extras.errors import ConfigError

    if not value:
        return None
    try:
        return [float(w) for w in str(value).split(",") if w.strip()]
    except ValueError:
        raise ConfigError(f"reward_weights must be numbers, e.g. 1.0,0.5; got {value!r}.") from None

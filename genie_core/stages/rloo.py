"""RLOO on TRL's RLOOTrainer: the grpo stage's function with a leave-one-out baseline instead of the group's mean.

Each reply's advantage is its reward minus the mean reward of the other ``num_generations - 1`` replies to the same
prompt; the KL to the reference (``grpo_beta``, TRL's default 0.05) is folded into the reward. Data, rewards,
adapters, resume and logs work as in ``genie_core.stages.grpo``.
"""

from __future__ import annotations

from trl import RLOOConfig, RLOOTrainer

from genie_core.stages.grpo import TemplatePrompts, run_online


def run_rloo(args) -> dict:
    return run_online(args, GenieRLOOTrainer, RLOOConfig)


class GenieRLOOTrainer(TemplatePrompts, RLOOTrainer):
    """RLOOTrainer on prompts rendered by our template."""

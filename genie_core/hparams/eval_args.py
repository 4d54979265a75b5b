"""Arguments of a comparison: several models scored on the same held-out prompts with the same scorers."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from genie_core.extras.errors import ConfigError


@dataclass(frozen=True)
class ChainModel:
    """One compared model: a base plus the adapters merged into it, in order."""

    name: str
    model_name_or_path: str
    checkpoint_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_chain(value: str | list) -> list[ChainModel]:
    """``compare_models`` (JSON text or an already-parsed list) -> models; names must be unique."""
    try:
        items = json.loads(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise ConfigError(f"compare_models is not valid JSON: {exc}") from None
    if not isinstance(items, list) or len(items) < 2:
        raise ConfigError("compare_models needs a list of at least two models (base first, candidate last).")
    models = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("name") or not item.get("model_name_or_path"):
            raise ConfigError(f"compare_models[{i}] needs name and model_name_or_path, got {item!r}.")
        adapters = item.get("checkpoint_dir") or None
        if isinstance(adapters, list):
            adapters = ",".join(adapters) or None
        models.append(ChainModel(str(item["name"]), str(item["model_name_or_path"]), adapters))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"compare_models names must be unique, got {names}.")
    return models


@dataclass
class EvalArguments:
    compare_models: Optional[str] = field(
        default=None,
        metadata={
            "help": "Compare these models on the held-out prompts instead of running the stage: a JSON list of "
            '{"name", "model_name_or_path", "checkpoint_dir"} in chain order (base first, candidate last). '
            "A pipeline's evaluate step fills it in from its `from:` chain."
        },
    )
    eval_rewards: Optional[str] = field(
        default=None,
        metadata={
            "help": "Extra rule scorers for a comparison, comma-separated rule:<name>[:<arg>] (beside reward_model)."
        },
    )
    kl_reference: Optional[str] = field(
        default=None,
        metadata={"help": "Name of the compared model the KL is measured to (default: the candidate's predecessor)."},
    )
    bootstrap_resamples: int = field(
        default=1000, metadata={"help": "Resamples of the paired bootstrap behind each delta's 95% interval."}
    )

    def __post_init__(self) -> None:
        if self.bootstrap_resamples < 100:
            raise ConfigError(f"bootstrap_resamples must be at least 100, got {self.bootstrap_resamples}.")
        if self.compare_models:
            names = [m.name for m in self.chain]
            if self.kl_reference and self.kl_reference not in names:
                raise ConfigError(f"kl_reference '{self.kl_reference}' is not a compared model ({', '.join(names)}).")

    @property
    def chain(self) -> list[ChainModel]:
        return parse_chain(self.compare_models) if self.compare_models else []

    @property
    def rule_specs(self) -> list[str]:
        return [s.strip() for s in (self.eval_rewards or "").split(",") if s.strip()]

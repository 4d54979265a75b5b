"""Small builders shared by tests: a throwaway dataset registry and stage configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ALPACA_ROWS = [
    {"instruction": f"Add {a} and {b}.", "input": "", "output": f"The answer is {a + b}."}
    for a in range(1, 9)
    for b in range(1, 5)
]


# A PPO setup the tiny model learns in a couple of dozen steps: the reward favours digits, rollouts sample the whole
# distribution, LoRA on every linear layer plus a trainable lm_head copy so the tiny model can move.
DIGIT_PPO: dict[str, Any] = {
    "stage": "ppo",
    "reward_model": "rule:charset:0123456789",
    "max_new_tokens": 6,
    "top_k": 0,
    "top_p": 1.0,
    "temperature": 1.0,
    "lora_target": "all",
    "additional_target": "lm_head",
    "learning_rate": 1e-2,
    "init_kl_coef": 0.01,
    "adap_kl_ctrl": False,
}
SAMPLING_KEYS = ("reward_model", "max_new_tokens", "top_k", "top_p", "temperature")


def write_registry(root: Path, rows: list[dict] | None = None, name: str = "toy", extra: dict | None = None) -> Path:
    """A dataset_dir with one alpaca dataset (and optional extra registry entries)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.json").write_text(json.dumps(rows if rows is not None else ALPACA_ROWS), encoding="utf-8")
    info: dict[str, Any] = {name: {"file_name": f"{name}.json"}}
    info.update(extra or {})
    (root / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return root


def stage_config(model_dir: Path, dataset_dir: Path, output_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A small sft/pt config on the tiny model: a few steps, nothing saved unless asked."""
    cfg: dict[str, Any] = {
        "stage": "sft",
        "model_name_or_path": str(model_dir),
        "template": "chatml",
        "finetuning_type": "lora",
        "dataset": "toy",
        "dataset_dir": str(dataset_dir),
        "cutoff_len": 64,
        "output_dir": str(output_dir),
        "do_train": True,
        "per_device_train_batch_size": 4,
        "learning_rate": 5e-3,
        "max_steps": 3,
        "logging_steps": 1,
        "save_strategy": "no",
        "lr_scheduler_type": "constant",
        "seed": 0,
        "dataloader_num_workers": 0,
    }
    cfg.update(overrides)
    return {k: v for k, v in cfg.items() if v is not None}


def trainer_log(out: Path) -> list[dict[str, Any]]:
    """The records a stage wrote to ``<out>/trainer_log.jsonl``, in order."""
    return [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]

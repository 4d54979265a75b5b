"""The board's form -> the stage config of a one-step pipeline, checked the way the training child will check it.

Fields left at 0 or empty are not set (the stage's defaults apply); more keys can be typed as YAML. Paths are
checked against the page's roots by the caller (``Roots.check_config``), after this.
"""

from __future__ import annotations

from typing import Any

import yaml

from genie_core.extras.errors import ConfigError

INT_KEYS = (
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "cutoff_len",
    "logging_steps",
    "lora_rank",
    "max_steps",
    "max_samples",
    "save_steps",
    "quantization_bit",
)


def stage_config(form: dict[str, Any], extra_yaml: str = "") -> dict[str, Any]:
    """The stage config of a pipeline step from the board's fields (0 or empty: not set) plus extra YAML keys."""
    config: dict[str, Any] = {}
    for key, value in form.items():
        if value is None or value == "" or value == [] or str(value).lower() == "none":
            continue
        if key in INT_KEYS:
            value = int(value)
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        config[key] = value
    for key in ("max_steps", "max_samples", "save_steps", "val_size", "lora_alpha"):
        if key in config and not config[key]:
            config.pop(key)
    if config.get("finetuning_type", "lora") != "lora":
        for key in [k for k in config if k.startswith("lora_")]:
            config.pop(key)
    if "save_steps" not in config:
        config["save_strategy"] = "no"
    if config.get("val_size"):
        config.setdefault("eval_strategy", "steps")
        config.setdefault("eval_steps", config.get("save_steps") or 50)
    config.setdefault("plot_loss", True)
    config.update(parse_extra(extra_yaml))
    if "output_dir" in config:
        raise ConfigError("output_dir: leave it out; a run writes under the runs directory, named after the run.")
    return config


def parse_extra(text: str) -> dict[str, Any]:
    """More stage config keys, as a YAML mapping (``key: value`` lines)."""
    if not (text or "").strip():
        return {}
    try:
        extra = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"extra arguments: not valid YAML: {exc}") from None
    if not isinstance(extra, dict):
        raise ConfigError("extra arguments: write `key: value` lines (a YAML mapping).")
    return {str(k): v for k, v in extra.items()}


def check_config(config: dict[str, Any]) -> None:
    """Parse the stage config as the child will and read its datasets: every mistake is reported before starting."""
    from genie_core.hparams.parser import build_args, merge_config
    from genie_core.train import preflight

    args = build_args(merge_config({"do_train": True, **config, "output_dir": "unused-by-the-check"}, {}))
    preflight(args)


def pipeline_dict(name: str, config: dict[str, Any], experiment: str = "llm-genie") -> dict[str, Any]:
    step = str(config.get("stage", "sft"))
    return {
        "name": name,
        "experiment": experiment or "llm-genie",
        "description": "Started from genie webui.",
        "stages": {step: dict(config)},
    }

"""The Train tab's fields without gradio: their defaults, their choices, and the way back from a stage config.

Defaults come from the config dataclasses and the trainer's field table (``valid_keys``), so a fresh form shows
what a stage would use if the key were left out, and never drifts from it. ``form_from_config`` turns a stage
config (a saved arguments file, a past run's settings) back into field values; for configs the board wrote,
``stage_config`` of the result gives the same config back.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import yaml

from genie_core.extras.errors import ConfigError
from genie_core.tracking import DEFAULT_EXPERIMENT
from genie_core.webui.common import PROJECT_DATA
from genie_core.webui.run_config import stage_config

# stage-config keys shown as fields, in the tab's order
FIELDS = (
    "model_name_or_path",
    "template",
    "checkpoint_dir",
    "dataset_dir",
    "dataset",
    "stage",
    "finetuning_type",
    "quantization_bit",
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "lr_scheduler_type",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "cutoff_len",
    "max_samples",
    "val_size",
    "logging_steps",
    "save_steps",
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
    "lora_target",
    "reward_model",
)
BOARD_FIELDS = ("extra", "run_name", "experiment")  # not stage keys: more YAML keys, the pipeline's name and
ALL_FIELDS = FIELDS + BOARD_FIELDS  # experiment

NUMBERS = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "cutoff_len",
    "max_samples",
    "val_size",
    "logging_steps",
    "save_steps",
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
)
TEXTS = ("model_name_or_path", "checkpoint_dir", "dataset_dir", "lora_target", "reward_model")
# what a field shows when its key is not set (the stage's default applies); other fields show the default itself
UNSET: dict[str, Any] = {
    "dataset": [],
    "template": "auto",
    "quantization_bit": "none",
    "max_steps": 0,
    "max_samples": 0,
    "val_size": 0,
    "lora_alpha": 0,
    **{key: "" for key in TEXTS if key != "dataset_dir"},
}
# keys ``stage_config`` adds from the fields: left out of the extra YAML when it would add the same value
DERIVED = ("save_strategy", "eval_strategy", "eval_steps", "plot_loss")
QUANTIZATION_CHOICES = ["none", "8", "4"]


def config_default(key: str) -> Any:
    """What a stage uses for ``key`` when the config leaves it out."""
    from genie_core.hparams.parser import default_of

    return default_of(key)


def default_dataset_dir() -> str:
    """The data folder default, made absolute to the project's when the current directory has none."""
    folder = str(config_default("dataset_dir"))
    if Path(folder, "dataset_info.json").is_file() or not PROJECT_DATA.is_dir() or Path(folder).is_absolute():
        return folder
    return str(PROJECT_DATA)


def defaults() -> dict[str, Any]:
    """A fresh form: every field at its stage default."""
    values = {key: field_value(key, config_default(key)) for key in FIELDS}
    values["dataset_dir"] = default_dataset_dir()
    return {**values, "extra": "", "run_name": "", "experiment": DEFAULT_EXPERIMENT}


def field_value(key: str, value: Any) -> Any:
    """A config value as its field shows it; raises ``ValueError`` for a value the field cannot hold."""
    if value is None or (key == "max_steps" and value == -1):
        return UNSET.get(key, "" if key in TEXTS else None)
    if key == "dataset":
        parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
        return [str(p).strip() for p in parts if str(p).strip()]
    if key in NUMBERS:
        if isinstance(value, bool):
            raise ValueError(value)
        number = float(value)
        return int(number) if _is_int(key) and number.is_integer() else number
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _is_int(key: str) -> bool:
    from genie_core.hparams.parser import config_type

    return config_type(key) is int


def choices_of(key: str) -> list[str]:
    """The allowed values of a field with a fixed set (stage, tuning method, scheduler), from the config's types."""
    if key == "lr_scheduler_type":
        from genie_core.hparams.training_fields import training_fields

        return list(training_fields()[key].choices)
    from genie_core.hparams.finetuning_args import FinetuningArguments

    return [str(c) for c in typing.get_args(typing.get_type_hints(FinetuningArguments)[key])]


def form_from_config(config: dict[str, Any], name: str | None = None, experiment: str | None = None) -> dict[str, Any]:
    """Field values for a stage config: its keys in their fields, the others as extra YAML.

    What a pipeline adds when it plans a stage (``output_dir``, ``do_train: true``) is left out, so the form starts
    the same stage again.
    """
    from genie_core.hparams.parser import ALIASES

    config = {ALIASES.get(str(k), str(k)): v for k, v in config.items()}
    config.pop("output_dir", None)
    if config.get("do_train") is True:
        config.pop("do_train")
    fresh = defaults()
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key in FIELDS:
        if key not in config:
            values[key] = UNSET.get(key, fresh[key])
            continue
        try:
            values[key] = field_value(key, config[key])
        except (TypeError, ValueError):  # e.g. `learning_rate: 2e-4`, a string to YAML: keep it as written
            values[key] = fresh[key]
            extra[key] = config[key]
    if "save_steps" not in config and str(config.get("save_strategy")) == "no":
        values["save_steps"] = 0
    extra.update({k: v for k, v in config.items() if k not in FIELDS})
    for key in DERIVED:
        if key in extra:
            trial = {k: v for k, v in extra.items() if k != key}
            if _derived(values, trial).get(key) == extra[key]:
                extra = trial
    values["extra"] = dump_extra(extra)
    values["run_name"] = name or ""
    values["experiment"] = experiment or fresh["experiment"]
    return values


def _derived(values: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    try:
        return stage_config(values, dump_extra(extra))
    except (ConfigError, TypeError, ValueError):
        return {}


def dump_extra(extra: dict[str, Any]) -> str:
    return yaml.safe_dump(extra, sort_keys=False, allow_unicode=True).strip() if extra else ""


def merge_saved(saved: dict[str, Any]) -> dict[str, Any]:
    """A fresh form overlaid with saved values, keeping only known fields of a usable type."""
    values = defaults()
    for key, value in saved.items():
        if key not in values or value is None:
            continue
        if key == "dataset":
            values[key] = [str(v) for v in value] if isinstance(value, list) else field_value(key, value)
        elif key in NUMBERS:
            try:
                values[key] = field_value(key, value)
            except (TypeError, ValueError):
                continue
        else:
            values[key] = str(value)
    return values

"""The board's form -> the stage config of a one-step pipeline, checked the way the training child will check it.

Fields left at 0 or empty are not set (the stage's defaults apply); more keys can be typed as YAML. Paths are
checked against the page's roots by the caller (``Roots.check_config``), after this. The pipeline YAML is rendered
here once, for Start, the command preview and Save alike; ``read_arguments`` reads such a file (or a plain stage
config) back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from genie_core.extras.errors import ConfigError
from genie_core.hparams.parser import config_value, setting
from genie_core.tracking import DEFAULT_EXPERIMENT


def stage_config(form: dict[str, Any], extra_yaml: str = "") -> dict[str, Any]:
    """The stage config of a pipeline step from the board's fields (0 or empty: not set) plus extra YAML keys."""
    config: dict[str, Any] = {}
    for key, value in form.items():
        if value is None or value == "" or value == [] or str(value).lower() == "none":
            continue
        config[key] = config_value(key, value)  # the parser's own conversion: one reading of every key
    for key in ("max_steps", "max_samples", "save_steps", "val_size", "lora_alpha"):
        if key in config and not config[key]:
            config.pop(key)
    if setting(config, "finetuning_type") != "lora":
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
    from genie_core.stage_parent import preflight

    args = build_args(merge_config({"do_train": True, **config, "output_dir": "unused-by-the-check"}, {}))
    preflight(args)


def pipeline_dict(name: str, config: dict[str, Any], experiment: str = DEFAULT_EXPERIMENT) -> dict[str, Any]:
    step = str(setting(config, "stage"))
    return {
        "name": name,
        "experiment": experiment or DEFAULT_EXPERIMENT,
        "description": "Started from genie webui.",
        "stages": {step: dict(config)},
    }


def pipeline_yaml(pipeline: dict[str, Any], path: str | Path) -> str:
    """The pipeline file's text, headed by the command that runs it."""
    return f"# genie run {path}\n" + yaml.safe_dump(pipeline, sort_keys=False, allow_unicode=True)


def read_arguments(path: str | Path) -> tuple[dict[str, Any], str | None, str | None]:
    """(stage config, pipeline name, experiment) from a pipeline file (its first train stage as the pipeline loader
    resolves it) or from a plain stage config such as `genie train` reads."""
    from genie_core.pipeline.spec import load_pipeline

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror}).") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of key: value.")
    if "stages" not in data:
        return {str(k): v for k, v in data.items()}, None, None
    spec = load_pipeline(path)
    trains = [step for step in spec.steps if step.kind == "train"]
    if not trains:
        raise ConfigError(f"{path}: no train stage under `stages:`.")
    name, experiment = data.get("name"), data.get("experiment")
    config = {k: v for k, v in trains[0].config.items() if k != "do_train"}  # a board run always trains
    return config, str(name) if name else None, str(experiment) if experiment else None

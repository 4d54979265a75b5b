"""Pipeline YAML -> a typed, checked ``PipelineSpec``.

A pipeline file names its stages in order and how they connect::

    name: pt_sft_smollm2
    defaults: {model_name_or_path: smollm2, template: chatml, finetuning_type: lora}
    stages:
      pt:       {stage: pt, dataset: wiki_demo, max_steps: 10}
      sft:      {stage: sft, from: pt, dataset: alpaca_demo_en}
      evaluate: {kind: evaluate, from: sft, dataset: alpaca_demo_en, max_samples: 20}
      export:   {kind: export, from: sft, metric: loss, mode: min}
      register: {kind: register, from: export, model_name: smollm2-genie}

Every stage config key of ``genie train`` may appear in ``defaults`` or in a stage; upstream paths
(``checkpoint_dir``, ``model_name_or_path``, ``reward_model``, ``output_dir``) are filled in from the wiring.
Structural mistakes are reported here, naming the file, the stage and the key, before anything runs.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genie_core.extras.errors import ConfigError
from genie_core.hparams.parser import setting
from genie_core.tracking import DEFAULT_EXPERIMENT

KINDS = ("train", "evaluate", "export", "register")
# the held-out split belongs to the pipeline: every stage must hold out the same prompts
SPLIT_KEYS = ("eval_split", "eval_split_seed")
PIPELINE_KEYS = ("name", "description", "experiment", "defaults", "stages", "pretokenize", *SPLIT_KEYS)
# keys a step understands besides stage config keys, per kind
STEP_KEYS: dict[str, tuple[str, ...]] = {
    "train": ("kind", "from"),
    "evaluate": ("kind", "from", "compare"),
    "export": ("kind", "from", "metric", "mode", "metric_from", "template", "ollama"),
    "register": ("kind", "from", "model_name", "alias", "gate", "min_delta"),
}
# stage config keys the flow fills in; writing them by hand next to the wiring would be ambiguous
WIRED_KEYS = ("output_dir",)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass
class StepSpec:
    """One step as written: its kind, wiring and (for train/evaluate) its stage config."""

    name: str
    kind: str
    source: str | None = None  # `from:` the upstream step
    config: dict[str, Any] = field(default_factory=dict)  # stage config (defaults merged), train/evaluate only
    options: dict[str, Any] = field(default_factory=dict)  # export/register options


@dataclass
class PipelineSpec:
    name: str
    steps: list[StepSpec]
    experiment: str = DEFAULT_EXPERIMENT
    description: str = ""
    pretokenize: bool = False
    path: str | None = None  # the YAML it came from

    def step(self, name: str) -> StepSpec:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)


def load_pipeline(source: str | Path | dict[str, Any], overrides: dict[str, Any] | None = None) -> PipelineSpec:
    """Read a pipeline YAML (or an already-loaded dict) and apply ``key=value`` / ``step.key=value`` overrides."""
    path: str | None = None
    if isinstance(source, dict):
        raw = source
    else:
        path = str(source)
        file = Path(source)
        if not file.is_file():
            raise ConfigError(f"Pipeline file not found: {file}")
        try:
            raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    where = path or "pipeline"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be a mapping with `stages:`.")
    unknown = set(raw) - set(PIPELINE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key(s) {sorted(unknown)}; allowed: {', '.join(PIPELINE_KEYS)}.")
    stages = raw.get("stages")
    if not isinstance(stages, dict) or not stages:
        raise ConfigError(f"{where}: `stages:` must map step names to their settings, in the order they run.")
    defaults = dict(raw.get("defaults") or {})
    if not isinstance(raw.get("defaults") or {}, dict):
        raise ConfigError(f"{where}: `defaults:` must be a mapping of stage config keys.")
    stages = {name: dict(body or {}) for name, body in stages.items()}
    everywhere = _apply_overrides(where, stages, overrides or {})
    split = _split_settings(where, raw, defaults, everywhere)

    steps: list[StepSpec] = []
    for name, body in stages.items():
        steps.append(_parse_step(where, str(name), body, defaults, {**everywhere, **split}, [s.name for s in steps]))
    default_name = Path(path).stem if path else "pipeline"
    name = str(raw.get("name") or default_name)
    if not _NAME.match(name):
        raise ConfigError(f"{where}: name '{name}' must start with a letter and hold only letters, digits, - and _.")
    return PipelineSpec(
        name=name,
        steps=steps,
        experiment=str(raw.get("experiment") or DEFAULT_EXPERIMENT),
        description=str(raw.get("description") or ""),
        pretokenize=bool(raw.get("pretokenize", False)),
        path=str(Path(path).resolve()) if path else None,
    )


def _split_settings(where: str, raw: dict, defaults: dict, everywhere: dict) -> dict[str, Any]:
    """The pipeline's eval_split (top level, or in defaults / a plain override), checked once for every stage."""
    split: dict[str, Any] = {}
    for key in SPLIT_KEYS:
        for source in (raw, defaults, everywhere):
            if key in source:
                split[key] = source[key]
    value = split.get("eval_split", 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"{where}: eval_split is the held-out fraction of every dataset, in [0, 1); got {value!r}.")
    seed = split.get("eval_split_seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"{where}: eval_split_seed must be an integer, got {seed!r}.")
    return split


def _apply_overrides(where: str, stages: dict[str, dict], overrides: dict[str, Any]) -> dict[str, Any]:
    """``step.key=value`` goes into that step; the plain ``key=value`` ones are returned, for every stage config."""
    everywhere: dict[str, Any] = {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if rest and head in stages:
            stages[head][rest] = value
        elif rest:
            close = difflib.get_close_matches(head, list(stages), n=1)
            hint = f" Did you mean '{close[0]}.{rest}'?" if close else ""
            raise ConfigError(f"override '{key}': {where} has no stage '{head}'.{hint} Stages: {', '.join(stages)}.")
        else:
            everywhere[key] = value
    return everywhere


def _parse_step(
    where: str, name: str, body: dict[str, Any], defaults: dict, everywhere: dict, earlier: list[str]
) -> StepSpec:
    at = f"{where}: stage '{name}'"
    if not _NAME.match(name):
        raise ConfigError(f"{at}: a stage name starts with a letter and holds only letters, digits, - and _.")
    if name in earlier:
        raise ConfigError(f"{at}: the name is used twice.")
    kind = str(body.get("kind", "train"))
    if kind not in KINDS:
        raise ConfigError(f"{at}: kind '{kind}' is not one of {', '.join(KINDS)}.")
    source = body.get("from")
    if source is not None:
        source = str(source)
        if source not in earlier:
            hint = f" Earlier stages: {', '.join(earlier)}." if earlier else " It is the first stage."
            raise ConfigError(f"{at}: from: '{source}' must name an earlier stage.{hint}")
    if kind in ("evaluate", "export", "register") and source is None:
        raise ConfigError(f"{at}: a {kind} step needs `from:` (the stage it works on).")

    if kind in ("export", "register"):
        allowed = STEP_KEYS[kind]
        unknown = set(body) - set(allowed)
        if unknown:
            bad = sorted(unknown)[0]
            close = difflib.get_close_matches(bad, allowed, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{at}: unknown key '{bad}' for a {kind} step.{hint} Allowed: {', '.join(allowed)}.")
        options = {k: v for k, v in body.items() if k not in ("kind", "from")}
        _check_options(at, kind, options)
        return StepSpec(name, kind, source, {}, options)

    for key in SPLIT_KEYS:
        if key in body and key in everywhere and body[key] != everywhere[key]:
            raise ConfigError(
                f"{at}: {key} is set for the whole pipeline ({everywhere[key]!r}); a stage cannot change it, or the "
                "stages would hold out different prompts."
            )
    config = {**defaults, **{k: v for k, v in body.items() if k not in STEP_KEYS[kind]}, **everywhere}
    for key in WIRED_KEYS:
        if key in config:
            raise ConfigError(f"{at}: remove `{key}`; the pipeline puts each stage's output under its runs directory.")
    try:
        stage = setting(config, "stage")
    except ConfigError as exc:
        raise ConfigError(f"{at}: {exc}") from None
    config["stage"] = stage
    if kind == "train":
        config.setdefault("do_train", True)
        return StepSpec(name, kind, source, config, {})
    config["do_train"] = False
    compare = body.get("compare", True)
    if not isinstance(compare, bool):
        raise ConfigError(f"{at}: compare must be true (score every model of the chain) or false (only `from:`).")
    if compare:  # generate and score with every model of the chain; the stage key does not apply
        config.update(stage="sft", do_eval=True, do_predict=False, predict_with_generate=False)
    elif stage == "sft" and not config.get("do_eval") and not config.get("do_predict"):
        config.setdefault("do_predict", True)
        config.setdefault("predict_with_generate", True)
    return StepSpec(name, kind, source, config, {"compare": compare})


def _check_options(at: str, kind: str, options: dict[str, Any]) -> None:
    if kind == "export":
        if options.get("mode", "min") not in ("min", "max"):
            raise ConfigError(f"{at}: mode must be min or max, got {options.get('mode')!r}.")
        if "metric" in options and not isinstance(options["metric"], str):
            raise ConfigError(
                f"{at}: metric must be a logged metric name such as eval_loss, got {options['metric']!r}."
            )
    if kind == "register":
        name = options.get("model_name")
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"{at}: model_name must be a string, got {name!r}.")
        if not isinstance(options.get("gate", True), bool):
            raise ConfigError(f"{at}: gate must be true (only a better model becomes the alias) or false (always).")

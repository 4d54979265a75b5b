"""The single parse path: YAML file + key=value / --flag overrides -> typed dataclasses.

The parent validates here before anything heavy starts; the training child re-parses the
file the parent wrote, the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from genie_core.extras.errors import ConfigError
from genie_core.hparams.data_args import DataArguments
from genie_core.hparams.eval_args import EvalArguments
from genie_core.hparams.finetuning_args import FinetuningArguments
from genie_core.hparams.generating_args import GeneratingArguments
from genie_core.hparams.grpo_args import GRPOArguments
from genie_core.hparams.launch_args import LaunchArguments
from genie_core.hparams.model_args import ModelArguments
from genie_core.hparams.ppo_args import PPOArguments
from genie_core.hparams.training_fields import training_fields

ALIASES = {
    "adapter_name_or_path": "checkpoint_dir",
    "lora_r": "lora_rank",
    "max_seq_length": "cutoff_len",
    "max_length_tokens": "cutoff_len",
    # LLaMA-Factory's names for the preference settings
    "dpo_loss": "pref_loss",
    "pref_beta": "dpo_beta",
    "pref_ftx": "dpo_ftx",
    "kto_chosen_weight": "kto_desirable_weight",
    "kto_rejected_weight": "kto_undesirable_weight",
    "disable_shuffling": "train_sampling_strategy",  # LLaMA-Factory's switch; its true/false below
}

# Keys that an alias fills from a true/false switch: the value each setting of the switch stands for.
SWITCH_VALUES: dict[str, dict[bool, str]] = {"train_sampling_strategy": {True: "sequential", False: "random"}}

# Defaults we need that differ from transformers' own; the user can still override them.
TRAINING_DEFAULTS: dict[str, Any] = {
    "remove_unused_columns": False,
    "report_to": "none",
    "logging_steps": 10,
    "dataloader_pin_memory": False,
}


@dataclass
class GenieArgs:
    """Everything one stage needs, resolved and validated."""

    model: ModelArguments
    data: DataArguments
    training: Any  # transformers.Seq2SeqTrainingArguments (imported lazily: it pulls torch)
    finetuning: FinetuningArguments
    generating: GeneratingArguments
    launch: LaunchArguments
    raw: dict[str, Any]
    ppo: PPOArguments | None = None
    eval: EvalArguments = dataclasses.field(default_factory=EvalArguments)
    grpo: GRPOArguments = dataclasses.field(default_factory=GRPOArguments)


def _training_cls():
    from transformers import Seq2SeqTrainingArguments

    return Seq2SeqTrainingArguments


OWN_DATACLASSES: tuple[type, ...] = (
    ModelArguments,
    DataArguments,
    FinetuningArguments,
    GeneratingArguments,
    LaunchArguments,
    PPOArguments,
    EvalArguments,
    GRPOArguments,
)


def valid_keys() -> dict[str, Any]:
    """Every accepted config key mapped to its field (a dataclass field, or a ``TrainingField`` for the trainer's).

    Needs no transformers import: the trainer's fields come from ``training_fields``.
    """
    keys: dict[str, Any] = {}
    for cls in OWN_DATACLASSES[:2]:
        keys.update({f.name: f for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")})
    for name, spec in training_fields().items():
        keys.setdefault(name, spec)
    for cls in OWN_DATACLASSES[2:]:
        for f in dataclasses.fields(cls):
            if f.init and not f.name.startswith("_"):
                keys.setdefault(f.name, f)
    return keys


def _field_types(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # transformers' own annotations may reference names we cannot resolve
        return {f.name: f.type for f in dataclasses.fields(cls)}


_TYPE_CACHE: dict[str, Any] = {}


_KINDS: dict[str, Any] = {"bool": bool, "int": int, "float": float, "str": str, "stringy": Union[str, list, None]}


def _type_of(key: str) -> Any:
    if not _TYPE_CACHE:
        for cls in OWN_DATACLASSES[:2]:
            _TYPE_CACHE.update(_field_types(cls))
        for name, spec in training_fields().items():
            _TYPE_CACHE.setdefault(name, _KINDS.get(spec.kind, Any))
        for cls in OWN_DATACLASSES[2:]:
            for name, tp in _field_types(cls).items():
                _TYPE_CACHE.setdefault(name, tp)
    return _TYPE_CACHE.get(key)


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _coerce(key: str, value: Any) -> Any:
    if key in SWITCH_VALUES:
        value = _switch_value(key, value)
    return coerce_value(key, value, _type_of(key))


def _switch_value(key: str, value: Any) -> Any:
    """The value a true/false switch (given as a bool or its word) stands for; any other value unchanged."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        value = value.strip().lower() == "true"
    return SWITCH_VALUES[key][value] if isinstance(value, bool) else value


def config_value(key: str, value: Any) -> Any:
    """``value`` for stage config key ``key`` as the stage will read it (the board's fields, loose YAML)."""
    return _coerce(key, value)


def default_of(key: str) -> Any:
    """What a stage uses for ``key`` when the config leaves it out: our defaults for trainer keys, else the field's."""
    if key in TRAINING_DEFAULTS:
        return TRAINING_DEFAULTS[key]
    spec = valid_keys()[key]
    return field_default(spec) if isinstance(spec, dataclasses.Field) else spec.default


def field_default(f: dataclasses.Field) -> Any:
    """A dataclass field's default (its factory called), None when it has none."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def setting(config: dict[str, Any], key: str) -> Any:
    """A stage config's value for ``key`` as the stage reads it: converted, or the default when it is not set.

    Readers of a raw config dict (the planner, the board, `genie eval`) use this instead of ``.get(key, default)``,
    so a default lives only on its dataclass field."""
    return config_value(key, config[key]) if config.get(key) is not None else default_of(key)


def config_type(key: str) -> Any:
    """The declared type of a stage config key, ``Optional`` removed (None for an unknown key)."""
    return _unwrap_optional(_type_of(key))


def coerce_field(cls: type, key: str, value: Any) -> Any:
    """``value`` for field ``key`` of dataclass ``cls`` (a command's own options), converted the same way."""
    return coerce_value(key, value, _field_types(cls).get(key))


def coerce_value(key: str, value: Any, declared: Any) -> Any:
    """Turn strings from the command line (and loose YAML) into the field's declared type: the one converter every
    reader of a config uses."""
    tp = _unwrap_optional(declared)
    if value is None:
        return None
    if isinstance(value, bool) and tp is not bool and _is_stringy(tp):
        # YAML 1.1 reads `no`/`yes` as booleans; for strategy-like fields the user meant the word
        return "yes" if value else "no"
    if typing.get_origin(tp) is Literal:
        choices = typing.get_args(tp)
        if value not in choices and str(value) not in [str(c) for c in choices]:
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"'{key}' must be one of {list(choices)}, got {value!r}.{hint}")
        return value
    try:
        if tp is bool:
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("true", "1", "yes", "y"):
                    return True
                if low in ("false", "0", "no", "n"):
                    return False
                raise ValueError(value)
            return bool(value)
        if tp is int and isinstance(value, (str, float)):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)
        if tp is float and isinstance(value, (str, int)) and not isinstance(value, bool):
            return float(value)
        if tp is str and isinstance(value, (list, tuple)):
            return ",".join(str(v) for v in value)
        if tp is str and not isinstance(value, str):
            return str(value)
    except (TypeError, ValueError):
        name = getattr(tp, "__name__", str(tp))
        raise ConfigError(f"'{key}' expects {name}, got {value!r}.") from None
    return value


def _is_stringy(tp: Any) -> bool:
    """True for str, str-valued enums and unions containing one of them."""
    import enum

    options = typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType) else (tp,)
    for option in options:
        if option is str or (isinstance(option, type) and issubclass(option, enum.Enum)):
            return True
        if typing.get_origin(option) is Literal and all(isinstance(c, str) for c in typing.get_args(option)):
            return True
    return False


def parse_cli_tokens(tokens: list[str]) -> tuple[Optional[str], dict[str, Any]]:
    """Split ``[config.yaml] [key=value ...] [--key value | --flag ...]`` into a file and overrides."""
    config_file: Optional[str] = None
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("--"):
            body = tok[2:]
            if "=" in body:
                key, value = body.split("=", 1)
            elif i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                key, value = body, tokens[i + 1]
                i += 1
            else:
                key, value = body, "true"
            overrides[key.replace("-", "_")] = _yaml_scalar(value)
        elif "=" in tok:
            key, value = tok.split("=", 1)
            overrides[key] = _yaml_scalar(value)
        elif tok.endswith((".yaml", ".yml", ".json")) and config_file is None:
            config_file = tok
        else:
            raise ConfigError(f"Cannot read argument {tok!r}: use `key=value`, `--key value` or a .yaml file.")
        i += 1
    return config_file, overrides


def _yaml_scalar(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if value is None and text.strip() not in ("null", "~", "") else value


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of key: value.")
    return data


def merge_config(file_cfg: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge file and overrides (overrides win), resolve aliases, reject unknown keys, coerce types."""
    merged: dict[str, Any] = {}
    keys = valid_keys()
    for source in (file_cfg, overrides):
        for key, value in source.items():
            key = ALIASES.get(key, key)
            if key not in keys:
                close = difflib.get_close_matches(key, list(keys) + list(ALIASES), n=1, cutoff=0.6)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ConfigError(f"Unknown config key '{key}'.{hint}")
            merged[key] = _coerce(key, value)
    return merged


def build_args(config: dict[str, Any]) -> GenieArgs:
    """Construct and cross-validate the dataclasses from a merged config dict."""
    return _build(config, _training_cls())


def check_config(config: dict[str, Any]) -> GenieArgs:
    """Every rule ``build_args`` applies that needs no transformers, in a fraction of a second.

    The training arguments are a plain namespace of the trainer's defaults plus the config (so ``validate`` reads
    them the same way); the child still builds the real ones.
    """
    return _build(config, _training_namespace)


def _training_namespace(**kwargs: Any) -> types.SimpleNamespace:
    fields = training_fields()
    for key, value in kwargs.items():
        choices = fields[key].choices
        if choices and isinstance(value, str) and value not in choices:
            close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"'{key}' must be one of {list(choices)}, got {value!r}.{hint}")
    return types.SimpleNamespace(**{**{name: spec.default for name, spec in fields.items()}, **kwargs})


def _build(config: dict[str, Any], training_cls: Any) -> GenieArgs:
    training_keys = set(training_fields())
    kwargs: dict[Any, dict[str, Any]] = {cls: {} for cls in (*OWN_DATACLASSES, training_cls)}
    full = {**TRAINING_DEFAULTS, **config}
    for key, value in full.items():
        # a few keys (e.g. seed) are shared by several dataclasses
        for cls in OWN_DATACLASSES:
            if key in {f.name for f in dataclasses.fields(cls)}:
                kwargs[cls][key] = value
        if key in training_keys:
            kwargs[training_cls][key] = value
    try:
        model = ModelArguments(**kwargs[ModelArguments])
        data = DataArguments(**kwargs[DataArguments])
        finetuning = FinetuningArguments(**kwargs[FinetuningArguments])
        generating = GeneratingArguments(**kwargs[GeneratingArguments])
        launch = LaunchArguments(**kwargs[LaunchArguments])
        ppo = PPOArguments(**kwargs[PPOArguments])
        grpo = GRPOArguments(**kwargs[GRPOArguments])
        evaluation = EvalArguments(**kwargs[EvalArguments])
        training_kwargs = kwargs[training_cls]
        training_kwargs.setdefault("output_dir", config.get("output_dir") or "")
        training = training_cls(**training_kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Invalid training arguments: {exc}") from None
    args = GenieArgs(model, data, training, finetuning, generating, launch, dict(config), ppo, evaluation, grpo)
    validate(args)
    return args


def validate(args: GenieArgs) -> None:
    """Cross-field rules; every message says what to change."""
    m, d, t, f = args.model, args.data, args.training, args.finetuning
    if not m.model_name_or_path:
        raise ConfigError("model_name_or_path is required (a directory, a hub id, a .gguf file or `smollm2`).")
    if not args.raw.get("output_dir"):
        raise ConfigError("output_dir is required: where checkpoints, logs and results are written.")
    if (t.do_train or t.do_eval or t.do_predict) and not (d.dataset or d.eval_dataset):
        raise ConfigError("dataset is required for do_train/do_eval/do_predict (names from dataset_info.json).")
    if m.quantization_bit is not None and f.finetuning_type != "lora":
        raise ConfigError("quantization_bit only works with finetuning_type lora (QLoRA); remove one of them.")
    if getattr(t, "predict_with_generate", False) and f.stage != "sft":
        raise ConfigError("predict_with_generate only applies to stage sft.")
    if getattr(t, "predict_with_generate", False) and t.do_train:
        raise ConfigError("predict_with_generate cannot be combined with do_train; run do_predict separately.")
    if t.do_predict and f.stage == "sft" and not getattr(t, "predict_with_generate", False):
        raise ConfigError("do_predict for sft needs predict_with_generate: true.")
    if f.finetuning_type != "lora" and m.adapter_dirs and len(m.adapter_dirs) > 1:
        raise ConfigError("Only LoRA accepts several checkpoint_dir entries; full/freeze take one checkpoint.")
    if f.stage == "ppo" and f.finetuning_type != "lora":
        raise ConfigError(f"stage {f.stage} supports finetuning_type lora only; set finetuning_type: lora.")
    _validate_numbers(args)
    _validate_preference(args)
    _validate_grpo(args)
    if args.eval.compare_models and t.do_train:
        raise ConfigError("compare_models scores models; it cannot be combined with do_train.")
    if f.stage == "ppo" and t.do_train and not f.reward_model:
        raise ConfigError("stage ppo needs reward_model: the output directory of an rm stage, or rule:<name>.")
    if (t.fp16 or t.bf16) and m.compute_dtype == "float32":
        raise ConfigError("fp16/bf16 training conflicts with compute_dtype float32; drop one of them.")


def _validate_numbers(args: GenieArgs) -> None:
    """Values the trainer would accept and then misuse (``max_steps: -5`` silently trains an epoch) or fail on
    only after the model has loaded. ``None`` means unset and is left to the trainer's default."""
    t, d = args.training, args.data
    for key in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        value = getattr(t, key)
        if value is not None and value < 1:
            raise ConfigError(f"{key} must be at least 1, got {value}.")
    steps = t.max_steps if t.max_steps is not None else -1
    if steps != -1 and steps < 1:
        raise ConfigError(
            f"max_steps must be a positive number of steps, or -1 to train num_train_epochs; got {steps}."
        )
    epochs = t.num_train_epochs
    if t.do_train and steps == -1 and epochs is not None and not epochs > 0:
        raise ConfigError(f"num_train_epochs must be > 0 when max_steps is -1, got {epochs}.")
    if t.learning_rate is not None and t.learning_rate < 0:
        raise ConfigError(f"learning_rate must be >= 0, got {t.learning_rate}.")
    for key in ("logging_steps", "save_steps", "eval_steps"):
        value = getattr(t, key)
        if value is not None and value <= 0:
            raise ConfigError(f"{key} must be > 0 (a step count, or a fraction of the run below 1), got {value}.")
    if d.val_size >= 1 and not float(d.val_size).is_integer():
        raise ConfigError(
            f"val_size is a fraction below 1 (0.1 = a tenth) or a whole number of records (20); got {d.val_size}."
        )


def _validate_preference(args: GenieArgs) -> None:
    """Rules of the rm, dpo and kto stages."""
    t, f = args.training, args.finetuning
    if f.stage in ("rm", "dpo", "kto") and t.do_predict:
        raise ConfigError(
            f"do_predict does not apply to stage {f.stage}; use do_eval (or `genie eval`), which scores every "
            "held-out pair."
        )
    if f.stage not in ("dpo", "kto"):
        return
    if not t.do_train:
        raise ConfigError(
            f"stage {f.stage} needs do_train: true; to evaluate, add val_size or eval_dataset with do_eval: true."
        )
    if f.stage == "kto":
        _validate_kto(args)
        return
    if f.simpo_gamma < 0:
        raise ConfigError(f"simpo_gamma must be >= 0, got {f.simpo_gamma}.")
    if f.dpo_beta <= 0:
        raise ConfigError(f"dpo_beta must be > 0, got {f.dpo_beta}.")
    if not 0 <= f.dpo_label_smoothing < 0.5:
        raise ConfigError(f"dpo_label_smoothing must be in [0, 0.5), got {f.dpo_label_smoothing}.")
    if f.dpo_ftx < 0:
        raise ConfigError(f"dpo_ftx must be >= 0, got {f.dpo_ftx}.")


def _validate_kto(args: GenieArgs) -> None:
    """KTO's KL estimate pairs each prompt with a neighbour's reply inside a batch, so a batch needs two rows."""
    t, f = args.training, args.finetuning
    beta = f.kto_beta if f.kto_beta is not None else f.dpo_beta
    if beta <= 0:
        raise ConfigError(f"kto_beta (or pref_beta/dpo_beta) must be > 0, got {beta}.")
    for key in ("kto_desirable_weight", "kto_undesirable_weight"):
        if getattr(f, key) <= 0:
            raise ConfigError(f"{key} must be > 0, got {getattr(f, key)}.")
    if t.per_device_train_batch_size is not None and t.per_device_train_batch_size < 2:
        raise ConfigError(
            "stage kto needs per_device_train_batch_size >= 2: its KL term pairs each prompt with another row's "
            "reply in the same batch."
        )


def _validate_grpo(args: GenieArgs) -> None:
    """Rules of the grpo and rloo stages that TRL would only raise after the model has loaded."""
    t, f, g = args.training, args.finetuning, args.grpo
    if f.stage not in ("grpo", "rloo"):
        return
    if not t.do_train:
        raise ConfigError(
            f"stage {f.stage} needs do_train: true; to score a trained model, use a pipeline evaluate step "
            "(kind: evaluate, from: <this stage>) with the same reward rules or reward model."
        )
    scorers = g.reward_specs + ([f.reward_model] if f.reward_model else [])
    if not scorers:
        raise ConfigError(
            f"stage {f.stage} needs reward_funcs: rule:<name>, module:function, path/to/file.py:function or an rm "
            "stage's output directory (comma-separated to mix them); reward_model adds one more."
        )
    if g.weights is not None and len(g.weights) != len(scorers):
        raise ConfigError(
            f"reward_weights has {len(g.weights)} values but there are {len(scorers)} scorers "
            f"({', '.join(scorers)}); give one weight per scorer."
        )
    if not os.environ.get("WORLD_SIZE") and args.launch.accelerate_config:
        return  # the process count lives in the accelerate config; TRL checks the batch in the child
    world = int(os.environ.get("WORLD_SIZE") or args.launch.num_processes or 1)  # the child knows; the parent asks
    batch = (t.per_device_train_batch_size or 8) * (t.gradient_accumulation_steps or 1) * world
    if batch % g.num_generations:
        fits = [n for n in range(2, batch + 1) if batch % n == 0]
        raise ConfigError(
            f"num_generations ({g.num_generations}) must divide the replies sampled per step, "
            f"per_device_train_batch_size * gradient_accumulation_steps * processes = {batch}: set num_generations "
            f"to one of {fits or '(none: raise the batch)'} or per_device_train_batch_size to a multiple of "
            f"{g.num_generations}."
        )
    eval_batch = (t.per_device_eval_batch_size or 8) * world
    if t.do_eval and eval_batch % g.num_generations:
        raise ConfigError(
            f"per_device_eval_batch_size * processes ({eval_batch}) must be a multiple of num_generations "
            f"({g.num_generations}): held-out prompts are scored with that many replies each."
        )


def load_config(config_file: Optional[str] = None, overrides: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """A YAML file plus overrides, merged, with keys checked and values coerced (no transformers import)."""
    file_cfg = load_config_file(config_file) if config_file else {}
    return merge_config(file_cfg, overrides or {})


def skip_unused_quantizer(tokens: list[str]) -> None:
    """Hide bitsandbytes from a process whose command line does not quantize, before anything imports it.

    transformers' training arguments import peft, which imports bitsandbytes whenever it is installed, and that
    pulls in torch's compiler stack: about two seconds of every child's start. The config is only read here; a
    line that cannot be read is left to the real parse to report, with bitsandbytes as it is.
    """
    try:
        config_file, overrides = parse_cli_tokens(tokens)
        raw = {**(load_config_file(config_file) if config_file else {}), **overrides}
        if setting(raw, "quantization_bit") is not None:
            return
    except (ConfigError, OSError, ValueError):
        return
    from genie_core.extras.notices import skip_bitsandbytes

    skip_bitsandbytes()


def get_args(config_file: Optional[str] = None, overrides: Optional[dict[str, Any]] = None) -> GenieArgs:
    """Parse a YAML file plus overrides into validated arguments."""
    return build_args(load_config(config_file, overrides))


def dump_config(config: dict[str, Any], path: str | Path) -> Path:
    """Write the merged input dict (not every default) so the child re-parses exactly what the user gave."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=True, allow_unicode=True), encoding="utf-8")
    tmp.replace(path)
    return path

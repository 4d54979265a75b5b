"""Plan a pipeline before anything runs: wiring, cache keys, stage directories, validation.

A stage's key hashes what decides its output: its resolved config slice, the bytes of its dataset files, the
model and tokenizer files (or the upstream key that produces them), the template definition, the accelerate
config, the keys of the stages it reads from and the genie version. The stage directory is named after the
key, so a re-run after a failure finds its own ``checkpoint-*`` and resumes, a changed learning rate gets a
fresh directory (and so does everything downstream, whose keys include it), and a finished stage is
recognised by ``genie_result.json`` holding the same key.

Because every key is known up front, stages that will actually run are validated (config, template,
datasets) before the first one starts, and a fully finished pipeline is recognised without importing torch.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genie_core import __version__
from genie_core.data.fingerprint import (
    dataset_fingerprint,
    digest_json,
    model_fingerprint,
    path_fingerprint,
    save_memo,
    template_fingerprint,
)
from genie_core.eval.comparison import DESCRIPTIVE
from genie_core.extras.env import runs_dir
from genie_core.extras.errors import ConfigError, GenieError
from genie_core.hparams.parser import ALIASES, setting
from genie_core.pipeline.spec import PipelineSpec, StepSpec

RESULT_FILE = "genie_result.json"
MERGED_DIR = ".merged"  # bases with a shared first adapter merged, kept for the pipeline's later steps
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# config keys that change neither the model nor the metrics: left out of the key
UNKEYED = frozenset(
    {
        "output_dir",
        "overwrite_cache",
        "overwrite_output_dir",
        "preprocessing_num_workers",
        "dataloader_num_workers",
        "tokenized_cache_dir",
        "logging_dir",
        "report_to",
        "run_name",
        "disable_tqdm",
        "merge_cache_dir",
    }
)


@dataclass
class StepPlan:
    """Everything a task needs to run one step, as JSON-able values."""

    name: str
    kind: str
    key: str
    stage_dir: str
    pipeline: str
    experiment: str
    upstream: dict[str, str] = field(default_factory=dict)  # role (from, reward_model, metric_from) -> step
    config: dict[str, Any] = field(default_factory=dict)  # resolved stage config (train/evaluate)
    options: dict[str, Any] = field(default_factory=dict)  # export/register options
    # the model this step leaves behind, for steps that read from it
    model_name_or_path: str | None = None
    adapters: list[str] = field(default_factory=list)
    finetuning_type: str = "lora"
    template: str | None = None
    datasets: dict[str, str] = field(default_factory=dict)  # dataset -> content digest (MLflow tags)
    pretokenize: bool = False

    @property
    def result_path(self) -> Path:
        return Path(self.stage_dir) / RESULT_FILE

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def read_result(stage_dir: str | Path, key: str | None = None) -> dict[str, Any] | None:
    """The finished step's result, or None when it is missing, unreadable or made under another key."""
    path = Path(stage_dir) / RESULT_FILE
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if key is not None and result.get("key") != key:
        return None
    return result


def is_done(plan: StepPlan) -> bool:
    return read_result(plan.stage_dir, plan.key) is not None


def plan_pipeline(spec: PipelineSpec, validate: bool = True) -> list[StepPlan]:
    """Resolve wiring and keys for every step, in order; validate the steps that still have to run."""
    plans: dict[str, StepPlan] = {}
    for step in spec.steps:
        if step.kind in ("train", "evaluate"):
            plan = _plan_stage(spec, step, plans)
        elif step.kind == "export":
            plan = _plan_export(spec, step, plans)
        else:
            plan = _plan_register(spec, step, plans)
        plans[step.name] = plan
    save_memo()
    ordered = list(plans.values())
    share_merged_bases(spec, ordered)
    if validate:
        validate_plans([p for p in ordered if p.kind in ("train", "evaluate") and not is_done(p)])
    return ordered


def _first_merges(plan: StepPlan) -> list[str]:
    """The adapters a step merges first into the base: its own chain's, or each compared model's."""
    config = plan.config
    if plan.kind == "evaluate" and config.get("compare_models"):
        chains = [_split(entry.get("checkpoint_dir")) for entry in json.loads(config["compare_models"])]
    elif plan.kind in ("train", "evaluate") and setting(config, "finetuning_type") == "lora":
        adapters = _split(config.get("checkpoint_dir"))
        resume = plan.kind == "train" and bool(setting(config, "resume_lora_training"))
        chains = [adapters] if len(adapters) > (1 if resume else 0) else []
    else:
        chains = []
    return [chain[0] for chain in chains if chain]


def share_merged_bases(spec: PipelineSpec, plans: list[StepPlan]) -> None:
    """Steps that merge the same first adapter keep and reuse one merged base (``merge_cache_dir``)."""
    firsts = {plan.name: _first_merges(plan) for plan in plans}
    counts: dict[str, int] = {}
    for adapters in firsts.values():
        for adapter in set(adapters):
            counts[adapter] = counts.get(adapter, 0) + 1
    shared = str(runs_dir() / spec.name / MERGED_DIR)
    for plan in plans:
        if any(counts[a] > 1 for a in firsts[plan.name]) and "merge_cache_dir" not in plan.config:
            plan.config["merge_cache_dir"] = shared


def _normalize(config: dict[str, Any]) -> dict[str, Any]:
    return {ALIASES.get(k, k): v for k, v in config.items()}


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [p.strip() for p in str(value).split(",") if p.strip()]


def _stage_dir(spec: PipelineSpec, name: str, key: str) -> str:
    return str(runs_dir() / spec.name / f"{name}-{key[:10]}")


def _find_file(at: str, key: str, value: str) -> str:
    """A relative path is tried from the current directory, then from the project root (deployments/...)."""
    for base in (Path.cwd(), PROJECT_ROOT):
        path = (base / value).resolve()
        if path.is_file():
            return str(path)
    raise ConfigError(f"{at}: {key} {value} does not exist (looked in {Path.cwd()} and {PROJECT_ROOT}).")


def _key(payload: dict[str, Any]) -> str:
    return digest_json({"genie": __version__, **payload})[:20]


def _plan_stage(spec: PipelineSpec, step: StepSpec, plans: dict[str, StepPlan]) -> StepPlan:
    at = f"stage '{step.name}'"
    config = _normalize(step.config)
    keyed = dict(config)  # what the user wrote (with defaults); wired values are replaced by upstream keys
    upstream: dict[str, str] = {}
    try:
        ftype = str(setting(config, "finetuning_type"))
    except ConfigError as exc:
        raise ConfigError(f"{at}: {exc}") from None
    identity: dict[str, Any] = {}

    if step.source:
        up = plans[step.source]
        if up.kind == "register":
            raise ConfigError(f"{at}: from: '{step.source}' is a register step; read from a train or export step.")
        if config.get("checkpoint_dir"):
            raise ConfigError(f"{at}: remove checkpoint_dir; `from: {step.source}` fills it in.")
        if ftype != "lora" and up.adapters:
            raise ConfigError(
                f"{at}: {ftype} tuning cannot start from the LoRA adapters of '{step.source}'; add an export step "
                f"after '{step.source}' and use `from:` that export step."
            )
        upstream["from"] = step.source
        config["model_name_or_path"] = up.model_name_or_path
        incoming = list(up.adapters)
        for wired in ("model_name_or_path", "checkpoint_dir"):
            keyed.pop(wired, None)
        identity["from"] = up.key
    else:
        incoming = _split(config.get("checkpoint_dir"))
        identity["model"] = model_fingerprint(config.get("model_name_or_path"), config.get("model_revision"))
        identity["checkpoints"] = [path_fingerprint(p) if Path(p).exists() else p for p in incoming]
    if incoming:
        config["checkpoint_dir"] = ",".join(incoming)
    else:
        config.pop("checkpoint_dir", None)

    reward = config.get("reward_model")
    if isinstance(reward, str) and reward in plans:
        config["reward_model"] = plans[reward].stage_dir
        upstream["reward_model"] = reward
        identity["reward_model"] = plans[reward].key
        keyed.pop("reward_model", None)
    elif reward:
        identity["reward_model"] = path_fingerprint(reward) if Path(str(reward)).exists() else str(reward)

    if config.get("reward_funcs"):
        scorers = []
        for scorer in _split(config["reward_funcs"]):
            if scorer in plans:  # an rm step of this pipeline: its output directory, keyed by its key
                upstream[f"reward_funcs.{scorer}"] = scorer
                scorers.append(plans[scorer].stage_dir)
            else:
                scorers.append(scorer)
        config["reward_funcs"] = ",".join(scorers)
        keyed.pop("reward_funcs", None)
        identity["reward_funcs"] = [_reward_identity(scorer, plans) for scorer in scorers]

    names = _split(config.get("dataset")) + _split(config.get("eval_dataset"))
    dataset_dir = str(setting(config, "dataset_dir"))
    try:
        datasets = dataset_fingerprint(names, dataset_dir) if names else {}
    except GenieError as exc:
        raise ConfigError(f"{at}: {exc}") from None
    if config.get("accelerate_config"):
        config["accelerate_config"] = _find_file(at, "accelerate_config", str(config["accelerate_config"]))
        identity["accelerate"] = path_fingerprint(config["accelerate_config"])

    key = _key(
        {
            "kind": step.kind,
            "config": {k: v for k, v in sorted(keyed.items()) if k not in UNKEYED},
            "datasets": datasets,
            "template": template_fingerprint(config.get("template")),
            **identity,
        }
    )
    stage_dir = _stage_dir(spec, step.name, key)
    config["output_dir"] = stage_dir
    if step.options.get("compare"):
        chain = _chain(at, step.source, plans)
        config["compare_models"] = json.dumps(chain)
        config["model_name_or_path"] = chain[0]["model_name_or_path"]  # the base: its tokenizer reads the prompts
        config.pop("checkpoint_dir", None)

    model = str(config.get("model_name_or_path") or "")
    if step.kind == "train" and ftype != "lora":
        model, adapters = stage_dir, []
    elif step.kind == "train":
        resume = bool(setting(config, "resume_lora_training")) and bool(incoming)
        adapters = (incoming[:-1] if resume else incoming) + [stage_dir]
    else:
        adapters = incoming
    return StepPlan(
        name=step.name,
        kind=step.kind,
        key=key,
        stage_dir=stage_dir,
        pipeline=spec.name,
        experiment=spec.experiment,
        upstream=upstream,
        config=config,
        options=dict(step.options),
        model_name_or_path=model,
        adapters=adapters,
        finetuning_type=ftype,
        template=config.get("template"),
        datasets={name: digest_json(fp)[:16] for name, fp in datasets.items()},
        pretokenize=spec.pretokenize and step.kind == "train",
    )


def _reward_identity(spec: str, plans: dict[str, StepPlan]) -> str:
    """What a reward function spec computes with, by content: a function's source file, an rm directory's files
    (or the key of the step that writes it), a rule by its text. Editing a reward file re-runs the stage."""
    for plan in plans.values():
        if plan.stage_dir == spec:
            return plan.key
    if Path(spec).expanduser().exists():
        return path_fingerprint(Path(spec).expanduser())
    target, sep, _ = spec.rpartition(":")
    if not sep or spec.startswith("rule:"):
        return spec
    if target.endswith(".py") and Path(target).expanduser().is_file():
        return f"{spec}@{path_fingerprint(Path(target).expanduser())}"
    try:
        found = importlib.util.find_spec(target)  # locates the module's file without running it
    except (ImportError, ValueError):
        found = None
    origin = getattr(found, "origin", None)
    return f"{spec}@{path_fingerprint(origin)}" if origin and Path(origin).is_file() else spec


def _chain(at: str, source: str | None, plans: dict[str, StepPlan]) -> list[dict[str, Any]]:
    """The models an evaluate step compares: the base, then each step along the `from:` chain up to ``source``.

    An export step stands for the train step it exported, so that step is not listed twice.
    """
    if source is None:
        raise ConfigError(f"{at}: an evaluate step needs `from:` (the candidate model).")
    entries: list[dict[str, Any]] = []
    name: str | None = source
    root = plans[source]
    while name is not None:
        plan = root = plans[name]
        if plan.kind == "train" and plan.config.get("stage") == "rm":
            raise ConfigError(
                f"{at}: '{name}' is a reward model; an evaluate step compares generating models. The rm stage reports "
                "its held-out pair accuracy itself (eval_split with do_eval: true)."
            )
        if plan.kind in ("train", "export"):
            entries.insert(0, _entry(plan.name, plan.model_name_or_path, plan.adapters))
        if plan.kind == "export":  # skip the train step it exported
            root = plans[plan.upstream["from"]]
            name = root.upstream.get("from")
        else:
            name = plan.upstream.get("from")
    base = root.config
    entries.insert(0, _entry("base", str(base.get("model_name_or_path")), _split(base.get("checkpoint_dir"))))
    return entries


def _entry(name: str, model: str | None, adapters: list[str]) -> dict[str, Any]:
    return {"name": name, "model_name_or_path": str(model), "checkpoint_dir": ",".join(adapters) or None}


def _plan_export(spec: PipelineSpec, step: StepSpec, plans: dict[str, StepPlan]) -> StepPlan:
    at = f"stage '{step.name}'"
    up = plans[step.source]
    if up.kind != "train":
        raise ConfigError(f"{at}: an export step reads from a train stage; '{step.source}' is a {up.kind} step.")
    options = dict(step.options)
    metric = str(options.get("metric", ""))
    # held-out scores (rewards, accuracies, BLEU) are better higher; training losses and the comparison's costs
    # (KL, log-ratio, length) lower
    cost = metric.rsplit("/", 1)[-1].removeprefix("delta_") in DESCRIPTIVE
    options.setdefault("mode", "max" if metric.startswith("eval/") and not cost else "min")
    upstream = {"from": step.source}
    identity = {"from": up.key}
    source = options.get("metric_from")
    if source is None and str(options.get("metric", "")).startswith("eval/"):
        source = options["metric_from"] = _comparison_of(at, step.source, options["metric"], plans)
    if source is not None:
        if source not in plans:
            raise ConfigError(f"{at}: metric_from: '{source}' must name an earlier stage.")
        upstream["metric_from"] = source
        identity["metric_from"] = plans[source].key
    if options.get("metric_from") and not options.get("metric"):
        raise ConfigError(f"{at}: metric_from needs metric (e.g. predict_bleu-4).")
    key = _key({"kind": "export", "options": options, **identity})
    stage_dir = _stage_dir(spec, step.name, key)
    template = options.get("template") or up.template
    return StepPlan(
        name=step.name,
        kind="export",
        key=key,
        stage_dir=stage_dir,
        pipeline=spec.name,
        experiment=spec.experiment,
        upstream=upstream,
        options=options,
        model_name_or_path=str(Path(stage_dir) / "model"),
        adapters=[],
        finetuning_type="full",
        template=template,
    )


def _comparison_of(at: str, candidate: str, metric: str, plans: dict[str, StepPlan]) -> str:
    """The last evaluate step that compares ``candidate`` with the models before it: where ``eval/...`` comes from."""
    for plan in reversed(list(plans.values())):
        if plan.kind == "evaluate" and plan.config.get("compare_models") and plan.upstream.get("from") == candidate:
            return plan.name
    raise ConfigError(
        f"{at}: metric {metric} is a held-out comparison metric, but no evaluate step compares '{candidate}'; add "
        f"`evaluate: {{kind: evaluate, from: {candidate}}}` before the export (or set metric_from)."
    )


def _plan_register(spec: PipelineSpec, step: StepSpec, plans: dict[str, StepPlan]) -> StepPlan:
    at = f"stage '{step.name}'"
    up = plans[step.source]
    if up.kind != "export":
        raise ConfigError(f"{at}: a register step reads from an export step; '{step.source}' is a {up.kind} step.")
    options = {"model_name": spec.name, "alias": "champion", "gate": True, "min_delta": 0.0, **step.options}
    from genie_core.tracking import tracking_uri

    key = _key({"kind": "register", "options": options, "from": up.key, "store": tracking_uri()})
    return StepPlan(
        name=step.name,
        kind="register",
        key=key,
        stage_dir=_stage_dir(spec, step.name, key),
        pipeline=spec.name,
        experiment=spec.experiment,
        upstream={"from": step.source},
        options=options,
        model_name_or_path=up.model_name_or_path,
        finetuning_type="full",
        template=up.template,
    )


def validate_plans(plans: list[StepPlan]) -> None:
    """Parse every stage config the way the child will and check its datasets: one clear error, nothing started."""
    if not plans:
        return
    from genie_core.hparams.parser import check_config, merge_config
    from genie_core.stage_parent import preflight

    for plan in plans:
        try:
            args = check_config(merge_config(plan.config, {}))
            upstream_model = bool({"from", "model"} & set(plan.upstream)) or plan.kind == "evaluate"
            upstream_reward = any(role == "reward_model" or role.startswith("reward_funcs.") for role in plan.upstream)
            preflight(args, check_reward_model=not upstream_reward, check_model=not upstream_model)
        except GenieError as exc:
            raise ConfigError(f"stage '{plan.name}': {exc}") from None

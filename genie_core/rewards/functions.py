"""Reward functions for TRL's online trainers (grpo, rloo), built from the ``reward_funcs`` specs.

TRL calls every reward function as ``fn(prompts=[...], completions=[...], completion_ids=[...], **columns)``, where
the columns are the dataset rows' other fields (``reference``, ``source`` and the dataset's ``extra_columns``, e.g.
``answer``) plus ``trainer_state``, ``log_extra`` and ``log_metric``; it returns one float (or None) per completion.
A spec is one of:

* ``rule:<name>[:<arg>]``: a rule of ``genie_core.rewards.rules`` on (completion, prompt, reference);
* ``module:function`` or ``path/to/file.py:function``: the user's own function with that signature;
* the output directory of an rm stage: its value head scores prompt + completion. A LoRA reward model becomes a
  second adapter on the policy's own base when the policy is LoRA (one copy of the weights); otherwise it is loaded
  as a separate frozen model.

``check_reward_funcs`` validates every spec without loading a model, so a typo fails before training starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from genie_core.extras.errors import ConfigError
from genie_core.extras.logging import get_logger
from genie_core.rewards.rules import RuleReward, is_rule_spec, parse_rule

logger = get_logger(__name__)

SpecKind = Literal["rule", "function", "reward_model"]
POLICY, REWARD_ADAPTER = "default", "reward"


def spec_kind(spec: str, key: str = "reward_funcs") -> SpecKind:
    """What a spec names; a path that is neither a rule, a function nor an existing directory raises."""
    if is_rule_spec(spec):
        return "rule"
    if Path(spec).expanduser().is_dir():
        return "reward_model"
    target, sep, name = spec.rpartition(":")
    if sep and target and name.isidentifier():
        return "function"
    raise ConfigError(
        f"{key}: cannot read '{spec}': write rule:<name>, module:function, path/to/file.py:function or the output "
        "directory of an rm stage (which must exist)."
    )


def check_reward_funcs(
    specs: list[str], model_args=None, check_models: bool = True, key: str = "reward_funcs"
) -> None:
    """Parse rules, import functions and check their signatures, and check rm directories, loading no model."""
    from genie_core.model.value_head import assert_reward_model_dir

    for spec in specs:
        if not check_models and not is_rule_spec(spec) and ":" not in spec:
            continue  # an upstream rm stage that has not run yet
        kind = spec_kind(spec, key)
        if kind == "rule":
            parse_rule(spec, key=key)
        elif kind == "function":
            load_function(spec, key)
        else:
            assert_reward_model_dir(spec, key=key)


def load_function(spec: str, key: str = "reward_funcs") -> Callable:
    """Import ``module:function`` or ``path/to/file.py:function``; check it takes (prompts, completions, **kwargs)."""
    target, _, name = spec.rpartition(":")
    module = _import_file(target, key) if target.endswith(".py") or "/" in target else _import_module(target, key)
    fn = getattr(module, name, None)
    if not callable(fn):
        found = sorted(n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_"))
        raise ConfigError(f"{key}: '{target}' has no function '{name}'; its functions: {', '.join(found) or 'none'}.")
    check_signature(fn, spec, key)
    return fn


def check_signature(fn: Callable, spec: str, key: str = "reward_funcs") -> None:
    """TRL passes prompts and completions by keyword, plus every other column: the function needs ``**kwargs``."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return  # a builtin or C callable: nothing to check
    named = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    has_kwargs = any(p.kind == p.VAR_KEYWORD for p in params.values())
    if not has_kwargs or not {"prompts", "completions"} <= named:
        raise ConfigError(
            f"{key}: {spec} must be defined as fn(prompts, completions, **kwargs) -> list[float] (dataset columns "
            f"such as answer arrive as keyword lists); its signature is {name_of(fn)}{inspect.signature(fn)}."
        )


def name_of(fn: Callable) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _import_module(target: str, key: str):
    try:
        return importlib.import_module(target)
    except ImportError as exc:
        raise ConfigError(f"{key}: cannot import module '{target}': {exc}. Is it on PYTHONPATH?") from None


def _import_file(target: str, key: str):
    """A user's file, imported once under a name derived from its path (so two files may share a stem)."""
    path = Path(target).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"{key}: reward function file '{target}' not found.")
    name = f"genie_reward_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ConfigError(f"{key}: importing '{target}' failed: {type(exc).__name__}: {exc}") from None
    return module


class RuleRewardFunc:
    """A rule as a TRL reward function: the completion is the response, the dataset's reply the reference."""

    def __init__(self, spec: str, rule: RuleReward):
        self.__name__ = spec.removeprefix("rule:").replace(":", "_")  # TRL logs rewards/<__name__>/mean
        self.rule = rule

    def __call__(self, prompts: list[str], completions: list[str], reference: list[str] | None = None, **kwargs):
        refs = reference or [""] * len(completions)
        return self.rule([c.strip() for c in completions], list(prompts), [r or "" for r in refs])


class ValueHeadRewardFunc:
    """An rm stage's output scoring prompt + completion: the head's value at the last token (as ppo scores).

    ``adapter`` names the reward adapter loaded on the policy's own PeftModel; the policy adapter is switched back
    on (with its gradients) after each call. Without it, ``model`` is a separate frozen reward model.
    """

    def __init__(self, name: str, model, head, tokenizer, adapter: str | None = None):
        self.__name__ = name
        self.model, self.head, self.tokenizer, self.adapter = model, head, tokenizer, adapter

    def __call__(self, prompts: list[str], completions: list[str], completion_ids: list[list[int]], **kwargs):
        import torch

        from genie_core.model.value_head import last_hidden_and_values, sequence_scores

        device = self.head.summary.weight.device
        prompt_ids = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        rows = [list(p) + list(c) for p, c in zip(prompt_ids, completion_ids)]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
        with torch.no_grad(), self._reward_weights():
            _, values = last_hidden_and_values(self.model, self.head, ids, mask, return_logits=False)
        return sequence_scores(values, mask).float().tolist()

    @contextlib.contextmanager
    def _reward_weights(self):
        """The reward adapter active and dropout off for the call, then the policy as it was."""
        was_training = self.model.training
        self.model.eval()
        if self.adapter:
            self.model.set_adapter(self.adapter, inference_mode=True)
        try:
            yield
        finally:
            if self.adapter:
                self.model.set_adapter(POLICY)
            self.model.train(was_training)


def build_reward_funcs(specs: list[str], policy, tokenizer, args) -> list[Callable]:
    """The callables TRL gets, in spec order; rm directories share the policy's base when both are LoRA."""
    funcs: list[Callable] = []
    for spec in specs:
        kind = spec_kind(spec)
        if kind == "rule":
            funcs.append(RuleRewardFunc(spec, parse_rule(spec, key="reward_funcs")))
        elif kind == "function":
            funcs.append(load_function(spec))
        else:
            funcs.append(_reward_model_func(spec, policy, tokenizer, args, index=len(funcs)))
        logger.info("Reward %d: %s (%s)", len(funcs), spec, kind)
    return funcs


def _reward_model_func(spec: str, policy, tokenizer, args, index: int) -> ValueHeadRewardFunc:
    from genie_core.model.value_head import (
        assert_reward_model_dir,
        hidden_size_of,
        load_value_head,
        reward_model_kind,
    )

    assert_reward_model_dir(spec, key="reward_funcs")
    name = f"rm_{Path(spec).name}"
    device = next(policy.parameters()).device
    if reward_model_kind(spec) == "lora" and hasattr(policy, "load_adapter") and _same_base(spec, args):
        adapter = REWARD_ADAPTER if index == 0 else f"{REWARD_ADAPTER}{index}"
        policy.load_adapter(spec, adapter_name=adapter, is_trainable=False)
        policy.set_adapter(POLICY)
        head = load_value_head(spec, hidden_size=hidden_size_of(policy)).to(device).requires_grad_(False)
        logger.info("Reward model %s: a LoRA adapter on the policy's base (one copy of the weights)", spec)
        return ValueHeadRewardFunc(name, policy, head, tokenizer, adapter)
    logger.info("Reward model %s: a separate frozen model", spec)
    model = load_reward_model(spec, tokenizer, args).to(device)
    return ValueHeadRewardFunc(name, model, model.v_head, tokenizer)


def _same_base(spec: str, args) -> bool:
    """A LoRA reward model shares the policy's weights only if it was trained over the adapters the policy merged."""
    from genie_core.model.value_head import read_value_head_metadata

    try:
        meta = read_value_head_metadata(spec)
    except Exception:  # an older head without metadata: assume the plain base
        meta = {}
    base = meta.get("base_model")
    if base and Path(base).name != Path(str(args.model.model_name_or_path)).name:
        logger.warning(
            "reward model %s was trained on %s; the policy base is %s", spec, base, args.model.model_name_or_path
        )
    theirs = json.loads(meta.get("merged_adapters", "[]") or "[]")
    ours = list(args.model.adapter_dirs or [])
    if ours and args.finetuning.resume_lora_training:
        ours = ours[:-1]  # the last adapter keeps training: it is the policy, not part of the base
    return [Path(p).resolve() for p in theirs] == [Path(p).resolve() for p in ours]


def load_reward_model(spec: str, tokenizer, args):
    """An rm output as a frozen model with ``v_head``: a LoRA one on its base with the adapters it was trained over."""
    from genie_core.model import load_model
    from genie_core.model.value_head import reward_checkpoint_chain, reward_model_kind

    finetuning = dataclasses.replace(args.finetuning, finetuning_type="lora", lora_target=None, additional_target=None)
    if reward_model_kind(spec) == "lora":
        model_args = dataclasses.replace(args.model, checkpoint_dir=",".join(reward_checkpoint_chain([spec])))
    else:
        model_args = dataclasses.replace(args.model, model_name_or_path=spec, checkpoint_dir=None)
    return load_model(tokenizer, model_args, finetuning, is_trainable=False, add_valuehead=True)

"""GRPO on TRL's GRPOTrainer: tokenizer -> template -> prompts (+ answers) -> policy -> rewards -> train -> save.

Each step samples ``num_generations`` replies per prompt, scores them with ``reward_funcs`` (rules, the user's Python
functions, rm stage outputs) and ``reward_model``, and raises the replies that beat their group's mean. Prompts are
rendered with our template and replies stop at its stop words, as in every other stage. With LoRA and ``grpo_beta``
> 0 the reference is the base with adapters off (no second copy of the model); when the run keeps training an
existing adapter, TRL keeps a frozen copy of it as the reference instead. Full and freeze tuning with ``grpo_beta``
> 0 load a frozen copy of the starting weights.

The rloo stage (``genie_core.stages.rloo``) is the same function on TRL's RLOOTrainer.
"""

from __future__ import annotations

import dataclasses

from transformers import set_seed
from trl import GRPOConfig, GRPOTrainer

from genie_core.data.tokenized import get_dataset
from genie_core.extras.errors import ConfigError
from genie_core.extras.logging import get_logger
from genie_core.model import load_model, load_tokenizer
from genie_core.rewards.functions import POLICY, build_reward_funcs, check_reward_funcs
from genie_core.stages.callbacks import LogCallback, StopOnSignal, quiet_progress
from genie_core.stages.common import prepare_output_dir, save_metrics
from genie_core.stages.trainer import train_and_save
from genie_core.template import get_template
from genie_core.tracking import tracking_callbacks

logger = get_logger(__name__)
PLOT_KEYS = ("loss", "reward", "kl")


def run_grpo(args) -> dict:
    return run_online(args, GenieGRPOTrainer, GRPOConfig)


def run_online(args, trainer_cls, config_cls) -> dict:
    """The grpo and rloo stages, top to bottom; they differ only in TRL's trainer and config."""
    stage = args.finetuning.stage
    scorers = reward_specs(args)
    check_reward_funcs(scorers, args.model)  # an import error or a wrong signature fails before any model loads
    config = online_config(args, config_cls)
    out = prepare_output_dir(args)
    tokenizer = load_tokenizer(args.model)
    template = get_template(args.data.template, tokenizer)
    template.fix_tokenizer(tokenizer)
    data = get_dataset(args, tokenizer, template, stage)
    if data.dropped:
        logger.warning("%d records dropped (see `genie data check`), first: %s", len(data.dropped), data.dropped[0])

    set_seed(args.training.seed)  # a new LoRA adapter is initialised randomly
    model = load_model(tokenizer, args.model, args.finetuning, is_trainable=True)
    model.generation_config.eos_token_id = template.get_stop_token_ids(tokenizer)  # replies end at the stop words
    trainer = trainer_cls(
        model=model,
        reward_funcs=build_reward_funcs(scorers, model, tokenizer, args),
        args=config,
        train_dataset=data.train,
        eval_dataset=data.eval,
        processing_class=tokenizer,
        callbacks=[LogCallback(args.training.output_dir), StopOnSignal(), *tracking_callbacks()],
    )
    drop_reference_copy(args, trainer.model)
    quiet_progress(trainer)

    results: dict = {"train": train_and_save(args, trainer, plot_keys=PLOT_KEYS)}
    if args.training.do_eval and data.eval is not None:
        results["eval"] = trainer.evaluate()
        save_metrics(out, "eval", results["eval"])
    return results


def reward_specs(args) -> list[str]:
    """``reward_funcs`` then ``reward_model`` (which a pipeline fills in with an rm stage's output)."""
    return args.grpo.reward_specs + ([args.finetuning.reward_model] if args.finetuning.reward_model else [])


def online_config(args, config_cls):
    """Our training arguments plus the grpo/rloo ones, as TRL's config (keeping our defaults over TRL's).

    Sampling settings (temperature, top_p, top_k, repetition_penalty) are TRL's unless the config sets them: the
    chat defaults (top_p 0.7) would sample from a narrower distribution than the one the log-probs are taken from.
    """
    t, g = args.training, args.grpo
    accepted = {fl.name for fl in dataclasses.fields(config_cls) if fl.init}
    values = {k: v for k, v in t.to_dict().items() if k in accepted}
    values.update(
        num_generations=g.num_generations,
        max_completion_length=g.max_completion_length,
        num_iterations=g.num_iterations,
        epsilon=g.grpo_epsilon,
        epsilon_high=g.grpo_epsilon_high,
        reward_weights=g.weights,
        bf16=bool(t.bf16),  # TRL would turn bf16 on when unset
        gradient_checkpointing=bool(t.gradient_checkpointing),  # TRL's default is on
        disable_dropout=True,  # the log-probs of sampling and of the update must describe the same model
    )
    if g.grpo_beta is not None:
        values["beta"] = g.grpo_beta
    if "loss_type" in accepted:
        values.update(loss_type=g.grpo_loss_type, scale_rewards=g.scale_rewards)
    for key in ("temperature", "top_p", "top_k", "repetition_penalty"):
        if key in args.raw:
            values[key] = getattr(args.generating, key)
    try:
        return config_cls(**values)
    except ValueError as exc:  # TRL's batch/generation checks, raised here before any model loads
        raise ConfigError(f"stage {args.finetuning.stage}: {exc}") from None


def drop_reference_copy(args, model) -> None:
    """TRL copies a PEFT policy adapter into a frozen ``ref`` adapter when grpo_beta > 0. For a new adapter (LoRA B
    starts at zero) that copy equals the base with adapters off, so it is dropped: it costs memory and would be saved
    next to the trained adapter. A resumed adapter keeps it: the reference is then the model the run started from."""
    resumed = bool(args.model.adapter_dirs) and args.finetuning.resume_lora_training
    if hasattr(model, "peft_config") and "ref" in model.peft_config and not resumed:
        model.delete_adapter("ref")
        model.set_adapter(POLICY)


class TemplatePrompts:
    """Trainer hooks shared by grpo and rloo: prompts come rendered by our template; only the policy is saved.

    The prompt text already holds the template's special tokens (and bos where the template puts one), so it is
    tokenized without adding any. Other adapters on the policy's model (a reward model's, TRL's frozen ``ref`` copy)
    are inputs: they are not saved, and a resumed run rebuilds them the way the first run did.
    """

    def _tokenize_prompts(self, prompts: list):
        if prompts and isinstance(prompts[0], str):
            return self.processing_class(text=list(prompts), add_special_tokens=False)["input_ids"], None, {}
        return super()._tokenize_prompts(prompts)

    def _save(self, output_dir: str | None = None, state_dict=None):
        model = self.accelerator.unwrap_model(self.model)
        configs = getattr(model, "peft_config", {})
        frozen = {name: configs.pop(name) for name in list(configs) if name != POLICY}
        try:
            super()._save(output_dir, state_dict=state_dict)
        finally:
            configs.update(frozen)


class GenieGRPOTrainer(TemplatePrompts, GRPOTrainer):
    """GRPOTrainer on prompts rendered by our template."""

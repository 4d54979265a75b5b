"""Direct preference optimisation on TRL's DPOTrainer: tokenizer -> template -> pairs -> policy (+ reference) -> save.

The reference model is what the policy is kept close to. With LoRA it is the same weights with the adapter switched
off, so no second copy of the model is held: start from ``checkpoint_dir <sft adapter>`` with
``resume_lora_training false`` and the SFT model (merged into the base) is the reference. Full and freeze tuning load
a second, frozen copy of the starting weights.

``pref_loss: orpo`` and ``pref_loss: simpo`` need no reference at all: none is loaded, and with LoRA no adapters-off
forward runs (see ``reference_free.py``).
"""

from __future__ import annotations

import dataclasses

import torch
from transformers import set_seed
from trl import DPOConfig, DPOTrainer

from genie_core.data.collator import drop_text_columns
from genie_core.data.tokenized import get_dataset
from genie_core.extras.logging import get_logger
from genie_core.model import load_model, load_tokenizer
from genie_core.stages.callbacks import LogCallback, StopOnSignal, quiet_progress
from genie_core.stages.common import prepare_output_dir, save_metrics
from genie_core.stages.reference_free import REFERENCE_FREE, orpo_loss, simpo_loss
from genie_core.stages.trainer import train_and_save
from genie_core.template import get_template
from genie_core.tracking import tracking_callbacks

logger = get_logger(__name__)


def run_dpo(args) -> dict:
    out = prepare_output_dir(args)
    tokenizer = load_tokenizer(args.model)
    template = get_template(args.data.template, tokenizer)
    template.fix_tokenizer(tokenizer)
    data = get_dataset(args, tokenizer, template, "dpo")
    if data.dropped:
        logger.warning("%d records dropped (see `genie data check`), first: %s", len(data.dropped), data.dropped[0])

    trainer = build_dpo_trainer(args, tokenizer, data)

    results: dict = {"train": train_and_save(args, trainer)}
    if args.training.do_eval and data.eval is not None:
        results["eval"] = trainer.evaluate()
        save_metrics(out, "eval", results["eval"])
    return results


def build_dpo_trainer(args, tokenizer, data) -> GenieDPOTrainer:
    return preference_trainer(
        GenieDPOTrainer, dpo_config(args), args, tokenizer, data, simpo_gamma=args.finetuning.simpo_gamma
    )


def preference_trainer(trainer_cls, config, args, tokenizer, data, **extra):
    """Policy, reference (a frozen copy for full/freeze, adapters-off for LoRA) and a TRL preference trainer (DPO,
    KTO) on the rows our processors tokenized."""
    set_seed(args.training.seed)  # a new LoRA adapter is initialised randomly
    model = load_model(tokenizer, args.model, args.finetuning, is_trainable=True)
    trainer = trainer_cls(
        model=model,
        ref_model=load_reference(args, tokenizer),
        args=config,
        train_dataset=drop_text_columns(data.train),
        eval_dataset=drop_text_columns(data.eval) if data.eval is not None else None,
        processing_class=tokenizer,
        callbacks=[LogCallback(args.training.output_dir), StopOnSignal(), *tracking_callbacks()],
        **extra,
    )
    use_disabled_adapter_as_reference(trainer.model)
    quiet_progress(trainer)
    return trainer


def load_reference(args, tokenizer):
    """LoRA needs no reference copy (adapters off = the starting model); full/freeze get a frozen copy.

    Shared by the dpo and kto stages; ORPO and SimPO (dpo with a reference-free pref_loss) get none.
    """
    stage = args.finetuning.stage.upper()
    if args.finetuning.stage == "dpo" and args.finetuning.pref_loss in REFERENCE_FREE:
        return None
    if args.finetuning.finetuning_type == "lora":
        if args.model.adapter_dirs and args.finetuning.resume_lora_training:
            logger.warning(
                "%s keeps training adapter %s; the reference is the model without it. To make that adapter's model "
                "the reference, set resume_lora_training: false (it is merged and a new adapter trains on top).",
                stage,
                args.model.adapter_dirs[-1],
            )
        return None
    logger.info("Loading a frozen reference model for %s %s", args.finetuning.finetuning_type, stage)
    return load_model(tokenizer, args.model, args.finetuning, is_trainable=False)


def use_disabled_adapter_as_reference(model) -> None:
    """TRL copies a PEFT model's adapter into a frozen ``ref`` adapter; drop it so the reference is adapters-off.

    For a new adapter both give the same log-probs (LoRA B starts at zero), but the copy costs memory and would be
    saved next to the trained adapter.
    """
    if hasattr(model, "peft_config") and "ref" in model.peft_config:
        model.delete_adapter("ref")
        model.set_adapter("default")


def dpo_config(args) -> DPOConfig:
    """Our training arguments plus the DPO ones, as TRL's config (keeping our defaults over TRL's)."""
    t, f = args.training, args.finetuning
    accepted = {fl.name for fl in dataclasses.fields(DPOConfig) if fl.init}
    values = {k: v for k, v in t.to_dict().items() if k in accepted}
    losses, weights = [f.pref_loss], [1.0]
    if f.dpo_ftx > 0:
        losses.append("sft")
        weights.append(f.dpo_ftx)
    values.update(
        beta=f.dpo_beta,
        loss_type=losses,
        loss_weights=weights,
        label_smoothing=f.dpo_label_smoothing,
        max_length=None,  # rows are already cut to cutoff_len by the processor
        bf16=bool(t.bf16),  # TRL would turn bf16 on when unset
        gradient_checkpointing=bool(t.gradient_checkpointing),
        prediction_loss_only=True,  # eval metrics come from the DPO loss; logits would cost an extra forward
        # reference-free losses: the only switch that keeps TRL from loading a reference copy for full/freeze tuning;
        # GenieDPOTrainer then skips the precompute itself
        precompute_ref_log_probs=f.pref_loss in REFERENCE_FREE,
    )
    if groups_by_length(args):
        values["train_sampling_strategy"] = "group_by_length"
        logger.info("Preference batches grouped by length (group_by_length: false for random batches).")
    return DPOConfig(**values)


def groups_by_length(args) -> bool:
    """Pairs of similar length share a batch unless the user chose the batching: TRL pads each batch to its
    longest chosen or rejected reply, and cannot train padding-free (its padding_free is disabled in 1.16)."""
    if {"group_by_length", "train_sampling_strategy", "disable_shuffling"} & set(args.raw):
        return bool(args.data.group_by_length)
    return True


class GenieDPOTrainer(DPOTrainer):
    """DPOTrainer fed with rows our processors already tokenized (prompt_ids / chosen_ids / rejected_ids).

    It also computes the reference-free ORPO and SimPO losses: TRL 1.16's DPOTrainer has none, and its CPO/ORPO
    trainers (trl.experimental) tokenize text columns themselves, so they cannot take these rows. Only the loss is
    replaced; TRL's collator, fused log-prob head and metric logging stay.
    """

    def __init__(self, *args, simpo_gamma: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        self.simpo_gamma = simpo_gamma
        if self.reference_free:
            self.precompute_ref_logps = False  # set only to keep TRL from loading a reference; nothing to read

    def _get_train_sampler(self, train_dataset=None):
        """Length groups from the pair columns: the rows carry no ``input_ids`` for transformers to measure."""
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy != "group_by_length" or dataset is None:
            return super()._get_train_sampler(train_dataset)
        return self._length_groups(dataset, self.args.train_batch_size * self.args.gradient_accumulation_steps)

    def _get_eval_sampler(self, eval_dataset):
        """Evaluation groups by length too when training does: transformers would measure ``input_ids`` and fail."""
        if self.args.train_sampling_strategy != "group_by_length" or eval_dataset is None:
            return super()._get_eval_sampler(eval_dataset)
        return self._length_groups(eval_dataset, self.args.eval_batch_size)

    def _length_groups(self, dataset, size: int):
        import torch
        from transformers.trainer_pt_utils import LengthGroupedSampler

        columns = (dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"])
        lengths = [len(p) + max(len(c), len(r)) for p, c, r in zip(*columns)]
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return LengthGroupedSampler(
            size, dataset=dataset, lengths=lengths, generator=torch.Generator().manual_seed(seed)
        )

    @property
    def reference_free(self) -> bool:
        return self.args.loss_type[0] in REFERENCE_FREE

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if "prompt_ids" in dataset.column_names:
            return dataset
        return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    def _precompute_ref_logps(self, dataset, name, batch_size):
        return dataset if self.reference_free else super()._precompute_ref_logps(dataset, name, batch_size)

    def _compute_loss(self, model, inputs, return_outputs):
        if not self.reference_free:
            return super()._compute_loss(model, inputs, return_outputs)
        mask = inputs["completion_mask"]
        kwargs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
        if self.aux_loss_enabled:
            kwargs["output_router_logits"] = True
        labels = inputs["input_ids"].masked_fill(mask == 0, -100)
        outputs = model(**kwargs, labels=labels, use_cache=False, fused_lm_head=True)
        mask = mask[:, 1:]
        logps = (outputs.log_probs[:, -mask.size(1) :] * mask).sum(-1)
        mean_logps = logps / mask.sum(-1).clamp(min=1)
        chosen, rejected = mean_logps.chunk(2)  # the batch is [chosen..., rejected...]

        loss, extra = 0.0, {}
        for loss_type, weight in zip(self.loss_types, self.loss_weights, strict=True):
            if loss_type == "orpo":
                per_pair, log_odds = orpo_loss(chosen, rejected, self.beta)
                extra = {"nll_loss": -chosen.detach().mean(), "log_odds_ratio": log_odds.detach().mean()}
            elif loss_type == "simpo":
                per_pair = simpo_loss(chosen, rejected, self.beta, self.simpo_gamma, self.label_smoothing)
            else:  # "sft" (dpo_ftx): the chosen replies' mean token NLL
                per_pair = -chosen
            loss = loss + weight * per_pair.mean()
        if self.aux_loss_enabled:
            loss = loss + self.router_aux_loss_coef * outputs.aux_loss
        self._log_reference_free(chosen.detach(), rejected.detach(), logps.detach(), extra)
        return (loss, outputs) if return_outputs else loss

    def _log_reference_free(self, chosen, rejected, logps, extra: dict) -> None:
        """DPO's metric names, with the reward ``beta * mean log-prob`` (TRL's ORPO/CPO convention)."""
        metrics = self._metrics["train" if self.model.training else "eval"]
        chosen_rewards, rejected_rewards = self.beta * chosen, self.beta * rejected
        chosen_logps, rejected_logps = logps.chunk(2)
        values = {
            "rewards/chosen": chosen_rewards,
            "rewards/rejected": rejected_rewards,
            "rewards/accuracies": (chosen_rewards > rejected_rewards).float(),
            "rewards/margins": chosen_rewards - rejected_rewards,
            "logps/chosen": chosen_logps,
            "logps/rejected": rejected_logps,
            **extra,
        }
        for key, value in values.items():
            metrics[key].append(self.accelerator.gather_for_metrics(torch.atleast_1d(value)).mean().item())

"""Direct preference optimisation on TRL's DPOTrainer: tokenizer -> template -> pairs -> policy (+ reference) -> save.

The reference model is what the policy is kept close to. With LoRA it is the same weights with the adapter switched
off, so no second copy of the model is held: start from ``checkpoint_dir <sft adapter>`` with
``resume_lora_training false`` and the SFT model (merged into the base) is the reference. Full and freeze tuning load
a second, frozen copy of the starting weights.
"""

from __future__ import annotations

import dataclasses

from transformers import set_seed
from trl import DPOConfig, DPOTrainer

from genie_core.data.collator import drop_text_columns
from genie_core.data.tokenized import get_dataset
from genie_core.extras.logging import get_logger
from genie_core.model import load_model, load_tokenizer
from genie_core.stages.callbacks import LogCallback, StopOnSignal, quiet_progress
from genie_core.stages.common import prepare_output_dir, save_metrics
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
    """Policy, reference (a frozen copy for full/freeze, adapters-off for LoRA) and TRL's trainer."""
    set_seed(args.training.seed)  # a new LoRA adapter is initialised randomly
    model = load_model(tokenizer, args.model, args.finetuning, is_trainable=True)
    trainer = GenieDPOTrainer(
        model=model,
        ref_model=load_reference(args, tokenizer),
        args=dpo_config(args),
        train_dataset=drop_text_columns(data.train),
        eval_dataset=drop_text_columns(data.eval) if data.eval is not None else None,
        processing_class=tokenizer,
        callbacks=[LogCallback(args.training.output_dir), StopOnSignal(), *tracking_callbacks()],
    )
    use_disabled_adapter_as_reference(trainer.model)
    quiet_progress(trainer)
    return trainer


def load_reference(args, tokenizer):
    """LoRA needs no reference copy (adapters off = the starting model); full/freeze get a frozen copy."""
    if args.finetuning.finetuning_type == "lora":
        if args.model.adapter_dirs and args.finetuning.resume_lora_training:
            logger.warning(
                "DPO keeps training adapter %s; the reference is the model without it. To make that adapter's model "
                "the reference, set resume_lora_training: false (it is merged and a new adapter trains on top).",
                args.model.adapter_dirs[-1],
            )
        return None
    logger.info("Loading a frozen reference model for %s DPO", args.finetuning.finetuning_type)
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
    losses, weights = [f.dpo_loss], [1.0]
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
    )
    return DPOConfig(**values)


class GenieDPOTrainer(DPOTrainer):
    """DPOTrainer fed with rows our processors already tokenized (prompt_ids / chosen_ids / rejected_ids)."""

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if "prompt_ids" in dataset.column_names:
            return dataset
        return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

"""KTO on TRL's KTOTrainer: tokenizer -> template -> tagged replies -> policy (+ reference) -> save.

KTO (Ethayarajh et al., 2024) learns from single replies tagged desirable or undesirable (the dataset's ``kto_tag``
column), so it needs no pairs. The reference is chosen as in the dpo stage: with LoRA the same weights with the
adapter off, with full/freeze tuning a frozen copy. Its KL term scores each prompt with another row's reply from the
same batch, so rows are shuffled once (seeded) and then read in order, and a batch needs at least two rows.
"""

from __future__ import annotations

import dataclasses

from trl import KTOConfig, KTOTrainer

from genie_core.data.tokenized import get_dataset
from genie_core.extras.logging import get_logger
from genie_core.model import load_tokenizer
from genie_core.stages.common import prepare_output_dir, save_metrics
from genie_core.stages.dpo import preference_trainer
from genie_core.stages.trainer import train_and_save
from genie_core.template import get_template

logger = get_logger(__name__)


def run_kto(args) -> dict:
    out = prepare_output_dir(args)
    tokenizer = load_tokenizer(args.model)
    template = get_template(args.data.template, tokenizer)
    template.fix_tokenizer(tokenizer)
    data = get_dataset(args, tokenizer, template, "kto")
    if data.dropped:
        logger.warning("%d records dropped (see `genie data check`), first: %s", len(data.dropped), data.dropped[0])
    desirable = sum(data.train["label"])
    logger.info("KTO on %d desirable and %d undesirable replies", desirable, len(data.train) - desirable)

    trainer = build_kto_trainer(args, tokenizer, data)

    results: dict = {"train": train_and_save(args, trainer)}
    if args.training.do_eval and data.eval is not None:
        results["eval"] = trainer.evaluate()
        save_metrics(out, "eval", results["eval"])
    return results


def build_kto_trainer(args, tokenizer, data) -> GenieKTOTrainer:
    return preference_trainer(GenieKTOTrainer, kto_config(args), args, tokenizer, data)


def kto_config(args) -> KTOConfig:
    """Our training arguments plus the KTO ones, as TRL's config (keeping our defaults over TRL's)."""
    t, f = args.training, args.finetuning
    accepted = {fl.name for fl in dataclasses.fields(KTOConfig) if fl.init}
    values = {k: v for k, v in t.to_dict().items() if k in accepted}
    values.update(
        beta=f.kto_beta if f.kto_beta is not None else f.dpo_beta,
        desirable_weight=f.kto_desirable_weight,
        undesirable_weight=f.kto_undesirable_weight,
        train_sampling_strategy="sequential",  # the KL pairing is fixed per batch; rows are shuffled beforehand
        max_length=None,  # rows are already cut to cutoff_len by the processor
        bf16=bool(t.bf16),  # TRL would turn bf16 on when unset
        gradient_checkpointing=bool(t.gradient_checkpointing),
        prediction_loss_only=True,  # eval metrics come from the KTO loss; logits would cost an extra forward
    )
    return KTOConfig(**values)


class GenieKTOTrainer(KTOTrainer):
    """KTOTrainer fed with rows our processor already tokenized (prompt_ids / completion_ids / label)."""

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if "prompt_ids" not in dataset.column_names:
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        # one seeded shuffle: batches mix desirable and undesirable rows, and a resumed run reads the same order
        dataset = dataset.shuffle(seed=args.seed).flatten_indices()
        if self.calculate_KL:  # each row's KL reply is the previous row's, rotating inside every training batch
            dataset = dataset.map(_rotate_completions, batched=True, batch_size=args.per_device_train_batch_size)
        return dataset


def _rotate_completions(batch: dict) -> dict:
    completions = batch["completion_ids"]
    return {**batch, "KL_completion_ids": completions[-1:] + completions[:-1]}

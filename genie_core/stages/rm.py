"""Reward modelling: tokenizer -> template -> preference pairs -> model + value head -> pairwise loss -> save.

The reward model is the causal LM (usually with a LoRA adapter over the merged SFT model) plus a scalar value head.
Its output directory holds the adapter (or full model) and ``value_head.safetensors`` side by side, so the PPO stage
can load it as a second adapter on the base it already holds, and every checkpoint carries the head too, so a killed
run resumes with the head it had.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import Trainer, set_seed

from genie_core.data.collator import PairwiseCollator, drop_text_columns
from genie_core.data.tokenized import get_dataset
from genie_core.extras.logging import get_logger, is_main_process
from genie_core.model import load_model, load_tokenizer
from genie_core.model.value_head import VALUE_HEAD_FILE, head_metadata, load_value_head, save_value_head
from genie_core.rewards.pairwise import (
    PAIR_SCORES_FILE,
    compute_pairwise_metrics,
    pair_metrics,
    pairwise_loss,
    pairwise_scores,
    score_dataset,
)
from genie_core.stages.callbacks import LogCallback, StopOnSignal, quiet_progress
from genie_core.stages.common import prepare_output_dir, save_metrics
from genie_core.stages.trainer import train_and_save
from genie_core.template import get_template
from genie_core.tracking import tracking_callbacks

logger = get_logger(__name__)


def run_rm(args) -> dict:
    out = prepare_output_dir(args)
    tokenizer = load_tokenizer(args.model)
    template = get_template(args.data.template, tokenizer)
    template.fix_tokenizer(tokenizer)
    data = get_dataset(args, tokenizer, template, "rm")
    if data.dropped:
        logger.warning("%d records dropped (see `genie data check`), first: %s", len(data.dropped), data.dropped[0])
    set_seed(args.training.seed)  # the value head (and a new adapter) start from random weights
    model = load_model(tokenizer, args.model, args.finetuning, is_trainable=args.training.do_train, add_valuehead=True)
    trainer = PairwiseTrainer(
        model=model,
        args=args.training,
        train_dataset=drop_text_columns(data.train) if data.train is not None else None,
        eval_dataset=drop_text_columns(data.eval) if data.eval is not None else None,
        data_collator=PairwiseCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        compute_metrics=compute_pairwise_metrics,
        callbacks=[LogCallback(args.training.output_dir), StopOnSignal(), *tracking_callbacks()],
    )
    trainer.head_metadata = head_metadata(args.model, args.finetuning)
    quiet_progress(trainer)

    results: dict = {}
    if args.training.do_train:
        results["train"] = train_and_save(args, trainer)
    if args.training.do_eval and data.eval is not None:
        results["eval"] = evaluate_pairs(args, trainer.model, tokenizer, data.eval, out)
    return results


def evaluate_pairs(args, model, tokenizer, dataset, out: Path, split: str = "eval") -> dict:
    """Score every held-out pair: accuracy and margins to ``<split>_results.json``, each pair to a JSONL file."""
    if not is_main_process():
        return {}
    rows = score_dataset(
        model, model.v_head, dataset, tokenizer.pad_token_id, batch_size=args.training.per_device_eval_batch_size
    )
    metrics = {
        f"{split}_{k}": v
        for k, v in pair_metrics([r["chosen_score"] for r in rows], [r["rejected_score"] for r in rows]).items()
    }
    path = out / PAIR_SCORES_FILE
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)
    save_metrics(out, split, metrics)
    return metrics


class PairwiseTrainer(Trainer):
    """A Trainer whose loss is the pairwise reward loss and whose saves carry the value head.

    The hooks are the ones a value head needs: the loss, the eval step (scores instead of logits), and saving /
    restoring the head next to the adapter or model that transformers already handles.
    """

    head_metadata: dict[str, str] | None = None

    @property
    def head(self):
        return self.accelerator.unwrap_model(self.model).v_head

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        chosen, rejected = pairwise_scores(model, self.head, inputs["input_ids"], inputs["attention_mask"])
        loss = pairwise_loss(chosen, rejected)
        if return_outputs:
            return loss, {"chosen": chosen, "rejected": rejected}
        return loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss, scores = self.compute_loss(model, inputs, return_outputs=True)
        if prediction_loss_only:
            return loss.detach(), None, None
        pairs = torch.stack([scores["chosen"], scores["rejected"]], dim=-1).detach()
        return loss.detach(), pairs, torch.zeros(pairs.shape[0], dtype=torch.long, device=pairs.device)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir or self.args.output_dir
        unwrapped = self.accelerator.unwrap_model(self.model)
        if not hasattr(unwrapped, "peft_config"):
            # Full/freeze: keep the head out of model.safetensors so the directory loads as a plain causal LM.
            state_dict = state_dict if state_dict is not None else unwrapped.state_dict()
            state_dict = {k: v for k, v in state_dict.items() if not k.startswith("v_head.")}
        super()._save(output_dir, state_dict=state_dict)
        if self.args.should_save:
            save_value_head(self.head, output_dir, self.head_metadata)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        head_file = Path(resume_from_checkpoint) / VALUE_HEAD_FILE
        if head_file.is_file():
            saved = load_value_head(head_file, hidden_size=self.head.hidden_size)
            self.head.load_state_dict(saved.state_dict())
            logger.info("Value head restored from %s", head_file)
        else:
            logger.warning("%s has no %s; the value head starts fresh.", resume_from_checkpoint, VALUE_HEAD_FILE)

    def _issue_warnings_after_load(self, load_result) -> None:
        missing = [k for k in load_result.missing_keys if not k.startswith("v_head.")]
        super()._issue_warnings_after_load(load_result._replace(missing_keys=missing))

"""Building and driving a transformers Trainer the same way for every token-level stage."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import torch
from transformers import Trainer

from genie_core.data.collator import PackingCollator, PadCollator, drop_text_columns
from genie_core.data.processors import IGNORE_INDEX
from genie_core.extras.logging import get_logger, is_main_process
from genie_core.extras.supervise import StopRequested, stop_requested
from genie_core.model.value_head import keeps_logit_positions, unwrap_model
from genie_core.stages.callbacks import LogCallback, StopOnSignal, quiet_progress
from genie_core.stages.common import resume_checkpoint, save_metrics
from genie_core.stages.device_defaults import resolve_gradient_checkpointing, step_tokens
from genie_core.stages.plotting import plot_loss
from genie_core.tracking import tracking_callbacks

logger = get_logger(__name__)


# project to the vocabulary only where labels are scored when that skips at least this share of the positions
_MIN_SKIPPED = 0.1


def scored_positions(labels: torch.Tensor | None) -> torch.Tensor | None:
    """Positions whose next token is a label in some row (what the loss reads), or None when nearly all are."""
    if labels is None or labels.dim() != 2 or labels.shape[1] < 2:
        return None
    keep = (labels[:, 1:] != IGNORE_INDEX).any(0).nonzero().squeeze(1)
    if len(keep) == 0 or len(keep) > (1 - _MIN_SKIPPED) * (labels.shape[1] - 1):
        return None
    return keep


def reads_shift_labels(model_class: type) -> bool:
    """Whether the model class's forward hands its keyword arguments to ``self.loss_function`` (transformers' causal-LM
    loss, which takes ``shift_labels``); some causal LMs compute their own loss from the full ``labels``."""
    import inspect

    try:
        source = inspect.getsource(model_class.forward)
    except (OSError, TypeError):
        return False
    return "self.loss_function(" in source and "**kwargs" in source


SCORED_KEY = "genie_scored_positions"


class _WithScoredPositions:
    """A collator whose batches also carry ``scored_positions`` of their labels (when some positions are skipped)."""

    def __init__(self, collate) -> None:
        self.collate = collate

    def __call__(self, features):
        batch = self.collate(features)
        keep = scored_positions(batch.get("labels"))
        if keep is not None:
            batch[SCORED_KEY] = keep
        return batch


class LabelledLogitsTrainer(Trainer):
    """A Trainer whose training forward projects to the vocabulary only at positions the loss scores.

    The prompt's positions carry no label in SFT, yet the model's head turns each of them into a vocabulary-wide
    row of logits (49k floats for SmolLM2) that the loss then ignores, forward and backward. Here the forward keeps
    only the scored positions (``logits_to_keep`` as an index) and the loss reads the matching next tokens
    (``shift_labels``): the same loss, without the wasted rows. Models that cannot take an index, a label smoother
    or a custom loss function keep the Trainer's own path, and so does evaluation (its logits may feed metrics).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._keeps_positions = (
            keeps_logit_positions(self.model)
            and reads_shift_labels(type(unwrap_model(self.model)))
            and self.args.n_gpu <= 1  # DataParallel would split the index tensor across devices like a batch
            and self.label_smoother is None
            and self.compute_loss_func is None
            and getattr(self.accelerator, "parallelism_config", None) is None  # context parallel shifts its own
        )
        self._positions_on_host = False

    def get_train_dataloader(self):
        """The training collator also finds the scored positions, on the host: found on the GPU, they would cost
        a device sync before every forward."""
        dispatched = getattr(self.args.accelerator_config, "dispatch_batches", None)
        if not self._keeps_positions or dispatched:  # a dispatcher would slice the positions like a batch
            return super().get_train_dataloader()
        self._positions_on_host = True  # a batch without them scores (nearly) every position: nothing to find
        collate = self.data_collator
        self.data_collator = _WithScoredPositions(collate)
        try:
            return super().get_train_dataloader()
        finally:
            self.data_collator = collate

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        keep = inputs.pop(SCORED_KEY, None)  # the training collator's, found on the host
        usable = self._keeps_positions and model.training and "shift_labels" not in inputs
        if usable and keep is None and not self._positions_on_host:
            keep = scored_positions(inputs.get("labels"))
        if keep is not None and usable:
            inputs = {**inputs, "logits_to_keep": keep, "shift_labels": inputs["labels"][:, keep + 1]}
        return super().compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )


def build_trainer(args, model, tokenizer, data, packing: bool = False, extra_callbacks=()) -> Trainer:
    training = args.training
    if args.data.group_by_length and not packing:
        training.train_sampling_strategy = "group_by_length"
    collator = PackingCollator() if packing else PadCollator(tokenizer.pad_token_id, pad_to_multiple_of=None)
    trainer = LabelledLogitsTrainer(
        model=model,
        args=training,
        train_dataset=drop_text_columns(data.train) if data.train is not None else None,
        eval_dataset=drop_text_columns(data.eval) if data.eval is not None else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[LogCallback(training.output_dir), StopOnSignal(), *tracking_callbacks(), *extra_callbacks],
    )
    quiet_progress(trainer)
    return trainer


def train_and_save(args, trainer: Trainer, plot_keys: tuple[str, ...] = ("loss", "eval_loss")) -> dict:
    """Train (resuming from the last complete checkpoint), save the final model atomically, plot ``plot_keys``."""
    out = Path(args.training.output_dir)
    note = resolve_gradient_checkpointing(args, trainer.args, trainer.model, step_tokens(args))
    if note:
        logger.info("Device default: %s.", note)
    result = trainer.train(resume_from_checkpoint=resume_checkpoint(args))
    if stop_requested():
        raise StopRequested(f"stopped after step {trainer.state.global_step}, with a checkpoint saved")
    save_final_model(trainer, out)
    trainer.save_state()
    metrics = dict(result.metrics)
    save_metrics(out, "train", metrics)
    if args.finetuning.plot_loss and is_main_process():
        plot_loss(out, keys=plot_keys)
    return metrics


def save_final_model(trainer: Trainer, out: Path) -> None:
    """Save into a temp dir, then move the files into place so a crash never leaves half a model."""
    tmp = out / ".tmp-final"
    if is_main_process():
        shutil.rmtree(tmp, ignore_errors=True)
    trainer.save_model(str(tmp))
    if not is_main_process():
        return
    for item in tmp.iterdir():
        target = out / item.name
        if target.is_dir():
            shutil.rmtree(target)
        item.replace(target)
    tmp.rmdir()
    logger.info("Model saved to %s", out)


def evaluate_loss(args, trainer: Trainer) -> dict:
    metrics = trainer.evaluate()
    if "eval_loss" in metrics:
        try:
            metrics["perplexity"] = math.exp(metrics["eval_loss"])
        except OverflowError:
            metrics["perplexity"] = float("inf")
    save_metrics(args.training.output_dir, "eval", metrics)
    return metrics

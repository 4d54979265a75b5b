"""Building and driving a transformers Trainer the same way for every token-level stage."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from transformers import Trainer

from genie_core.data.collator import PackingCollator, PadCollator, drop_text_columns
from genie_core.extras.logging import get_logger, is_main_process
from genie_core.extras.supervise import StopRequested, stop_requested
from genie_core.stages.callbacks import LogCallback, StopOnSignal, quiet_progress
from genie_core.stages.common import resume_checkpoint, save_metrics
from genie_core.stages.device_defaults import resolve_gradient_checkpointing, step_tokens
from genie_core.stages.plotting import plot_loss
from genie_core.tracking import tracking_callbacks

logger = get_logger(__name__)


def build_trainer(args, model, tokenizer, data, packing: bool = False, extra_callbacks=()) -> Trainer:
    training = args.training
    if args.data.group_by_length and not packing:
        training.train_sampling_strategy = "group_by_length"
    collator = PackingCollator() if packing else PadCollator(tokenizer.pad_token_id, pad_to_multiple_of=None)
    trainer = Trainer(
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

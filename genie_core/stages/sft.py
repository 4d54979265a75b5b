"""Supervised fine-tuning: tokenizer -> template -> data -> model -> train/eval/predict -> save."""

from __future__ import annotations

from genie_core.data.tokenized import get_dataset
from genie_core.eval.metrics import compute_generation_metrics
from genie_core.eval.predict import generate_predictions, write_predictions
from genie_core.extras.logging import get_logger, is_main_process
from genie_core.model import load_model, load_tokenizer
from genie_core.stages.common import prepare_output_dir, save_metrics
from genie_core.stages.packing import choose_batching
from genie_core.stages.trainer import build_trainer, evaluate_loss, train_and_save
from genie_core.template import get_template

logger = get_logger(__name__)


def run_sft(args) -> dict:
    out = prepare_output_dir(args)
    tokenizer = load_tokenizer(args.model)
    template = get_template(args.data.template, tokenizer)
    template.fix_tokenizer(tokenizer)
    data = get_dataset(args, tokenizer, template, "sft")
    if data.dropped:
        logger.warning("%d records dropped (see `genie data check`), first: %s", len(data.dropped), data.dropped[0])
    model = load_model(tokenizer, args.model, args.finetuning, is_trainable=args.training.do_train)
    # on by default where it changes no example's loss (on a GPU, where it is also the faster batching)
    packing = choose_batching(args, model)
    trainer = build_trainer(args, model, tokenizer, data, packing=packing)

    results: dict = {}
    if args.training.do_train:
        results["train"] = train_and_save(args, trainer)
    if args.training.do_eval and data.eval is not None:
        results["eval"] = evaluate_loss(args, trainer)
    if data.predict is not None and is_main_process():
        split = "predict" if args.training.do_predict else "eval"
        results[split] = predict(args, trainer.model, tokenizer, template, data.predict, out, split)
    return results


def predict(args, model, tokenizer, template, dataset, out, split: str) -> dict:
    """Generate for every held-out prompt, write the predictions and BLEU/ROUGE scores."""
    rows = generate_predictions(
        model,
        tokenizer,
        template,
        dataset,
        args.generating,
        batch_size=args.training.per_device_eval_batch_size,
        max_new_tokens=args.data.max_target_length,
    )
    write_predictions(out, rows)
    metrics = compute_generation_metrics([r["predict"] for r in rows], [r["label"] for r in rows])
    metrics = {f"{split}_{k}": v for k, v in metrics.items()}
    metrics[f"{split}_samples"] = len(rows)
    save_metrics(out, split, metrics)
    return metrics

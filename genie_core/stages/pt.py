"""Pre-training (continued): packed text blocks, causal LM loss on every token."""

from __future__ import annotations

from genie_core.data.tokenized import get_dataset
from genie_core.model import load_model, load_tokenizer
from genie_core.stages.common import prepare_output_dir
from genie_core.stages.trainer import build_trainer, evaluate_loss, train_and_save
from genie_core.template import get_template


def run_pt(args) -> dict:
    prepare_output_dir(args)
    tokenizer = load_tokenizer(args.model)
    # pt only needs the template to make the tokenizer usable (pad/eos); any template works
    template = get_template(args.data.template or "default", tokenizer)
    template.fix_tokenizer(tokenizer)
    data = get_dataset(args, tokenizer, template, "pt")
    model = load_model(tokenizer, args.model, args.finetuning, is_trainable=args.training.do_train)
    trainer = build_trainer(args, model, tokenizer, data)

    results: dict = {}
    if args.training.do_train:
        results["train"] = train_and_save(args, trainer)
    if args.training.do_eval and data.eval is not None:
        results["eval"] = evaluate_loss(args, trainer)
    return results

"""Child entry point of the tokenize task: ``python -m genie_core.pipeline.tokenize_child <genie_config.yaml>``.

Fills the tokenized-dataset Arrow cache for the stage the config describes (the same key the training child
computes), so the training child loads it memory-mapped instead of tokenizing.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m genie_core.pipeline.tokenize_child <genie_config.yaml>", file=sys.stderr)
        return 2
    from genie_core.extras.env import apply_quiet_env

    apply_quiet_env()
    from genie_core.data.tokenized import get_dataset
    from genie_core.extras.errors import GenieError
    from genie_core.extras.logging import get_logger
    from genie_core.hparams import get_args
    from genie_core.model import load_tokenizer
    from genie_core.template import get_template

    logger = get_logger("genie.tokenize")
    try:
        args = get_args(argv[0])
        stage = args.finetuning.stage
        tokenizer = load_tokenizer(args.model)
        # pt needs a template only to make the tokenizer usable, as the pt stage does
        name = args.data.template or ("default" if stage == "pt" else None)
        template = get_template(name, tokenizer)
        template.fix_tokenizer(tokenizer)
        data = get_dataset(args, tokenizer, template, stage)
    except GenieError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    sizes = {split: len(ds) for split, ds in (("train", data.train), ("eval", data.eval)) if ds is not None}
    logger.info("Tokenized %s (%s) %s at %s", stage, "cache hit" if data.hit else "built", sizes, data.path)
    return 0


if __name__ == "__main__":
    from genie_core.extras.warm import run_warm

    status = run_warm("genie_core.pipeline.tokenize_child:main", sys.argv[1:])
    sys.exit(main() if status is None else status)

"""`genie data check`: what would be trained on, what was left out and why, before any GPU time is spent."""

from __future__ import annotations

import inspect
import math
from typing import Any

from genie_core.data.holdout import select_part, split_digest
from genie_core.data.loader import (
    DatasetLoad,
    check_stage,
    dataset_names,
    drop_summary,
    empty_dataset_error,
    load_dataset_examples,
)
from genie_core.data.registry import get_dataset_attrs
from genie_core.data.schema import Example
from genie_core.extras.errors import DataError


def check_datasets(data_args: Any, stage: str, tokenizer: Any = None, template: Any = None) -> str:
    """A readable report on the train and eval datasets; a broken dataset is reported, not raised,
    so one run shows every problem. Registry and stage mismatches still raise ConfigError."""
    lines = [f"Dataset check for stage '{stage}' (dataset_dir: {data_args.dataset_dir})"]
    if tokenizer is not None and isinstance(template, str):
        template = _resolve_template(template, tokenizer)
    problems = 0
    totals = [0, 0, 0]
    for which in ("train", "eval"):
        attrs = get_dataset_attrs(dataset_names(data_args, which), data_args.dataset_dir)
        check_stage(attrs, stage)
        for attr in attrs:
            lines.append("")
            lines.append(
                f"[{which}] {attr.name}: {attr.formatting}{', ranking' if attr.ranking else ''}, "
                f"{attr.load_from} {attr.dataset_name}"
            )
            try:
                load = load_dataset_examples(attr, data_args, stage)
            except DataError as err:
                problems += 1
                lines.append(f"  ERROR: {err}")
                continue
            totals = [totals[0] + load.records_read, totals[1] + len(load.examples), totals[2] + len(load.dropped)]
            problems += _report_load(load, lines)
            if which == "train" and data_args.eval_split and load.examples:
                problems += _report_split(load, data_args, lines)
            if load.examples and tokenizer is not None and template is not None:
                lines.extend(token_stats(load.examples, tokenizer, template, stage, data_args.cutoff_len))
    if len(lines) == 1:
        lines.append("No datasets set: add `dataset: <name>` to the config.")
        problems += 1
    lines.append("")
    lines.append(f"Total: {totals[0]} records read, {totals[1]} kept, {totals[2]} dropped.")
    lines.append("Result: OK" if not problems else f"Result: {problems} problem(s) found")
    return "\n".join(lines)


def _report_split(load: DatasetLoad, data_args: Any, lines: list[str]) -> int:
    held = select_part(load.examples, data_args.eval_split, data_args.eval_split_seed, "heldout")
    lines.append(
        f"  eval_split {data_args.eval_split}: {len(held)} prompts held out, {len(load.examples) - len(held)} for "
        f"training (held-out set {split_digest(held) if held else '-'})"
    )
    if not held:
        lines.append("  ERROR: eval_split holds out none of its prompts; raise eval_split or use a larger dataset.")
        return 1
    return 0


def _report_load(load: DatasetLoad, lines: list[str]) -> int:
    lines.append(f"  records read: {load.records_read}  kept: {len(load.examples)}  dropped: {len(load.dropped)}")
    if load.dropped:
        lines.append(f"  drop reasons: {drop_summary(load.dropped, limit=10)}")
        lines.extend(f"    {d}" for d in load.dropped)
    if not load.examples:
        lines.append(f"  ERROR: {empty_dataset_error(load)}")
        return 1
    return 0


def _resolve_template(name: str, tokenizer: Any) -> Any:
    from genie_core.template import get_template

    takes_tokenizer = len(inspect.signature(get_template).parameters) > 1
    return get_template(name, tokenizer) if takes_tokenizer else get_template(name)


def _length(example: Example, tokenizer: Any, template: Any, stage: str) -> int:
    if stage == "pt":
        return len(tokenizer(example.prompt[0]["content"], add_special_tokens=False)["input_ids"])
    reply = example.response[0] if example.response else {"role": "assistant", "content": ""}
    prompt_ids, response_ids = template.encode_oneturn(
        tokenizer, [*example.prompt, reply], example.system or None, example.tools or None
    )
    return len(prompt_ids) + len(response_ids)


def token_stats(examples: list[Example], tokenizer: Any, template: Any, stage: str, cutoff_len: int) -> list[str]:
    """min/mean/p50/p95/max of prompt + (first) response tokens, and how many exceed cutoff_len."""
    lengths = sorted(_length(ex, tokenizer, template, stage) for ex in examples)

    def pct(q: float) -> int:
        return lengths[max(0, math.ceil(q * len(lengths)) - 1)]

    mean = sum(lengths) / len(lengths)
    over = sum(n > cutoff_len for n in lengths)
    return [
        f"  tokens (prompt+response): min {lengths[0]}  mean {mean:.1f}  p50 {pct(0.5)}  p95 {pct(0.95)}  "
        f"max {lengths[-1]}",
        f"  longer than cutoff_len ({cutoff_len}): {over}",
    ]

"""`genie data check`: what would be trained on, what was left out and why, before any GPU time is spent."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

from genie_core.data.assemble import (
    DatasetLoad,
    check_stage,
    dataset_names,
    drop_summary,
    empty_dataset_error,
    load_dataset_examples,
)
from genie_core.data.holdout import select_part, split_digest
from genie_core.data.registry import DatasetAttr, get_dataset_attrs, load_dataset_info
from genie_core.extras.errors import DataError, GenieError
from genie_core.schema import Example

BAD_RECORD_LIMIT = 20  # per dataset: enough to see the pattern without burying the rest of the report

USAGE = f"""usage: genie data check [CONFIG.yaml] dataset=NAME[,NAME] [dataset_dir=DIR] [key=value | --key value ...]

Reads the train and eval datasets of a config, without a GPU, and reports what would be trained on:
records read, kept and dropped (with reasons), every malformed record with its file, index, line and
field (the first {BAD_RECORD_LIMIT} per dataset), and the eval_split held-out part. With model_name_or_path (and
template) it also reports token lengths against cutoff_len.

Exit status: 0 when no problem was found, 1 when problems were found, 2 for a usage or config error."""


@dataclass
class CheckReport:
    """The report text and how many problems it holds, so the CLI can exit non-zero on any."""

    text: str
    problems: int


def check_datasets(data_args: Any, stage: str, tokenizer: Any = None, template: Any = None) -> str:
    """The report text of :func:`check_report`."""
    return check_report(data_args, stage, tokenizer, template).text


def check_report(
    data_args: Any, stage: str, tokenizer: Any = None, template: Any = None, bad_limit: int = BAD_RECORD_LIMIT
) -> CheckReport:
    """A readable report on the train and eval datasets; a broken dataset or record is reported, not raised,
    so one run shows every problem. Only an unknown stage (a usage error) raises ConfigError."""
    lines = [f"Dataset check for stage '{stage}' (dataset_dir: {data_args.dataset_dir})"]
    if tokenizer is not None and isinstance(template, str):
        template = _resolve_template(template, tokenizer)
    check_stage([], stage)
    names = {which: dataset_names(data_args, which) for which in ("train", "eval")}
    problems = 0
    totals = [0, 0, 0, 0]
    if not names["train"] and not names["eval"]:
        lines.append("No datasets set: add `dataset: <name>` to the config.")
        problems += 1
    elif registry_error := _registry_error(data_args.dataset_dir):
        lines.append(f"ERROR: {registry_error}")
        problems += 1
        names = {}
    for which, which_names in names.items():
        for name in which_names:
            lines.append("")
            attr = _resolve(name, data_args.dataset_dir, stage, which, lines)
            if attr is None:
                problems += 1
                continue
            try:
                load = load_dataset_examples(attr, data_args, stage, collect_errors=True)
            except GenieError as err:  # an unreadable file or folder, an unreachable hub
                problems += 1
                lines.append(f"  ERROR: {err}")
                continue
            counts = (load.records_read, len(load.examples), len(load.dropped), len(load.bad))
            totals = [total + count for total, count in zip(totals, counts)]
            problems += _report_load(load, lines, bad_limit)
            if which == "train" and data_args.eval_split and load.examples:
                problems += _report_split(load, data_args, lines)
            if load.examples and tokenizer is not None and template is not None:
                lines.extend(token_stats(load.examples, tokenizer, template, stage, data_args.cutoff_len))
    lines.append("")
    lines.append(f"Total: {totals[0]} records read, {totals[1]} kept, {totals[2]} dropped, {totals[3]} bad.")
    lines.append("Result: OK" if not problems else f"Result: {problems} problem(s) found")
    return CheckReport("\n".join(lines), problems)


def _registry_error(dataset_dir: str) -> DataError | None:
    """A missing or unreadable dataset_info.json, said once rather than once per dataset."""
    try:
        load_dataset_info(dataset_dir)
    except DataError as err:
        return err
    return None


def _resolve(name: str, dataset_dir: str, stage: str, which: str, lines: list[str]) -> DatasetAttr | None:
    """The registry entry of one name, or None after reporting why it is unusable (unknown, malformed, wrong stage)."""
    try:
        attr = get_dataset_attrs([name], dataset_dir)[0]
        check_stage([attr], stage)
    except GenieError as err:
        lines.append(f"[{which}] {name}")
        lines.append(f"  ERROR: {err}")
        return None
    lines.append(
        f"[{which}] {attr.name}: {attr.formatting}{', ranking' if attr.ranking else ''}, "
        f"{attr.load_from} {attr.dataset_name}"
    )
    return attr


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


def _report_load(load: DatasetLoad, lines: list[str], bad_limit: int) -> int:
    lines.append(
        f"  records read: {load.records_read}  kept: {len(load.examples)}  dropped: {len(load.dropped)}  "
        f"bad: {len(load.bad)}"
    )
    if load.dropped:
        lines.append(f"  drop reasons: {drop_summary(load.dropped, limit=10)}")
        lines.extend(f"    {d}" for d in load.dropped)
    if load.bad:
        lines.append(f"  ERROR: {len(load.bad)} bad record(s); training stops at the first one:")
        lines.extend(f"    {bad}" for bad in load.bad[:bad_limit])
        if len(load.bad) > bad_limit:
            lines.append(f"    ... and {len(load.bad) - bad_limit} more bad records")
        return len(load.bad)
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

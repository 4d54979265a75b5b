"""From dataset names to Example lists: read, convert, cap, mix and split, without any model or tokenizer.

Keeping this step tokenizer-free lets `genie data check` and config validation run in seconds on any
machine, and gives the tokenization cache a plain input it can fingerprint.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from genie_core.data.converters import Dropped, convert_record
from genie_core.data.holdout import Part, select_part
from genie_core.data.readers import BadRecord, read_records
from genie_core.data.registry import DatasetAttr, get_dataset_attrs
from genie_core.extras.errors import ConfigError, DataError
from genie_core.extras.logging import get_logger
from genie_core.hparams.stages import RANKING_STAGES, UNPAIRED_STAGES
from genie_core.hparams.stages import STAGE_NAMES as STAGES
from genie_core.schema import Example

logger = get_logger(__name__)

MIX_STRATEGIES = ("concat", "interleave_under", "interleave_over")


@dataclass
class DatasetLoad:
    """One dataset after conversion, with the counts `genie data check` reports."""

    attr: DatasetAttr
    records_read: int = 0
    files: list[str] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    bad: list[BadRecord] = field(default_factory=list)  # only filled when asked to collect errors


def dataset_names(data_args: Any, which: str) -> list[str]:
    if which == "train":
        return data_args.dataset_names
    if which == "eval":
        return data_args.eval_dataset_names
    raise ValueError(f"which must be 'train' or 'eval', got {which!r}")


def prompt_stage(data_args: Any) -> str:
    """How a comparison reads its prompts: as pairs (rm) from preference data, else with their references (ppo)."""
    names = data_args.eval_dataset_names or data_args.dataset_names
    return "rm" if any(attr.ranking for attr in get_dataset_attrs(names, data_args.dataset_dir)) else "ppo"


def check_stage(attrs: list[DatasetAttr], stage: str) -> None:
    """Preference stages need ranking data and the others must not get it; say which dataset and what to change."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage '{stage}'; expected one of {', '.join(STAGES)}.")
    for attr in attrs:
        if stage in UNPAIRED_STAGES and not attr.kto_tag:
            raise ConfigError(
                f"stage '{stage}' trains on replies tagged desirable or undesirable, but dataset '{attr.name}' has no "
                f'kto_tag column. Register one in dataset_info.json ("columns": {{"kto_tag": "label"}}, a true/false '
                f"column; true marks a desirable reply), or use stage dpo/rm for ranking data, sft for plain data."
            )
        if stage not in UNPAIRED_STAGES and attr.kto_tag:
            raise ConfigError(
                f"dataset '{attr.name}' tags its replies desirable or undesirable (kto_tag), which stage '{stage}' "
                "cannot use: it would learn the undesirable replies too. Use stage kto for it, or remove kto_tag "
                "from its columns in dataset_info.json."
            )
        if stage in RANKING_STAGES and not attr.ranking:
            raise ConfigError(
                f"stage '{stage}' trains on preference pairs, but dataset '{attr.name}' is not a ranking dataset. "
                f'Use a dataset registered with "ranking": true (and chosen/rejected columns), or pick stage '
                f"sft/pt/ppo for this data."
            )
        if stage not in RANKING_STAGES and attr.ranking:
            raise ConfigError(
                f"dataset '{attr.name}' is a ranking (chosen/rejected) dataset, which stage '{stage}' cannot use. "
                f'Use stage rm or dpo for it, or pick a dataset without "ranking": true.'
            )


def load_dataset_examples(
    attr: DatasetAttr, data_args: Any, stage: str, part: Part = "all", collect_errors: bool = False
) -> DatasetLoad:
    """Read and convert one dataset, honouring max_samples (counted on raw records, before dropping).

    With ``eval_split`` set and a ``part`` asked for, the whole file is read and max_samples caps the examples of
    that part instead, so the held-out prompts do not depend on how many records a stage takes.
    A malformed record raises DataError (training fails fast); with ``collect_errors`` every malformed
    record goes to ``load.bad`` instead, so `genie data check` reports them all in one run.
    """
    if attr.split is None:
        attr = dataclasses.replace(attr, split=getattr(data_args, "split", None) or "train")
    fraction = float(getattr(data_args, "eval_split", 0.0) or 0.0)
    by_part = fraction > 0 and part != "all"
    load = DatasetLoad(attr=attr)
    errors = load.bad if collect_errors else None
    records = read_records(attr, data_args.dataset_dir, None if by_part else data_args.max_samples, errors)
    load.records_read = len(records) + len(load.bad)
    for file, index, record, line in records:
        if file not in load.files:
            load.files.append(file)
        try:
            result = convert_record(record, attr, file, index, data_args, stage=stage)
        except DataError as err:
            if errors is None:
                raise
            errors.append(BadRecord(err, line))
            continue
        (load.dropped if isinstance(result, Dropped) else load.examples).append(result)
    # unparsable records were found while reading, the others while converting: list them all in file order
    load.bad.sort(key=lambda b: (b.error.file or "", b.error.index if b.error.index is not None else -1))
    if by_part:
        load.examples = select_part(load.examples, fraction, int(getattr(data_args, "eval_split_seed", 0)), part)
        load.examples = load.examples[: data_args.max_samples or None]
    return load


def drop_summary(dropped: list[Dropped], limit: int = 5) -> str:
    """'3x empty response, 1x roles do not alternate' - grouped on the reason before any detail."""
    counts = Counter(re.split(r":| at position| \(", d.reason)[0] for d in dropped)
    return ", ".join(f"{n}x {reason}" for reason, n in counts.most_common(limit))


def empty_dataset_error(load: DatasetLoad) -> DataError:
    files = ", ".join(load.files) or load.attr.dataset_name
    if load.records_read == 0:
        return DataError(f"dataset '{load.attr.name}' has no records (is the file empty?)", files)
    examples = "; ".join(str(d) for d in load.dropped[:3])
    return DataError(
        f"dataset '{load.attr.name}' has no usable examples: all {load.records_read} records were dropped "
        f"({drop_summary(load.dropped)}). First: {examples}",
        files,
    )


def load_examples(
    data_args: Any, stage: str, which: str = "train", part: Part = "all"
) -> tuple[list[Example], list[Dropped]]:
    """The mixed examples of the train (or eval) datasets and every record that was left out.

    ``part`` picks the training or the held-out side of ``eval_split`` (ignored when eval_split is 0).
    """
    names = dataset_names(data_args, which)
    if not names:
        if which == "eval":
            return [], []
        raise ConfigError("no training dataset set: add `dataset: <name>` (names from dataset_info.json).")
    attrs = get_dataset_attrs(names, data_args.dataset_dir)
    check_stage(attrs, stage)
    loads = []
    for attr in attrs:
        load = load_dataset_examples(attr, data_args, stage, part)
        if not load.examples and load.records_read and part == "heldout" and not load.dropped:
            raise ConfigError(
                f"dataset '{attr.name}': eval_split={data_args.eval_split} holds out none of its "
                f"{load.records_read} prompts; raise eval_split or use a larger dataset."
            )
        if not load.examples:
            raise empty_dataset_error(load)
        if load.dropped:
            logger.warning(
                "Dataset '%s': dropped %d of %d records (%s); first: %s",
                attr.name,
                len(load.dropped),
                load.records_read,
                drop_summary(load.dropped),
                load.dropped[0],
            )
        logger.info("Dataset '%s': %d examples.", attr.name, len(load.examples))
        loads.append(load)
    examples = mix_examples([load.examples for load in loads], data_args)
    dropped = [d for load in loads for d in load.dropped]
    return examples, dropped


def parse_probs(data_args: Any, count: int) -> list[float] | None:
    text = getattr(data_args, "interleave_probs", None)
    if not text:
        return None
    try:
        probs = [float(p) for p in str(text).split(",") if p.strip()]
    except ValueError:
        raise ConfigError(f"interleave_probs must be comma-separated numbers, got '{text}'.") from None
    if len(probs) != count:
        raise ConfigError(f"interleave_probs has {len(probs)} values but {count} datasets are mixed; give one each.")
    if any(p < 0 for p in probs) or not math.isclose(sum(probs), 1.0, abs_tol=1e-3):
        raise ConfigError(f"interleave_probs must be non-negative and sum to 1, got '{text}'.")
    return probs


def mix_examples(groups: list[list[Example]], data_args: Any) -> list[Example]:
    """concat, or interleave until the first (under) / every (over) dataset is used up, seeded."""
    strategy = getattr(data_args, "mix_strategy", "concat") or "concat"
    if strategy not in MIX_STRATEGIES:
        raise ConfigError(f"mix_strategy '{strategy}' is unknown; use one of {', '.join(MIX_STRATEGIES)}.")
    if len(groups) <= 1 or strategy == "concat":
        if getattr(data_args, "interleave_probs", None) and len(groups) > 1:
            logger.warning("interleave_probs is ignored with mix_strategy=concat.")
        return [ex for group in groups for ex in group]
    return interleave(groups, parse_probs(data_args, len(groups)), strategy == "interleave_over", data_args.seed)


def interleave(groups: list[list[Any]], probs: list[float] | None, oversample: bool, seed: int) -> list[Any]:
    """Take from the datasets in turn (or by probability); stop at the first exhausted one, or, when
    oversampling, once each (reachable) dataset has been used in full, restarting the ones that run out."""
    weights = probs or [1.0] * len(groups)
    if any(not group for group in groups):
        if not oversample:
            return []
        kept = [(g, w) for g, w in zip(groups, weights) if g]
        if not any(w > 0 for _, w in kept):
            return []
        groups, weights = [g for g, _ in kept], [w for _, w in kept]
        probs = weights if probs else None
    rng = random.Random(seed)
    positions = [0] * len(groups)
    exhausted = [False] * len(groups)
    reachable = [w > 0 for w in weights]
    out: list[Any] = []
    step = 0
    while True:
        i = step % len(groups) if probs is None else rng.choices(range(len(groups)), weights=probs)[0]
        step += 1
        if positions[i] == len(groups[i]):
            if not oversample:
                return out
            positions[i] = 0
        out.append(groups[i][positions[i]])
        positions[i] += 1
        if positions[i] == len(groups[i]):
            exhausted[i] = True
            if oversample and all(e or not r for e, r in zip(exhausted, reachable)):
                return out


def split_examples(examples: list[Example], val_size: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out val_size (a fraction below 1, else a count) chosen by a seeded shuffle; both keep input order."""
    if not val_size:
        return list(examples), []
    total = len(examples)
    count = math.ceil(val_size * total) if val_size < 1 else int(val_size)
    if count >= total:
        raise ConfigError(f"val_size={val_size} leaves no training examples out of {total}; lower val_size.")
    order = list(range(total))
    random.Random(seed).shuffle(order)
    held = set(order[:count])
    train = [ex for i, ex in enumerate(examples) if i not in held]
    val = [ex for i, ex in enumerate(examples) if i in held]
    return train, val

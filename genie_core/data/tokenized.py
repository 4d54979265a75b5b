"""Tokenize a stage's datasets once, cache them as Arrow, and load them memory-mapped after.

The cache key hashes the dataset file contents, the dataset registry entries, the tokenizer,
the template, every data argument that changes the output and the processor version; the
cache is written to a temp directory and renamed, so a crash never leaves a half cache.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genie_core import __version__
from genie_core.data.fingerprint import dataset_fingerprint, digest_json, template_fingerprint, tokenizer_fingerprint
from genie_core.data.processors import PROCESSOR_VERSION, PROCESSORS, Budget, shardable
from genie_core.extras.env import genie_home
from genie_core.extras.errors import DataError
from genie_core.extras.logging import get_logger

logger = get_logger(__name__)

_KEY_DATA_FIELDS = (
    "dataset",
    "eval_dataset",
    "dataset_dir",
    "split",
    "cutoff_len",
    "max_target_length",
    "train_on_prompt",
    "mix_strategy",
    "interleave_probs",
    "max_samples",
    "val_size",
    "eval_split",
    "eval_split_seed",
    "default_system",
    "self_cognition_name",
    "self_cognition_author",
    "seed",
)


@dataclass
class TokenizedData:
    """What a stage trains and evaluates on."""

    train: Any = None  # datasets.Dataset
    eval: Any = None
    predict: Any = None  # prompt-only rows with the reference reply, for generation
    key: str = ""
    path: Path | None = None
    hit: bool = False
    dropped: list[str] = field(default_factory=list)


def _plan(args) -> dict[str, bool]:
    t, d = args.training, args.data
    gen = bool(getattr(t, "predict_with_generate", False))
    return {
        "train": bool(t.do_train),
        "eval": bool(
            (t.do_train and (d.eval_dataset or d.val_size or d.eval_split))
            or (t.do_eval and not t.do_train and not gen)
        ),
        "predict": bool(gen and (t.do_predict or t.do_eval)),
    }


def cache_key(args, tokenizer, template, stage: str) -> str:
    d = args.data
    payload = {
        "genie": __version__,
        "processor": PROCESSOR_VERSION,
        "stage": stage,
        "plan": _plan(args),
        "data": {k: getattr(d, k) for k in _KEY_DATA_FIELDS},
        "datasets": dataset_fingerprint(d.dataset_names + d.eval_dataset_names, d.dataset_dir),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "template": template_fingerprint(template),
    }
    return digest_json(payload)[:24]


def cache_root(args) -> Path:
    return Path(args.data.tokenized_cache_dir or genie_home() / "datasets")


def get_dataset(args, tokenizer, template, stage: str | None = None) -> TokenizedData:
    """Return the tokenized splits for a stage, from the cache when a valid one exists."""
    from datasets import DatasetDict, load_from_disk

    stage = stage or args.finetuning.stage
    key = cache_key(args, tokenizer, template, stage)
    final = cache_root(args) / key
    if final.is_dir() and not args.data.overwrite_cache:
        loaded = load_from_disk(str(final))  # memory-mapped Arrow
        meta = json.loads((final / "genie_meta.json").read_text())
        logger.info("Tokenized dataset cache hit: %s", final)
        return _bundle(loaded, key, final, True, meta.get("dropped", []))

    splits, dropped = _build(args, tokenizer, template, stage)
    tmp = final.parent / f".tmp-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    DatasetDict(splits).save_to_disk(str(tmp))
    (tmp / "genie_meta.json").write_text(json.dumps({"key": key, "stage": stage, "dropped": dropped}, indent=1))
    if final.exists():  # overwrite_cache, or another process finished first
        shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    logger.info("Tokenized dataset cached at %s", final)
    return _bundle(load_from_disk(str(final)), key, final, False, dropped)


def _bundle(dd, key: str, path: Path, hit: bool, dropped: list[str]) -> TokenizedData:
    return TokenizedData(
        train=dd.get("train"),
        eval=dd.get("eval"),
        predict=dd.get("predict"),
        key=key,
        path=path,
        hit=hit,
        dropped=dropped,
    )


def _build(args, tokenizer, template, stage: str) -> tuple[dict, list[str]]:
    from genie_core.data.assemble import load_examples, split_examples

    d, t = args.data, args.training
    plan = _plan(args)
    dropped: list = []
    train_ex: list = []
    eval_ex: list = []
    if t.do_train:  # never the held-out side of eval_split
        train_ex, dr = load_examples(d, stage, "train", part="train")
        dropped += dr
        if d.eval_dataset:
            eval_ex, dr = load_examples(d, stage, "eval")
            dropped += dr
        elif d.val_size:
            train_ex, eval_ex = split_examples(train_ex, d.val_size, d.seed)
        elif d.eval_split:
            eval_ex, dr = load_examples(d, stage, "train", part="heldout")
    elif d.eval_dataset:
        eval_ex, dr = load_examples(d, stage, "eval")
        dropped += dr
    else:  # evaluation only: the held-out side when there is one
        eval_ex, dr = load_examples(d, stage, "train", part="heldout")
        dropped += dr
    if d.default_system:
        for ex in train_ex + eval_ex:
            ex.system = ex.system or d.default_system

    budget = Budget(d.cutoff_len, d.max_target_length)
    process = PROCESSORS[stage]
    workers = d.preprocessing_num_workers
    splits: dict[str, Any] = {}
    if plan["train"]:
        splits["train"] = tokenize(process, train_ex, tokenizer, template, budget, d.train_on_prompt, workers)
    if plan["eval"] and eval_ex:
        splits["eval"] = tokenize(process, eval_ex, tokenizer, template, budget, d.train_on_prompt, workers)
    if plan["predict"]:
        splits["predict"] = tokenize(PROCESSORS["predict"], eval_ex, tokenizer, template, budget, False, workers)
    for name, ds in splits.items():
        if len(ds) == 0:
            raise DataError(
                f"no {name} examples left after tokenization (cutoff_len={d.cutoff_len}); "
                f"datasets: {d.dataset or d.eval_dataset}"
            )
    return splits, [f"{x.source}: {x.reason}" for x in dropped]


class _ShardTokenizer:
    """The ``datasets.map`` function of ``tokenize``: unpickles a batch of Examples and runs the processor on it."""

    def __init__(self, process: Callable, tokenizer: Any, template: Any, budget: Budget, train_on_prompt: bool):
        self.process, self.tokenizer, self.template = process, tokenizer, template
        self.budget, self.train_on_prompt = budget, train_on_prompt

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        examples = [pickle.loads(blob) for blob in batch["example"]]
        return self.process(examples, self.tokenizer, self.template, self.budget, self.train_on_prompt)


def tokenize(
    process: Callable,
    examples: list,
    tokenizer: Any,
    template: Any,
    budget: Budget,
    train_on_prompt: bool,
    workers: int | None = None,
):
    """One split's token columns as a Dataset. With ``workers`` > 1 the examples are tokenized in that many processes
    (``datasets.map(num_proc=...)``) into the same rows in the same order as in one, which is why the worker count
    stays out of the cache key."""
    from datasets import Dataset

    workers = min(workers or 1, len(examples))
    if workers < 2:
        return Dataset.from_dict(process(examples, tokenizer, template, budget, train_on_prompt))
    rows, finish = shardable(process, examples)
    pickled = Dataset.from_dict({"example": [pickle.dumps(ex) for ex in examples]})
    mapped = pickled.map(
        _ShardTokenizer(rows, tokenizer, template, budget, train_on_prompt),
        batched=True,
        num_proc=workers,
        remove_columns=["example"],
        new_fingerprint=uuid.uuid4().hex,  # datasets' own cache is never reused: ours is keyed on the inputs
        desc="Tokenizing",
    )
    return mapped if finish is None else Dataset.from_dict(finish(mapped.to_dict(), tokenizer, budget))

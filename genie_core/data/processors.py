"""Per-stage tokenization: Examples in, token columns out.

Bump PROCESSOR_VERSION whenever the output of any function here changes, so old caches
are never reused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from genie_core.schema import Example

PROCESSOR_VERSION = "1"
IGNORE_INDEX = -100


@dataclass
class Budget:
    cutoff_len: int
    max_target_length: int | None = None


def _fit_last_turn(prompt: list[int], response: list[int], budget: Budget) -> tuple[list[int], list[int]]:
    """Truncate the final turn so the response survives: it gets its own budget first."""
    cutoff = budget.cutoff_len
    if len(prompt) + len(response) <= cutoff and (
        budget.max_target_length is None or len(response) <= budget.max_target_length
    ):
        return prompt, response
    target_cap = budget.max_target_length or cutoff
    # the response may use what the prompt does not need, but never squeezes the prompt below half
    target_len = min(len(response), target_cap, max(cutoff - len(prompt), cutoff // 2))
    source_len = min(len(prompt), cutoff - target_len)
    # keep the end of the prompt: it holds the question and the assistant header the model answers after
    return prompt[len(prompt) - source_len :], response[:target_len]


def encode_supervised(example: Example, tokenizer: Any, template: Any, budget: Budget, train_on_prompt: bool):
    """Multi-turn SFT example -> (input_ids, labels); loss only on assistant tokens unless train_on_prompt.

    Returns None when nothing learnable is left after truncation.
    """
    messages = list(example.prompt) + list(example.response[:1])
    pairs = template.encode_multiturn(tokenizer, messages, example.system or None, example.tools or None)
    if not pairs:
        return None
    last_prompt, last_response = _fit_last_turn(*pairs[-1], budget)
    if not last_response:
        return None
    kept: list[tuple[list[int], list[int]]] = [(last_prompt, last_response)]
    used = len(last_prompt) + len(last_response)
    # earlier turns are added back newest first, whole, while they fit
    for prompt_ids, response_ids in reversed(pairs[:-1]):
        if used + len(prompt_ids) + len(response_ids) > budget.cutoff_len:
            break
        kept.insert(0, (prompt_ids, response_ids))
        used += len(prompt_ids) + len(response_ids)
    input_ids: list[int] = []
    labels: list[int] = []
    for prompt_ids, response_ids in kept:
        input_ids += prompt_ids + response_ids
        labels += (prompt_ids if train_on_prompt else [IGNORE_INDEX] * len(prompt_ids)) + response_ids
    return input_ids, labels


def process_sft(examples: Iterable[Example], tokenizer, template, budget: Budget, train_on_prompt: bool) -> dict:
    columns: dict[str, list] = {"input_ids": [], "labels": [], "source": []}
    for ex in examples:
        encoded = encode_supervised(ex, tokenizer, template, budget, train_on_prompt)
        if encoded is None:
            continue
        columns["input_ids"].append(encoded[0])
        columns["labels"].append(encoded[1])
        columns["source"].append(ex.source)
    return columns


def process_pt(examples: Iterable[Example], tokenizer, template, budget: Budget, train_on_prompt: bool) -> dict:
    """Concatenate all texts (each ended by eos) and cut into cutoff_len blocks."""
    return pack_blocks(encode_texts(examples, tokenizer, template, budget, train_on_prompt)["ids"], tokenizer, budget)


def encode_texts(examples: Iterable[Example], tokenizer, template, budget: Budget, train_on_prompt: bool) -> dict:
    """pt's per-text half: each non-empty text's ids ended by eos (one row per text, so shards join in order)."""
    ids = []
    for ex in examples:
        text = ex.prompt[0]["content"] if ex.prompt else ""
        if text:
            ids.append(tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id])
    return {"ids": ids}


def pack_blocks(texts: list[list[int]], tokenizer, budget: Budget) -> dict:
    """pt's whole-corpus half: one stream (after bos) of every text's ids, cut into cutoff_len blocks."""
    stream = [tok for ids in texts for tok in ids]
    if tokenizer.bos_token_id is not None:
        stream = [tokenizer.bos_token_id] + stream
    size = budget.cutoff_len
    n_blocks = max(len(stream) // size, 1 if stream else 0)
    blocks = [stream[i * size : (i + 1) * size] for i in range(n_blocks)]
    return {"input_ids": blocks, "labels": [list(b) for b in blocks], "source": ["packed"] * len(blocks)}


def process_pairwise(examples: Iterable[Example], tokenizer, template, budget: Budget, train_on_prompt: bool) -> dict:
    """Ranking example -> prompt ids plus chosen and rejected response ids (rm, dpo)."""
    columns: dict[str, list] = {"prompt_ids": [], "chosen_ids": [], "rejected_ids": [], "source": []}
    for ex in examples:
        if len(ex.response) < 2:
            continue
        system, tools = ex.system or None, ex.tools or None
        prompt, chosen = template.encode_oneturn(tokenizer, list(ex.prompt) + [ex.response[0]], system, tools)
        _, rejected = template.encode_oneturn(tokenizer, list(ex.prompt) + [ex.response[1]], system, tools)
        # both pairs share one prompt budget: the longer answer decides the truncation
        longest = chosen if len(chosen) >= len(rejected) else rejected
        prompt_fit, _ = _fit_last_turn(prompt, longest, budget)
        room = budget.cutoff_len - len(prompt_fit)
        chosen, rejected = chosen[:room], rejected[:room]
        if not chosen or not rejected:
            continue
        columns["prompt_ids"].append(prompt_fit)
        columns["chosen_ids"].append(chosen)
        columns["rejected_ids"].append(rejected)
        columns["source"].append(ex.source)
    return columns


def process_unpaired(examples: Iterable[Example], tokenizer, template, budget: Budget, train_on_prompt: bool) -> dict:
    """Tagged example -> prompt ids, completion ids and the kto_tag as ``label`` (kto; TRL's unpaired format)."""
    columns: dict[str, list] = {"prompt_ids": [], "completion_ids": [], "label": [], "source": []}
    for ex in examples:
        if not ex.response or ex.desirable is None:
            continue
        messages = list(ex.prompt) + [ex.response[0]]
        prompt, completion = template.encode_oneturn(tokenizer, messages, ex.system or None, ex.tools or None)
        prompt, completion = _fit_last_turn(prompt, completion, budget)
        if not completion:
            continue
        columns["prompt_ids"].append(prompt)
        columns["completion_ids"].append(completion)
        columns["label"].append(bool(ex.desirable))
        columns["source"].append(ex.source)
    return columns


def process_unsupervised(
    examples: Iterable[Example], tokenizer, template, budget: Budget, train_on_prompt: bool
) -> dict:
    """Prompt-only rows for generation (ppo rollouts, sft predict); the reference reply is kept as text."""
    columns: dict[str, list] = {"input_ids": [], "reference": [], "source": []}
    for ex in examples:
        prompt = template.encode_prompt(tokenizer, list(ex.prompt), ex.system or None, ex.tools or None)
        prompt = prompt[max(len(prompt) - budget.cutoff_len, 0) :]
        columns["input_ids"].append(prompt)
        columns["reference"].append(ex.response[0]["content"] if ex.response else "")
        columns["source"].append(ex.source)
    return columns


def process_prompts(
    examples: Iterable[Example],
    tokenizer,
    template,
    budget: Budget,
    train_on_prompt: bool,
    extra_columns: list[str] | None = None,
) -> dict:
    """Prompt rows for TRL's online trainers (grpo, rloo): the prompt rendered with our template as text, the
    reference reply, and the dataset's extra_columns, which TRL hands to every reward function as keyword arguments.

    The text keeps the template's special tokens, so tokenizing it without adding special tokens gives the ids the
    template built (the stage's trainer does exactly that). A column a dataset lacks is None in its rows.
    ``extra_columns`` (default: those of ``examples``) fixes the columns, so every shard of a dataset has them all.
    """
    examples = list(examples)
    extra = extra_column_names(examples) if extra_columns is None else extra_columns
    columns: dict[str, list] = {"prompt": [], "reference": [], "source": [], **{name: [] for name in extra}}
    for ex in examples:
        ids = template.encode_prompt(tokenizer, list(ex.prompt), ex.system or None, ex.tools or None)
        ids = ids[max(len(ids) - budget.cutoff_len, 0) :]
        columns["prompt"].append(tokenizer.decode(ids, skip_special_tokens=False))
        columns["reference"].append(ex.response[0]["content"] if ex.response else "")
        columns["source"].append(ex.source)
        for name in extra:
            columns[name].append(ex.extra.get("columns", {}).get(name))
    return columns


def _pack_columns(columns: dict, tokenizer, budget: Budget) -> dict:
    return pack_blocks(columns["ids"], tokenizer, budget)


def extra_column_names(examples: Iterable[Example]) -> list[str]:
    return sorted({name for ex in examples for name in ex.extra.get("columns", {})})


def shardable(process: Callable, examples: list[Example]) -> tuple[Callable, Callable[..., dict] | None]:
    """``process`` as (a processor whose output rows follow its input rows, so it can run on shards of ``examples``
    whose outputs are joined in order; what then runs once on the joined columns, or None).

    The same rows as ``process(examples, ...)``: pt tokenizes each text on its shard and packs the whole stream once;
    grpo/rloo fix their extra columns from every example. A new processor that reads across examples needs its entry.
    """
    if process is process_pt:
        return encode_texts, _pack_columns
    if process is process_prompts:
        return partial(process_prompts, extra_columns=extra_column_names(examples)), None
    return process, None


PROCESSORS = {
    "pt": process_pt,
    "sft": process_sft,
    "rm": process_pairwise,
    "dpo": process_pairwise,
    "kto": process_unpaired,
    "ppo": process_unsupervised,
    "grpo": process_prompts,
    "rloo": process_prompts,
    "predict": process_unsupervised,
}

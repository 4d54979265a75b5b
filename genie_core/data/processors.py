"""Per-stage tokenization: Examples in, token columns out.

Bump PROCESSOR_VERSION whenever the output of any function here changes, so old caches
are never reused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from genie_core.data.schema import Example

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
    stream: list[int] = []
    for ex in examples:
        text = ex.prompt[0]["content"] if ex.prompt else ""
        if not text:
            continue
        stream += tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
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


PROCESSORS = {
    "pt": process_pt,
    "sft": process_sft,
    "rm": process_pairwise,
    "dpo": process_pairwise,
    "ppo": process_unsupervised,
    "predict": process_unsupervised,
}

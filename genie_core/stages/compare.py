"""Compare a chain of models (base -> sft -> ppo or dpo) on the same held-out prompts with the same scorers.

A stage made a model better only when a number on prompts no stage trained on says so, next to the same number for
the model it started from. Every model answers the same held-out prompts with the same generating settings and the
same seed; the same scorers grade every answer: ``reward_model`` (an rm output or a rule), the rules in
``eval_rewards``, BLEU-4 / ROUGE-L against the references, the KL to ``kl_reference`` measured on each model's own
samples, the response length, and on preference data how often a model gives the chosen answer more likelihood than
the rejected one. The candidate (the last model) is compared with its predecessor through a paired bootstrap over
prompts, so its delta carries a 95% interval.

Outputs in ``output_dir``: ``comparison.json`` (everything), ``comparison.png`` (bars with intervals),
``generated_predictions.jsonl`` (every answer with its scores) and ``eval_results.json`` (flat ``eval/...``
metrics for trackers and the export step).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from genie_core.data.assemble import load_examples, prompt_stage
from genie_core.data.fingerprint import digest_json, file_digest
from genie_core.data.holdout import split_digest
from genie_core.data.tokenized import get_dataset
from genie_core.eval.comparison import (
    COMPARISON_FILE,
    COMPARISON_PLOT,
    flat_metrics,
    format_table,
    plot_comparison,
    summarize,
)
from genie_core.eval.metrics import score_pair
from genie_core.eval.predict import write_predictions
from genie_core.extras.logging import get_logger
from genie_core.hparams.eval_args import ChainModel
from genie_core.model import load_model, load_tokenizer
from genie_core.model.value_head import VALUE_HEAD_FILE
from genie_core.rewards.rules import is_rule_spec, parse_rule
from genie_core.stages.common import prepare_output_dir, write_json
from genie_core.stages.ppo_rollout import (
    Rollout,
    generate,
    left_pad,
    sampling_temperature,
)
from genie_core.stages.prefill import PromptPrefix, prompt_prefix
from genie_core.stages.shared_prompts import answer_logprobs, answer_values
from genie_core.template import get_template

logger = get_logger(__name__)

# the reference's prompt caches from its generation are kept for scoring up to this size; others are built again
PREFIX_BUDGET = 1 << 30


# ---- models and scorers ----------------------------------------------------------------------------------------


def load_chain_model(entry: ChainModel, tokenizer, args):
    """One compared model, adapters merged, frozen, on the available device."""
    model_args = dataclasses.replace(
        args.model, model_name_or_path=entry.model_name_or_path, checkpoint_dir=entry.checkpoint_dir
    )
    finetuning = dataclasses.replace(args.finetuning, finetuning_type="lora", lora_target=None, additional_target=None)
    model = load_model(tokenizer, model_args, finetuning, is_trainable=False)
    return model.to(_device())


def load_reward_model(spec: str, tokenizer, args):
    """An rm output as a frozen model with ``v_head``, on this process's device."""
    from genie_core.rewards.functions import load_reward_model as load_frozen

    return load_frozen(spec, tokenizer, args).to(_device())


def scorer_identity(args) -> dict[str, Any]:
    """What makes two evaluations' scores comparable: the reward model's files, the rules, the generating settings."""
    reward = args.finetuning.reward_model
    if reward and not is_rule_spec(reward):
        files = [
            p for p in (Path(reward) / VALUE_HEAD_FILE, Path(reward) / "adapter_model.safetensors") if p.is_file()
        ]
        reward = {p.name: file_digest(p)[:16] for p in files}
    identity = {
        "reward_model": reward,
        "rules": args.eval.rule_specs,
        "generating": args.generating.to_generate_kwargs(),
        "template": args.data.template,
        "cutoff_len": args.data.cutoff_len,
    }
    return {**identity, "id": digest_json(identity)[:16]}


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _rule_name(spec: str) -> str:
    return spec.removeprefix("rule:").replace(":", "_")


# ---- data ------------------------------------------------------------------------------------------------------


def prompt_rows(dataset, tokenizer, ranking: bool) -> dict[str, list]:
    """Generation rows (input_ids, reference); preference data keeps its pairs, the chosen reply is the reference."""
    if not ranking:
        return {"input_ids": list(dataset["input_ids"]), "reference": list(dataset["reference"])}
    chosen = list(dataset["chosen_ids"])
    return {
        "input_ids": list(dataset["prompt_ids"]),
        "reference": [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in chosen],
        "chosen_ids": chosen,
        "rejected_ids": list(dataset["rejected_ids"]),
    }


def split_info(args, stage: str, count: int) -> dict[str, Any]:
    """Which prompts were compared, recorded by content so a later comparison can tell whether it is the same set."""
    d = args.data
    which = "eval" if d.eval_dataset else "train"
    examples, _ = load_examples(d, stage, which, part="all" if d.eval_dataset else "heldout")
    return {
        "datasets": d.eval_dataset or d.dataset,
        "eval_split": d.eval_split,
        "eval_split_seed": d.eval_split_seed,
        "max_samples": d.max_samples,
        "prompts": count,
        "digest": split_digest(examples),
    }


def _batches(rows: dict[str, list], size: int):
    total = len(rows["input_ids"])
    for start in range(0, total, size):
        yield {k: v[start : start + size] for k, v in rows.items()}


def _pairs(rows: dict[str, list], key: str, device) -> Rollout:
    """Prompt + a fixed response (chosen or rejected) as a Rollout, to read its log-likelihood."""
    queries, query_mask = left_pad(rows["input_ids"], 0, device)
    width = max(len(r) for r in rows[key])
    responses = torch.zeros((len(queries), width), dtype=torch.long)
    mask = torch.zeros_like(responses)
    for i, ids in enumerate(rows[key]):
        responses[i, : len(ids)] = torch.tensor(ids)
        mask[i, : len(ids)] = 1
    return Rollout(queries, query_mask, responses.to(device), mask.to(device))


# ---- the comparison --------------------------------------------------------------------------------------------


def run_compare(args) -> dict[str, Any]:
    """Generate with every model of ``compare_models``, score every answer, write the comparison."""
    from transformers import set_seed

    chain = args.eval.chain
    out = prepare_output_dir(args)
    tokenizer = load_tokenizer(args.model)
    template = get_template(args.data.template, tokenizer)
    template.fix_tokenizer(tokenizer)
    stop_ids = template.get_stop_token_ids(tokenizer)
    stage = prompt_stage(args.data)
    ranking = stage == "rm"
    data = get_dataset(args, tokenizer, template, stage)
    rows = prompt_rows(data.eval, tokenizer, ranking)
    count = len(rows["input_ids"])
    names = [m.name for m in chain]
    reference = args.eval.kl_reference or names[-2]
    gen_kwargs = args.generating.to_generate_kwargs()
    gen_kwargs.pop("length_penalty", None)
    if args.data.max_target_length:  # as in predict: the reply budget caps generation too
        gen_kwargs["max_new_tokens"] = min(gen_kwargs["max_new_tokens"], args.data.max_target_length)
    temperature = sampling_temperature(args.generating)
    # sampled replies make the log-ratio a sample of the KL; greedy ones only give the greedy reply's log-ratio
    divergence = "kl" if args.generating.do_sample else "log_ratio"
    size = args.training.per_device_eval_batch_size
    logger.info("Comparing %s on %d held-out prompts; KL to %s", " -> ".join(names), count, reference)
    if not args.data.eval_split and not args.data.eval_dataset:
        logger.warning(
            "Neither eval_split nor eval_dataset is set: the compared prompts may be ones the models trained on, so "
            "the table says nothing about unseen data. Set eval_split (e.g. 0.2) for the whole pipeline."
        )

    answers: dict[str, list[Rollout]] = {}
    scores: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    own: dict[str, list[torch.Tensor]] = {}
    ref_model, ref_prefixes = None, []
    for entry in chain:
        model = load_chain_model(entry, tokenizer, args)
        set_seed(args.training.seed)  # every model draws with the same seed
        parts = []
        for batch in tqdm(list(_batches(rows, size)), desc=f"Generating ({entry.name})", unit="batch"):
            # the reference's prompt cache is built here once, and read again for the other models' answers
            prefix = _kept_prefix(model, tokenizer, batch, ref_prefixes) if entry.name == reference else None
            part = generate(model, tokenizer, batch, gen_kwargs, stop_ids, logprobs_at=temperature, prefix=prefix)
            parts.append(part)
        answers[entry.name] = parts
        own[entry.name] = [(p.logprobs * p.response_mask).sum(-1) for p in parts]  # read off the decoding steps
        scores[entry.name]["response_length"] = [float(n) for p in parts for n in p.response_mask.sum(-1).tolist()]
        if ranking:
            scores[entry.name].update(_preference(model, rows, size))
        if entry.name == reference:
            ref_model = model
        else:
            del model
    if ref_model is not None:
        others = [name for name in names if name != reference]
        for name, values in _divergences(ref_model, answers, own, others, temperature, ref_prefixes).items():
            scores[name][divergence] = values
        scores[reference][divergence] = [0.0] * count  # its own answers diverge from it by nothing
    del ref_model, ref_prefixes

    _score_rewards(args, tokenizer, answers, scores)
    references = rows["reference"]
    if any(r.strip() for r in references):
        for name, parts in answers.items():
            per = [score_pair(text, ref) for text, ref in zip(_texts(parts), references)]
            scores[name]["bleu-4"] = [s["bleu-4"] for s in per]
            scores[name]["rouge-l"] = [s["rouge-l"] for s in per]

    summary = summarize(chain, scores, reference, args.eval.bootstrap_resamples, args.training.seed)
    summary["split"] = split_info(args, stage, count)
    summary["scorer"] = scorer_identity(args)
    write_outputs(out, summary, rows, answers, scores)
    for line in format_table(summary).splitlines():
        logger.info(line)
    return {"eval": flat_metrics(summary)}


def _texts(parts: list[Rollout]) -> list[str]:
    return [t for p in parts for t in p.texts]


def _kept_prefix(model, tokenizer, batch: dict, kept: list) -> PromptPrefix | None:
    """The batch's prompt cache for generation, also kept for scoring while all kept caches fit ``PREFIX_BUDGET``."""
    device = next(model.parameters()).device
    prefix = prompt_prefix(model, *left_pad(list(batch["input_ids"]), tokenizer.pad_token_id, device))
    held = sum(t.numel() * t.element_size() for p in kept if p is not None for t in (*p.keys, *p.values))
    size = sum(t.numel() * t.element_size() for t in (*prefix.keys, *prefix.values)) if prefix is not None else 0
    kept.append(prefix if held + size <= PREFIX_BUDGET else None)
    return prefix


@torch.no_grad()
def _divergences(
    ref_model, answers: dict[str, list[Rollout]], own: dict, names: list[str], temperature: float, prefixes: list
) -> dict[str, list[float]]:
    """Per prompt, sum over each model's answer of log p_model - log p_ref: a sample of KL(model || ref).

    The reference reads the prompts once per batch (the cache from its own generation where it was kept) and
    continues it with each model's answers.
    """
    out: dict[str, list[float]] = {name: [] for name in names}
    if not names:
        return out
    for i, first in enumerate(answers[names[0]]):
        prefix = prefixes[i] if i < len(prefixes) else None
        if prefix is None:
            prefix = prompt_prefix(ref_model, first.queries, first.query_mask)
        for name in names:
            part = answers[name][i]
            theirs = answer_logprobs(ref_model, prefix, part, temperature)
            out[name] += (own[name][i] - (theirs * part.response_mask).sum(-1)).tolist()
    return out


@torch.no_grad()
def _preference(model, rows: dict[str, list], size: int) -> dict[str, list[float]]:
    """Whether the model gives the chosen reply more log-likelihood than the rejected one, and by how much."""
    device = next(model.parameters()).device
    margins: list[float] = []
    for batch in _batches(rows, size):
        pairs = [_pairs(batch, key, device) for key in ("chosen_ids", "rejected_ids")]
        prefix = prompt_prefix(model, pairs[0].queries, pairs[0].query_mask)  # both replies continue one prompt cache
        sums = []
        for pair in pairs:
            sums.append((answer_logprobs(model, prefix, pair) * pair.response_mask).sum(-1))
        margins += (sums[0] - sums[1]).tolist()
    return {"pref_accuracy": [float(m > 0) for m in margins], "pref_margin": margins}


def _score_rewards(args, tokenizer, answers: dict[str, list[Rollout]], scores: dict) -> None:
    """reward_mean from reward_model (an rm output or a rule) and ``<rule>_mean`` for each extra rule."""
    rules = {f"{_rule_name(s)}_mean": parse_rule(s, key="eval_rewards") for s in args.eval.rule_specs}
    spec = args.finetuning.reward_model
    if spec and is_rule_spec(spec):
        rules = {"reward_mean": parse_rule(spec), **rules}
    for metric, rule in rules.items():
        for name, parts in answers.items():
            scores[name][metric] = [v for p in parts for v in rule(p.texts, p.prompts, p.references or [""] * len(p))]
    if spec and not is_rule_spec(spec):
        reward = load_reward_model(spec, tokenizer, args)
        for name in answers:
            scores[name]["reward_mean"] = []
        for parts in zip(*answers.values()):  # batch by batch: the reward model reads each batch's prompts once
            prefix = prompt_prefix(reward, parts[0].queries, parts[0].query_mask) if len(parts) > 1 else None
            for name, part in zip(answers, parts):
                scores[name]["reward_mean"] += answer_values(reward, reward.v_head, prefix, part).tolist()


def write_outputs(out: Path, summary: dict, rows: dict, answers: dict[str, list[Rollout]], scores: dict) -> None:
    texts = {name: _texts(parts) for name, parts in answers.items()}
    predictions = []
    prompts = [p for part in next(iter(answers.values())) for p in part.prompts]
    for i, reference in enumerate(rows["reference"]):
        row: dict[str, Any] = {"prompt": prompts[i], "label": reference}
        for name in answers:
            row[name] = {"predict": texts[name][i], **{k: v[i] for k, v in scores[name].items()}}
        predictions.append(row)
    write_predictions(out, predictions)
    write_json(out / COMPARISON_FILE, summary)
    plot_comparison(summary, out / COMPARISON_PLOT)
    write_json(out / "eval_results.json", flat_metrics(summary))

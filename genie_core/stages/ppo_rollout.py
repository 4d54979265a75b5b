"""PPO rollouts: sample responses with the KV cache, then score them with policy, reference, critic and reward.

In LoRA mode one copy of the base weights serves all four roles: the policy is the base plus the ``default``
adapter, the reference is the same base with adapters disabled, the critic is the policy's trunk plus ``v_head``,
and a LoRA reward model is a second adapter (``reward``) on the same base with its own value head.

Layout: prompts are left-padded ``[N, P]`` (what batched generation needs) and responses right-padded ``[N, R]``;
position ids come from the attention mask, so a padded row sees the positions it would see alone.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from genie_core.extras.errors import ConfigError
from genie_core.extras.logging import get_logger
from genie_core.model.few_rows import few_row_linears
from genie_core.model.packed import pack_rows, packed_last_values, packs_exactly
from genie_core.model.value_head import (
    assert_reward_model_dir,
    hidden_size_of,
    keeps_logit_positions,
    last_hidden_and_values,
    load_value_head,
    read_value_head_metadata,
    reward_model_kind,
    sequence_scores,
)
from genie_core.rewards.rules import RuleReward, is_rule_spec, parse_rule
from genie_core.stages.ppo_core import logprobs_from_logits
from genie_core.stages.prefill import PromptPrefix, grouped_prefill

logger = get_logger(__name__)
POLICY, REWARD = "default", "reward"


@dataclass
class Rollout:
    """One batch of prompts and sampled responses, with everything PPO derives from them (all ``[N, ...]``)."""

    queries: torch.Tensor  # [N, P] left-padded prompt ids
    query_mask: torch.Tensor
    responses: torch.Tensor  # [N, R] right-padded response ids (up to and including the stop token)
    response_mask: torch.Tensor
    prompts: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # decoded responses without stop words
    references: list[str] = field(default_factory=list)
    logprobs: torch.Tensor | None = None  # [N, R] policy log-probs at sampling time
    ref_logprobs: torch.Tensor | None = None
    values: torch.Tensor | None = None
    advantages: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    scores: torch.Tensor | None = None  # [N] raw reward scores

    def __len__(self) -> int:
        return self.queries.shape[0]

    def select(self, index: torch.Tensor | slice) -> Rollout:
        """Rows ``index`` of every tensor, trimmed to the longest prompt and response among them."""
        q, qm, r, rm = (t[index] for t in (self.queries, self.query_mask, self.responses, self.response_mask))
        keep_q = int(qm.sum(-1).max())
        keep_r = int(rm.sum(-1).max())
        sub = Rollout(q[:, -keep_q:], qm[:, -keep_q:], r[:, :keep_r], rm[:, :keep_r])
        for name in _PER_TOKEN:
            value = getattr(self, name)
            if value is not None:
                setattr(sub, name, value[index][:, :keep_r])
        sub.scores = None if self.scores is None else self.scores[index]
        rows = range(len(self))[index] if isinstance(index, slice) else index.tolist()
        for name in ("prompts", "texts", "references"):
            values = getattr(self, name)
            setattr(sub, name, [values[i] for i in rows] if values else [])
        return sub


_PER_TOKEN = ("logprobs", "ref_logprobs", "values", "advantages", "returns")


def concat_rollouts(parts: list[Rollout], pad_token_id: int) -> Rollout:
    """Join micro-batch rollouts, padding prompts on the left and responses on the right to common lengths."""
    width_q = max(p.queries.shape[1] for p in parts)
    width_r = max(p.responses.shape[1] for p in parts)

    def left(t: torch.Tensor, value: int) -> torch.Tensor:
        return F.pad(t, (width_q - t.shape[1], 0), value=value)

    def right(t: torch.Tensor, value: float) -> torch.Tensor:
        return F.pad(t, (0, width_r - t.shape[1]), value=value)

    out = Rollout(
        torch.cat([left(p.queries, pad_token_id) for p in parts]),
        torch.cat([left(p.query_mask, 0) for p in parts]),
        torch.cat([right(p.responses, pad_token_id) for p in parts]),
        torch.cat([right(p.response_mask, 0) for p in parts]),
        [s for p in parts for s in p.prompts],
        [s for p in parts for s in p.texts],
        [s for p in parts for s in p.references],
    )
    for name in _PER_TOKEN:
        if all(getattr(p, name) is not None for p in parts):
            setattr(out, name, torch.cat([right(getattr(p, name), 0.0) for p in parts]))
    if all(p.scores is not None for p in parts):
        out.scores = torch.cat([p.scores for p in parts])
    return out


def rollout_generate_kwargs(generating) -> dict:
    """Generation settings for rollouts; beam search cannot be a policy's sample, so it is refused."""
    if generating.num_beams != 1:
        raise ConfigError(f"stage ppo samples one response per prompt: set num_beams: 1 (got {generating.num_beams}).")
    if generating.max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be >= 1 for PPO rollouts, got {generating.max_new_tokens}.")
    if not generating.do_sample:
        logger.warning("do_sample is false: greedy rollouts give PPO nothing to explore; set do_sample: true.")
    elif generating.top_p < 1.0 or generating.top_k > 0:
        logger.warning(
            "Rollouts sample with top_p=%s, top_k=%s, but PPO's log-probs use the whole distribution; for on-policy "
            "updates set top_p: 1.0 and top_k: 0.",
            generating.top_p,
            generating.top_k,
        )
    kwargs = generating.to_generate_kwargs()
    for key in ("num_beams", "length_penalty"):
        kwargs.pop(key, None)
    return kwargs


def sampling_temperature(generating) -> float:
    """Log-probs are taken at the temperature the tokens were sampled with (1 for greedy)."""
    return generating.temperature if generating.do_sample else 1.0


def prompt_indices(step: int, n: int, size: int, seed: int, rank: int, world: int) -> list[int]:
    """Rows for (step, rank): a fresh seeded permutation per pass over the data, so resuming needs only the step."""
    first = (step * world + rank) * size
    indices, perms = [], {}
    for pos in range(first, first + size):
        epoch, i = divmod(pos, n)
        if epoch not in perms:
            perms[epoch] = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        indices.append(perms[epoch][i])
    return indices


def left_pad(rows: list[list[int]], pad_token_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
    return ids.to(device), mask.to(device)


def response_mask_until_stop(tokens: torch.Tensor, stop_ids: list[int]) -> torch.Tensor:
    """1 up to and including the first stop token of each row (the whole row if none), 0 after it.

    Generation pads finished rows with the pad token, which is often the eos token too, so the mask comes from the
    first stop token rather than from comparing with the pad id.
    """
    is_stop = torch.isin(tokens, torch.tensor(stop_ids, device=tokens.device))
    stops_before = is_stop.long().cumsum(-1) - is_stop.long()  # stop tokens strictly before each position
    return (stops_before == 0).long()


@torch.no_grad()
def generate(
    model,
    tokenizer,
    rows: dict,
    gen_kwargs: dict,
    stop_ids: list[int],
    logprobs_at: float | None = None,
    prefix: PromptPrefix | None = None,
    value_head=None,
) -> Rollout:
    """Sample one response per prompt (``rows`` holds input_ids and reference columns) with the KV cache.

    ``logprobs_at`` (a temperature) also keeps the sampled tokens' log-probs under the model's raw logits at that
    temperature, and ``value_head`` the head's value before each sampled token, both read off the decoding steps
    instead of a second forward over prompt and response (PPO's old log-probs and values). ``prefix`` is the
    prompts' cache when the caller built it (to score other answers on it later); otherwise generation builds one
    where grouping the prompts saves enough.
    """
    device = next(model.parameters()).device
    queries, query_mask = left_pad(list(rows["input_ids"]), tokenizer.pad_token_id, device)
    keep_steps = logprobs_at is not None or value_head is not None
    extra = {"return_dict_in_generate": True} if keep_steps else {}
    if logprobs_at is not None:
        extra["output_logits"] = True
    if value_head is not None:
        extra["output_hidden_states"] = True
    cache = prefix.cache() if prefix is not None else grouped_prefill(model, queries, query_mask)
    if cache is not None:
        extra["cache"] = cache
    with few_row_linears(model):  # decode steps of a few rows: the layout this CPU streams weights fastest in
        output = model.generate(
            input_ids=queries,
            attention_mask=query_mask,
            eos_token_id=stop_ids,
            pad_token_id=tokenizer.pad_token_id,
            use_cache=True,
            **gen_kwargs,
            **extra,
        )
    sequences = output.sequences if keep_steps else output
    responses = sequences[:, queries.shape[1] :]
    logprobs = values = None
    if logprobs_at is not None and responses.shape[1]:
        logits = torch.stack(output.logits, dim=1).float() / logprobs_at
        logprobs = logprobs_from_logits(logits, responses)
    if value_head is not None and responses.shape[1]:
        # each step's last hidden state sits at the position before the token it sampled: where the critic is read
        values = value_head(torch.stack([step[-1][:, -1] for step in output.hidden_states], dim=1))
    decoded = responses.shape[1] > 0
    if not decoded:  # max_new_tokens=0 or an instant stop everywhere: keep one token per row
        responses = torch.full((len(queries), 1), stop_ids[0], dtype=torch.long, device=device)
    mask = response_mask_until_stop(responses, stop_ids)
    responses = responses.masked_fill(mask == 0, tokenizer.pad_token_id)
    width = int(mask.sum(-1).max())
    responses, mask = responses[:, :width], mask[:, :width]
    texts = [
        tokenizer.decode([t for t in row[: int(n)] if t not in stop_ids], skip_special_tokens=True).strip()
        for row, n in zip(responses.tolist(), mask.sum(-1).tolist())
    ]
    prompts = [tokenizer.decode(ids, skip_special_tokens=False) for ids in rows["input_ids"]]
    sampled = Rollout(queries, query_mask, responses, mask, prompts, texts, list(rows.get("reference") or []))
    if decoded:
        sampled.logprobs = None if logprobs is None else logprobs[:, :width] * mask
        sampled.values = None if values is None else values[:, :width] * mask
    elif keep_steps:  # nothing was decoded: score the stop token kept per row with a forward
        if value_head is not None:
            _, logprobs, values = policy_forward(model, value_head, sampled, logprobs_at or 1.0)
            sampled.values = values * mask
        else:
            logprobs = response_logprobs(model, sampled, logprobs_at)
        sampled.logprobs = logprobs * mask if logprobs_at is not None else None
    return sampled


def rollout_inputs(batch: Rollout) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    input_ids = torch.cat([batch.queries, batch.responses], dim=1)
    mask = torch.cat([batch.query_mask, batch.response_mask], dim=1)
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    return input_ids, mask, position_ids


def policy_forward(model, head, batch: Rollout, temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(logits, logprobs, values)`` over response tokens ``[N, R(, V)]`` in one forward of the policy trunk.

    The logits at position t predict token t+1, so response token j is scored by position ``P - 1 + j``; the value
    of that same position is the critic's estimate before token j is chosen. Logits are divided by the sampling
    temperature so the log-probs describe the distribution the tokens were drawn from. Where the model packs
    exactly, the rows go through padding-free; positions past a row's response are zero then.
    """
    if packs_exactly(model):
        out = packed_forward(model, batch, head=head)
        logits = out.logits.float() / temperature
        return logits, logprobs_from_logits(logits, batch.responses), out.values
    input_ids, mask, position_ids = rollout_inputs(batch)
    width_q, width_r = batch.queries.shape[1], batch.responses.shape[1]
    logits, values = last_hidden_and_values(
        model, head, input_ids, mask, position_ids=position_ids, logits_to_keep=width_r + 1
    )
    logits = logits[:, :-1].float() / temperature
    values = values[:, width_q - 1 : -1]
    return logits, logprobs_from_logits(logits, batch.responses), values


@torch.no_grad()
def response_logprobs(model, batch: Rollout, temperature: float = 1.0) -> torch.Tensor:
    """Log-probs ``[N, R]`` of the response tokens under ``model`` as it stands (padding positions: any value)."""
    if packs_exactly(model):
        return packed_forward(model, batch, temperature=temperature).logprobs
    input_ids, mask, position_ids = rollout_inputs(batch)
    width_r = batch.responses.shape[1]
    logits = model(
        input_ids=input_ids,
        attention_mask=mask,
        position_ids=position_ids,
        logits_to_keep=width_r + 1,
        use_cache=False,
    ).logits
    return logprobs_from_logits(logits[:, :-1].float() / temperature, batch.responses)


@torch.no_grad()
def reference_logprobs(model, batch: Rollout, temperature: float) -> torch.Tensor:
    """Log-probs of the response under the reference: the same base with every adapter switched off."""
    with model.disable_adapter():
        return response_logprobs(model, batch, temperature)


@dataclass
class PackedOutputs:
    """What one padding-free pass gives, laid out like the rollout: ``[N, R(, V)]`` with zeros past each response."""

    logits: torch.Tensor | None = None
    logprobs: torch.Tensor | None = None
    values: torch.Tensor | None = None


def packed_forward(model, batch: Rollout, head=None, temperature: float | None = None) -> PackedOutputs:
    """Prompt + response of every row without padding, in rows of at most ``ROW_BUDGET`` tokens.

    Keeps only what is asked: the logits over the response positions (``temperature`` given: just the sampled
    tokens' log-probs, not the logits) and, with ``head``, the head's values there.
    """
    width_q, width_r = batch.queries.shape[1], batch.responses.shape[1]
    prompt_lengths = batch.query_mask.sum(-1).tolist()
    response_lengths = batch.response_mask.sum(-1).tolist()
    sequences = [
        torch.cat([batch.queries[i, width_q - int(p) :], batch.responses[i, : int(r)]])
        for i, (p, r) in enumerate(zip(prompt_lengths, response_lengths))
    ]
    keep_logits = keeps_logit_positions(model)
    per_row: dict[str, dict[int, torch.Tensor]] = {"logits": {}, "logprobs": {}, "values": {}}
    for row in pack_rows(sequences):
        spans = []  # (member, first response-predicting column, response length)
        for member, start in zip(row.members, row.starts):
            p, r = int(prompt_lengths[member]), int(response_lengths[member])
            spans.append((member, start + p - 1, r))
        scored = torch.cat([torch.arange(c, c + r) for _, c, r in spans]).to(row.input_ids.device)
        kwargs = {"logits_to_keep": scored} if keep_logits else {}
        out = model(
            input_ids=row.input_ids,
            position_ids=row.position_ids,
            use_cache=False,
            output_hidden_states=head is not None,
            **kwargs,
        )
        logits = out.logits[0] if keep_logits else out.logits[0, scored]
        if temperature is not None:
            targets = row.input_ids[0, scored + 1]
            taken = logprobs_from_logits(logits.float().unsqueeze(0) / temperature, targets.unsqueeze(0))[0]
        offset = 0
        for member, _, r in spans:
            if temperature is None:
                per_row["logits"][member] = logits[offset : offset + r]
            else:
                per_row["logprobs"][member] = taken[offset : offset + r]
            offset += r
        if head is not None:
            hidden = out.hidden_states[-1][0]
            for member, column, r in spans:
                per_row["values"][member] = head(hidden[column : column + r])
    n = len(sequences)

    def grid(parts: dict[int, torch.Tensor]) -> torch.Tensor | None:
        if not parts:
            return None
        rows = pad_sequence([parts[i] for i in range(n)], batch_first=True)
        return F.pad(rows, (0, 0) * (rows.dim() - 2) + (0, width_r - rows.shape[1]))

    return PackedOutputs(grid(per_row["logits"]), grid(per_row["logprobs"]), grid(per_row["values"]))


# ---- rewards ---------------------------------------------------------------------------------------------------


@torch.no_grad()
def value_scores(model, head, batch: Rollout) -> torch.Tensor:
    """A reward model's score ``[N]`` of each prompt + response: its head's value at the last real token."""
    input_ids, mask, position_ids = rollout_inputs(batch)
    if packs_exactly(model):
        return packed_last_values(model, head, input_ids, mask).float()
    _, values = last_hidden_and_values(model, head, input_ids, mask, return_logits=False, position_ids=position_ids)
    return sequence_scores(values, mask).float()


class RewardScorer(Protocol):
    def __call__(self, batch: Rollout) -> torch.Tensor: ...


class RuleScorer:
    """Scores decoded responses with a rule (``reward_model: rule:<name>[:<arg>]``)."""

    def __init__(self, rule: RuleReward):
        self.rule = rule

    def __call__(self, batch: Rollout) -> torch.Tensor:
        refs = batch.references or [""] * len(batch)
        scores = self.rule(batch.texts, batch.prompts, refs)
        return torch.tensor(scores, dtype=torch.float32, device=batch.queries.device)


@contextlib.contextmanager
def active_adapter(model, name: str):
    """Run with adapter ``name`` active (frozen), then give the policy adapter back its place and gradients."""
    model.set_adapter(name, inference_mode=True)
    try:
        yield
    finally:
        model.set_adapter(POLICY)


class AdapterRewardScorer:
    """A LoRA reward model loaded as a second adapter on the policy's own base; its head is kept beside it."""

    def __init__(self, model, path: str):
        model.load_adapter(path, adapter_name=REWARD, is_trainable=False)
        model.set_adapter(POLICY)
        device = next(model.parameters()).device
        self.model = model
        self.head = load_value_head(path, hidden_size=hidden_size_of(model)).to(device).requires_grad_(False)

    def __call__(self, batch: Rollout) -> torch.Tensor:
        with active_adapter(self.model, REWARD):
            return value_scores(self.model, self.head, batch)


class ModelRewardScorer:
    """A full reward model (its own weights and head); costs a second model in memory."""

    def __init__(self, path: str, tokenizer, dtype: torch.dtype, device):
        from transformers import AutoModelForCausalLM

        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval().requires_grad_(False)
        vocab = self.model.get_input_embeddings().weight.shape[0]
        if vocab < len(tokenizer):
            raise ConfigError(
                f"reward_model: {path} has a vocabulary of {vocab} tokens but the tokenizer has {len(tokenizer)}; "
                "train the reward model from the same base and tokenizer as the policy."
            )
        self.head = load_value_head(path, hidden_size=hidden_size_of(self.model)).to(device).requires_grad_(False)

    def __call__(self, batch: Rollout) -> torch.Tensor:
        return value_scores(self.model, self.head, batch)


def check_reward_model(spec: str | None, model_args=None) -> str:
    """Validate ``reward_model`` before any model loads; returns its kind (rule, lora or full)."""
    if not spec:
        raise ConfigError("stage ppo needs reward_model: the output directory of an rm stage, or rule:<name>.")
    if is_rule_spec(spec):
        parse_rule(spec)
        return "rule"
    assert_reward_model_dir(spec)
    kind = reward_model_kind(spec)
    if model_args is not None and kind == "lora":
        _warn_if_other_base(spec, model_args)
    return kind


def _warn_if_other_base(path: str, model_args) -> None:
    """A LoRA reward model only means something on the base it was trained on: say so when that looks different."""
    try:
        meta = read_value_head_metadata(path)
    except Exception:  # an older head without metadata: nothing to compare
        return
    base = meta.get("base_model")
    if base and Path(base).name != Path(str(model_args.model_name_or_path)).name:
        logger.warning(
            "reward_model %s was trained on %s, but the policy base is %s.", path, base, model_args.model_name_or_path
        )
    merged = json.loads(meta.get("merged_adapters", "[]") or "[]")
    ours = list(model_args.adapter_dirs or [])
    if merged and [Path(p).resolve() for p in merged] != [Path(p).resolve() for p in ours[: len(merged)]]:
        logger.warning(
            "reward_model %s was trained on the base with %s merged; this run merges %s. Scores may be off.",
            path,
            merged,
            ours,
        )


def build_reward(spec: str, model, tokenizer, model_args) -> RewardScorer:
    """The scorer for ``reward_model``; a LoRA reward model is attached to ``model`` as the ``reward`` adapter."""
    kind = check_reward_model(spec, model_args)
    if kind == "rule":
        logger.info("Reward: rule %s", spec)
        return RuleScorer(parse_rule(spec))
    if kind == "lora":
        logger.info("Reward: LoRA adapter %s on the policy's base (one copy of the weights)", spec)
        return AdapterRewardScorer(model, spec)
    logger.info("Reward: full reward model %s (a second model in memory)", spec)
    first = next(model.parameters())
    return ModelRewardScorer(spec, tokenizer, model.get_input_embeddings().weight.dtype, first.device)

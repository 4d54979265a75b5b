"""Scoring preference pairs with a reward model: the pairwise loss, accuracy and per-pair scores.

A pair counts as correct when the chosen answer scores strictly above the rejected one, so a head that gives every
answer the same score sits at 0 accuracy rather than at a flattering 50%.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from genie_core.data.collator import PairwiseCollator
from genie_core.model.packed import packed_last_values, packs_exactly, real_tokens
from genie_core.model.pair_packing import packed_pair_values, shares_prefixes
from genie_core.model.value_head import last_hidden_and_values, sequence_scores

PAIR_SCORES_FILE = "reward_scores.jsonl"


def pairwise_scores(model, head, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """Scores of a ``PairwiseCollator`` batch -> ``(chosen[B], rejected[B])``; padding-free where that is exact, and
    each pair's common prompt run once where the model takes a tree mask."""
    if shares_prefixes(model):
        sequences = real_tokens(input_ids, attention_mask)
        half = len(sequences) // 2
        return packed_pair_values(model, head, sequences[:half], sequences[half:])
    if packs_exactly(model):
        return packed_last_values(model, head, input_ids, attention_mask).chunk(2, dim=0)
    _, values = last_hidden_and_values(model, head, input_ids, attention_mask, return_logits=False)
    scores = sequence_scores(values, attention_mask)
    return scores.chunk(2, dim=0)


def pairwise_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry loss: -log sigmoid(r_chosen - r_rejected), averaged over pairs."""
    return -F.logsigmoid(chosen.float() - rejected.float()).mean()


def pair_metrics(chosen, rejected) -> dict[str, float]:
    """Accuracy (chosen strictly above rejected) and score statistics for aligned score lists."""
    chosen = torch.as_tensor(chosen, dtype=torch.float32).flatten()
    rejected = torch.as_tensor(rejected, dtype=torch.float32).flatten()
    if chosen.numel() == 0:
        return {"accuracy": 0.0, "margin_mean": 0.0, "chosen_score": 0.0, "rejected_score": 0.0, "pairs": 0}
    margin = chosen - rejected
    return {
        "accuracy": float((margin > 0).float().mean()),
        "margin_mean": float(margin.mean()),
        "chosen_score": float(chosen.mean()),
        "rejected_score": float(rejected.mean()),
        "pairs": int(chosen.numel()),
    }


def compute_pairwise_metrics(eval_pred) -> dict[str, float]:
    """``compute_metrics`` for the rm Trainer: predictions are ``[N, 2]`` (chosen, rejected) scores."""
    scores = eval_pred.predictions
    scores = scores[0] if isinstance(scores, (tuple, list)) else scores
    scores = torch.as_tensor(scores)
    metrics = pair_metrics(scores[:, 0], scores[:, 1])
    metrics.pop("pairs")
    return metrics


@torch.no_grad()
def score_dataset(model, head, dataset, pad_token_id: int, batch_size: int = 8) -> list[dict[str, Any]]:
    """Score every pair of a tokenized preference split (columns prompt_ids/chosen_ids/rejected_ids)."""
    model.eval()
    device = head.summary.weight.device
    collate = PairwiseCollator(pad_token_id)
    rows: list[dict[str, Any]] = []
    for start in tqdm(range(0, len(dataset), batch_size), desc="Scoring pairs", unit="batch"):
        chunk = dataset[start : start + batch_size]
        features = [
            {"prompt_ids": p, "chosen_ids": c, "rejected_ids": r}
            for p, c, r in zip(chunk["prompt_ids"], chunk["chosen_ids"], chunk["rejected_ids"])
        ]
        batch = {k: v.to(device) for k, v in collate(features).items()}
        chosen, rejected = pairwise_scores(model, head, batch["input_ids"], batch["attention_mask"])
        sources = chunk.get("source") or [""] * len(features)
        for c, r, source in zip(chosen.tolist(), rejected.tolist(), sources):
            rows.append({"source": source, "chosen_score": c, "rejected_score": r, "correct": c > r})
    return rows

"""Generation metrics for predict/eval runs: BLEU-4 and ROUGE-1/2/L, as percentages.

Text is segmented with jieba, which handles both Chinese and space-separated languages, so the same
numbers are comparable across the English and Chinese demo sets.
"""

from __future__ import annotations

import functools
import logging
import math

METRIC_KEYS: tuple[str, ...] = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")
_ROUGE_KEYS: tuple[str, ...] = ("rouge-1", "rouge-2", "rouge-l")


def tokenize(text: str) -> list[str]:
    """Segment ``text`` with jieba and drop whitespace-only tokens."""
    return [tok for tok in _jieba().cut(text) if tok.strip()]


@functools.cache
def _jieba():
    """jieba, nltk and rouge load on first use: every sft child imports this module, few of them score text."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def _rouge_f(hyp_tokens: list[str], ref_tokens: list[str]) -> dict[str, float]:
    """ROUGE F-scores (0-1) for one pair; 0 when either side is empty or unscorable."""
    if not hyp_tokens or not ref_tokens:
        return dict.fromkeys(_ROUGE_KEYS, 0.0)
    try:
        from rouge_chinese import Rouge

        scores = Rouge().get_scores(" ".join(hyp_tokens), " ".join(ref_tokens))[0]
    except (ValueError, RecursionError):
        return dict.fromkeys(_ROUGE_KEYS, 0.0)
    return {key: float(scores[key]["f"]) for key in _ROUGE_KEYS}


def _bleu4(prediction: str, reference: str) -> float:
    """Character-level sentence BLEU-4 (0-1) with smoothing method 3."""
    if not prediction.strip() or not reference.strip():
        return 0.0
    hyp, ref = list(prediction), list(reference)
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    return float(sentence_bleu([ref], hyp, smoothing_function=SmoothingFunction().method3))


def score_pair(prediction: str, reference: str) -> dict[str, float]:
    """All metrics for a single prediction/reference pair, as percentages."""
    result = {key: value * 100.0 for key, value in _rouge_f(tokenize(prediction), tokenize(reference)).items()}
    result["bleu-4"] = _bleu4(prediction, reference) * 100.0
    return {key: result[key] for key in METRIC_KEYS}


def compute_generation_metrics(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Mean BLEU-4 and ROUGE-1/2/L F-scores (0-100) over aligned prediction/reference pairs."""
    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions but {len(references)} references")
    if not predictions:
        return dict.fromkeys(METRIC_KEYS, 0.0)
    per_example = [score_pair(pred, ref) for pred, ref in zip(predictions, references)]
    return {key: summarize([scores[key] for scores in per_example])["mean"] for key in METRIC_KEYS}


def summarize(values: list[float]) -> dict[str, float]:
    """Count, mean, population std, min and max of ``values`` (all zeros for an empty list)."""
    if not values:
        return {"count": 0, "mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0}
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    return {"count": n, "mean": mean, "std": std, "min": float(min(values)), "max": float(max(values))}

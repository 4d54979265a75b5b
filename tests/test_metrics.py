"""Generation metrics: BLEU-4 and ROUGE-1/2/L on English and Chinese text."""

from __future__ import annotations

import pytest

from genie_core.eval.metrics import METRIC_KEYS, compute_generation_metrics, summarize, tokenize

EN_REF = "The capital of France is Paris and it lies on the Seine."
ZH_REF = "今天天气晴朗，适合出门散步。"
ZH_PARTIAL = "今天天气晴朗，我们在家看书。"


def test_keys_and_identical_scores_full_marks() -> None:
    for text in (EN_REF, ZH_REF):
        scores = compute_generation_metrics([text], [text])
        assert set(scores) == set(METRIC_KEYS)
        for key in METRIC_KEYS:
            assert scores[key] == pytest.approx(100.0, abs=1e-3), key


def test_disjoint_scores_near_zero() -> None:
    for pred, ref in (("xyzzy", "abcdef"), ("猫咪喜欢吃鱼", ZH_REF)):
        scores = compute_generation_metrics([pred], [ref])
        for key in METRIC_KEYS:
            assert scores[key] == pytest.approx(0.0, abs=1e-6), (pred, key)
    # words disjoint but sharing the space character: ROUGE is 0 and BLEU stays small
    spaced = compute_generation_metrics(["xyz qwv"], ["abc def"])
    assert spaced["rouge-1"] == spaced["rouge-l"] == 0.0
    assert spaced["bleu-4"] < 10.0


def test_partial_chinese_overlap_is_strictly_between() -> None:
    scores = compute_generation_metrics([ZH_PARTIAL], [ZH_REF])
    for key in METRIC_KEYS:
        assert 0.0 < scores[key] < 100.0, (key, scores[key])


def test_empty_prediction_or_reference_scores_zero() -> None:
    for pred, ref in (("", ZH_REF), (ZH_REF, ""), ("   ", EN_REF), ("", "")):
        scores = compute_generation_metrics([pred], [ref])
        assert scores == dict.fromkeys(METRIC_KEYS, 0.0)


def test_scores_are_averaged_over_examples() -> None:
    pairs = [(ZH_PARTIAL, ZH_REF), ("Paris is the capital of France.", EN_REF)]
    singles = [compute_generation_metrics([p], [r]) for p, r in pairs]
    both = compute_generation_metrics([p for p, _ in pairs], [r for _, r in pairs])
    for key in METRIC_KEYS:
        assert both[key] == pytest.approx((singles[0][key] + singles[1][key]) / 2), key
    with_empty = compute_generation_metrics([ZH_REF, ""], [ZH_REF, ZH_REF])
    for key in METRIC_KEYS:
        assert with_empty[key] == pytest.approx(50.0, abs=1e-3), key


def test_length_mismatch_and_empty_input() -> None:
    with pytest.raises(ValueError):
        compute_generation_metrics(["a"], [])
    assert compute_generation_metrics([], []) == dict.fromkeys(METRIC_KEYS, 0.0)


def test_tokenize_drops_whitespace() -> None:
    tokens = tokenize("hello  world 你好世界")
    assert all(tok.strip() for tok in tokens)
    assert "hello" in tokens and "world" in tokens


def test_summarize() -> None:
    stats = summarize([1.0, 2.0, 3.0])
    assert stats["count"] == 3
    assert stats["mean"] == pytest.approx(2.0)
    assert stats["min"] == 1.0 and stats["max"] == 3.0
    assert stats["std"] == pytest.approx((2 / 3) ** 0.5)
    assert summarize([])["count"] == 0

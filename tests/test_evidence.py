"""Held-out evidence: the eval_split, rm held-out accuracy, the chain comparison and the champion gate on it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import ALPACA_ROWS, DIGIT_PPO, stage_config, write_registry

from genie_core.data.assemble import load_examples
from genie_core.data.holdout import prompt_key, split_digest
from genie_core.extras.errors import ConfigError
from genie_core.hparams import get_args
from genie_core.stages import run_stage

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest


def _data_args(**overrides):
    base = {"dataset": "alpaca_demo_en", "dataset_dir": str(ROOT / "data"), "eval_split": 0.2}
    return get_args(None, {"model_name_or_path": "x", "output_dir": "o", **base, **overrides}).data


# ---------------------------------------------------------------- the split


def test_heldout_split_is_disjoint_stable_and_shared_between_stages():
    data = _data_args()
    train, _ = load_examples(data, "sft", "train", part="train")
    held, _ = load_examples(data, "sft", "train", part="heldout")
    everything, _ = load_examples(_data_args(eval_split=0.0), "sft", "train")
    train_keys, held_keys = {prompt_key(e) for e in train}, {prompt_key(e) for e in held}
    assert not train_keys & held_keys  # no prompt on both sides, by content
    assert len(train) + len(held) == len(everything) == 300
    assert 30 <= len(held) <= 90  # about a fifth

    again, _ = load_examples(_data_args(), "sft", "train", part="heldout")
    ppo_held, _ = load_examples(_data_args(), "ppo", "train", part="heldout")
    assert [e.source for e in again] == [e.source for e in held]  # stable across reruns
    assert split_digest(ppo_held) == split_digest(held)  # same prompts for another stage on the same dataset

    capped, _ = load_examples(_data_args(max_samples=5), "sft", "train", part="heldout")
    assert [e.source for e in capped] == [e.source for e in held[:5]]  # max_samples caps the part, not the file
    other_seed, _ = load_examples(_data_args(eval_split_seed=7), "sft", "train", part="heldout")
    assert split_digest(other_seed) != split_digest(held)


def test_training_split_of_a_stage_never_holds_a_heldout_row(tmp_path, tiny_model_dir, genie_home):
    from genie_core.data.tokenized import get_dataset
    from genie_core.model import load_tokenizer
    from genie_core.template import get_template

    data_dir = write_registry(tmp_path / "data")
    args = get_args(None, stage_config(tiny_model_dir, data_dir, tmp_path / "o", eval_split=0.25))
    tokenizer = load_tokenizer(args.model)
    data = get_dataset(args, tokenizer, get_template("chatml", tokenizer), "sft")
    held, _ = load_examples(args.data, "sft", "train", part="heldout")
    assert set(data.train["source"]).isdisjoint(e.source for e in held)
    assert sorted(data.eval["source"]) == sorted(e.source for e in held)  # the stage evaluates on the held-out part
    assert len(data.train) + len(data.eval) == len(ALPACA_ROWS)


def test_gold_rule_of_the_quality_bench():
    from genie_core.rewards.rules import parse_rule

    gold = parse_rule("rule:gold_sentence")
    twelve = " ".join(["word"] * 12)
    scores = gold([twelve + ".", twelve, "Yes.", " ".join(["word"] * 30)], [""] * 4, [""] * 4)
    assert scores[0] == pytest.approx(1.0) and scores[1] == pytest.approx(0.8)  # the full stop is worth 0.2
    assert scores[2] == pytest.approx(0.8 / 12 + 0.2) and scores[3] == 0.0  # too short, far too long


def test_eval_split_is_checked_and_reported(tmp_path):
    from genie_core.data.check import check_datasets

    with pytest.raises(ConfigError, match="eval_split is a fraction"):
        _data_args(eval_split=1.5)
    report = check_datasets(_data_args(), "sft")
    held, _ = load_examples(_data_args(), "sft", "train", part="heldout")
    assert f"eval_split 0.2: {len(held)} prompts held out, {300 - len(held)} for training" in report
    one = write_registry(tmp_path / "one", rows=[ALPACA_ROWS[0]])
    args = _data_args(dataset="toy", dataset_dir=str(one), eval_split=0.01)
    assert "ERROR: eval_split holds out none of its prompts" in check_datasets(args, "sft")
    with pytest.raises(ConfigError, match="dataset 'toy': eval_split=0.01 holds out none of its 1 prompts"):
        load_examples(args, "sft", "train", part="heldout")


# ---------------------------------------------------------------- rm


PREF_ROWS = [
    {"instruction": f"Add {a} and {b}.", "input": "", "chosen": f"The answer is {a + b}.", "rejected": "No no no."}
    for a in range(1, 11)
    for b in range(1, 7)
]


def _pref_registry(root: Path) -> Path:
    ranking = {
        "pairs": {
            "file_name": "pairs.json",
            "ranking": True,
            "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"},
        }
    }
    data = write_registry(root, extra=ranking)
    (data / "pairs.json").write_text(json.dumps(PREF_ROWS))
    return data


def test_rm_reports_heldout_accuracy_and_margin(tmp_path, tiny_model_dir, genie_home):
    data = _pref_registry(tmp_path / "data")
    out = tmp_path / "rm"
    cfg = stage_config(tiny_model_dir, data, out, stage="rm", dataset="pairs", eval_split=0.25, do_eval=True)
    results = run_stage(get_args(None, {**cfg, "max_steps": 20}))
    held, _ = load_examples(get_args(None, cfg).data, "rm", "train", part="heldout")
    metrics = results["eval"]
    assert metrics["eval_pairs"] == len(held) >= 8
    assert metrics["eval_accuracy"] >= 0.75  # chance is 0.5 and a constant head scores 0
    assert metrics["eval_margin_mean"] > 0


# ---------------------------------------------------------------- the comparison


def _ppo(tiny_model_dir, data_dir, out, **overrides):
    """The digit reward of test_ppo, learnable by the tiny model in a couple of dozen steps, with a held-out split."""
    return stage_config(tiny_model_dir, data_dir, out, **{**DIGIT_PPO, "eval_split": 0.25, **overrides})


@pytest.fixture(scope="module")
def trained_ppo(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("evidence")
    mp = pytest.MonkeyPatch()
    mp.setenv("GENIE_HOME", str(root / "home"))
    data = write_registry(root / "data")
    out = root / "ppo"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_stage(get_args(None, _ppo(tiny_model_dir, data, out, max_steps=24, per_device_train_batch_size=16)))
    finally:
        torch.set_num_threads(before)
        mp.undo()
    return {"root": root, "data": data, "ppo": out}


def test_comparison_scores_every_model_on_the_heldout_prompts(trained_ppo, tiny_model_dir, genie_home):
    from genie_core.eval.comparison import format_table

    out = trained_ppo["root"] / "compare"
    chain = [
        {"name": "base", "model_name_or_path": str(tiny_model_dir)},
        {"name": "ppo", "model_name_or_path": str(tiny_model_dir), "checkpoint_dir": str(trained_ppo["ppo"])},
    ]
    cfg = _ppo(
        tiny_model_dir,
        trained_ppo["data"],
        out,
        do_train=False,
        do_eval=True,
        per_device_eval_batch_size=16,
        compare_models=json.dumps(chain),
        eval_rewards="rule:length:6",
    )
    metrics = run_stage(get_args(None, cfg))["eval"]
    summary = json.loads((out / "comparison.json").read_text())
    assert [m["name"] for m in summary["models"]] == ["base", "ppo"]
    assert summary["split"]["prompts"] == len(load_examples(get_args(None, cfg).data, "ppo", part="heldout")[0])
    assert metrics["eval/ppo/reward_mean"] > metrics["eval/base/reward_mean"] + 0.2  # learned, on unseen prompts
    assert metrics["eval/delta_reward_ci_low"] > 0  # the paired interval excludes zero
    assert metrics["eval/base/kl"] == 0 and metrics["eval/ppo/kl"] > 1  # KL to the candidate's predecessor
    for name in ("base", "ppo"):
        for key in ("length_6_mean", "response_length", "bleu-4", "rouge-l"):
            assert math.isfinite(metrics[f"eval/{name}/{key}"])
    assert (out / "comparison.png").stat().st_size > 1000
    rows = [json.loads(line) for line in (out / "generated_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == summary["split"]["prompts"] and "reward_mean" in rows[0]["ppo"]
    table = format_table(summary)
    assert "ppo - base reward_mean" in table and "better" in table


def test_pipeline_summary_prints_the_comparison_table(capsys):
    from flows.run import print_summary
    from genie_core.eval.comparison import flat_metrics, summarize
    from genie_core.hparams.eval_args import ChainModel

    chain = [ChainModel("base", "m"), ChainModel("sft", "m", "a"), ChainModel("ppo", "m", "a,b")]
    scores = {
        "base": {"reward_mean": [0.0, 0.1, 0.2, 0.1], "kl": [1.0, 1.2, 0.8, 1.1]},
        "sft": {"reward_mean": [0.2, 0.3, 0.2, 0.3], "kl": [0.0] * 4},
        "ppo": {"reward_mean": [0.6, 0.7, 0.5, 0.8], "kl": [2.0, 2.5, 1.5, 2.2]},
    }
    comparison = summarize(chain, scores, "sft", 1000, 0)
    comparison["split"] = {"prompts": 4, "datasets": "toy", "eval_split": 0.2, "digest": "abc"}
    flat = flat_metrics(comparison)
    assert flat["eval/ppo/reward_mean"] == pytest.approx(0.65) and flat["eval/delta_reward"] == pytest.approx(0.4)
    assert 0 < flat["eval/delta_reward_ci_low"] <= 0.4 <= flat["eval/delta_reward_ci_high"]
    assert {d["from"] + ">" + d["to"] for d in comparison["deltas"]} == {"base>sft", "base>ppo", "sft>ppo"}
    step = {
        "name": "evaluate",
        "kind": "evaluate",
        "ran": True,
        "wall_s": 3.0,
        "metrics": {},
        "comparison": comparison,
    }
    summary = {"pipeline": "p", "steps": [step], "runs_dir": "r", "tracking_uri": "", "flow_run_id": "x"}
    print_summary(summary, 5.0)
    out = capsys.readouterr().out
    assert "Held-out comparison: 4 prompts of toy" in out
    assert "ppo - sft reward_mean: +0.4 [95% CI" in out and "] better" in out
    [kl_line] = [line for line in out.splitlines() if "ppo - sft kl:" in line]
    assert "+2.05 [95% CI" in kl_line and kl_line.endswith("]")  # a cost: shown without a verdict


def test_comparison_on_preference_data_scores_the_pairs(tmp_path, tiny_model_dir, genie_home):
    """Ranking data: every model's preference for the chosen reply on the held-out pairs, BLEU against it."""
    data = _pref_registry(tmp_path / "data")
    out = tmp_path / "compare"
    chain = [
        {"name": "base", "model_name_or_path": str(tiny_model_dir)},
        {"name": "same", "model_name_or_path": str(tiny_model_dir)},  # the same weights under another name
    ]
    cfg = stage_config(
        tiny_model_dir,
        data,
        out,
        dataset="pairs",
        eval_split=0.25,
        do_train=False,
        do_eval=True,
        do_sample=False,
        max_new_tokens=4,
        per_device_eval_batch_size=8,
        compare_models=json.dumps(chain),
    )
    metrics = run_stage(get_args(None, cfg))["eval"]
    held, _ = load_examples(get_args(None, cfg).data, "rm", "train", part="heldout")
    assert metrics["eval/prompts"] == len(held) >= 8
    assert 0 <= metrics["eval/base/pref_accuracy"] <= 1
    assert metrics["eval/same/pref_accuracy"] == metrics["eval/base/pref_accuracy"]  # same weights, same verdicts
    assert metrics["eval/same/pref_margin"] == pytest.approx(metrics["eval/base/pref_margin"], abs=1e-4)
    assert metrics["eval/base/log_ratio"] == pytest.approx(0, abs=1e-4)  # greedy: a log-ratio, not a KL sample
    assert metrics["eval/delta_bleu-4"] == pytest.approx(0, abs=1e-6)

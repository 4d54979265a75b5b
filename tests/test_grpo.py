"""grpo and rloo stages on a tiny model: learning a rule reward, user reward functions with dataset columns, rm
outputs as rewards, resume, config errors before any model loads, the accelerate child, and the arith demo set."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from helpers import stage_config, write_registry
from helpers import trainer_log as _log
from safetensors.torch import load_file

from genie_core.extras.errors import ConfigError, DataError, GenieError
from genie_core.hparams import get_args
from genie_core.stages import run_stage

ROWS = [
    {"instruction": f"Add {a} and {b}.", "input": "", "output": f"The answer is {a + b}.", "sum": a + b}
    for a in range(1, 9)
    for b in range(1, 5)
]
PAIRS = [
    {"instruction": f"Add {a} and {b}.", "chosen": f"The answer is {a + b}.", "rejected": f"No. I don't know {b}."}
    for a in range(1, 7)
    for b in range(1, 5)
]
# What a tiny random model learns in a few dozen steps: replies made of digits (as the ppo tests reward), with LoRA on
# every linear layer plus a trainable lm_head copy so the tiny model can move.
DIGITS = {
    "stage": "grpo",
    "reward_funcs": "rule:charset:0123456789",
    "num_generations": 4,
    "max_completion_length": 6,
    "per_device_train_batch_size": 8,
    "lora_target": "all",
    "additional_target": "lm_head",
    "learning_rate": 1e-2,
}


@pytest.fixture()
def rl_dir(tmp_path):
    """``toy``: alpaca rows whose ``sum`` column reaches reward functions as ``answer``; ``pairs``: ranking data."""
    root = write_registry(tmp_path / "data", ROWS)
    (root / "pairs.json").write_text(json.dumps(PAIRS), encoding="utf-8")
    info = json.loads((root / "dataset_info.json").read_text())
    info["toy"]["extra_columns"] = {"answer": "sum"}
    info["pairs"] = {
        "file_name": "pairs.json",
        "ranking": True,
        "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"},
    }
    info["no_prompt"] = {"file_name": "toy.json", "columns": {"prompt": "question"}}
    (root / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return root


def _cfg(model_dir, data_dir, out, **overrides):
    return stage_config(model_dir, data_dir, out, **{**DIGITS, **overrides})


def test_grpo_learns_a_rule_reward_and_logs_per_step(tmp_path, tiny_model_dir, rl_dir, genie_home, one_thread):
    out = tmp_path / "grpo"
    run_stage(get_args(None, _cfg(tiny_model_dir, rl_dir, out, max_steps=40, plot_loss=True)))
    steps = [r for r in _log(out) if "reward" in r]
    assert [r["current_steps"] for r in steps] == list(range(1, 41))
    rewards = [r["reward"] for r in steps]
    first, last = sum(rewards[:8]) / 8, sum(rewards[-8:]) / 8
    assert first < 0.15 and last > first + 0.3, (first, last)  # measured: about 0.03 -> 0.75
    for key in ("rewards/charset_0123456789/mean", "reward_std", "completions/mean_length", "clip_ratio/region_mean"):
        assert key in steps[-1], key
    assert (out / "adapter_model.safetensors").is_file() and not (out / "ref").exists()
    assert (out / "training_loss.png").is_file() and (out / "training_reward.png").is_file()


def test_python_reward_function_gets_prompts_completions_and_columns(tmp_path, tiny_model_dir, rl_dir, genie_home):
    calls = tmp_path / "calls.jsonl"
    source = tmp_path / "my_rewards.py"
    source.write_text(
        "import json\n\n\n"
        "def short(prompts, completions, answer, **kwargs):\n"
        f"    with open({str(calls)!r}, 'a') as fh:\n"
        "        fh.write(json.dumps({'prompts': prompts, 'completions': completions, 'answer': answer,\n"
        "                             'reference': kwargs['reference'], 'keys': sorted(kwargs)}) + '\\n')\n"
        "    return [1.0 if len(c) < 4 else 0.0 for c in completions]\n"
    )
    out = tmp_path / "grpo"
    run_stage(get_args(None, _cfg(tiny_model_dir, rl_dir, out, reward_funcs=f"{source}:short", max_steps=2)))
    records = [json.loads(line) for line in calls.read_text().splitlines()]
    assert len(records) == 2  # one call per step, on all 8 replies (2 prompts x 4 generations)
    for record in records:
        assert len(record["prompts"]) == len(record["completions"]) == len(record["answer"]) == 8
        assert {"completion_ids", "source", "trainer_state"} <= set(record["keys"])
        for prompt, answer, reference in zip(record["prompts"], record["answer"], record["reference"]):
            assert prompt.startswith("<|im_start|>user\nAdd") and prompt.endswith("<|im_start|>assistant\n")
            a, b = (int(x) for x in prompt.split("Add ")[1].split(".")[0].split(" and "))
            assert answer == a + b and reference == f"The answer is {a + b}."  # the row's own columns
    assert "rewards/short/mean" in _log(out)[0]


def test_template_prompt_text_tokenizes_back_to_the_template_ids(tiny_model_dir):
    from transformers import AutoTokenizer

    from genie_core.data.processors import Budget, process_prompts
    from genie_core.schema import Example
    from genie_core.template import get_template

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    template = get_template("chatml", tokenizer)
    template.fix_tokenizer(tokenizer)
    example = Example(prompt=[{"role": "user", "content": "Add 12 and 30."}], response=[], system="Be brief.")
    example.extra["columns"] = {"answer": 42}
    rows = process_prompts([example], tokenizer, template, Budget(64), False)
    assert rows["answer"] == [42] and rows["reference"] == [""]
    ids = template.encode_prompt(tokenizer, example.prompt, "Be brief.", None)
    assert tokenizer(rows["prompt"][0], add_special_tokens=False)["input_ids"] == ids


def test_grpo_resume_continues_at_the_checkpoint_step(tmp_path, tiny_model_dir, rl_dir, genie_home):
    cfg = dict(max_steps=4, save_strategy="steps", save_steps=2)
    whole = tmp_path / "whole"
    run_stage(get_args(None, _cfg(tiny_model_dir, rl_dir, whole, **cfg)))

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(whole / "checkpoint-2", resumed / "checkpoint-2")  # what a run killed after step 2 leaves
    run_stage(get_args(None, _cfg(tiny_model_dir, rl_dir, resumed, **cfg)))
    assert [r["current_steps"] for r in _log(resumed) if "reward" in r] == [3, 4]  # steps 1-2 were not redone
    assert json.loads((resumed / "trainer_state.json").read_text())["global_step"] == 4
    # sampling, data order and optimizer were restored: the resumed run ends where the uninterrupted one did
    final_a = load_file(str(whole / "adapter_model.safetensors"))
    final_b = load_file(str(resumed / "adapter_model.safetensors"))
    step_2 = load_file(str(whole / "checkpoint-2" / "adapter_model.safetensors"))
    assert any(not torch.equal(final_a[k], step_2[k]) for k in final_a)
    for key in final_a:
        assert torch.allclose(final_a[key], final_b[key], atol=1e-6), key


def test_rm_output_scores_as_a_second_adapter_on_the_policy(tmp_path, tiny_model_dir, rl_dir, genie_home, genie_logs):
    rm = tmp_path / "rm"
    run_stage(get_args(None, stage_config(tiny_model_dir, rl_dir, rm, stage="rm", dataset="pairs", max_steps=2)))
    out = tmp_path / "grpo"
    specs = f"rule:charset:0123456789,{rm}"
    args = get_args(None, _cfg(tiny_model_dir, rl_dir, out, reward_funcs=specs, reward_weights="1.0,0.5", max_steps=2))
    run_stage(args)
    record = _log(out)[0]
    assert "rewards/rm_rm/mean" in record and "rewards/charset_0123456789/mean" in record
    assert "one copy of the weights" in genie_logs.text  # the reward adapter sits on the policy's own base
    assert not (out / "reward").exists()  # the reward adapter is an input, not saved with the policy
    assert set(json.loads((out / "adapter_config.json").read_text())["target_modules"]) >= {"q_proj", "down_proj"}


def test_rloo_runs_and_logs_reward_and_kl(tmp_path, tiny_model_dir, rl_dir, genie_home):
    out = tmp_path / "rloo"
    results = run_stage(get_args(None, _cfg(tiny_model_dir, rl_dir, out, stage="rloo", max_steps=3)))
    steps = [r for r in _log(out) if "reward" in r]
    assert [r["current_steps"] for r in steps] == [1, 2, 3]
    assert all("kl" in r and "rewards/charset_0123456789/mean" in r for r in steps)  # TRL's default beta 0.05
    assert torch.isfinite(torch.tensor(results["train"]["train_loss"]))
    assert (out / "adapter_model.safetensors").is_file()
    assert not (out / "ref").exists()  # the reference is the base with adapters off, not a saved copy


@pytest.mark.parametrize("kind", ["full", "freeze"])
def test_grpo_full_and_freeze_train_against_a_frozen_reference(tmp_path, tiny_model_dir, rl_dir, genie_home, kind):
    out = tmp_path / kind
    cfg = _cfg(tiny_model_dir, rl_dir, out, finetuning_type=kind, grpo_beta=0.05, max_steps=2, learning_rate=1e-3)
    cfg["num_layer_trainable"] = 1  # freeze: the last layer's mlp
    cfg.pop("additional_target")
    run_stage(get_args(None, cfg))
    assert all("kl" in r for r in _log(out) if "reward" in r)
    before = load_file(str(tiny_model_dir / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and (kind == "full" or all(".layers.1." in k for k in changed)), sorted(changed)


@pytest.mark.slow
def test_grpo_runs_in_accelerate_child(tmp_path, tiny_model_dir, rl_dir, genie_home):
    from genie_core.stage_parent import run_train

    out = tmp_path / "grpo"
    args = get_args(
        None, _cfg(tiny_model_dir, rl_dir, out, reward_funcs="genie_core.rewards.math:correct", max_steps=2)
    )
    assert run_train(args, launch=True) == 0
    assert (out / "genie_config.yaml").is_file() and (out / "adapter_model.safetensors").is_file()
    assert [r["current_steps"] for r in _log(out) if "reward" in r] == [1, 2]


# ---------------------------------------------------------------- errors before any model loads


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"reward_funcs": None}, "stage grpo needs reward_funcs: rule:<name>, module:function"),
        (
            {"num_generations": 3},
            r"num_generations \(3\) must divide .* = 8: set num_generations to one of \[2, 4, 8\]",
        ),
        ({"reward_weights": "1,2"}, r"reward_weights has 2 values but there are 1 scorers"),
        ({"num_generations": 1}, r"num_generations must be >= 2"),
        ({"grpo_beta": -0.1}, "grpo_beta must be >= 0"),
        ({"stage": "rloo", "do_train": False, "do_eval": True}, "stage rloo needs do_train: true"),
        ({"do_eval": True, "per_device_eval_batch_size": 6}, r"per_device_eval_batch_size \* processes \(6\)"),
    ],
)
def test_bad_grpo_settings_name_the_key(tmp_path, tiny_model_dir, rl_dir, overrides, message):
    with pytest.raises(ConfigError, match=message):
        get_args(None, _cfg(tiny_model_dir, rl_dir, tmp_path / "out", **overrides))


def test_grpo_keys_round_trip_through_the_parser(tmp_path, tiny_model_dir, rl_dir):
    specs = ["rule:charset:0123456789", "genie_core.rewards.math:correct"]
    cfg = _cfg(tiny_model_dir, rl_dir, tmp_path / "out", grpo_beta=0.0, reward_weights=[1, 0.5], reward_funcs=specs)
    args = get_args(None, cfg)
    assert args.grpo.reward_specs == ["rule:charset:0123456789", "genie_core.rewards.math:correct"]
    assert args.grpo.weights == [1.0, 0.5] and args.grpo.grpo_beta == 0.0


BAD_SIGNATURE = "def score(completions):\n    return [0.0 for _ in completions]\n"


@pytest.mark.parametrize(
    "spec, dataset, error, message",
    [
        ("no_such_module_xyz:score", "toy", ConfigError, "cannot import module 'no_such_module_xyz'"),
        ("FILE:score", "toy", ConfigError, r"must be defined as fn\(prompts, completions, \*\*kwargs\)"),
        ("FILE:missing", "toy", ConfigError, "has no function 'missing'; its functions: score"),
        ("genie_core.rewards.math:correct", "no_prompt", DataError, "column 'question' .*the prompt column"),
        ("genie_core.rewards.math:correct", "pairs", ConfigError, "'pairs' is a ranking .* which stage 'grpo' cannot"),
        ("NOT_RM", "toy", ConfigError, "is not a reward model; it lacks value_head.safetensors"),
    ],
)
def test_bad_rewards_and_data_are_refused_before_loading(
    tmp_path, tiny_model_dir, rl_dir, genie_home, no_model_load, spec, dataset, error, message
):
    from genie_core.stage_parent import run_train

    (tmp_path / "bad_rewards.py").write_text(BAD_SIGNATURE)
    (tmp_path / "not_rm").mkdir()
    spec = spec.replace("FILE", str(tmp_path / "bad_rewards.py")).replace("NOT_RM", str(tmp_path / "not_rm"))
    out = tmp_path / "out"
    args = get_args(None, _cfg(tiny_model_dir, rl_dir, out, reward_funcs=spec, dataset=dataset))
    with pytest.raises(error, match=message):
        run_train(args, launch=False)
    with pytest.raises(GenieError, match=message):  # the stage itself checks the same before loading a model
        run_stage(args)
    assert not (out / "adapter_model.safetensors").exists()


# ---------------------------------------------------------------- the arith demo set and its rewards


def test_arith_demo_is_reproducible_and_scored_by_its_rewards(tmp_path, data_dir):
    from genie_core.data.assemble import load_examples
    from genie_core.hparams import check_config
    from genie_core.rewards.math import answer_format, correct
    from genie_core.rewards.rules import parse_rule

    rebuilt = tmp_path / "arith.jsonl"
    subprocess.run([sys.executable, str(data_dir / "src" / "make_arith.py"), "--out", str(rebuilt)], check=True)
    assert rebuilt.read_bytes() == (data_dir / "arith_demo.jsonl").read_bytes()

    cfg = {"stage": "grpo", "model_name_or_path": "x", "output_dir": str(tmp_path), "do_train": True}
    cfg.update(dataset="arith_demo", dataset_dir=str(data_dir), reward_funcs="genie_core.rewards.math:correct")
    examples, dropped = load_examples(check_config(cfg).data, "grpo", "train", part="train")
    assert len(examples) == 320 and not dropped
    solutions = [ex.response[0]["content"] for ex in examples]
    answers = [ex.extra["columns"]["answer"] for ex in examples]
    assert correct([""] * 320, solutions, answers) == [1.0] * 320  # every worked solution is right
    assert answer_format([""] * 320, solutions) == [0.2] * 320
    assert correct(["", ""], ["It is 12, so 13", "13 apples"], [12, 12]) == [0.0, 0.0]
    rule = parse_rule("rule:arith_correct")
    assert rule(["so the answer is 48", "47"], ["", ""], [solutions[0], solutions[0]]) == [1.0, 0.0]

"""Reward model and DPO stages on a tiny model: learning, value-head saves, reference model, resume, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from helpers import stage_config, write_registry
from helpers import trainer_log as _log
from safetensors.torch import load_file

from genie_core.extras.errors import ConfigError, GenieError
from genie_core.hparams import get_args
from genie_core.model.value_head import (
    VALUE_HEAD_FILE,
    assert_reward_model_dir,
    attach_value_head,
    is_reward_model_dir,
    last_hidden_and_values,
    load_value_head,
    read_value_head_metadata,
    save_value_head,
    sequence_scores,
)
from genie_core.stages import run_stage

# A learnable preference: the chosen answer states the sum politely, the rejected one refuses.
PAIRS = [
    {
        "instruction": f"Add {a} and {b}.",
        "input": "",
        "chosen": f"The answer is {a + b}. Thank you!",
        "rejected": f"No. I don't know {b}.",
    }
    for a in range(1, 11)
    for b in range(1, 7)
]


@pytest.fixture()
def pref_dir(tmp_path):
    """A registry with a ranking dataset ``pairs`` and a plain alpaca dataset ``toy``."""
    root = write_registry(tmp_path / "data")
    (root / "pairs.json").write_text(json.dumps(PAIRS), encoding="utf-8")
    info = json.loads((root / "dataset_info.json").read_text())
    info["pairs"] = {
        "file_name": "pairs.json",
        "ranking": True,
        "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"},
    }
    (root / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return root


def _cfg(model_dir, data_dir, out, **overrides):
    base = {"dataset": "pairs", "stage": "rm", "cutoff_len": 48, "per_device_eval_batch_size": 8}
    return stage_config(model_dir, data_dir, out, **{**base, **overrides})


# ---------------------------------------------------------------- value head


def test_value_head_scores_last_real_token_and_round_trips(tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    head = attach_value_head(model, init_std=0.5)
    assert model.v_head is head and head.summary.weight.dtype == torch.float32
    ids = torch.randint(5, 300, (2, 6))
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0  # right padding
    with torch.no_grad():
        logits, values = last_hidden_and_values(model, head, ids, mask)
        none, values_only = last_hidden_and_values(model, head, ids, mask, return_logits=False)
        alone = last_hidden_and_values(model, head, ids[1:, :4], mask[1:, :4], return_logits=False)[1]
    assert logits.shape[:2] == (2, 6) and none is None
    assert torch.allclose(values, values_only, atol=1e-6)
    scores = sequence_scores(values, mask)
    assert torch.allclose(scores[1], alone[0, -1], atol=1e-5)  # padding does not change the score
    assert torch.equal(scores, torch.stack([values[0, 5], values[1, 3]]))

    path = save_value_head(head, tmp_path / "rm", {"base_model": "tiny"})
    assert path.name == VALUE_HEAD_FILE and not list((tmp_path / "rm").glob("*.tmp"))
    restored = load_value_head(tmp_path / "rm", hidden_size=32)
    assert torch.equal(restored.summary.weight, head.summary.weight.cpu())
    assert read_value_head_metadata(tmp_path / "rm")["base_model"] == "tiny"
    with pytest.raises(ConfigError, match="hidden size 32"):
        load_value_head(tmp_path / "rm", hidden_size=64)


def test_pair_scores_without_padding_equal_padded_ones(tiny_model_dir, monkeypatch):
    """The rm loss reads padding-free rows where the model packs exactly, and runs each pair's common beginning once
    where it takes a tree mask; scores and gradients (of the trunk too) do not change."""
    from transformers import AutoModelForCausalLM

    from genie_core.model import packed, pair_packing
    from genie_core.rewards import pairwise

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    head = attach_value_head(model, init_std=0.5)
    assert packed.packs_exactly(model) and pair_packing.shares_prefixes(model)
    lengths = [9, 3, 7, 6, 4, 2]  # chosen x3, rejected x3
    ids = torch.randint(5, 300, (6, 9))
    ids[3, :5] = ids[0, :5]  # pair 0 shares 5 tokens, pair 1 one token, pair 2 nothing
    ids[4, :1] = ids[1, :1]
    ids[2, :2] = ids[5, :2]  # pair 2: the rejected sequence is the chosen one's beginning (each keeps one token)
    mask = torch.tensor([[1] * n + [0] * (9 - n) for n in lengths])
    assert [pair_packing.shared_length(ids[i, : lengths[i]], ids[i + 3, : lengths[i + 3]]) for i in range(3)] == [
        5,
        1,
        1,
    ]
    monkeypatch.setattr(packed, "ROW_BUDGET", 12)  # more than one packed row
    assert len(pair_packing.pair_rows([(ids[i, : lengths[i]], ids[i + 3, : lengths[i + 3]]) for i in range(3)])) > 1
    results = []
    for tree, packs in ((True, True), (False, True), (False, False)):
        monkeypatch.setattr(pairwise, "shares_prefixes", lambda model, tree=tree: tree)
        monkeypatch.setattr(pairwise, "packs_exactly", lambda model, packs=packs: packs)
        model.zero_grad()
        chosen, rejected = pairwise.pairwise_scores(model, head, ids, mask)
        pairwise.pairwise_loss(chosen, rejected).backward()
        trunk = model.model.layers[0].self_attn.q_proj.weight.grad.clone()
        results.append((chosen, rejected, head.summary.weight.grad.clone(), trunk))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.allclose(a, b, atol=1e-5)
    assert results[0][3].abs().sum() > 0


def test_reward_model_dir_checks(tmp_path):
    empty = tmp_path / "sft"
    empty.mkdir()
    (empty / "adapter_config.json").write_text("{}")
    (empty / "adapter_model.safetensors").write_bytes(b"x")
    assert not is_reward_model_dir(empty)
    with pytest.raises(ConfigError, match=r"reward_model: .*sft is not a reward model; it lacks value_head"):
        assert_reward_model_dir(empty)
    with pytest.raises(ConfigError, match="does not exist"):
        assert_reward_model_dir(tmp_path / "nowhere")
    (empty / VALUE_HEAD_FILE).write_bytes(b"x")
    assert is_reward_model_dir(empty)


# ---------------------------------------------------------------- rm


def test_rm_lora_learns_preferences_and_saves_reward_model(tmp_path, tiny_model_dir, pref_dir, genie_home):
    out = tmp_path / "rm"
    cfg = _cfg(tiny_model_dir, pref_dir, out, val_size=0.2, do_eval=True, max_steps=30, save_steps=15)
    results = run_stage(get_args(None, {**cfg, "save_strategy": "steps", "eval_strategy": "steps", "eval_steps": 15}))
    during = [r for r in _log(out) if "eval_accuracy" in r]
    assert len(during) == 2 and during[-1]["eval_accuracy"] >= 0.9  # the Trainer's own eval reports accuracy too

    losses = [r["loss"] for r in _log(out) if "loss" in r]
    assert sum(losses[:3]) / 3 > 0.5 and sum(losses[-5:]) / 5 < 0.1  # starts near log 2, ends near 0
    assert results["eval"]["eval_accuracy"] >= 0.9  # held-out pairs, chance is 0.5
    assert results["eval"]["eval_margin_mean"] > 0
    rows = [json.loads(line) for line in (out / "reward_scores.jsonl").read_text().splitlines()]
    assert len(rows) == results["eval"]["eval_pairs"] == 12
    assert json.loads((out / "eval_results.json").read_text())["eval_accuracy"] == results["eval"]["eval_accuracy"]

    assert is_reward_model_dir(out) and (out / "adapter_model.safetensors").is_file()
    assert is_reward_model_dir(out / "checkpoint-15")  # checkpoints carry the head too
    adapter = load_file(str(out / "adapter_model.safetensors"))
    assert not any("v_head" in k for k in adapter)
    meta = read_value_head_metadata(out)
    assert meta["base_model"] == str(tiny_model_dir) and json.loads(meta["merged_adapters"]) == []


def _copy_checkpoint(src, dst, step):
    """What a run killed right after saving ``checkpoint-<step>`` leaves behind."""
    import shutil

    dst.mkdir(parents=True)
    shutil.copytree(src / f"checkpoint-{step}", dst / f"checkpoint-{step}")


@pytest.mark.parametrize("kind", ["lora", "full"])
def test_rm_resume_continues_where_the_checkpoint_left(tmp_path, tiny_model_dir, pref_dir, genie_home, kind):
    weights = "adapter_model.safetensors" if kind == "lora" else "model.safetensors"
    cfg = dict(max_steps=4, save_strategy="steps", save_steps=2, lora_dropout=0.0, finetuning_type=kind)
    whole = tmp_path / "whole"
    run_stage(get_args(None, _cfg(tiny_model_dir, pref_dir, whole, **cfg)))

    resumed = tmp_path / "resumed"
    _copy_checkpoint(whole, resumed, 2)
    run_stage(get_args(None, _cfg(tiny_model_dir, pref_dir, resumed, **cfg)))
    assert [r["current_steps"] for r in _log(resumed) if "loss" in r] == [3, 4]  # steps 1-2 were not redone

    # the resumed run ends where the uninterrupted one did: policy, head, optimizer and data order were restored
    head_a, head_b = load_value_head(whole), load_value_head(resumed)
    head_2 = load_value_head(whole / "checkpoint-2")
    assert not torch.equal(head_2.summary.weight, head_a.summary.weight)
    assert torch.allclose(head_a.summary.weight, head_b.summary.weight, atol=1e-6)
    final_a, final_b = load_file(str(whole / weights)), load_file(str(resumed / weights))
    assert final_a.keys() == final_b.keys() and not any(k.startswith("v_head") for k in final_a)
    for key in final_a:
        assert torch.allclose(final_a[key], final_b[key], atol=1e-6), key


@pytest.mark.parametrize("stage", ["rm", "dpo"])
def test_qlora_runs_on_cpu(tmp_path, tiny_model_dir, pref_dir, genie_home, stage):
    out = tmp_path / "qlora"
    cfg = _cfg(tiny_model_dir, pref_dir, out, stage=stage, max_steps=2, quantization_bit=4)
    results = run_stage(get_args(None, cfg))
    assert torch.isfinite(torch.tensor(results["train"]["train_loss"]))
    assert (out / "adapter_model.safetensors").is_file()
    assert is_reward_model_dir(out) == (stage == "rm")


def test_rm_over_merged_sft_and_genie_eval(tmp_path, tiny_model_dir, pref_dir, genie_home):
    from genie_core.eval_command import main as eval_main

    sft = tmp_path / "sft"
    run_stage(get_args(None, stage_config(tiny_model_dir, pref_dir, sft, max_steps=2)))
    rm = tmp_path / "rm"
    cfg = _cfg(tiny_model_dir, pref_dir, rm, max_steps=8, checkpoint_dir=str(sft), resume_lora_training=False)
    run_stage(get_args(None, cfg))
    assert json.loads(read_value_head_metadata(rm)["merged_adapters"]) == [str(sft.resolve())]

    common = ["--stage", "rm", "--model_name_or_path", str(tiny_model_dir), "--dataset", "pairs", "--template"]
    common += ["chatml", "--dataset_dir", str(pref_dir), "--cutoff_len", "48", "--max_samples", "12"]
    # only the reward model is named: the SFT adapter under it is read from its value head and merged first
    assert eval_main([*common, "--checkpoint_dir", str(rm), "--output_dir", str(tmp_path / "auto")]) == 0
    assert eval_main([*common, "--checkpoint_dir", f"{sft},{rm}", "--output_dir", str(tmp_path / "given")]) == 0
    auto = json.loads((tmp_path / "auto" / "eval_results.json").read_text())
    given = json.loads((tmp_path / "given" / "eval_results.json").read_text())
    assert auto["eval_pairs"] == 12 and 0 <= auto["eval_accuracy"] <= 1
    assert auto["eval_chosen_score"] == pytest.approx(given["eval_chosen_score"], abs=1e-5)

    with pytest.raises(ConfigError, match=r"checkpoint_dir: .*sft is not a reward model; it lacks value_head"):
        eval_main([*common, "--checkpoint_dir", str(sft), "--output_dir", str(tmp_path / "bad")])


def test_genie_eval_sft_writes_bleu_rouge(tmp_path, tiny_model_dir, pref_dir, genie_home):
    from genie_core.eval_command import main as eval_main

    sft = tmp_path / "sft"
    run_stage(get_args(None, stage_config(tiny_model_dir, pref_dir, sft, max_steps=2)))
    out = tmp_path / "eval"
    argv = ["stage=sft", f"model_name_or_path={tiny_model_dir}", f"checkpoint_dir={sft}", "dataset=toy"]
    argv += [f"dataset_dir={pref_dir}", "template=chatml", f"output_dir={out}", "max_samples=4", "max_new_tokens=6"]
    assert eval_main(argv) == 0
    scores = json.loads((out / "predict_results.json").read_text())
    assert scores["predict_samples"] == 4 and 0 <= scores["predict_bleu-4"] <= 100
    assert len((out / "generated_predictions.jsonl").read_text().splitlines()) == 4


# ---------------------------------------------------------------- dpo


def _dpo_trainer(model_dir, data_dir, out, **overrides):
    from genie_core.data.tokenized import get_dataset
    from genie_core.model import load_tokenizer
    from genie_core.stages.dpo import build_dpo_trainer
    from genie_core.template import get_template

    args = get_args(None, _cfg(model_dir, data_dir, out, stage="dpo", **overrides))
    tokenizer = load_tokenizer(args.model)
    template = get_template(args.data.template, tokenizer)
    template.fix_tokenizer(tokenizer)
    data = get_dataset(args, tokenizer, template, "dpo")
    trainer = build_dpo_trainer(args, tokenizer, data)
    batch = trainer.data_collator([data.train[i] for i in range(8)])
    return trainer, batch


@torch.no_grad()
def _policy_logps(model, batch):
    """Summed log-probs of the completion tokens, chosen and rejected halves."""
    was_training = model.training
    model.eval()
    batch = {k: v.to(model.device) for k, v in batch.items()}  # the trainer put the model on its device
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    model.train(was_training)
    labels, mask = batch["input_ids"][:, 1:], batch["completion_mask"][:, 1:]
    token_logps = logits.float().log_softmax(-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return (token_logps * mask).sum(-1).chunk(2)


@pytest.mark.parametrize("kind, lr", [("lora", 5e-3), ("full", 1e-3)])
def test_dpo_margin_grows_and_reference_stays_fixed(tmp_path, tiny_model_dir, pref_dir, genie_home, kind, lr):
    out = tmp_path / kind
    trainer, batch = _dpo_trainer(tiny_model_dir, pref_dir, out, finetuning_type=kind, max_steps=5, learning_rate=lr)
    if kind == "lora":
        assert trainer.ref_model is None and set(trainer.model.peft_config) == {"default"}  # no second copy
    else:
        policy_ptrs = {p.data_ptr() for p in trainer.model.parameters()}
        assert not any(p.data_ptr() in policy_ptrs for p in trainer.ref_model.parameters())
        assert not any(p.requires_grad for p in trainer.ref_model.parameters())

    reference = trainer.ref_model or trainer.model  # TRL's choice: LoRA scores the reference with adapters off
    ref_c0, ref_r0 = trainer.compute_ref_log_probs(reference, batch)
    pol_c0, pol_r0 = _policy_logps(trainer.model, batch)
    assert torch.allclose(pol_c0, ref_c0, atol=1e-4) and torch.allclose(pol_r0, ref_r0, atol=1e-4)

    trainer.train()
    ref_c1, ref_r1 = trainer.compute_ref_log_probs(reference, batch)
    pol_c1, pol_r1 = _policy_logps(trainer.model, batch)
    assert torch.allclose(ref_c0, ref_c1, atol=1e-5) and torch.allclose(ref_r0, ref_r1, atol=1e-5)
    margin = ((pol_c1 - ref_c1) - (pol_r1 - ref_r1)).mean()
    assert margin > 0.5, margin  # chosen gained on rejected relative to the reference
    assert not (pol_c1 - pol_c0).abs().max() < 1e-4  # the policy moved


def test_dpo_over_merged_sft_uses_the_sft_model_as_reference(tmp_path, tiny_model_dir, pref_dir, genie_home):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    sft = tmp_path / "sft"
    run_stage(get_args(None, stage_config(tiny_model_dir, pref_dir, sft, max_steps=4)))
    trainer, batch = _dpo_trainer(
        tiny_model_dir, pref_dir, tmp_path / "dpo", checkpoint_dir=str(sft), resume_lora_training=False
    )
    ref_c, ref_r = trainer.compute_ref_log_probs(trainer.model, batch)

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    base_c, _ = _policy_logps(base, batch)
    sft_c, sft_r = _policy_logps(PeftModel.from_pretrained(base, str(sft)), batch)
    assert torch.allclose(ref_c, sft_c, atol=1e-4) and torch.allclose(ref_r, sft_r, atol=1e-4)
    assert not torch.allclose(ref_c, base_c, atol=1e-3)  # the SFT adapter is in the reference, not just the base


@pytest.mark.parametrize("loss, expected", [("sigmoid", 0.6931), ("hinge", 1.0), ("ipo", 25.0)])
def test_dpo_loss_types_reach_trl(tmp_path, tiny_model_dir, pref_dir, genie_home, loss, expected):
    """At the start the policy equals the reference, so each loss takes its textbook value at zero margin."""
    trainer, batch = _dpo_trainer(tiny_model_dir, pref_dir, tmp_path / loss, dpo_loss=loss, dpo_beta=0.1)
    assert trainer.loss_types == [loss] and trainer.beta == 0.1
    with torch.no_grad():
        value = trainer.compute_loss(trainer.model, trainer._prepare_inputs(batch))
    assert value.item() == pytest.approx(expected, rel=1e-3)


def test_dpo_ftx_adds_the_sft_loss(tmp_path, tiny_model_dir, pref_dir, genie_home):
    trainer, batch = _dpo_trainer(tiny_model_dir, pref_dir, tmp_path / "ftx", dpo_ftx=0.5)
    assert trainer.loss_types == ["sigmoid", "sft"] and trainer.loss_weights == [1.0, 0.5]
    with torch.no_grad():
        value = trainer.compute_loss(trainer.model, trainer._prepare_inputs(batch))
    assert value.item() > 0.6931 + 0.5  # the chosen answers' NLL is several nats for an untrained model


def test_dpo_lora_resume_continues_where_the_checkpoint_left(tmp_path, tiny_model_dir, pref_dir, genie_home):
    cfg = dict(stage="dpo", max_steps=4, save_strategy="steps", save_steps=2, lora_dropout=0.0)
    whole = tmp_path / "whole"
    run_stage(get_args(None, _cfg(tiny_model_dir, pref_dir, whole, **cfg)))
    assert not (whole / "ref").exists()  # only the trained adapter is saved
    resumed = tmp_path / "resumed"
    _copy_checkpoint(whole, resumed, 2)
    run_stage(get_args(None, _cfg(tiny_model_dir, pref_dir, resumed, **cfg)))
    assert [r["current_steps"] for r in _log(resumed) if "loss" in r] == [3, 4]
    final_a = load_file(str(whole / "adapter_model.safetensors"))
    final_b = load_file(str(resumed / "adapter_model.safetensors"))
    at_2 = load_file(str(whole / "checkpoint-2" / "adapter_model.safetensors"))
    assert any(not torch.equal(at_2[k], final_a[k]) for k in final_a)
    for key in final_a:
        assert torch.allclose(final_a[key], final_b[key], atol=1e-6), key


# ---------------------------------------------------------------- launch and bad input


@pytest.mark.parametrize("stage", ["rm", "dpo"])
def test_stage_runs_in_accelerate_child(tmp_path, tiny_model_dir, pref_dir, genie_home, stage):
    from genie_core.stage_parent import run_train

    out = tmp_path / stage
    args = get_args(None, _cfg(tiny_model_dir, pref_dir, out, stage=stage, max_steps=2))
    assert run_train(args, launch=True) == 0
    assert (out / "genie_config.yaml").is_file() and (out / "adapter_model.safetensors").is_file()
    assert is_reward_model_dir(out) == (stage == "rm")
    assert [r["current_steps"] for r in _log(out) if "loss" in r] == [1, 2]


@pytest.mark.parametrize(
    "stage, dataset, message",
    [
        ("sft", "pairs", r"dataset 'pairs' is a ranking \(chosen/rejected\) dataset.*stage rm or dpo"),
        ("rm", "toy", r"stage 'rm' trains on preference pairs, but dataset 'toy' is not a ranking dataset"),
        ("dpo", "toy", r"stage 'dpo' trains on preference pairs, but dataset 'toy' is not a ranking dataset"),
    ],
)
def test_wrong_kind_of_data_is_refused_before_loading(
    tmp_path, tiny_model_dir, pref_dir, genie_home, no_model_load, stage, dataset, message
):
    from genie_core.stage_parent import run_train

    out = tmp_path / "out"
    args = get_args(None, _cfg(tiny_model_dir, pref_dir, out, stage=stage, dataset=dataset))
    with pytest.raises(GenieError, match=message):
        run_train(args, launch=False)
    assert not (out / "adapter_model.safetensors").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"stage": "rm", "do_predict": True}, "do_predict does not apply to stage rm"),
        ({"stage": "dpo", "dpo_beta": 0}, "dpo_beta must be > 0"),
        ({"stage": "dpo", "dpo_label_smoothing": 0.5}, r"dpo_label_smoothing must be in \[0, 0.5\)"),
        ({"stage": "dpo", "do_train": False, "do_eval": True}, "stage dpo needs do_train: true"),
        ({"stage": "dpo", "dpo_loss": "kto_pair"}, r"'pref_loss' must be one of \['sigmoid', 'ipo', 'hinge'"),
    ],
)
def test_bad_rm_dpo_settings_name_the_key(tmp_path, tiny_model_dir, pref_dir, overrides, message):
    with pytest.raises(ConfigError, match=message):
        get_args(None, _cfg(tiny_model_dir, pref_dir, tmp_path / "out", **overrides))


def test_genie_eval_cli_reports_a_missing_value_head(tmp_path, tiny_model_dir):
    argv = [sys.executable, "-m", "flows.cli", "eval", "--stage", "rm", "--model_name_or_path"]
    argv += [str(tiny_model_dir), "--dataset", "pairs", "--output_dir", str(tmp_path / "out")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "checkpoint_dir:" in proc.stderr and "is not a reward model" in proc.stderr


def test_dpo_groups_pairs_by_length_unless_told_otherwise(tmp_path, tiny_model_dir, pref_dir, genie_home):
    """TRL pads a batch to its longest reply: similar lengths share a batch by default; the user can say no."""
    import random

    from datasets import Dataset

    trainer, _ = _dpo_trainer(tiny_model_dir, pref_dir, tmp_path / "grouped", max_steps=1)
    assert trainer.args.train_sampling_strategy == "group_by_length"
    sizes = list(range(1, 65))
    random.Random(0).shuffle(sizes)
    rows = Dataset.from_dict(
        {"prompt_ids": [[5] * n for n in sizes], "chosen_ids": [[6] * n for n in sizes], "rejected_ids": [[7]] * 64}
    )
    batch = trainer.args.train_batch_size

    def spread(order):  # mean max-min length within a batch
        return sum(
            max(sizes[i] for i in order[k : k + batch]) - min(sizes[i] for i in order[k : k + batch])
            for k in range(0, 64, batch)
        ) / (64 / batch)

    grouped = list(iter(trainer._get_train_sampler(rows)))
    assert sorted(grouped) == list(range(64))
    assert spread(grouped) < 0.5 * spread(list(range(64)))  # file order is random here
    evaluated = list(iter(trainer._get_eval_sampler(rows)))  # transformers' own would look for input_ids and fail
    assert sorted(evaluated) == list(range(64)) and spread(evaluated) < 0.5 * spread(list(range(64)))
    assert "eval_loss" in trainer.evaluate(trainer.train_dataset)  # a held-out split evaluates with the groups on
    plain, _ = _dpo_trainer(tiny_model_dir, pref_dir, tmp_path / "plain", max_steps=1, group_by_length=False)
    assert plain.args.train_sampling_strategy == "random"

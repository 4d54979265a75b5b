"""The kto stage and the reference-free dpo losses (ORPO, SimPO) on a tiny model: learning, no reference, bad input."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers import stage_config, write_registry
from helpers import trainer_log as _log
from safetensors.torch import load_file

from genie_core.extras.errors import ConfigError, DataError, GenieError
from genie_core.hparams import get_args
from genie_core.stages import run_stage

# A learnable preference: the polite sum is desirable (chosen), the refusal undesirable (rejected).
GOOD, BAD = "The answer is {s}. Thank you!", "No. I don't know {b}."
SUMS = [(a, b) for a in range(1, 11) for b in range(1, 7)]
PAIRS = [
    {"instruction": f"Add {a} and {b}.", "chosen": GOOD.format(s=a + b), "rejected": BAD.format(b=b)} for a, b in SUMS
]
# KTO data is unpaired: each prompt has one reply, tagged; half the prompts get the good one
TAGGED = [
    {
        "messages": [
            {"role": "user", "content": f"Add {a} and {b}."},
            {"role": "assistant", "content": GOOD.format(s=a + b) if (a + b) % 2 else BAD.format(b=b)},
        ],
        "label": bool((a + b) % 2),
    }
    for a, b in SUMS
]
TAGGED_ENTRY = {
    "file_name": "tagged.json",
    "formatting": "sharegpt",
    "columns": {"messages": "messages", "kto_tag": "label"},
    "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
}


@pytest.fixture()
def data_dir(tmp_path):
    """A registry with ``pairs`` (ranking), ``tagged`` (kto_tag) and ``toy`` (plain alpaca)."""
    root = tmp_path / "data"
    extra = {
        "pairs": {"file_name": "pairs.json", "ranking": True, "columns": {"chosen": "chosen", "rejected": "rejected"}},
        "tagged": TAGGED_ENTRY,
    }
    write_registry(root, extra=extra)
    (root / "pairs.json").write_text(json.dumps(PAIRS), encoding="utf-8")
    (root / "tagged.json").write_text(json.dumps(TAGGED), encoding="utf-8")
    return root


def _cfg(model_dir, data_dir, out, **overrides):
    base = {"stage": "kto", "dataset": "tagged", "cutoff_len": 48, "per_device_eval_batch_size": 8}
    return stage_config(model_dir, data_dir, out, **{**base, **overrides})


def _build(stage: str, model_dir, data_dir, out, **overrides):
    """The stage's trainer and its tokenized data, as run_<stage> builds them."""
    from genie_core.data.tokenized import get_dataset
    from genie_core.model import load_tokenizer
    from genie_core.template import get_template

    args = get_args(None, _cfg(model_dir, data_dir, out, stage=stage, **overrides))
    tokenizer = load_tokenizer(args.model)
    template = get_template(args.data.template, tokenizer)
    template.fix_tokenizer(tokenizer)
    data = get_dataset(args, tokenizer, template, stage)
    if stage == "kto":
        from genie_core.stages.kto import build_kto_trainer

        return build_kto_trainer(args, tokenizer, data)
    from genie_core.stages.dpo import build_dpo_trainer

    return build_dpo_trainer(args, tokenizer, data)


@torch.no_grad()
def _completion_logps(model, batch, mean: bool = False):
    """Log-probs of the completion tokens, summed (or averaged) per row, from plain logits."""
    was_training = model.training
    model.eval()
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    model.train(was_training)
    labels, mask = batch["input_ids"][:, 1:], batch["completion_mask"][:, 1:]
    token_logps = logits.float().log_softmax(-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    total = (token_logps * mask).sum(-1)
    return total / mask.sum(-1) if mean else total


# ---------------------------------------------------------------- kto


def test_kto_widens_the_desirable_undesirable_margin(tmp_path, tiny_model_dir, data_dir, genie_home):
    out = tmp_path / "kto"
    trainer = _build("kto", tiny_model_dir, data_dir, out, max_steps=12, kto_chosen_weight=1.0)
    assert trainer.ref_model is None and set(trainer.model.peft_config) == {"default"}  # LoRA: adapters off
    rows = [trainer.train_dataset[i] for i in range(16)]
    batch = trainer.data_collator(rows)
    labels = batch["label"].bool()
    assert 0 < labels.sum() < len(rows)  # the seeded shuffle mixes both kinds into a batch

    def margin():
        policy = _completion_logps(trainer.model, batch)
        with trainer.model.disable_adapter():
            ref = _completion_logps(trainer.model, batch)
        ratio = policy - ref  # the implied reward / beta
        return (ratio[labels].mean() - ratio[~labels].mean()).item()

    assert margin() == pytest.approx(0.0, abs=1e-4)  # the policy starts as the reference
    trainer.train()
    print(f"kto: desirable - undesirable log-ratio margin {margin():.2f}")
    assert margin() > 1.0, margin()

    logged = [r for r in _log(out) if "loss" in r]
    assert [r["current_steps"] for r in logged] == list(range(1, 13))
    assert {"rewards/chosen", "rewards/rejected", "kl"} <= set(logged[0])  # TRL's KTO metrics reach the log
    margins = [r["rewards/margins"] for r in logged if "rewards/margins" in r]
    assert sum(margins[-3:]) / 3 > sum(margins[:3]) / 3 + 0.05


def test_kto_full_tuning_keeps_a_frozen_reference(tmp_path, tiny_model_dir, data_dir, genie_home):
    trainer = _build("kto", tiny_model_dir, data_dir, tmp_path / "kto", finetuning_type="full", pref_beta=0.2)
    assert trainer.beta == 0.2  # LLaMA-Factory's pref_beta reaches KTO when kto_beta is unset
    policy = {p.data_ptr() for p in trainer.model.parameters()}
    assert not any(p.data_ptr() in policy for p in trainer.ref_model.parameters())
    assert not any(p.requires_grad for p in trainer.ref_model.parameters())


@pytest.mark.parametrize("stage", [{"stage": "kto"}, {"stage": "dpo", "dataset": "pairs", "pref_loss": "orpo"}])
def test_resume_continues_where_the_checkpoint_left(tmp_path, tiny_model_dir, data_dir, genie_home, stage):
    cfg = dict(max_steps=4, save_strategy="steps", save_steps=2, lora_dropout=0.0, **stage)
    whole = tmp_path / "whole"
    run_stage(get_args(None, _cfg(tiny_model_dir, data_dir, whole, **cfg)))
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(whole / "checkpoint-2", resumed / "checkpoint-2")  # what a run killed after step 2 leaves
    run_stage(get_args(None, _cfg(tiny_model_dir, data_dir, resumed, **cfg)))
    assert [r["current_steps"] for r in _log(resumed) if "loss" in r] == [3, 4]
    final_a = load_file(str(whole / "adapter_model.safetensors"))
    final_b = load_file(str(resumed / "adapter_model.safetensors"))
    for key in final_a:
        assert torch.allclose(final_a[key], final_b[key], atol=1e-6), key


def test_kto_runs_in_accelerate_child(tmp_path, tiny_model_dir, data_dir, genie_home):
    from genie_core.stage_parent import run_train

    out = tmp_path / "kto"
    assert run_train(get_args(None, _cfg(tiny_model_dir, data_dir, out, max_steps=2)), launch=True) == 0
    assert (out / "genie_config.yaml").is_file() and (out / "adapter_model.safetensors").is_file()
    logged = [r for r in _log(out) if "loss" in r]
    assert [r["current_steps"] for r in logged] == [1, 2] and "kl" in logged[0]


# ---------------------------------------------------------------- orpo, simpo


@pytest.fixture()
def count_model_loads(monkeypatch):
    """Counts load_model calls (the real function still runs)."""
    import genie_core.stages.dpo as dpo

    calls = []
    real = dpo.load_model

    def counted(*args, **kwargs):
        calls.append(kwargs.get("is_trainable"))
        return real(*args, **kwargs)

    monkeypatch.setattr(dpo, "load_model", counted)
    return calls


# ORPO's beta weighs its odds-ratio term (0.1 as in the paper); SimPO's scales the reward (the paper uses 2-2.5)
@pytest.mark.parametrize(
    "loss, kind, lr, beta", [("orpo", "full", 1e-3, 0.1), ("simpo", "full", 1e-3, 2.0), ("simpo", "lora", 2e-2, 2.0)]
)
def test_reference_free_losses_build_no_reference_and_widen_the_margin(
    tmp_path, tiny_model_dir, data_dir, genie_home, count_model_loads, loss, kind, lr, beta
):
    out = tmp_path / loss
    overrides = dict(dataset="pairs", pref_loss=loss, finetuning_type=kind, learning_rate=lr, pref_beta=beta)
    trainer = _build("dpo", tiny_model_dir, data_dir, out, max_steps=8, simpo_gamma=1.0, **overrides)
    assert trainer.ref_model is None and trainer.loss_types == [loss]
    assert count_model_loads == [True]  # the policy only: no frozen copy for full tuning
    if kind == "lora":
        assert set(trainer.model.peft_config) == {"default"}

    batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in range(8)]))
    forwards = []
    hook = trainer.model.register_forward_pre_hook(lambda module, args: forwards.append(1))
    with torch.no_grad():
        trainer.compute_loss(trainer.model, batch)
    hook.remove()
    assert len(forwards) == 1  # no reference forward, not even the adapters-off one

    def margin():
        chosen, rejected = _completion_logps(trainer.model, batch).chunk(2)
        return (chosen - rejected).mean().item()

    before = margin()
    trainer.train()
    after = margin()
    print(f"{loss} {kind}: chosen - rejected log-prob margin {before:.2f} -> {after:.2f}")
    assert after > before + 2.0, (before, after)
    logged = [r for r in _log(out) if "loss" in r]
    assert {"rewards/chosen", "rewards/margins", "logps/chosen"} <= set(logged[-1])
    if loss == "orpo":
        assert "nll_loss" in logged[-1] and "log_odds_ratio" in logged[-1]


def test_reference_free_losses_take_their_textbook_values(tmp_path, tiny_model_dir, data_dir, genie_home):
    """ORPO = NLL(chosen) - beta * log sigmoid(log odds); SimPO = -log sigmoid(beta * margin - gamma)."""
    import torch.nn.functional as F

    for loss in ("orpo", "simpo"):
        out = tmp_path / loss
        trainer = _build("dpo", tiny_model_dir, data_dir, out, dataset="pairs", pref_loss=loss, pref_beta=2)
        batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in range(4)]))
        with torch.no_grad():
            value = trainer.compute_loss(trainer.model, batch).item()
        chosen, rejected = _completion_logps(trainer.model, batch, mean=True).chunk(2)
        if loss == "orpo":
            log_odds = (chosen - rejected) - (torch.log1p(-chosen.exp()) - torch.log1p(-rejected.exp()))
            expected = -chosen - 2.0 * F.logsigmoid(log_odds)
        else:
            expected = -F.logsigmoid(2.0 * (chosen - rejected) - 0.5)  # simpo_gamma defaults to 0.5
        assert value == pytest.approx(expected.mean().item(), rel=1e-4), loss


# ---------------------------------------------------------------- names and bad input


def test_llama_factory_names_resolve_like_ours(tmp_path, tiny_model_dir, data_dir):
    def finetuning(**overrides):
        return get_args(None, _cfg(tiny_model_dir, data_dir, tmp_path / "out", stage="dpo", **overrides)).finetuning

    ours = finetuning(dpo_loss="simpo", dpo_beta=2.5, dpo_ftx=0.3)
    theirs = finetuning(pref_loss="simpo", pref_beta=2.5, pref_ftx=0.3)
    assert (ours.pref_loss, ours.dpo_beta, ours.dpo_ftx) == (theirs.pref_loss, theirs.dpo_beta, theirs.dpo_ftx)
    assert (theirs.pref_loss, theirs.dpo_beta, theirs.dpo_ftx) == ("simpo", 2.5, 0.3)
    cfg = _cfg(tiny_model_dir, data_dir, tmp_path / "kto", kto_chosen_weight=1.5, kto_rejected_weight=2)
    kto = get_args(None, cfg)
    assert (kto.finetuning.kto_desirable_weight, kto.finetuning.kto_undesirable_weight) == (1.5, 2.0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"stage": "dpo", "pref_loss": "simpoo"}, r"'pref_loss' must be one of .*'simpo'\], got 'simpoo'\. Did you"),
        ({"stage": "dpo", "dpo_loss": "orpoo"}, r"Did you mean 'orpo'\?"),
        ({"stage": "dpo", "pref_loss": "simpo", "simpo_gamma": -0.1}, "simpo_gamma must be >= 0, got -0.1"),
        ({"per_device_train_batch_size": 1}, "stage kto needs per_device_train_batch_size >= 2"),
        ({"kto_undesirable_weight": 0}, "kto_undesirable_weight must be > 0"),
        ({"pref_beta": 0}, r"kto_beta \(or pref_beta/dpo_beta\) must be > 0"),
    ],
)
def test_bad_preference_settings_name_the_key(tmp_path, tiny_model_dir, data_dir, overrides, message):
    with pytest.raises(ConfigError, match=message):
        get_args(None, _cfg(tiny_model_dir, data_dir, tmp_path / "out", **overrides))


@pytest.mark.parametrize(
    "stage, dataset, message",
    [
        ("kto", "pairs", r"stage 'kto' trains on replies tagged .* dataset 'pairs' has no kto_tag column"),
        ("kto", "toy", r"dataset 'toy' has no kto_tag column\. Register one in dataset_info\.json"),
        ("sft", "tagged", r"dataset 'tagged' tags its replies desirable or undesirable \(kto_tag\).*Use stage kto"),
        ("dpo", "tagged", r"which stage 'dpo' cannot use"),
    ],
)
def test_wrong_kind_of_data_is_refused_before_loading(
    tmp_path, tiny_model_dir, data_dir, genie_home, no_model_load, stage, dataset, message
):
    from genie_core.stage_parent import run_train

    args = get_args(None, _cfg(tiny_model_dir, data_dir, tmp_path / "out", stage=stage, dataset=dataset))
    with pytest.raises(GenieError, match=message):
        run_train(args, launch=False)


def test_kto_tag_values_are_read_or_reported(tmp_path, tiny_model_dir, genie_home, no_model_load):
    from genie_core.data.assemble import load_examples
    from genie_core.stage_parent import run_train

    rows = [{"instruction": "Say hi.", "output": "hi", "ok": tag} for tag in (True, "false", 1, "0", None)]
    entry = {"file_name": "csvish.json", "columns": {"kto_tag": "ok"}}
    root = write_registry(tmp_path / "data", rows=rows, name="csvish")
    (root / "dataset_info.json").write_text(json.dumps({"csvish": entry}))
    args = get_args(None, _cfg(tiny_model_dir, root, tmp_path / "out", dataset="csvish"))
    examples, dropped = load_examples(args.data, "kto")
    assert [ex.desirable for ex in examples] == [True, False, True, False]
    assert len(dropped) == 1 and "no kto_tag value in column 'ok'" in dropped[0].reason

    rows.append({"instruction": "Say hi.", "output": "hi", "ok": "maybe"})
    (root / "csvish.json").write_text(json.dumps(rows))
    with pytest.raises(DataError, match=r"csvish\.json:5: field 'ok': kto_tag must be true .* got 'maybe'"):
        run_train(args, launch=False)

    both = {"file_name": "csvish.json", "ranking": True, "columns": {"kto_tag": "ok"}}
    (root / "dataset_info.json").write_text(json.dumps({"csvish": both}))
    with pytest.raises(DataError, match="either ranking .* or tagged \\(kto_tag\\), not both"):
        run_train(args, launch=False)


def test_demo_kto_dataset_and_example_pipeline_parse(tiny_model_dir):
    """The shipped demo set has both kinds of reply, and the example pipeline passes the spec loader."""
    from pathlib import Path

    from genie_core.data.assemble import load_examples
    from genie_core.pipeline.spec import load_pipeline

    root = Path(__file__).resolve().parents[1]
    args = get_args(None, _cfg(tiny_model_dir, root / "data", root / "unused", dataset="kto_demo_en"))
    examples, dropped = load_examples(args.data, "kto")
    assert len(examples) == 60 and not dropped and sum(ex.desirable for ex in examples) == 30
    spec = load_pipeline(root / "examples" / "pipelines" / "sft_kto_smollm2.yaml")
    assert spec.step("kto").config["stage"] == "kto"

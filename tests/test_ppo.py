"""PPO: the arithmetic against hand-computed values, rule rewards, learning, reward adapters, resume, bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import DIGIT_PPO, stage_config, write_registry
from helpers import trainer_log as _log
from safetensors.torch import load_file

from genie_core.extras.errors import ConfigError
from genie_core.hparams import get_args
from genie_core.rewards.rules import list_rules, parse_rule
from genie_core.stages import ppo_core as core
from genie_core.stages import run_stage

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest


@pytest.fixture()
def data_dir(tmp_path):
    return write_registry(tmp_path / "data")


def _ppo_cfg(model_dir, data_dir, out, **overrides):
    """Rollouts of 6 pure-sampled tokens; LoRA everywhere plus a trainable lm_head copy, so the tiny model can move."""
    return stage_config(model_dir, data_dir, out, **{**DIGIT_PPO, **overrides})


# ---------------------------------------------------------------- arithmetic


def test_gae_matches_hand_computation():
    rewards = torch.tensor([[1.0, 0.0, 2.0, 9.0]])
    values = torch.tensor([[0.5, 0.2, 0.1, 7.0]])
    mask = torch.tensor([[1, 1, 1, 0]])  # the last position is padding: its reward and value must not count
    gamma, lam = 0.9, 0.8
    d2 = 2.0 - 0.1  # next value is 0 after the last real token
    d1 = 0.0 + gamma * 0.1 - 0.2
    d0 = 1.0 + gamma * 0.2 - 0.5
    a2, a1 = d2, d1 + gamma * lam * d2
    a0 = d0 + gamma * lam * a1
    adv, ret = core.gae(rewards, values, mask, gamma, lam)
    assert torch.allclose(adv, torch.tensor([[a0, a1, a2, 0.0]]))
    assert torch.allclose(ret, torch.tensor([[a0 + 0.5, a1 + 0.2, a2 + 0.1, 0.0]]))


def test_token_rewards_put_score_on_last_real_token():
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, -1.0]])
    ref = torch.tensor([[-1.5, -2.0, -2.0], [-2.0, -1.0, -1.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    rewards, kl = core.token_rewards(torch.tensor([3.0, -1.0]), logp, ref, mask, kl_coef=0.1)
    assert torch.allclose(kl, torch.tensor([[0.5, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    assert torch.allclose(rewards, torch.tensor([[-0.05, 3.0, 0.0], [-0.1, 0.0, -1.0]]))


def test_whitening_and_masked_stats():
    values = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    assert core.masked_mean(values, mask).item() == pytest.approx(2.0)
    assert core.masked_var(values, mask).item() == pytest.approx(1.0)  # unbiased, like torch.var([1, 2, 3])
    white = core.masked_whiten(values, mask)
    assert torch.allclose(white, torch.tensor([[-1.0, 0.0, 1.0, 0.0]]), atol=1e-4)
    kept = core.masked_whiten(values, mask, shift_mean=False)
    assert torch.allclose(kept, torch.tensor([[1.0, 2.0, 3.0, 0.0]]), atol=1e-4)


def test_clipped_losses_take_the_pessimistic_term():
    old = torch.zeros(1, 2)
    new = torch.log(torch.tensor([[1.5, 0.5]]))  # ratios 1.5 and 0.5
    adv = torch.tensor([[1.0, -1.0]])
    out = core.ppo_losses(
        new, old, adv, values=torch.tensor([[1.0, 0.0]]), old_values=torch.tensor([[0.0, 0.0]]),
        returns=torch.tensor([[2.0, 0.0]]), mask=torch.ones(1, 2), cliprange=0.2, cliprange_value=0.5, vf_coef=0.1,
    )  # fmt: skip
    # token 0: max(-1.5, -1.2) = -1.2 (clipped); token 1: max(0.5, 0.8) = 0.8 (clipped)
    assert out.policy_loss.item() == pytest.approx((-1.2 + 0.8) / 2)
    assert out.clip_frac.item() == pytest.approx(1.0)
    # value 0: max((1-2)^2, (0.5-2)^2) = 2.25; value 1: 0
    assert out.value_loss.item() == pytest.approx(0.5 * 2.25 / 2)
    assert out.loss.item() == pytest.approx(out.policy_loss.item() + 0.1 * out.value_loss.item())
    assert out.approx_kl.item() == pytest.approx(0.5 * (math.log(1.5) ** 2 + math.log(0.5) ** 2) / 2)


def test_kl_controllers_and_running_moments():
    adaptive = core.AdaptiveKLController(0.1, target=6.0, horizon=100)
    adaptive.update(current_kl=12.0, n_steps=10)  # error clipped to +0.2
    assert adaptive.value == pytest.approx(0.1 * (1 + 0.2 * 10 / 100))
    adaptive.update(current_kl=3.0, n_steps=10)  # error -0.5 clipped to -0.2
    assert adaptive.value == pytest.approx(0.1 * 1.02 * 0.98)
    fixed = core.FixedKLController(0.3)
    fixed.update(100.0, 10)
    assert fixed.value == 0.3
    moments, data = core.RunningMoments(), torch.randn(50) * 3 + 2
    for part in data.split(7):
        moments.update(part)
    assert moments.mean == pytest.approx(data.mean().item(), abs=1e-5)
    assert moments.std == pytest.approx(data.std(unbiased=False).item(), abs=1e-5)


def test_response_mask_stops_after_first_stop_token():
    from genie_core.stages.ppo_rollout import response_mask_until_stop

    tokens = torch.tensor([[5, 6, 2, 2, 2], [5, 9, 9, 9, 9], [7, 2, 8, 2, 2]])
    mask = response_mask_until_stop(tokens, stop_ids=[2, 4])
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]


def test_prompt_order_is_a_function_of_the_step():
    from genie_core.stages.ppo_rollout import prompt_indices

    epoch = [i for step in range(5) for i in prompt_indices(step, 10, 2, seed=3, rank=0, world=1)]
    assert sorted(epoch) == list(range(10))  # one pass sees every prompt once
    assert prompt_indices(7, 10, 2, 3, 0, 1) == prompt_indices(7, 10, 2, 3, 0, 1)
    ranks = prompt_indices(1, 10, 2, 3, 0, 2) + prompt_indices(1, 10, 2, 3, 1, 2)
    assert len(set(ranks)) == 4  # ranks never share a prompt within a step


# ---------------------------------------------------------------- rules


def test_rules_score_and_reject_bad_specs():
    assert parse_rule("rule:contains:Paris")(["in Paris", "Rome"], ["", ""], ["", ""]) == [1.0, 0.0]
    assert parse_rule("rule:length:4")(["abcd", "ab", ""], [""] * 3, [""] * 3) == [1.0, 0.5, 0.0]
    assert parse_rule("rule:charset:0123456789")(["12ab", "x"], ["", ""], ["", ""]) == [0.5, 0.0]
    assert parse_rule("rule:regex:^\\d+$")(["42", "a42"], ["", ""], ["", ""]) == [1.0, 0.0]
    assert parse_rule("rule:reference")(["the answer is 3"], [""], ["The answer is 3."])[0] == pytest.approx(
        2 * (4 / 4) * (4 / 5) / (4 / 4 + 4 / 5)
    )
    with pytest.raises(ConfigError, match="(?s)unknown reward rule 'nope'.*contains:<arg>"):
        parse_rule("rule:nope")
    with pytest.raises(ConfigError, match="needs an argument"):
        parse_rule("rule:contains")
    with pytest.raises(ConfigError, match="positive whole number"):
        parse_rule("rule:length:-3")
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        parse_rule("rule:regex:(")
    assert any(line.startswith("charset") for line in list_rules())


# ---------------------------------------------------------------- bad input


def test_bad_reward_model_fails_before_any_model_loads(tmp_path, tiny_model_dir, data_dir, genie_home, monkeypatch):
    import genie_core.stages.ppo as ppo

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(ppo, "load_model", no_model)
    monkeypatch.setattr(ppo, "load_tokenizer", no_model)
    missing = tmp_path / "no_such_rm"
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=f"reward_model: {missing} is not a reward model"):
        run_stage(get_args(None, _ppo_cfg(tiny_model_dir, data_dir, out, reward_model=str(missing))))
    sft_like = tmp_path / "sft"  # an adapter without a value head
    sft_like.mkdir()
    (sft_like / "adapter_config.json").write_text("{}")
    (sft_like / "adapter_model.safetensors").write_text("")
    with pytest.raises(ConfigError, match="value_head.safetensors"):
        run_stage(get_args(None, _ppo_cfg(tiny_model_dir, data_dir, out, reward_model=str(sft_like))))
    with pytest.raises(ConfigError, match="num_beams: 1"):
        run_stage(get_args(None, _ppo_cfg(tiny_model_dir, data_dir, out, num_beams=2)))
    assert not out.exists()  # nothing half-written
    from genie_core.stage_parent import preflight  # `genie train` checks it in the parent, before a child starts

    with pytest.raises(ConfigError, match=f"reward_model: {missing} is not a reward model"):
        preflight(get_args(None, _ppo_cfg(tiny_model_dir, data_dir, out, reward_model=str(missing))))
    with pytest.raises(ConfigError, match="unknown reward rule"):
        preflight(get_args(None, _ppo_cfg(tiny_model_dir, data_dir, out, reward_model="rule:nonsense")))
    with pytest.raises(ConfigError, match="finetuning_type lora"):
        get_args(None, _ppo_cfg(tiny_model_dir, data_dir, out, finetuning_type="full"))
    with pytest.raises(ConfigError, match="ppo_epochs must be >= 1"):
        get_args(None, _ppo_cfg(tiny_model_dir, data_dir, out, ppo_epochs=0))


# ---------------------------------------------------------------- learning and evaluation


def test_ppo_raises_rule_reward_and_eval_reports_it(tmp_path, tiny_model_dir, data_dir, genie_home, genie_logs):
    """The reward prefers digits; the random tiny model starts near 0.03 (digits are a few percent of its vocab)."""
    out = tmp_path / "ppo"
    cfg = _ppo_cfg(tiny_model_dir, data_dir, out, max_steps=24, per_device_train_batch_size=16, plot_loss=True)
    results = run_stage(get_args(None, cfg))
    log = _log(out)
    rewards, kls = [r["reward"] for r in log], [r["kl"] for r in log]
    assert len(log) == 24 and results["train"]["global_step"] == 24
    first, last = sum(rewards[:6]) / 6, sum(rewards[-6:]) / 6
    assert last > first + 0.3, rewards
    assert all(math.isfinite(k) for k in kls) and kls[0] == pytest.approx(0.0, abs=1e-6)  # policy == reference at 0
    for key in ("entropy", "policy_loss", "value_loss", "clip_frac", "response_length", "tokens_per_second"):
        assert math.isfinite(log[-1][key])
    assert (out / "adapter_model.safetensors").exists() and (out / "training_reward.png").exists()

    from genie_core.eval_command import main as eval_main

    common = {"max_steps": None, "max_samples": 16, "per_device_eval_batch_size": 16}
    scores = {}
    for name, ckpt in (("base", None), ("ppo", str(out))):
        eval_out = tmp_path / f"eval_{name}"
        cfg = _ppo_cfg(tiny_model_dir, data_dir, eval_out, checkpoint_dir=ckpt, **common)
        argv = [f"{k}={v}" for k, v in cfg.items()]
        assert eval_main(argv) == 0
        scores[name] = json.loads((eval_out / "eval_results.json").read_text())
        rows = (eval_out / "generated_predictions.jsonl").read_text().splitlines()
        assert len(rows) == 16 and "reward" in json.loads(rows[0])
    assert scores["ppo"]["eval_samples"] == 16
    assert scores["ppo"]["eval_reward_mean"] > scores["base"]["eval_reward_mean"] + 0.3
    assert not [r for r in genie_logs.records if "its own targets apply" in r.getMessage()]  # eval adds no adapter


# ---------------------------------------------------------------- reward models on the same base


def _lora_reward_dir(tmp_path, model_dir):
    """A LoRA reward model in the rm stage's layout, with large random weights so its effect is visible."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from genie_core.model.value_head import ValueHead, save_value_head

    torch.manual_seed(1)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(model_dir),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    out = tmp_path / "rm"
    model.save_pretrained(out)
    head = ValueHead(model.config.hidden_size)
    torch.nn.init.normal_(head.summary.weight, std=1.0)
    save_value_head(head, out, metadata={"base_model": str(model_dir), "merged_adapters": "[]"})
    return out


def test_lora_reward_is_a_second_adapter_on_the_same_base(tmp_path, tiny_model_dir, data_dir, genie_home):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from genie_core.model import load_model, load_tokenizer
    from genie_core.model.value_head import attach_value_head, load_value_head
    from genie_core.stages.ppo_rollout import Rollout, build_reward, policy_forward, reference_logprobs

    rm_dir = _lora_reward_dir(tmp_path, tiny_model_dir)
    args = get_args(None, _ppo_cfg(tiny_model_dir, data_dir, tmp_path / "o", reward_model=str(rm_dir)))
    tokenizer = load_tokenizer(args.model)
    model = load_model(tokenizer, args.model, args.finetuning, is_trainable=True).eval()
    head = attach_value_head(model)
    for name, param in model.named_parameters():  # move the policy away from the base
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    base_numel = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_model_dir).parameters())
    reward = build_reward(str(rm_dir), model, tokenizer, args.model)
    assert sum(p.numel() for p in model.parameters()) < 1.6 * base_numel  # one base + adapters, not two bases

    torch.manual_seed(0)
    batch = Rollout(
        torch.randint(5, 500, (3, 5)), torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]),
        torch.randint(5, 500, (3, 4)), torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]]),
    )  # fmt: skip
    scores = reward(batch)

    alone = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(rm_dir)).eval()
    rm_head = load_value_head(rm_dir)
    for i in range(3):  # each row alone, without padding
        ids = torch.cat([batch.queries[i][batch.query_mask[i] == 1], batch.responses[i][batch.response_mask[i] == 1]])
        with torch.no_grad():
            hidden = alone(input_ids=ids[None], output_hidden_states=True).hidden_states[-1]
        assert scores[i].item() == pytest.approx(rm_head(hidden)[0, -1].item(), abs=1e-4)

    # scoring left the policy adapter active and trainable, and the reference is the bare base
    assert model.active_adapter == "default"
    assert all(p.requires_grad for n, p in model.named_parameters() if "lora_" in n and ".default." in n)
    assert not any(p.requires_grad for n, p in model.named_parameters() if ".reward." in n)
    logits, logprobs, _ = policy_forward(model, head, batch, 1.0)
    ref = reference_logprobs(model, batch, 1.0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.cat([batch.queries[1], batch.responses[1]])
    with torch.no_grad():
        base_logp = torch.log_softmax(base(input_ids=ids[None]).logits[0, 4:-1], -1)
    expected = base_logp.gather(-1, batch.responses[1][:, None]).squeeze(-1)
    assert torch.allclose(ref[1, :2], expected[:2], atol=1e-4)  # row 1 has two real response tokens
    assert not torch.allclose(logprobs[1, :2], expected[:2], atol=1e-3)


def test_full_reward_model_directory(tmp_path, tiny_model_dir, data_dir, genie_home):
    import shutil

    from genie_core.model import load_tokenizer
    from genie_core.model.value_head import ValueHead, save_value_head
    from genie_core.stages.ppo_rollout import ModelRewardScorer, Rollout, check_reward_model

    rm_dir = tmp_path / "full_rm"
    shutil.copytree(tiny_model_dir, rm_dir)
    head = ValueHead(32)
    torch.nn.init.normal_(head.summary.weight, std=1.0)
    save_value_head(head, rm_dir)
    assert check_reward_model(str(rm_dir)) == "full"
    args = get_args(None, _ppo_cfg(tiny_model_dir, data_dir, tmp_path / "o", reward_model=str(rm_dir)))
    scorer = ModelRewardScorer(str(rm_dir), load_tokenizer(args.model), torch.float32, torch.device("cpu"))
    ids = torch.randint(5, 500, (2, 3))
    batch = Rollout(ids, torch.ones_like(ids), ids, torch.tensor([[1, 1, 1], [1, 0, 0]]))
    scores = scorer(batch)
    assert scores.shape == (2,) and scores[0] != scores[1]


# ---------------------------------------------------------------- checkpoints and resume


def test_killed_run_resumes_at_its_checkpoint(tmp_path, tiny_model_dir, data_dir, genie_home, monkeypatch):
    from peft import get_peft_model_state_dict

    import genie_core.stages.ppo as ppo

    cfg = {"max_steps": 4, "per_device_train_batch_size": 4, "save_strategy": "steps", "save_steps": 2}
    straight = tmp_path / "straight"
    run_stage(get_args(None, _ppo_cfg(tiny_model_dir, data_dir, straight, **cfg)))

    class Killed(Exception):
        pass

    save = ppo.save_checkpoint

    def save_then_die(out, step, *args, **kwargs):
        path = save(out, step, *args, **kwargs)
        if step == 2:
            raise Killed
        return path

    out = tmp_path / "killed"
    monkeypatch.setattr(ppo, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        run_stage(get_args(None, _ppo_cfg(tiny_model_dir, data_dir, out, **cfg)))
    monkeypatch.setattr(ppo, "save_checkpoint", save)
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
    saved = load_file(str(out / "checkpoint-2" / "adapter_model.safetensors"))

    restored = {}
    load = ppo.load_checkpoint

    def load_and_look(path, policy, head, *args, **kwargs):
        state = load(path, policy, head, *args, **kwargs)
        restored["state"] = state
        # the same view of the live weights that saving takes: keys as in adapter_model.safetensors
        live = get_peft_model_state_dict(policy, adapter_name="default")
        restored["weights"] = {k: v.detach().clone() for k, v in live.items()}
        return state

    monkeypatch.setattr(ppo, "load_checkpoint", load_and_look)
    run_stage(get_args(None, _ppo_cfg(tiny_model_dir, data_dir, out, **cfg)))

    assert restored["state"]["global_step"] == 2
    assert restored["weights"].keys() == saved.keys()
    assert all(torch.equal(restored["weights"][k].cpu(), saved[k]) for k in saved)
    assert [r["current_steps"] for r in _log(out)] == [1, 2, 3, 4]
    # policy, value head, optimizer, scheduler, KL coefficient and RNG all came back: the result is bit-identical
    a, b = load_file(str(straight / "adapter_model.safetensors")), load_file(str(out / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list(out.glob("*.tmp"))


# ---------------------------------------------------------------- the real child process


def test_seed_chain_sft_rm_ppo_through_accelerate_launch(tmp_path, tiny_model_dir, data_dir, genie_home):
    """sft -> rm over the merged sft adapter -> PPO in the `accelerate launch` child on the same merged base, with
    the reward model as a second adapter; then evaluation finds the sft adapter under the PPO one by itself."""
    from genie_core.stage_parent import run_train
    from genie_core.stages.ppo import _policy_args

    pairs = [
        {"instruction": f"Add {a} and {b}.", "input": "", "chosen": f"The answer is {a + b}.", "rejected": "No."}
        for a in range(1, 5)
        for b in range(1, 4)
    ]
    (data_dir / "pairs.json").write_text(json.dumps(pairs))
    info = json.loads((data_dir / "dataset_info.json").read_text())
    columns = {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}
    info["pairs"] = {"file_name": "pairs.json", "ranking": True, "columns": columns}
    (data_dir / "dataset_info.json").write_text(json.dumps(info))
    sft_out, rm_out, out = tmp_path / "sft", tmp_path / "rm", tmp_path / "ppo"
    run_stage(get_args(None, stage_config(tiny_model_dir, data_dir, sft_out, max_steps=2)))
    chain = {"checkpoint_dir": str(sft_out), "resume_lora_training": False}
    rm_cfg = stage_config(tiny_model_dir, data_dir, rm_out, stage="rm", dataset="pairs", max_steps=2, **chain)
    run_stage(get_args(None, rm_cfg))

    cfg = _ppo_cfg(
        tiny_model_dir, data_dir, out, reward_model=str(rm_out), max_steps=2, per_device_train_batch_size=2,
        save_strategy="steps", save_steps=1, save_total_limit=1, **chain,
    )  # fmt: skip
    assert run_train(get_args(None, cfg), launch=True) == 0
    assert [r["current_steps"] for r in _log(out)] == [1, 2]
    assert all(math.isfinite(r["reward"]) and math.isfinite(r["kl"]) for r in _log(out))
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]  # save_total_limit rotated
    assert (out / "checkpoint-2" / "critic" / "value_head.safetensors").exists()
    assert (out / "adapter_model.safetensors").exists() and (out / "genie_config.yaml").exists()

    eval_cfg = {**cfg, "do_train": False, "do_eval": True, "checkpoint_dir": str(out), "max_steps": None}
    model_args, finetuning_args = _policy_args(get_args(None, eval_cfg))
    assert model_args.adapter_dirs == [str(sft_out.resolve()), str(out)] and finetuning_args.resume_lora_training


def test_packed_scoring_equals_padded_scoring(tiny_model_dir, monkeypatch):
    """Padding-free scoring (rows split by the token budget) gives what the padded batch gives, gradients included."""
    from transformers import AutoModelForCausalLM

    from genie_core.model import packed
    from genie_core.model.value_head import attach_value_head
    from genie_core.stages.ppo_rollout import Rollout, policy_forward, response_logprobs, value_scores

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    head = attach_value_head(model, init_std=0.5)
    torch.manual_seed(0)
    q_lens, r_lens = [3, 7, 1, 5, 6], [4, 1, 6, 2, 5]
    query_mask = torch.tensor([[0] * (7 - n) + [1] * n for n in q_lens])
    response_mask = torch.tensor([[1] * n + [0] * (6 - n) for n in r_lens])
    queries, responses = torch.randint(5, 500, (5, 7)) * query_mask, torch.randint(5, 500, (5, 6))
    batch = Rollout(queries, query_mask, responses, response_mask)
    monkeypatch.setattr(packed, "ROW_BUDGET", 14)  # 5 sequences of 2-12 tokens -> several rows
    assert len(packed.pack_rows([torch.zeros(q + r) for q, r in zip(q_lens, r_lens)])) > 1

    results = {}
    for mode in (True, False):
        monkeypatch.setattr("genie_core.stages.ppo_rollout.packs_exactly", lambda model, mode=mode: mode)
        model.zero_grad()
        logits, logprobs, values = policy_forward(model, head, batch, 0.7)
        ((logprobs * response_mask).sum() + (values * response_mask).sum()).backward()
        grad = model.model.layers[0].self_attn.q_proj.weight.grad.clone()
        scored = response_logprobs(model, batch, 0.7), value_scores(model, head, batch)
        results[mode] = (logits, logprobs, values, grad, *scored)
    on, off = results[True], results[False]
    real = response_mask.bool()
    assert torch.allclose(on[0][real], off[0][real], atol=1e-4)
    for a, b in zip(on[1:3] + on[4:5], off[1:3] + off[4:5]):
        assert torch.allclose(a[real], b[real], atol=1e-5)
    assert torch.allclose(on[3], off[3], atol=1e-5) and on[3].abs().sum() > 0
    assert torch.allclose(on[5], off[5], atol=1e-5)
    assert (on[0][~real] == 0).all() and (on[4][~real] == 0).all()  # nothing is computed past a response


def test_grouped_prefill_generates_what_plain_generate_does(tiny_model_dir, monkeypatch):
    """Prompts of very different lengths are prefilled in length groups; the answers and log-probs do not change."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from genie_core.stages import ppo_rollout, prefill

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    torch.manual_seed(0)
    lengths = [3, 40, 4, 5, 38, 2, 6, 41]
    rows = {"input_ids": [torch.randint(5, 500, (n,)).tolist() for n in lengths]}
    groups = prefill.prompt_groups([n - 1 for n in lengths], per_group_tokens=4)
    assert sorted(i for g in groups for i in g) == list(range(8)) and len(groups) >= 2
    assert all(max(lengths[i] for i in g) - min(lengths[i] for i in g) <= 3 for g in groups)  # short with short

    calls = []
    monkeypatch.setattr(prefill, "_MIN_SAVED_TOKENS", 0)  # 8 short prompts save less than a real batch must
    real = prefill.grouped_prefill
    monkeypatch.setattr(ppo_rollout, "grouped_prefill", lambda *a: calls.append(real(*a)) or calls[-1])
    kwargs = {"max_new_tokens": 6, "min_new_tokens": 6, "do_sample": False}
    grouped = ppo_rollout.generate(model, tokenizer, rows, kwargs, [tokenizer.eos_token_id], logprobs_at=1.0)
    assert calls[-1] is not None  # the cache was built in groups
    monkeypatch.setattr(prefill, "_MIN_SAVED_TOKENS", 10_000)
    queries, mask = ppo_rollout.left_pad(rows["input_ids"], tokenizer.pad_token_id, "cpu")
    assert prefill.grouped_prefill(model, queries, mask) is None  # too little padding to skip: plain prefill
    monkeypatch.setattr(prefill, "_MIN_SAVED_TOKENS", 0)
    monkeypatch.setattr(ppo_rollout, "grouped_prefill", lambda *a: None)
    plain = ppo_rollout.generate(model, tokenizer, rows, kwargs, [tokenizer.eos_token_id], logprobs_at=1.0)
    assert torch.equal(grouped.responses, plain.responses)
    monkeypatch.setattr(ppo_rollout, "grouped_prefill", real)
    assert torch.equal(
        ppo_rollout.generate(model, tokenizer, rows, kwargs, [tokenizer.eos_token_id]).responses, plain.responses
    )
    assert torch.allclose(grouped.logprobs, plain.logprobs, atol=1e-5)
    forward = ppo_rollout.response_logprobs(model, plain, 1.0) * plain.response_mask
    assert torch.allclose(plain.logprobs, forward, atol=1e-5)  # read off the decoding steps = a second forward


def test_answers_continued_from_one_prompt_cache_score_as_full_forwards(tiny_model_dir, monkeypatch):
    """Two sets of answers read on one prompt cache (in passes of 2 rows) get the log-probs and reward-head values
    of full forwards over prompt + answer; the cache is unchanged by being read; a pass holds answers of similar
    length and is only as wide as its longest."""
    from transformers import AutoModelForCausalLM

    from genie_core.model.value_head import attach_value_head
    from genie_core.stages import shared_prompts
    from genie_core.stages.ppo_rollout import Rollout, response_logprobs, value_scores
    from genie_core.stages.prefill import prompt_prefix

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    head = attach_value_head(model, init_std=0.5)
    monkeypatch.setattr(shared_prompts, "ROWS_PER_PASS", 2)
    torch.manual_seed(0)
    q_lens = [3, 9, 1, 5, 8]
    query_mask = torch.tensor([[0] * (9 - n) + [1] * n for n in q_lens])
    queries = torch.randint(5, 500, (5, 9)) * query_mask
    prefix = prompt_prefix(model, queries, query_mask)
    assert prefix is not None
    before = [k.clone() for k in prefix.keys]
    widths = []
    model.register_forward_pre_hook(lambda _m, _a, kw: widths.append(kw["input_ids"].shape), with_kwargs=True)
    for r_lens in ([4, 1, 6, 2, 5], [1, 3, 1, 6, 2]):
        response_mask = torch.tensor([[1] * n + [0] * (6 - n) for n in r_lens])
        batch = Rollout(queries, query_mask, torch.randint(5, 500, (5, 6)), response_mask)
        real = response_mask.bool()
        widths.clear()
        mine = shared_prompts.continued_logprobs(model, prefix, batch, 0.7)
        if r_lens[0] == 4:  # lengths 1, 2 | 4, 5 | 6: the last prompt token and each pass's longest answer
            assert widths == [(2, 3), (2, 6), (1, 7)]
        assert torch.allclose(mine[real], response_logprobs(model, batch, 0.7)[real], atol=1e-5)
        values = shared_prompts.continued_values(model, head, prefix, batch)
        assert values.shape == (5,) and torch.allclose(values, value_scores(model, head, batch), atol=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(before, prefix.keys))


def test_old_logprobs_and_values_read_off_the_sampling_steps(tiny_model_dir):
    """PPO takes its old log-probs and values from the decoding steps; they are what the policy forward gives."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from genie_core.model.value_head import attach_value_head
    from genie_core.stages.ppo_rollout import generate, policy_forward

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    head = attach_value_head(model, init_std=0.5)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    torch.manual_seed(0)
    rows = {"input_ids": [torch.randint(5, 500, (n,)).tolist() for n in (3, 9, 5, 1)]}
    kwargs = {"max_new_tokens": 7, "do_sample": True, "temperature": 0.7, "top_k": 0, "top_p": 1.0}
    sampled = generate(model, tokenizer, rows, kwargs, [tokenizer.eos_token_id], logprobs_at=0.7, value_head=head)
    _, logprobs, values = policy_forward(model, head, sampled, 0.7)
    real = sampled.response_mask.bool()
    assert torch.allclose(sampled.logprobs[real], logprobs[real], atol=1e-5)
    assert torch.allclose(sampled.values[real], values[real], atol=1e-5)
    assert (sampled.values[~real] == 0).all() and sampled.values.abs().sum() > 0

"""PPO on SmolLM2-135M: rollout tokens/s next to plain ``model.generate``, PPO step time, and peak RSS.

Run: python bench/ppo.py [--steps 3] [--batch 4] [--new-tokens 64] [--cutoff 256] [--threads N]
                         [--gen-batch 8] [--eval-batch 48] [--gen-tokens 24] [--repeats 3]
Prints one JSON line. SFT-LoRA and PPO run in separate processes on the same model, dataset and batch size, each
reporting its own peak RSS. PPO scores with a LoRA reward model (random weights, the rm stage's layout) loaded as a
second adapter on the policy's base, so the ratio shows what one shared base costs: a PPO holding four copies of the
model (policy, reference, critic, reward) would sit near 4.

Generation side by side (one process, alternating, median of ``--repeats``): the same prompts of our alpaca data,
left-padded, the same token budget and seed, tokens counted up to each row's stop token for both:

- ``rollout_vs_generate``: PPO's sampler (``ppo_rollout.generate``: prompts prefilled in length groups, then
  ``model.generate`` from that cache, keeping each step's log-probs and the critic's values as PPO does) against
  ``model.generate`` on the same LoRA policy, ``--gen-batch`` prompts, sampling at temperature 1 over the whole
  vocabulary as the demo's PPO does;
- ``evaluate_vs_generate``: the evaluate step's greedy decoding with its log-probs read off the steps, against
  ``model.generate`` alone, ``--eval-batch`` prompts;
- ``layout_vs_generate``: ``model.generate`` on the policy with its decode-step matmuls in the layout this CPU
  streams weights fastest in (``model/few_rows.py``; ``decode_layout`` says which was chosen), against plain.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _common(ns, out: str) -> dict:
    return {
        "model_name_or_path": "smollm2",
        "template": "chatml",
        "finetuning_type": "lora",
        "lora_rank": 8,
        "lora_target": "q_proj,v_proj",
        "dataset": "alpaca_demo_en",
        "dataset_dir": str(ROOT / "data"),
        "max_samples": 64,
        "output_dir": out,
        "do_train": True,
        "per_device_train_batch_size": ns.batch,
        "learning_rate": 1e-5,
        "lr_scheduler_type": "constant",
        "max_steps": ns.steps,
        "logging_steps": 1,
        "save_strategy": "no",
        "overwrite_output_dir": True,
        "seed": 0,
        "dataloader_num_workers": 0,
    }


def make_reward_dir(out: str) -> None:
    """A LoRA reward model in the rm stage's layout: adapter files plus value_head.safetensors."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from genie_core.model import smollm2_dir
    from genie_core.model.value_head import ValueHead, save_value_head

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir())
    model = get_peft_model(base, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.save_pretrained(out)
    save_value_head(ValueHead(base.config.hidden_size), out, metadata={"base_model": "smollm2"})


def run_child(ns) -> dict:
    from genie_core.extras.env import apply_quiet_env

    apply_quiet_env()
    if ns.threads:
        import torch

        torch.set_num_threads(ns.threads)
    from genie_core.hparams import get_args
    from genie_core.stages import run_stage

    cfg = _common(ns, ns.out)
    if ns.child == "sft":
        cfg.update(stage="sft", cutoff_len=ns.cutoff)
    else:
        cfg.update(
            stage="ppo",
            reward_model=ns.reward,
            cutoff_len=ns.cutoff - ns.new_tokens,  # prompt budget, so prompt + reply fit the SFT rows' length
            max_new_tokens=ns.new_tokens,
            top_k=0,
            top_p=1.0,
            temperature=1.0,
        )
    run_stage(get_args(None, cfg))
    result = {"peak_rss_mb": round(_peak_rss_mb(), 1)}
    if ns.child == "ppo":
        log = [json.loads(line) for line in (Path(ns.out) / "trainer_log.jsonl").read_text().splitlines()]
        steady = log[1:] or log  # the first step pays for warm-up
        result["rollout_tokens_per_s"] = round(sum(r["tokens_per_second"] for r in steady) / len(steady), 2)
        result["ppo_step_s"] = round(sum(r["step_time"] for r in steady) / len(steady), 2)
        result["response_length"] = round(sum(r["response_length"] for r in steady) / len(steady), 1)
    return result


def run_generation(ns) -> dict:
    """Tokens/s of our two generation paths next to plain ``model.generate`` (see the module docstring)."""
    import statistics
    import time

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from genie_core.model import smollm2_dir
    from genie_core.model.few_rows import few_row_linears, swapped_is_faster
    from genie_core.model.value_head import ValueHead
    from genie_core.stages.ppo_rollout import generate, left_pad, response_mask_until_stop
    from genie_core.template import get_template

    if ns.threads:
        torch.set_num_threads(ns.threads)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())
    template = get_template("chatml", tokenizer)
    template.fix_tokenizer(tokenizer)
    stop_ids = template.get_stop_token_ids(tokenizer)
    records = json.loads((ROOT / "data" / "alpaca_demo_en.json").read_text(encoding="utf-8"))
    prompts = [
        template.encode_prompt(tokenizer, [{"role": "user", "content": f"{r['instruction']}\n{r['input']}".strip()}])
        for r in records[-max(ns.gen_batch, ns.eval_batch) :]
    ]
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir()).eval()
    policy = get_peft_model(base, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")).eval()
    head = ValueHead(base.config.hidden_size)

    def plain(model, rows, kwargs) -> int:
        queries, mask = left_pad(rows, tokenizer.pad_token_id, "cpu")
        out = model.generate(
            input_ids=queries, attention_mask=mask, eos_token_id=stop_ids, pad_token_id=tokenizer.pad_token_id,
            use_cache=True, **kwargs,
        )  # fmt: skip
        return int(response_mask_until_stop(out[:, queries.shape[1] :], stop_ids).sum())

    def ours(model, rows, kwargs, logprobs_at, head=None) -> int:
        sampled = generate(
            model, tokenizer, {"input_ids": rows}, kwargs, stop_ids, logprobs_at=logprobs_at, value_head=head
        )
        return int(sampled.response_mask.sum())

    def timed(fn) -> float:
        torch.manual_seed(0)
        start = time.perf_counter()
        with torch.no_grad():
            tokens = fn()
        return tokens / (time.perf_counter() - start)

    sample = {"max_new_tokens": ns.gen_tokens, "do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0}
    greedy = {"max_new_tokens": ns.gen_tokens, "do_sample": False}
    merged = policy.merge_and_unload()  # the evaluate step compares merged models

    def swapped(model, rows, kwargs) -> int:
        with few_row_linears(model):
            return plain(model, rows, kwargs)

    cases = {
        "generate_policy": lambda: plain(policy, prompts[: ns.gen_batch], sample),
        # the decode-step layout alone: model.generate with its Linear layers in the layout this CPU prefers
        "generate_policy_layout": lambda: swapped(policy, prompts[: ns.gen_batch], sample),
        # as PPO samples: the old log-probs and the critic's values are read off the same decoding steps
        "rollout": lambda: ours(policy, prompts[: ns.gen_batch], sample, 1.0, head),
        "generate_merged": lambda: plain(merged, prompts[: ns.eval_batch], greedy),
        "evaluate": lambda: ours(merged, prompts[: ns.eval_batch], greedy, 1.0),
    }
    runs: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ns.repeats):
        for name, fn in cases.items():
            runs[name].append(timed(fn))
    speed = {name: statistics.median(values) for name, values in runs.items()}
    return {
        "generate_tokens_per_s": round(speed["generate_policy"], 2),
        "rollout_tokens_per_s_side_by_side": round(speed["rollout"], 2),
        "rollout_vs_generate": round(speed["rollout"] / speed["generate_policy"], 3),
        "decode_layout": "W @ x.T" if swapped_is_faster() else "F.linear",
        "layout_vs_generate": round(speed["generate_policy_layout"] / speed["generate_policy"], 3),
        "eval_generate_tokens_per_s": round(speed["generate_merged"], 2),
        "evaluate_tokens_per_s": round(speed["evaluate"], 2),
        "evaluate_vs_generate": round(speed["evaluate"] / speed["generate_merged"], 3),
    }


def _spawn(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"child {args[:2]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--cutoff", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0, help="torch threads per process (0: torch's default)")
    parser.add_argument("--gen-batch", type=int, default=8, help="prompts per rollout (the demo's PPO samples 8)")
    parser.add_argument("--eval-batch", type=int, default=48, help="prompts per evaluate batch (the demo's 48)")
    parser.add_argument("--gen-tokens", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=["sft", "ppo", "rm", "generate"])
    parser.add_argument("--out")
    parser.add_argument("--reward")
    ns = parser.parse_args()
    if ns.child == "rm":
        make_reward_dir(ns.out)
        print("{}")
        return
    if ns.child == "generate":
        print(json.dumps(run_generation(ns)))
        return
    if ns.child:
        print(json.dumps(run_child(ns)))
        return

    from genie_core.model import pull_smollm2

    pull_smollm2()
    sizes = ["--steps", str(ns.steps), "--batch", str(ns.batch), "--new-tokens", str(ns.new_tokens)]
    sizes += ["--cutoff", str(ns.cutoff), "--threads", str(ns.threads)]
    with tempfile.TemporaryDirectory() as tmp:
        reward = os.path.join(tmp, "rm")
        _spawn(["--child", "rm", "--out", reward])
        sft = _spawn(["--child", "sft", "--out", os.path.join(tmp, "sft"), *sizes])
        ppo = _spawn(["--child", "ppo", "--out", os.path.join(tmp, "ppo"), "--reward", reward, *sizes])
    gen_sizes = ["--gen-batch", str(ns.gen_batch), "--eval-batch", str(ns.eval_batch)]
    gen_sizes += ["--gen-tokens", str(ns.gen_tokens), "--repeats", str(ns.repeats), "--threads", str(ns.threads)]
    side = _spawn(["--child", "generate", *gen_sizes])
    print(
        json.dumps(
            {
                "bench": "ppo",
                "model": "SmolLM2-135M-Instruct",
                "batch": ns.batch,
                "max_new_tokens": ns.new_tokens,
                "steps": ns.steps,
                "rollout_tokens_per_s": ppo["rollout_tokens_per_s"],
                "ppo_step_s": ppo["ppo_step_s"],
                "response_length": ppo["response_length"],
                "ppo_peak_rss_mb": ppo["peak_rss_mb"],
                "sft_lora_peak_rss_mb": sft["peak_rss_mb"],
                "rss_ratio_ppo_over_sft": round(ppo["peak_rss_mb"] / sft["peak_rss_mb"], 3),
                "gen_batch": ns.gen_batch,
                "eval_batch": ns.eval_batch,
                "gen_tokens": ns.gen_tokens,
                **side,
                "cpu_count": os.cpu_count(),
                "torch_threads": ns.threads or "default",
            }
        )
    )


if __name__ == "__main__":
    main()

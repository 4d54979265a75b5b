"""PPO on SmolLM2-135M: rollout tokens/s, PPO step time, and peak RSS of PPO over peak RSS of SFT-LoRA.

Run: python bench/ppo.py [--steps 3] [--batch 4] [--new-tokens 64] [--cutoff 256] [--threads N]
Prints one JSON line. SFT-LoRA and PPO run in separate processes on the same model, dataset and batch size, each
reporting its own peak RSS. PPO scores with a LoRA reward model (random weights, the rm stage's layout) loaded as a
second adapter on the policy's base, so the ratio shows what one shared base costs: a PPO holding four copies of the
model (policy, reference, critic, reward) would sit near 4.
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
    parser.add_argument("--child", choices=["sft", "ppo", "rm"])
    parser.add_argument("--out")
    parser.add_argument("--reward")
    ns = parser.parse_args()
    if ns.child == "rm":
        make_reward_dir(ns.out)
        print("{}")
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
                "cpu_count": os.cpu_count(),
                "torch_threads": ns.threads or "default",
            }
        )
    )


if __name__ == "__main__":
    main()

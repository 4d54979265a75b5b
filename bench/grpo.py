"""GRPO on SmolLM2-135M with the arithmetic demo set: held-out accuracy before and after, and what GRPO costs.

Run: python bench/grpo.py [--sft-steps 30] [--grpo-steps 16] [--heldout 64] [--new-tokens 48]
Prints one JSON line. SFT-LoRA first teaches the answer shape; GRPO then trains a new adapter over the merged SFT
model with the verifiable reward (the last number equals the answer) plus a small format reward. The held-out
problems (``eval_split: 0.2``, which no stage trains on) are answered greedily by the base, SFT and GRPO models and
graded by ``rule:arith_correct`` through the pipeline's own comparison (paired bootstrap interval on the GRPO - SFT
delta). Each stage runs in its own process, so the peak RSS of GRPO over SFT-LoRA compares like with like.
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

SPLIT = {"eval_split": 0.2, "eval_split_seed": 0}


def _common(out: str) -> dict:
    return {
        "model_name_or_path": "smollm2",
        "template": "chatml",
        "finetuning_type": "lora",
        "lora_target": "q_proj,v_proj",
        "dataset": "arith_demo",
        "dataset_dir": str(ROOT / "data"),
        "cutoff_len": 256,
        "output_dir": out,
        "logging_steps": 1,
        "save_strategy": "no",
        "overwrite_output_dir": True,
        "seed": 0,
        **SPLIT,
    }


def stage_config(ns, stage: str, out: str) -> dict:
    cfg = _common(out)
    if stage == "sft":
        cfg.update(
            stage="sft", do_train=True, per_device_train_batch_size=8, learning_rate=2e-4, max_steps=ns.sft_steps
        )
    elif stage == "grpo":
        cfg.update(
            stage="grpo",
            do_train=True,
            checkpoint_dir=ns.sft,
            resume_lora_training=False,  # merge the SFT adapter; GRPO trains a new one, the KL reference is SFT
            reward_funcs="genie_core.rewards.math:correct,genie_core.rewards.math:answer_format",
            reward_weights="1.0,0.5",
            num_generations=4,
            per_device_train_batch_size=8,
            max_completion_length=ns.new_tokens,
            grpo_beta=0.02,
            learning_rate=5e-5,
            max_steps=ns.grpo_steps,
        )
    else:  # compare: base -> sft -> grpo on the held-out problems
        chain = [
            {"name": "base", "model_name_or_path": "smollm2"},
            {"name": "sft", "model_name_or_path": "smollm2", "checkpoint_dir": ns.sft},
            {"name": "grpo", "model_name_or_path": "smollm2", "checkpoint_dir": f"{ns.sft},{ns.grpo}"},
        ]
        cfg.update(
            stage="ppo",
            do_train=False,
            do_eval=True,
            compare_models=json.dumps(chain),
            reward_model="rule:arith_correct",
            max_samples=ns.heldout * 5,  # the split holds out a fifth
            max_new_tokens=ns.new_tokens,
            do_sample=False,
            per_device_eval_batch_size=16,
        )
    return cfg


def run_child(ns) -> dict:
    """One stage in this process; prints its figures."""
    from genie_core.extras.env import apply_quiet_env

    apply_quiet_env()
    import time

    from genie_core.hparams import get_args
    from genie_core.stages import run_stage

    start = time.perf_counter()
    results = run_stage(get_args(None, stage_config(ns, ns.child, ns.out)))
    figures = {"wall_s": round(time.perf_counter() - start, 1)}
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if ns.child == "grpo":
        log = [json.loads(line) for line in (Path(ns.out) / "trainer_log.jsonl").read_text().splitlines()]
        steps = [r for r in log if "reward" in r]
        lengths = [r.get("completions/mean_length", 0.0) for r in steps]
        figures["train_runtime_s"] = results["train"]["train_runtime"]
        # sampled completion tokens per second of training (generation plus the policy update)
        sampled = sum(lengths) * 8  # 8 completions per step: per_device_train_batch_size
        figures["sampled_tokens_per_train_s"] = round(sampled / results["train"]["train_runtime"], 2)
        figures["reward_first"] = round(steps[0]["reward"], 3) if steps else None
        figures["reward_last"] = round(steps[-1]["reward"], 3) if steps else None
    if ns.child == "compare":
        summary = json.loads((Path(ns.out) / "comparison.json").read_text())
        figures["comparison"] = summary
        figures["generation_s"] = figures["wall_s"]
    return figures


def _spawn(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"child {args[:2]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _accuracy(summary: dict, name: str) -> dict:
    model = next(m for m in summary["models"] if m["name"] == name)
    stats = model["metrics"]["reward_mean"]  # reward_model: rule:arith_correct, so the share of right answers
    return {"mean": round(stats["mean"], 3), "ci": [round(v, 3) for v in stats["ci"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft-steps", type=int, default=30)
    parser.add_argument("--grpo-steps", type=int, default=16)
    parser.add_argument("--heldout", type=int, default=64, help="held-out problems to grade (at most the split's)")
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--child", choices=["sft", "grpo", "compare"])
    parser.add_argument("--out")
    parser.add_argument("--sft")
    parser.add_argument("--grpo")
    ns = parser.parse_args()
    if ns.child:
        print(json.dumps(run_child(ns)))
        return

    from genie_core.model import pull_smollm2

    pull_smollm2()
    sizes = ["--sft-steps", str(ns.sft_steps), "--grpo-steps", str(ns.grpo_steps)]
    sizes += ["--heldout", str(ns.heldout), "--new-tokens", str(ns.new_tokens)]
    with tempfile.TemporaryDirectory() as tmp:
        sft_dir, grpo_dir = os.path.join(tmp, "sft"), os.path.join(tmp, "grpo")
        sft = _spawn(["--child", "sft", "--out", sft_dir, *sizes])
        grpo = _spawn(["--child", "grpo", "--out", grpo_dir, "--sft", sft_dir, *sizes])
        compare = _spawn(
            ["--child", "compare", "--out", os.path.join(tmp, "cmp"), "--sft", sft_dir, "--grpo", grpo_dir, *sizes]
        )
    summary = compare["comparison"]
    pairs = [d for d in summary["deltas"] if (d["from"], d["to"], d["metric"]) == ("sft", "grpo", "reward_mean")]
    delta = {"mean": round(pairs[0]["mean"], 3), "ci": [round(v, 3) for v in pairs[0]["ci"]]} if pairs else None
    print(
        json.dumps(
            {
                "bench": "grpo",
                "model": "SmolLM2-135M-Instruct",
                "sft_steps": ns.sft_steps,
                "grpo_steps": ns.grpo_steps,
                "heldout_problems": summary["split"]["prompts"],
                "heldout_accuracy": {name: _accuracy(summary, name) for name in ("base", "sft", "grpo")},
                "grpo_minus_sft": delta,
                "grpo_train_reward_first_last": [grpo["reward_first"], grpo["reward_last"]],
                "grpo_sampled_tokens_per_train_s": grpo["sampled_tokens_per_train_s"],
                "grpo_train_runtime_s": grpo["train_runtime_s"],
                "compare_wall_s": compare["wall_s"],
                "grpo_peak_rss_mb": grpo["peak_rss_mb"],
                "sft_lora_peak_rss_mb": sft["peak_rss_mb"],
                "rss_ratio_grpo_over_sft": round(grpo["peak_rss_mb"] / sft["peak_rss_mb"], 3),
                "cpu_count": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()

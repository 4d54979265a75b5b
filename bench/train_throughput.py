"""SFT-LoRA throughput on SmolLM2-135M: our Trainer path vs a bare PyTorch loop, padded vs packed.

Run: python bench/train_throughput.py [--steps 30] [--batch 4] [--cutoff 512] [--model smollm2]
     python bench/train_throughput.py --workload w1 [--lf-data PATH/alpaca_en_demo.json]
Prints one JSON line. All runs use the same model, adapter, optimizer and batches (sequential
sampling), in the same process; the bare loop runs first and last and the faster counts, and
step times are medians, so the ratios hold on a noisy machine.

``--workload w1`` runs the whole `genie train` command twice as a user would (LoRA r8 on all seven linear layers,
chatml, cutoff 512, batch 4, 30 steps, fp32, rows in file order): once with no performance flags (the default
config) and once with ``packing: false``. It prints real (non-padding) tokens/s of each, their ratio, the time
outside training (wall minus the trainer's runtime: imports, validation, loading, saving) and each run's peak RSS.
The data is LLaMA-Factory's ``alpaca_en_demo.json`` twice over when ``--lf-data`` names it, else our alpaca set.

On a GPU the default mode also measures the device's bf16 matmul peak in the same process and prints model FLOP
utilisation (MFU) of each run against it. Model FLOPs per real token for LoRA training are
``4 * N + 6 * L * s * d``: forward (2N) plus the input-gradient half of backward (2N; frozen weights get no weight
gradient), where N counts the weights of every linear layer (the LM head included); causal attention over the mean
sample length s (a token-weighted mean, sum of s^2 over sum of s; packed samples do not attend to each other) is
2 L s d forward and twice that backward.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genie_core.data.collator import PadCollator  # noqa: E402
from genie_core.data.tokenized import get_dataset  # noqa: E402
from genie_core.extras.env import apply_quiet_env  # noqa: E402
from genie_core.hparams import get_args  # noqa: E402
from genie_core.model import load_model, load_tokenizer  # noqa: E402
from genie_core.template import get_template  # noqa: E402


def _args(
    out: str,
    steps: int,
    batch: int,
    cutoff: int,
    packing: bool,
    group_by_length: bool = False,
    model: str = "smollm2",
    dataset: tuple[str, str] = ("alpaca_demo_en", str(ROOT / "data")),
):
    return get_args(
        None,
        {
            "stage": "sft",
            "model_name_or_path": model,
            "template": "chatml",
            "finetuning_type": "lora",
            "lora_rank": 8,
            "lora_target": "q_proj,v_proj",
            "lora_dropout": 0.0,
            "dataset": dataset[0],
            "dataset_dir": dataset[1],
            "cutoff_len": cutoff,
            "output_dir": out,
            "do_train": True,
            "per_device_train_batch_size": batch,
            "learning_rate": 1e-4,
            "lr_scheduler_type": "constant",
            "max_steps": steps,
            "save_strategy": "no",
            "logging_steps": 1000,
            "train_sampling_strategy": "sequential",
            "packing": packing,
            "group_by_length": group_by_length,
            "seed": 0,
            "dataloader_num_workers": 0,
        },
    )


def _batches(dataset, batch: int, steps: int) -> list[list[dict]]:
    rows = [dataset[i] for i in range(batch * steps)]
    return [rows[i * batch : (i + 1) * batch] for i in range(steps)]


def bare_loop(args, tokenizer, batches, collate) -> dict:
    """A plain PyTorch loop: the same model, LoRA adapter and AdamW as the Trainer run, on the same device.

    On a GPU it uses what the stage's device defaults give the Trainer there: bf16 autocast (fp16 without bf16)
    and fused AdamW, and it synchronises before reading the clock.
    """
    torch.manual_seed(0)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    model = load_model(tokenizer, args.model, args.finetuning, is_trainable=True).to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0, fused=cuda)
    half = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16
    times, tokens, padded, loss = [], 0, 0, float("nan")
    for i, rows in enumerate(batches):
        batch = collate([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
        batch = {k: v.to(device) for k, v in batch.items()}
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=half, enabled=cuda):
            out = model(**batch)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - start)
        real = sum(len(r["input_ids"]) for r in rows)
        if i >= 2:
            tokens += real
        padded += batch["input_ids"].numel() - real
        loss = out.loss.item()
    total = sum(len(r["input_ids"]) for rows in batches for r in rows) + padded
    step = statistics.median(times)
    return {"step_s": step, "tok_s": tokens / len(times) / step, "pad_frac": padded / total, "loss": loss}


def trainer_run(args, tokenizer, template, data) -> dict:
    """Our Trainer path; real (non-padding) tokens are counted from the batches the trainer actually built."""
    from transformers import TrainerCallback

    from genie_core.stages.device_defaults import apply_device_defaults
    from genie_core.stages.trainer import build_trainer

    class Timer(TrainerCallback):
        def __init__(self):
            self.times, self.t0 = [], 0.0

        def on_step_begin(self, a, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.times.append(time.perf_counter() - self.t0)

    torch.manual_seed(0)
    apply_device_defaults(args)  # what a stage gets on this device (bf16 on a GPU), as the bare loop uses
    model = load_model(tokenizer, args.model, args.finetuning, is_trainable=True)
    timer = Timer()
    trainer = build_trainer(args, model, tokenizer, data, packing=bool(args.data.packing), extra_callbacks=[timer])
    collate, real_tokens = trainer.data_collator, []

    def counting_collator(features):
        real_tokens.append(sum(len(f["input_ids"]) for f in features))
        return collate(features)

    trainer.data_collator = counting_collator
    result = trainer.train()
    steady, tokens = timer.times[2:], real_tokens[2 : len(timer.times)]
    step = statistics.median(steady)
    lengths = [len(data.train[i]["input_ids"]) for i in range(min(len(data.train), 512))]
    mean_len = sum(n * n for n in lengths) / sum(lengths)  # per token: long samples hold more of the tokens
    return {
        "step_s": step,
        "tok_s": sum(tokens) / len(tokens) / step,
        "loss": result.metrics.get("train_loss"),
        "flops_per_token": lora_flops_per_token(model, mean_len),
    }


def bf16_peak_tflops(size: int = 8192, reps: int = 30) -> float:
    """The device's measured dense bf16 matmul rate: the ceiling MFU is quoted against (not the datasheet's)."""
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * size**3 * reps / (time.perf_counter() - start) / 1e12


def lora_flops_per_token(model, mean_len: float) -> float:
    """Training FLOPs per real token with frozen base weights (see the module docstring)."""
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    cfg = model.config
    return 4 * linear + 6 * cfg.num_hidden_layers * mean_len * cfg.hidden_size


def _w1_data(root: Path, lf_data: str | None) -> tuple[str, str]:
    """(dataset_dir, dataset) for w1: LLaMA-Factory's demo file twice over when given, else our alpaca set."""
    if not lf_data:
        return str(ROOT / "data"), "alpaca_demo_en"
    rows = json.loads(Path(lf_data).read_text(encoding="utf-8"))
    (root / "w1.json").write_text(json.dumps(rows + rows), encoding="utf-8")
    (root / "dataset_info.json").write_text(json.dumps({"w1": {"file_name": "w1.json"}}), encoding="utf-8")
    return str(root), "w1"


def genie_train_run(config: dict, root: Path) -> dict:
    """One `genie train` process: wall time, the trainer's own runtime, real tokens/s and peak RSS of the child."""
    import subprocess

    import yaml

    path = root / f"{Path(config['output_dir']).name}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    genie = Path(sys.executable).with_name("genie")
    start = time.perf_counter()
    proc = subprocess.run([str(genie), "train", str(path)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"genie train failed:\n{proc.stderr[-3000:]}")
    out = Path(config["output_dir"])
    train_s = json.loads((out / "train_results.json").read_text())["train_runtime"]
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    packed = "Packing examples into rows" in proc.stderr
    return {"wall_s": wall, "train_s": train_s, "peak_rss_mb": peak, "packed": packed}


def _real_tokens(config: dict) -> int:
    """Non-padding tokens of the rows the run trains on, counted from the tokenized cache it used."""
    args = get_args(None, {**config, "output_dir": config["output_dir"] + "-count"})
    tokenizer = load_tokenizer(args.model)
    template = get_template("chatml", tokenizer)
    template.fix_tokenizer(tokenizer)
    data = get_dataset(args, tokenizer, template, "sft")
    n = int(config["per_device_train_batch_size"]) * int(config["max_steps"])
    return sum(len(data.train[i]["input_ids"]) for i in range(n))


def workload_w1(ns) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dataset_dir, dataset = _w1_data(root, ns.lf_data)
        base = {
            "stage": "sft",
            "model_name_or_path": "smollm2",
            "template": "chatml",
            "finetuning_type": "lora",
            "lora_rank": 8,
            "lora_target": "all",
            "dataset": dataset,
            "dataset_dir": dataset_dir,
            "cutoff_len": 512,
            "do_train": True,
            "per_device_train_batch_size": 4,
            "max_steps": 30,
            "learning_rate": 1e-4,
            "save_strategy": "no",
            "logging_steps": 10,
            "disable_shuffling": True,
            "seed": 0,
        }
        default = {**base, "output_dir": str(root / "default")}
        padded = {**base, "output_dir": str(root / "padded"), "packing": False}
        tokens = _real_tokens(default)
        runs = {"default": genie_train_run(default, root), "padded": genie_train_run(padded, root)}
    figures = {
        "bench": "train_throughput",
        "workload": "w1",
        "data": "llamafactory alpaca_en_demo x2" if ns.lf_data else "alpaca_demo_en",
        "real_tokens": tokens,
        "default_packed": runs["default"]["packed"],
    }
    for name, run in runs.items():
        figures[f"{name}_real_tok_s"] = round(tokens / run["train_s"], 1)
        figures[f"{name}_train_s"] = round(run["train_s"], 1)
        figures[f"{name}_overhead_s"] = round(run["wall_s"] - run["train_s"], 1)
    figures["default_over_padded_tok_s"] = round(runs["padded"]["train_s"] / runs["default"]["train_s"], 2)
    figures["peak_rss_mb_max_of_runs"] = round(max(r["peak_rss_mb"] for r in runs.values()), 1)
    figures["cpu_count"] = os.cpu_count()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--cutoff", type=int, default=512)
    parser.add_argument("--model", default="smollm2", help="a model name or folder (default mode only)")
    parser.add_argument("--dataset", default="alpaca_demo_en", help="a registered dataset (default mode only)")
    parser.add_argument("--dataset-dir", default=str(ROOT / "data"), help="the registry holding --dataset")
    parser.add_argument("--workload", choices=["w1"], help="run `genie train` as a user would (see the docstring)")
    parser.add_argument("--lf-data", help="LLaMA-Factory's data/alpaca_en_demo.json, for the w1 workload")
    ns = parser.parse_args()
    apply_quiet_env()
    if ns.workload == "w1":
        print(json.dumps(workload_w1(ns)))
        return
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        same = {"model": ns.model, "dataset": (ns.dataset, ns.dataset_dir)}
        padded_args = _args(tmp + "/pad", ns.steps, ns.batch, ns.cutoff, packing=False, **same)
        tokenizer = load_tokenizer(padded_args.model)
        template = get_template("chatml", tokenizer)
        template.fix_tokenizer(tokenizer)
        data = get_dataset(padded_args, tokenizer, template, "sft")
        batches = _batches(data.train, ns.batch, ns.steps)

        # The bare loop runs before and after our runs and the faster of the two counts: a machine that slows
        # down or speeds up mid-script then cannot flatter our figures. Step times are medians of steady steps.
        # On a GPU every run is repeated and the faster counts too: the first run to meet a batch shape pays
        # for choosing its kernels, which at a few hundred tokens a step is most of the step.
        collate = PadCollator(tokenizer.pad_token_id)
        repeats = 2 if torch.cuda.is_available() else 1
        bare_first = bare_loop(padded_args, tokenizer, batches, collate)
        packed_args = _args(tmp + "/pack", ns.steps, ns.batch, ns.cutoff, packing=True, **same)
        grouped_args = _args(
            tmp + "/group", ns.steps, ns.batch, ns.cutoff, packing=False, group_by_length=True, **same
        )
        runs: dict[str, list[dict]] = {"padded": [], "packed": [], "grouped": []}
        for _ in range(repeats):
            for name, run_args in (("padded", padded_args), ("packed", packed_args), ("grouped", grouped_args)):
                runs[name].append(trainer_run(run_args, tokenizer, template, data))
        ours_padded, ours_packed, ours_grouped = (min(r, key=lambda run: run["step_s"]) for r in runs.values())
        bare_again = bare_loop(padded_args, tokenizer, batches, collate)
        bare = min(bare_first, bare_again, key=lambda run: run["step_s"])
        device = {"device": "cpu"}
        if torch.cuda.is_available():
            peak = bf16_peak_tflops()
            device = {"device": torch.cuda.get_device_name(), "bf16_peak_tflops_measured": round(peak, 1)}
            for name, run in (("padded", ours_padded), ("packed", ours_packed), ("grouped", ours_grouped)):
                device[f"genie_{name}_mfu"] = round(run["tok_s"] * run["flops_per_token"] / 1e12 / peak, 3)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "bench": "train_throughput",
                "model": ns.model,
                **device,
                "steps": ns.steps,
                "batch": ns.batch,
                "cutoff_len": ns.cutoff,
                "bare_padded_step_s": round(bare["step_s"], 4),
                "bare_padded_step_s_runs": [round(bare_first["step_s"], 4), round(bare_again["step_s"], 4)],
                "bare_padded_nonpad_tok_s": round(bare["tok_s"], 1),
                "padded_fraction": round(bare["pad_frac"], 3),
                "genie_padded_step_s": round(ours_padded["step_s"], 4),
                "step_time_ratio_vs_bare": round(ours_padded["step_s"] / bare["step_s"], 3),
                "genie_packed_nonpad_tok_s": round(ours_packed["tok_s"], 1),
                "packed_speedup_vs_bare_padded": round(ours_packed["tok_s"] / bare["tok_s"], 2),
                "genie_grouped_nonpad_tok_s": round(ours_grouped["tok_s"], 1),
                "grouped_speedup_vs_bare_padded": round(ours_grouped["tok_s"] / bare["tok_s"], 2),
                "padding_ceiling_speedup": round(1 / (1 - bare["pad_frac"]), 2),
                "final_loss_bare": round(bare["loss"], 4),
                "final_loss_genie_packed": ours_packed["loss"],
                "peak_rss_mb": round(peak_mb, 1),
            }
        )
    )


if __name__ == "__main__":
    main()

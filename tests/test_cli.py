"""`genie train` through the real `accelerate launch` child, and its refusals before any model loads."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml
from helpers import stage_config, write_registry


def _genie(*argv: str, env_home=None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ}
    if env_home is not None:
        env["GENIE_HOME"] = str(env_home)
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *argv], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_train_yaml_runs_in_accelerate_child(tmp_path, tiny_model_dir, genie_home):
    data_dir = write_registry(tmp_path / "data")
    out = tmp_path / "out"
    cfg = stage_config(tiny_model_dir, data_dir, out, max_steps=2)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({**cfg, "lora_rank": 4}))
    proc = _genie("train", str(path), "lora_rank=2", env_home=genie_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "accelerate.commands.launch" in proc.stderr  # the launch line is logged
    written = yaml.safe_load((out / "genie_config.yaml").read_text())
    assert written["lora_rank"] == 2 and written["max_steps"] == 2  # the override won; the input dict was written
    adapter_cfg = yaml.safe_load((out / "adapter_config.json").read_text())
    assert adapter_cfg["r"] == 2
    assert (out / "train_results.json").exists()


def test_unknown_key_fails_before_anything_is_written(tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    proc = _genie(
        "train",
        "--stage",
        "sft",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--output_dir",
        str(out),
        "--lerning_rate",
        "1e-4",
    )
    assert proc.returncode == 2
    assert "lerning_rate" in proc.stderr and "learning_rate" in proc.stderr
    assert not out.exists()


def test_bad_dataset_fails_before_model_load(tmp_path, tiny_model_dir):
    data_dir = write_registry(tmp_path / "data")
    out = tmp_path / "out"
    cfg = stage_config(tiny_model_dir, data_dir, out, dataset="toyy")
    proc = _genie("train", *[f"{k}={v}" for k, v in cfg.items()])
    assert proc.returncode == 2
    assert "toyy" in proc.stderr and "toy" in proc.stderr
    assert "Loading weights" not in proc.stderr and not out.exists()


def test_bad_record_names_file_index_field(tmp_path, tiny_model_dir):
    data_dir = write_registry(tmp_path / "data", rows=[{"instruction": "a", "output": "b"}, {"instruction": 3}])
    cfg = stage_config(tiny_model_dir, data_dir, tmp_path / "out")
    proc = _genie("train", *[f"{k}={v}" for k, v in cfg.items()])
    assert proc.returncode == 2
    assert "toy.json:1" in proc.stderr and "instruction" in proc.stderr


def test_bad_template_and_lora_target(tmp_path, tiny_model_dir, genie_home):
    data_dir = write_registry(tmp_path / "data")
    cfg = stage_config(tiny_model_dir, data_dir, tmp_path / "out", template="chatmll")
    proc = _genie("train", *[f"{k}={v}" for k, v in cfg.items()])
    assert proc.returncode == 2 and "chatml" in proc.stderr
    cfg = stage_config(tiny_model_dir, data_dir, tmp_path / "out2", lora_target="q_projj")
    proc = _genie("train", "--no-launch", *[f"{k}={v}" for k, v in cfg.items()], env_home=genie_home)
    assert proc.returncode == 2 and "q_projj" in proc.stderr and "q_proj" in proc.stderr


def test_data_check_reports_dropped_records(tmp_path):
    rows = [
        {"instruction": "a", "output": "b"},
        {"instruction": "c", "output": ""},
        {"instruction": "d", "output": "e"},
    ]
    data_dir = write_registry(tmp_path / "data", rows=rows)
    proc = _genie("data", "check", "--dataset", "toy", "--dataset_dir", str(data_dir))
    assert proc.returncode == 0, proc.stderr
    assert "toy.json:1:" in proc.stdout

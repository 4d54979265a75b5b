"""Nothing trains unsupervised: the child dies with `genie train`, one writer per directory, and a resumed stage
logs every step once (trainer_log.jsonl and MLflow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from helpers import stage_config, write_registry

from genie_core.extras.locks import DirLock, DirLocked


def _start_train(cfg: dict, log: Path, home: Path) -> subprocess.Popen:
    env = {**os.environ, "GENIE_HOME": str(home), "GENIE_TRACKING": "off", "OMP_NUM_THREADS": "1"}
    args = [f"{k}={v}" for k, v in cfg.items()]
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "train", *args], stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env
    )


def _wait_training(proc: subprocess.Popen, out: Path, log: Path, timeout: float = 180) -> list[psutil.Process]:
    """Block until the child has logged a step; return the parent's whole process tree."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        trainer_log = out / "trainer_log.jsonl"
        if trainer_log.exists() and trainer_log.read_text().strip():
            return psutil.Process(proc.pid).children(recursive=True)
        time.sleep(0.3)
    raise AssertionError(f"training never started:\n{log.read_text()[-3000:]}")


def _long_config(tmp_path: Path, model_dir: Path) -> dict:
    data = write_registry(tmp_path / "data")
    return stage_config(
        model_dir, data, tmp_path / "out", max_steps=100000, save_strategy="steps", save_steps=100000, lora_rank=2
    )


def test_sigterm_to_genie_train_checkpoints_and_stops_the_child(tmp_path, tiny_model_dir, genie_home):
    cfg = _long_config(tmp_path, tiny_model_dir)
    out, log = Path(cfg["output_dir"]), tmp_path / "train.log"
    proc = _start_train(cfg, log, genie_home)
    children = _wait_training(proc, out, log)
    assert children, "the stage runs in a child process"

    second = subprocess.run(  # a second writer of the same directory is refused, naming the holder
        [sys.executable, "-m", "flows.cli", "train", *[f"{k}={v}" for k, v in cfg.items()]],
        capture_output=True,
        text=True,
        env={**os.environ, "GENIE_HOME": str(genie_home), "GENIE_TRACKING": "off"},
        timeout=120,
    )
    assert second.returncode == 2
    assert f"pid {proc.pid}" in second.stderr and "being written by another process" in second.stderr

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 143, log.read_text()[-3000:]
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running: {[p.pid for p in alive]}"
    saved = [p for p in out.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    assert saved, f"no checkpoint saved on SIGTERM:\n{log.read_text()[-3000:]}"
    assert not (out / "train_results.json").exists()  # a stopped run is not a finished one


def test_sigkill_of_genie_train_takes_the_child_down(tmp_path, tiny_model_dir, genie_home):
    cfg = _long_config(tmp_path, tiny_model_dir)
    out, log = Path(cfg["output_dir"]), tmp_path / "train.log"
    proc = _start_train(cfg, log, genie_home)
    children = _wait_training(proc, out, log)
    proc.kill()
    proc.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"orphaned after SIGKILL: {[(p.pid, p.cmdline()[-2:]) for p in alive]}"


def test_dir_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path):
    target = tmp_path / "stage"
    script = (
        "import time; from genie_core.extras.locks import DirLock; "
        f"lock = DirLock({str(target)!r}).acquire(); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(DirLocked, match=f"pid {holder.pid}"):
        DirLock(target).acquire()
    holder.kill()
    holder.wait()
    with DirLock(target):  # the kernel dropped the dead holder's lock
        pass


def _steps(path: Path, key: str = "loss") -> list[int]:
    return [r["current_steps"] for r in map(json.loads, path.read_text().splitlines()) if key in r]


def test_resume_logs_each_step_once(tmp_path, tiny_model_dir, genie_home, monkeypatch, one_thread):
    """A run killed after logging steps 3-4 but before checkpointing them resumes from checkpoint-2: the log and the
    MLflow history hold steps 1-4 once each."""
    from mlflow import MlflowClient

    from genie_core.hparams import get_args
    from genie_core.stages import run_stage

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("resume")).info.run_id
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    monkeypatch.setenv("GENIE_TRACKING", "on")

    data = write_registry(tmp_path / "data")
    out = tmp_path / "out"
    cfg = stage_config(tiny_model_dir, data, out, max_steps=4, save_strategy="steps", save_steps=2, lora_rank=2)
    run_stage(get_args(None, cfg))
    assert _steps(out / "trainer_log.jsonl") == [1, 2, 3, 4]
    # what a kill between logging step 4 and finishing checkpoint-4 leaves behind
    import shutil

    shutil.rmtree(out / "checkpoint-4")
    (out / "train_results.json").unlink()
    run_stage(get_args(None, cfg))
    assert _steps(out / "trainer_log.jsonl") == [1, 2, 3, 4]
    history = sorted(m.step for m in client.get_metric_history(run_id, "loss"))
    assert history == [1, 2, 3, 4]


def test_full_disk_is_one_line_naming_the_path(tmp_path, tiny_model_dir):
    """ENOSPC inside the stage (simulated: no test can fill a disk safely) ends the child with one error line that
    names the path, the space left and the space needed, and no traceback."""
    import yaml

    data = write_registry(tmp_path / "data")
    config = tmp_path / "genie_config.yaml"
    config.write_text(yaml.safe_dump(stage_config(tiny_model_dir, data, tmp_path / "out")))
    script = (
        "import errno, sys, genie_core.stages as s\n"
        "def full(args):\n"
        "    raise OSError(errno.ENOSPC, 'No space left on device', args.training.output_dir + '/model.safetensors')\n"
        "s.run_stage = full\n"
        "from genie_core.stage_child import main\n"
        f"sys.exit(main([{str(config)!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr[-2000:]
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert f"while writing {tmp_path / 'out'}/model.safetensors" in line and "MiB free there" in line
    assert "the stage needs about" in line and "Traceback" not in proc.stderr

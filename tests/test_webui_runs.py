"""The board's plumbing without a browser: allowed roots, form -> stage config, dataset preview, run files, Stop."""

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
import yaml
from helpers import write_registry

from genie_core.extras.errors import ConfigError, GenieError
from genie_core.webui import run_config, runs
from genie_core.webui.common import PathRefused, Roots
from genie_core.webui.preview import list_datasets, preview_rows


@pytest.fixture()
def runs_root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GENIE_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_roots_accept_paths_inside_and_refuse_outside(tmp_path, runs_root):
    inside = tmp_path / "ok"
    (inside / "model").mkdir(parents=True)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir(exist_ok=True)
    roots = Roots.from_spec(f"{inside}")
    assert runs_root.resolve() in roots.paths  # the board's own runs are always allowed
    assert roots.check(inside / "model", "model") == (inside / "model").resolve()
    with pytest.raises(PathRefused, match="outside the allowed folders"):
        roots.check(outside, "dataset folder")
    with pytest.raises(PathRefused, match="outside the allowed folders"):
        roots.check(inside / ".." / outside.name, "model")  # no escaping through ..
    (inside / "link").symlink_to(outside)
    with pytest.raises(PathRefused, match="outside the allowed folders"):
        roots.check(inside / "link", "model")  # nor through a symlink
    with pytest.raises(PathRefused, match="does not exist"):
        roots.check(inside / "missing", "model")
    assert roots.check_model("smollm2") == "smollm2"  # a pullable name, resolved under GENIE_HOME
    config = {"model_name_or_path": str(inside / "model"), "adapter_name_or_path": str(outside), "lr": 1}
    with pytest.raises(PathRefused, match="adapter_name_or_path"):
        roots.check_config(config)  # paths typed as extra keys (and aliases) are checked too


def test_form_becomes_stage_config(runs_root):
    form = {
        "model_name_or_path": "/m",
        "dataset": ["a", "b"],
        "stage": "sft",
        "finetuning_type": "full",
        "quantization_bit": "none",
        "max_steps": 0.0,
        "per_device_train_batch_size": 4.0,
        "save_steps": 0,
        "val_size": 0.1,
        "lora_rank": 8,
        "checkpoint_dir": "",
    }
    config = run_config.stage_config(form, "warmup_ratio: 0.1\nlogging_steps: 2")
    assert config["dataset"] == "a,b" and config["per_device_train_batch_size"] == 4
    assert "max_steps" not in config and "quantization_bit" not in config and "checkpoint_dir" not in config
    assert "lora_rank" not in config  # full tuning: LoRA keys dropped
    assert config["save_strategy"] == "no" and config["eval_strategy"] == "steps"
    assert config["warmup_ratio"] == 0.1 and config["logging_steps"] == 2
    with pytest.raises(ConfigError, match="output_dir"):
        run_config.stage_config(form, "output_dir: /elsewhere")
    with pytest.raises(ConfigError, match="YAML mapping"):
        run_config.stage_config(form, "- a list")
    with pytest.raises(ConfigError, match="run name"):
        runs.new_name("1 bad name", "sft")
    (runs_root / "taken").mkdir(parents=True)
    assert runs.new_name("taken", "sft") == "taken-2"


def test_check_config_reports_a_wrong_key_before_starting(tiny_model_dir, tmp_path, runs_root):
    data = write_registry(tmp_path / "data")
    config = {"stage": "sft", "model_name_or_path": str(tiny_model_dir), "dataset": "toy", "dataset_dir": str(data)}
    run_config.check_config({**config, "template": "chatml"})
    with pytest.raises(GenieError, match="learning_rate"):
        run_config.check_config({**config, "template": "chatml", "learnin_rate": 1e-3})
    with pytest.raises(GenieError, match="nope"):
        run_config.check_config({**config, "dataset": "nope"})


def test_preview_renders_rows_through_the_template(tmp_path, tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    rows = [{"instruction": "Say hi.", "input": "", "output": "Hi!"}, {"instruction": "", "input": "", "output": "x"}]
    data = write_registry(tmp_path / "data", rows)
    assert list_datasets(data) == ["toy"]
    shown = preview_rows(data, ["toy"], "chatml", "sft", AutoTokenizer.from_pretrained(tiny_tokenizer_dir))
    assert shown[0].text == "<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>\n"
    assert shown[1].dropped and shown[1].source.endswith(":1") and "dropped" in shown[1].text
    ppo = preview_rows(data, ["toy"], "chatml", "ppo")
    assert ppo[0].text.endswith("<|im_start|>assistant\n")


def _fake_run(runs_root: Path, name: str, command: list[str]) -> runs.Submission:
    """A submission whose process is ``command`` (not `genie run`), to test watching and stopping."""
    folder = runs_root / "webui" / name
    folder.mkdir(parents=True)
    with open(folder / runs.LOG_FILE, "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    started = psutil.Process(proc.pid).create_time()
    sub = runs.Submission(name, "sft", proc.pid, started, command, str(runs_root / name))
    sub.save()
    sub._proc = proc  # type: ignore[attr-defined]
    return sub


def test_run_files_give_status_curve_and_tail(runs_root):
    script = "print('progress 10%\\rprogress 100%'); print('Pipeline done finished in 1 s')"
    sub = _fake_run(runs_root, "done", [sys.executable, "-c", script])
    sub._proc.wait()
    assert runs.status(sub) == "finished"  # from the log: the board that started it may be gone
    assert runs.log_tail(sub).splitlines() == ["progress 100%", "Pipeline done finished in 1 s"]
    stage = Path(sub.stage_root) / "sft-abc"
    stage.mkdir(parents=True)
    records = [
        {"current_steps": 1, "total_steps": 2, "loss": 2.0},
        {"current_steps": 2, "total_steps": 2, "loss": 1.5, "eval_loss": 1.7},
    ]
    (stage / "trainer_log.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n{partial")
    assert runs.stage_dir(sub) == stage and runs.progress(sub) == (2, 2)
    assert [(p["step"], p["series"]) for p in runs.loss_points(sub)] == [(1, "loss"), (2, "loss"), (2, "eval_loss")]
    assert runs.list_submissions() == ["done"]
    with pytest.raises(GenieError, match="no finished result"):
        runs.chat_target(sub)
    (stage / runs.RESULT_FILE).write_text(
        json.dumps({"model_name_or_path": "/m", "adapters": [str(stage)], "finetuning_type": "lora", "template": "x"})
    )
    assert runs.chat_target(sub) == {
        "model_name_or_path": "/m",
        "checkpoint_dir": str(stage),
        "finetuning_type": "lora",
        "template": "x",
    }


def test_stop_ends_the_process_group(runs_root):
    # a parent and its child in the same process group: both must go
    child = "[sys.executable, '-c', 'import time; time.sleep(60)']"
    script = f"import subprocess, sys, time; subprocess.Popen({child}); time.sleep(60)"
    sub = _fake_run(runs_root, "long", [sys.executable, "-c", script])
    time.sleep(0.5)
    assert runs.status(sub) == "running"
    children = psutil.Process(sub.pid).children(recursive=True)
    assert "Stopping" in runs.stop(sub)
    sub._proc.wait(timeout=10)
    psutil.wait_procs(children, timeout=10)  # not our children: waiting does not reap them
    assert sub._proc.returncode == -signal.SIGTERM and not any(c.is_running() for c in children)
    assert runs.status(sub) == "stopped"
    assert "not running" in runs.stop(sub)


def test_submit_writes_the_pipeline_and_detaches(runs_root, monkeypatch, tmp_path):
    """The YAML is what `genie run` reads; the process has its own session. `flows.cli` (run by `genie`) is a stub."""
    stub = tmp_path / "stub"
    (stub / "flows").mkdir(parents=True)
    (stub / "flows" / "__init__.py").write_text("")
    (stub / "flows" / "cli.py").write_text(
        "import sys, time\ndef main():\n    print('Pipeline', 'ran', sys.argv[1:])\n    time.sleep(1)\n    return 0\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(stub))
    monkeypatch.chdir(tmp_path)
    sub = runs.submit({"stage": "sft", "model_name_or_path": "/m", "dataset": "toy"}, "mine", "exp")
    assert runs.status(sub) == "running" and os.getsid(sub.pid) == sub.pid  # a session (and group) of its own
    pipeline = yaml.safe_load((sub.folder / runs.PIPELINE_FILE).read_text())
    assert pipeline == {
        "name": "mine",
        "experiment": "exp",
        "description": "Started from genie webui.",
        "stages": {"sft": {"stage": "sft", "model_name_or_path": "/m", "dataset": "toy"}},
    }
    deadline = time.monotonic() + 30
    while not (sub.folder / runs.EXIT_FILE).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (sub.folder / runs.EXIT_FILE).read_text() == "0"
    assert "['run', '" + str(sub.folder / runs.PIPELINE_FILE) in runs.log_tail(sub)


def test_commands_print_their_usage():
    for command, expected in (("webchat", "--port"), ("webui", "--roots")):
        out = subprocess.run([sys.executable, "-m", "flows.cli", command, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and expected in out.stdout, out.stderr


def test_gradio_history_becomes_messages():
    from genie_core.webui.chat_page import to_messages

    history = [
        {"role": "user", "metadata": None, "content": [{"text": "hi", "type": "text"}], "options": None},
        {"role": "assistant", "content": "yo"},
    ]
    assert to_messages(history) == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]

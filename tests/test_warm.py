"""Warm stage children: a child forks its work from the pipeline's warm interpreter and behaves as if it ran it.

The warm interpreter here preloads only ``json`` (the real one imports torch and transformers, 10-15 s), and the
entry point is a small module written by the test; the pipeline tests run real stages through the real one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from genie_core.extras import warm
from genie_core.pipeline.step_run import child_environment

ENTRY = """
import json, os, signal, sys, time

def main(argv):
    out = {"pid": os.getpid(), "ppid": os.getppid(), "argv": argv, "probe": os.environ.get("GENIE_PROBE"),
           "cwd": os.getcwd(), "warm": "GENIE_WARM_SOCKET" in os.environ}
    print(json.dumps(out), flush=True)
    if argv[0] == "exit":
        return int(argv[1])
    if argv[0] == "wait":  # stand in for a stage: note a stop request, then stop as a stage does
        def stop(signum, frame):
            open(argv[1], "w").write(signal.Signals(signum).name)
            os._exit(143)
        signal.signal(signal.SIGTERM, stop)
        open(argv[1] + ".ready", "w").close()
        time.sleep(120)
    return 0
"""
CHILD = """
import sys
from genie_core.extras.warm import run_warm
status = run_warm("probe_entry:main", sys.argv[1:])
if status is None:
    print("cold", flush=True)
    import probe_entry
    status = probe_entry.main(sys.argv[1:])
sys.exit(status)
"""


@pytest.fixture()
def served(tmp_path, monkeypatch):
    """A warm interpreter (preloading json) whose children may import the test's entry module."""
    if warm._accelerator_visible():
        pytest.skip("a GPU is visible: every child starts cold there")
    (tmp_path / "probe_entry.py").write_text(textwrap.dedent(ENTRY))
    (tmp_path / "probe_child.py").write_text(textwrap.dedent(CHILD))
    pythonpath = os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parents[1])])
    monkeypatch.setenv("PYTHONPATH", pythonpath)
    monkeypatch.chdir(tmp_path)
    env = child_environment(1, "", "")
    with warm.warm_interpreter(tmp_path / "warm.log", env, preload=("json",)) as path:
        assert path and os.environ[warm.WARM_ENV] == path
        yield tmp_path, env
    assert warm.WARM_ENV not in os.environ


def _child(folder: Path, env: dict, *argv: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(folder / "probe_child.py"), *argv],
        env={**env, warm.WARM_ENV: os.environ[warm.WARM_ENV], **popen.pop("extra_env", {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_child_runs_in_a_fork_with_its_own_arguments_environment_and_streams(served):
    folder, env = served
    proc = _child(folder, env, "exit", "7", extra_env={"GENIE_PROBE": "child's", "OMP_NUM_THREADS": "1"})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 7, err  # the worker's status is the child's
    assert "cold" not in out, err
    seen = json.loads(out.splitlines()[-1])
    assert seen["pid"] != proc.pid and seen["ppid"] != proc.pid  # forked from the warm interpreter, not run here
    assert seen["argv"] == ["exit", "7"] and seen["probe"] == "child's" and seen["cwd"] == str(folder)
    assert seen["warm"] is False  # the worker's own children start cold


def test_environment_a_library_reads_at_import_makes_the_child_start_cold(served):
    folder, env = served
    proc = _child(folder, env, "exit", "0", extra_env={"HF_HOME": str(folder / "other-hf")})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert out.splitlines()[0] == "cold" and json.loads(out.splitlines()[1])["pid"] == proc.pid
    assert "HF_HOME differs" in err


def test_sigterm_to_the_child_reaches_the_worker(served):
    folder, env = served
    marker = folder / "stopped"
    proc = _child(folder, env, "wait", str(marker))
    _wait_for(lambda: Path(str(marker) + ".ready").exists())
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 143 and marker.read_text() == "SIGTERM"


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
def test_a_stop_at_any_moment_leaves_no_worker_behind(served, delay):
    """SIGTERM while the child connects, while the fork happens or just after: the child ends as a stopped one
    and nothing it asked for keeps running."""
    import psutil

    folder, env = served
    proc = _child(folder, env, "wait", str(folder / "stopped"))
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode in (143, -signal.SIGTERM)  # -15: stopped before it could pass anything on, as cold
    interpreter = psutil.Process(warm.serving_pid())
    _wait_for(lambda: not [c for c in interpreter.children() if c.status() != psutil.STATUS_ZOMBIE], 20)


def test_killing_the_child_stops_the_worker(served):
    """SIGKILL leaves the child no chance to pass anything on: the worker sees it gone and stops itself."""
    folder, env = served
    marker = folder / "stopped"
    proc = _child(folder, env, "wait", str(marker))
    _wait_for(lambda: Path(str(marker) + ".ready").exists())
    worker = json.loads(proc.stdout.readline())["pid"]
    proc.kill()
    proc.wait(timeout=10)
    _wait_for(lambda: marker.exists())
    assert marker.read_text() == "SIGTERM"
    _wait_for(lambda: not _alive(worker))


def test_a_nested_block_reuses_the_running_interpreter(served):
    folder, env = served
    running = os.environ[warm.WARM_ENV]
    with warm.warm_interpreter(folder / "inner.log", env, preload=("json",)) as inner:
        assert inner == running and not (folder / "inner.log").exists()
    assert os.environ[warm.WARM_ENV] == running and Path(running).exists()  # the outer block still owns it


def test_no_warm_interpreter_means_cold(tmp_path, monkeypatch):
    monkeypatch.delenv(warm.WARM_ENV, raising=False)
    assert warm.run_warm("probe_entry:main", []) is None
    monkeypatch.setenv(warm.WARM_ENV, str(tmp_path / "nothing-listens-here"))
    assert warm.run_warm("probe_entry:main", []) is None  # a stale address: cold, not a failure


def test_a_visible_gpu_turns_it_off(monkeypatch):
    monkeypatch.setattr(warm, "_accelerator_visible", lambda: True)
    assert not warm.enabled()
    with warm.warm_interpreter(os.devnull, dict(os.environ), preload=("json",)) as path:
        assert path is None and warm.WARM_ENV not in os.environ


def test_only_import_time_variables_must_match():
    base = {"HF_HOME": "/a", "PATH": "/bin", "OMP_NUM_THREADS": "8"}
    child = {**base, "OMP_NUM_THREADS": "2", "ACCELERATE_USE_CPU": "True", "MLFLOW_RUN_ID": "r", "GENIE_X": "1"}
    assert warm.env_mismatch(base, child) is None
    assert warm.env_mismatch(base, {**child, "HF_HOME": "/b"}) == "HF_HOME"
    assert warm.env_mismatch(base, {k: v for k, v in child.items() if k != "PATH"}) == "PATH"


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

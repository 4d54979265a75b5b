"""MLflow behind a null object, against a real sqlite store: where the store lives, runs and nesting, the
child attaching through MLFLOW_RUN_ID from rank 0 only, and the model registry with aliases."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import stage_config, write_registry

from genie_core import tracking
from genie_core.tracking import MlflowTracker, NullTracker, StepLogger, get_tracker, tracking_callbacks


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    """One sqlite store for the module: creating one runs mlflow's migrations, which takes seconds."""
    return tmp_path_factory.mktemp("tracking") / "runs"


@pytest.fixture()
def store(store_dir, monkeypatch) -> Path:
    monkeypatch.setenv("GENIE_RUNS_DIR", str(store_dir))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("GENIE_TRACKING", raising=False)
    return store_dir


_RACER = """
import sys
from genie_core.tracking import MlflowTracker
tracker = MlflowTracker("race", uri=sys.argv[1])
print(tracker.start_run("r"))
"""


def test_pipelines_starting_together_on_a_fresh_store(tmp_path):
    """Three processes meet a store that does not exist yet: each creates its run, none trips on the migration."""
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outs]
    ids = {out.strip().splitlines()[-1] for out, _ in outs}
    assert len(ids) == 3
    assert len(MlflowTracker("race", uri=uri).client.search_runs([MlflowTracker("race", uri=uri).experiment_id])) == 3


def test_default_store_is_fixed_and_overridable(store, tmp_path, monkeypatch):
    expected = f"sqlite:///{store.resolve() / 'mlflow.db'}"
    assert tracking.tracking_uri() == expected
    monkeypatch.chdir(tmp_path)  # the store does not follow the current directory
    assert tracking.tracking_uri() == expected
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5055")
    assert tracking.tracking_uri() == "http://127.0.0.1:5055"
    monkeypatch.setenv("GENIE_TRACKING", "off")
    assert isinstance(get_tracker(), NullTracker)


def test_null_tracker_does_nothing(tmp_path, monkeypatch):
    store = tmp_path / "runs"
    monkeypatch.setenv("GENIE_RUNS_DIR", str(store))
    null = NullTracker()
    run = null.start_run("x", tags={"a": 1})
    null.log_metrics(run, {"loss": 1.0}, step=1)
    null.end_run(run, "FAILED")
    assert run == "" and null.register_version("m", "/x") is None and null.get_alias("m", "champion") is None
    assert not store.exists()  # nothing written


def test_nested_runs_params_metrics_artifacts(store, tmp_path):
    tracker = MlflowTracker("exp")
    parent = tracker.start_run("pipe", tags={"genie.git_sha": "abc"})
    child = tracker.start_run("sft", parent, tags={"genie.key": "k1"})
    tracker.log_params(child, {"learning_rate": 1e-3, "nested": {"a": [1, 2]}, "long": "x" * 7000})
    tracker.log_metrics(child, {"loss": 2.0, "name": "ignored", "nan": float("nan")}, step=3)
    (tmp_path / "cfg.yaml").write_text("a: 1\n")
    tracker.log_artifact(child, tmp_path / "cfg.yaml")
    tracker.end_run(child, "FAILED")
    tracker.end_run(parent)

    run = tracker.client.get_run(child)
    assert run.data.tags["mlflow.parentRunId"] == parent and run.info.status == "FAILED"
    assert run.data.params["learning_rate"] == "0.001" and run.data.params["nested.a"] == "[1, 2]"
    assert len(run.data.params["long"]) == 6000
    assert run.data.metrics == {"loss": 2.0}
    assert [a.path for a in tracker.client.list_artifacts(child)] == ["cfg.yaml"]
    artifact_uri = run.info.artifact_uri
    assert artifact_uri.startswith((store.resolve() / "mlartifacts").as_uri())  # next to the store, not the cwd


def test_step_logger_attaches_from_rank_zero_only(store, monkeypatch):
    tracker = MlflowTracker("exp-child")
    run_id = tracker.start_run("sft")
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    monkeypatch.setenv("RANK", "1")
    assert tracking_callbacks() == [] and not StepLogger().enabled
    monkeypatch.setenv("RANK", "0")
    [callback] = tracking_callbacks()
    for step, loss in ((1, 3.0), (2, 2.5)):
        callback.on_log(None, type("S", (), {"global_step": step})(), None, logs={"loss": loss, "epoch": 0.1})
    history = tracker.client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 3.0), (2, 2.5)]
    assert tracker.client.get_run(run_id).info.run_name == "sft"  # attaching does not rename the run
    monkeypatch.delenv("MLFLOW_RUN_ID")
    assert tracking_callbacks() == []


def test_step_logger_survives_a_dead_run(store, caplog):
    logger = StepLogger("0" * 32)
    logger.log({"loss": 1.0}, 1)  # no such run: warns once and turns itself off, training goes on
    assert not logger.enabled


def test_trainer_logs_every_step_to_the_stage_run(store, tmp_path, tiny_model_dir, genie_home, monkeypatch):
    """A real Trainer-based stage (sft) with MLFLOW_RUN_ID set logs its per-step loss into that run."""
    from genie_core.hparams import get_args
    from genie_core.stages import run_stage

    tracker = MlflowTracker("exp")
    run_id = tracker.start_run("sft")
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracker.uri)
    cfg = stage_config(tiny_model_dir, write_registry(tmp_path / "data"), tmp_path / "out", max_steps=3)
    run_stage(get_args(None, cfg))
    history = tracker.client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert "train_runtime" in tracker.client.get_run(run_id).data.metrics


def test_registry_versions_and_alias(store, tmp_path):
    tracker = MlflowTracker("exp-registry")
    run_id = tracker.start_run("export")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    v1 = tracker.register_version("m", str(model_dir), run_id, {"genie.export_key": "k1"})
    v2 = tracker.register_version("m", str(model_dir), run_id, {"genie.export_key": "k2"})
    assert (v1.version, v2.version) == ("1", "2")
    assert tracker.get_alias("m", "champion") is None
    tracker.set_alias("m", "champion", v2.version)
    holder = tracker.get_alias("m", "champion")
    assert (
        holder.version == "2"
        and holder.export_dir == str(model_dir.resolve())
        and holder.tags["genie.export_key"] == "k2"
    )
    assert tracker.find_version("m", "genie.export_key", "k1").version == "1"
    assert tracker.find_version("m", "genie.export_key", "nope") is None
    assert os.path.exists(store / "mlflow.db")


def test_genie_ui_serves_the_store_and_stops_cleanly(store):
    """`genie ui` starts the MLflow UI on 127.0.0.1 over the default store; SIGTERM stops its whole group."""
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    import psutil

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    MlflowTracker("exp-ui").start_run("visible")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "ui", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"MLflow:  http://127.0.0.1:{port}/#/experiments?workflowType=machine_learning"), line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
            assert resp.status == 200
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children
        _landing_page_is_model_training(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive


def _landing_page_is_model_training(port: int) -> None:
    """The link we print opens the experiment in MLflow 3's model-training view (its runs), not the GenAI traces
    overview it shows by default."""
    import shutil

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("needs Debian's chromium (`.ci/run` installs it)")
    from playwright.sync_api import sync_playwright

    experiment_page = (
        f"http://127.0.0.1:{port}/#/experiments/{MlflowTracker('exp-ui').experiment_id}{tracking.UI_MODE}"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page()
            page.goto(experiment_page)
            page.get_by_text("visible", exact=True).first.wait_for(timeout=60_000)  # the run table
            body = page.inner_text("body")
            assert "Model registry" in body and "No data available for the selected time range" not in body
        finally:
            browser.close()


def test_runs_of_dead_processes_end_killed(store):
    """A `genie run` killed with SIGKILL leaves RUNNING runs; the next run of the pipeline ends them as KILLED and
    leaves the runs of live processes alone."""
    import subprocess
    import sys

    tracker = MlflowTracker("orphans")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = tracker.start_run("live", tags={"genie.pipeline": "p"})  # owned by this (live) process
    orphan = tracker.start_run("orphan", tags={"genie.pipeline": "p"})
    tracker.set_tags(orphan, {"genie.pid": str(dead.pid)})
    other = tracker.start_run("other pipeline", tags={"genie.pipeline": "q", "genie.pid": str(dead.pid)})

    assert tracker.end_orphans({"genie.pipeline": "p"}) == [orphan]
    status = {rid: tracker.client.get_run(rid).info.status for rid in (live, orphan, other)}
    assert status == {live: "RUNNING", orphan: "KILLED", other: "RUNNING"}
    assert "died" in tracker.client.get_run(orphan).data.tags["genie.status"]


def test_reopened_run_is_running_again_with_its_history(store):
    tracker = MlflowTracker("reopen")
    run_id = tracker.start_run("sft")
    tracker.log_metrics(run_id, {"loss": 1.0}, step=1)
    tracker.end_run(run_id, "KILLED")
    assert tracker.reopen_run(run_id)
    run = tracker.client.get_run(run_id)
    assert run.info.status == "RUNNING" and tracker.last_step(run_id, "loss") == 1
    assert not tracker.reopen_run("0" * 32)  # a run that does not exist is not reopened


def test_fresh_store_keeps_every_artifact_root_beside_it(tmp_path, monkeypatch):
    """Even MLflow's Default experiment stores artifacts under the store's folder, not the current directory; our
    experiments open as model training in the UI."""
    monkeypatch.setenv("GENIE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    tracker = MlflowTracker("kind")
    root = (tmp_path / "runs" / "mlartifacts").resolve().as_uri()
    assert tracker.client.get_experiment("0").artifact_location.startswith(root)
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert experiment.artifact_location.startswith(root)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"

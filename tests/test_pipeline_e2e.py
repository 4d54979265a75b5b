"""Pipelines for real: Prefect (a test server via prefect_test_harness), a sqlite MLflow store, accelerate children.

One module-scoped pipeline run sequence on the tiny model carries most assertions:
  run A: sft -> sft2 (crashes once, right after saving checkpoint-2) -> flow fails;
  run B: sft is a cache hit, sft2 resumes from checkpoint-2, evaluate/export/register run;
  run C: everything is a cache hit and no child process starts.
The crash is injected from outside the code under test: a ``sitecustomize`` on the child's PYTHONPATH that
wraps ``Trainer._save_checkpoint`` and exits the process once (it cannot be a mock: the child is a real process).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import yaml
from helpers import DIGIT_PPO, SAMPLING_KEYS, write_registry

from genie_core.data import fingerprint

ROOT = Path(__file__).resolve().parents[1]

FAIL_ONCE = textwrap.dedent(
    """
    import importlib.abc, importlib.util, os, sys

    MARK, STAGE = os.environ.get("GENIE_TEST_FAIL_ONCE", ""), os.environ.get("GENIE_TEST_FAIL_STAGE", "")

    class _Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name != "transformers.trainer":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run_module = spec.loader.exec_module

            def exec_module(module):
                run_module(module)
                save = module.Trainer._save_checkpoint

                def save_then_crash(trainer, *args, **kwargs):
                    save(trainer, *args, **kwargs)
                    if STAGE in str(trainer.args.output_dir) and not os.path.exists(MARK):
                        open(MARK, "w").write(str(trainer.state.global_step))
                        print("injected crash after checkpoint", trainer.state.global_step, flush=True)
                        os._exit(17)

                module.Trainer._save_checkpoint = save_then_crash

            spec.loader.exec_module = exec_module
            return spec

    if MARK and not os.path.exists(MARK):
        sys.meta_path.insert(0, _Finder())
    """
)


def pipeline_yaml(path: Path, model_dir: Path, data_dir: Path, name: str = "e2e", top=None, **stages) -> Path:
    raw = {
        **(top or {}),
        "name": name,
        "experiment": "genie-tests",
        "defaults": {
            "model_name_or_path": str(model_dir),
            "template": "chatml",
            "finetuning_type": "lora",
            "dataset": "toy",
            "dataset_dir": str(data_dir),
            "cutoff_len": 64,
            "per_device_train_batch_size": 4,
            "learning_rate": 5.0e-3,
            "lr_scheduler_type": "constant",
            "logging_steps": 1,
            "dataloader_num_workers": 0,
            "seed": 0,
        },
        "stages": stages
        or {
            "sft": {"max_steps": 4, "save_steps": 2, "val_size": 4, "eval_strategy": "steps", "eval_steps": 2},
            "sft2": {"from": "sft", "max_steps": 4, "save_steps": 2},
            "evaluate": {
                "kind": "evaluate",
                "from": "sft2",
                "max_samples": 4,
                "max_new_tokens": 4,
                "do_sample": False,
            },
            "export": {"kind": "export", "from": "sft", "metric": "eval_loss", "mode": "min"},
            "register": {"kind": "register", "from": "export", "model_name": "tiny-e2e"},
        },
    }
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """An isolated GENIE_HOME/runs dir and a Prefect test server for the whole module."""
    from prefect.settings import PREFECT_SERVER_ANALYTICS_ENABLED, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    root = tmp_path_factory.mktemp("pipelines")
    mp = pytest.MonkeyPatch()
    mp.setenv("GENIE_HOME", str(root / "home"))
    mp.setenv("GENIE_RUNS_DIR", str(root / "runs"))
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "GENIE_TRACKING", "PREFECT_API_URL"):
        mp.delenv(key, raising=False)
    mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # the test server's telemetry heartbeat
    fingerprint.reset_memo()
    try:
        with temporary_settings({PREFECT_SERVER_ANALYTICS_ENABLED: False}), prefect_test_harness(180):
            from prefect.settings import PREFECT_API_URL

            yield {"root": root, "runs": root / "runs", "api": PREFECT_API_URL.value()}
    finally:
        mp.undo()
        fingerprint.reset_memo()


def run_flow(config: Path, overrides: dict | None = None):
    from flows.pipelines import pipeline

    start = time.perf_counter()
    state = pipeline(str(config), overrides or {}, return_state=True)
    return state, time.perf_counter() - start


def task_states(flow_run_id, settle_s: float = 30.0) -> dict[str, str]:
    """Final task states of a flow run; task states reach the server as events, so wait until none is in flight."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + settle_s
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            states = {run.name: run.state.name if run.state else "Pending" for run in runs}  # no state yet: in flight
            if not {"Running", "Pending", "Scheduled"} & set(states.values()) or time.monotonic() > deadline:
                return states
            time.sleep(0.5)


def stage_dir(runs: Path, pipeline: str, step: str) -> Path | None:
    """The finished directory of ``step`` (pipelines here run each config once, unless a test says otherwise)."""
    found = [p for p in (runs / pipeline).glob(f"{step}-*") if (p / "genie_result.json").exists()]
    assert len(found) <= 1, found
    return found[0] if found else None


def step_dir(finished: dict, step: str) -> Path:
    """Where run B (the completed base config) put ``step``."""
    return Path(next(s["output_dir"] for s in finished["b"]["summary"]["steps"] if s["name"] == step))


def _logs(runs: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in runs.rglob("stage.log")}


def _mlflow():
    from mlflow import MlflowClient

    from genie_core.tracking import tracking_uri

    return MlflowClient(tracking_uri())


@pytest.fixture(scope="module")
def finished(env, tiny_model_dir, tmp_path_factory):
    """Runs A (fails once), B (resumes) and C (all cached); returns what each left behind."""
    root = env["root"]
    data = write_registry(root / "data")
    config = pipeline_yaml(root / "e2e.yaml", tiny_model_dir, data)
    hook = root / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(FAIL_ONCE)
    mark = root / "crashed-once"
    mp = pytest.MonkeyPatch()
    mp.setenv("PYTHONPATH", os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]))
    mp.setenv("GENIE_TEST_FAIL_ONCE", str(mark))
    mp.setenv("GENIE_TEST_FAIL_STAGE", "/sft2-")
    try:
        state_a, _ = run_flow(config)
    finally:
        mp.undo()
    a = {"state": state_a, "tasks": task_states(state_a.state_details.flow_run_id)}
    state_b, _ = run_flow(config)
    b = {"state": state_b, "tasks": task_states(state_b.state_details.flow_run_id), "summary": state_b.result()}
    logs_before = _logs(env["runs"])
    state_c, wall_c = run_flow(config)
    c = {"state": state_c, "tasks": task_states(state_c.state_details.flow_run_id), "wall": wall_c}
    c["logs_changed"] = logs_before != _logs(env["runs"])
    return {"config": config, "data": data, "mark": mark, "a": a, "b": b, "c": c, "runs": env["runs"]}


def test_failed_stage_resumes_from_checkpoint_while_earlier_stage_is_cached(finished):
    a, b = finished["a"], finished["b"]
    assert a["state"].is_failed() and finished["mark"].read_text() == "2"
    assert a["tasks"]["sft"] == "Completed" and a["tasks"]["sft2"] == "Failed"
    assert b["state"].is_completed(), b["state"].message
    assert b["tasks"]["sft"] == "Cached"
    assert {b["tasks"][s] for s in ("sft2", "evaluate", "export", "register")} == {"Completed"}
    sft2 = step_dir(finished, "sft2")
    result = json.loads((sft2 / "genie_result.json").read_text())
    assert result["resumed_from"] == "checkpoint-2"
    log = (sft2 / "stage.log").read_text()
    assert log.count("==> ") == 2 and "injected crash after checkpoint 2" in log  # two launches, one crash
    records = [json.loads(line) for line in (sft2 / "trainer_log.jsonl").read_text().splitlines()]
    assert [r["current_steps"] for r in records if "loss" in r] == [1, 2, 3, 4]  # steps 1-2 were not run again
    assert json.loads((sft2 / "trainer_state.json").read_text())["global_step"] == 4


def test_every_stage_child_started_warm(finished):
    """Each child (training, comparison, export) forked its stage from the pipeline's warm interpreter instead of
    importing torch and transformers again; the resumed launch too."""
    from genie_core.extras import warm

    if warm._accelerator_visible():
        pytest.skip("a GPU is visible: children start cold there")
    for name in ("sft", "sft2", "evaluate", "export"):
        log = (step_dir(finished, name) / "stage.log").read_text()
        assert log.count("==> ") >= 1 and log.count("Started warm") == log.count("==> "), log[-2000:]


def test_second_run_is_all_cache_hits_and_launches_nothing(finished):
    c = finished["c"]
    assert c["state"].is_completed()
    assert set(c["tasks"].values()) == {"Cached"} and len(c["tasks"]) == 5, c["tasks"]
    assert not c["logs_changed"]  # no stage.log was appended to: no child process started
    steps = c["state"].result()["steps"]
    assert not any(step["ran"] for step in steps)


def test_mlflow_has_parent_and_stage_runs(finished):
    client = _mlflow()
    exp = client.get_experiment_by_name("genie-tests")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    b_flow = str(finished["b"]["state"].state_details.flow_run_id)
    [parent_b] = [r for r in runs if r.data.tags.get("prefect.flow_run_id") == b_flow and r.info.run_name == "e2e"]
    assert parent_b.info.status == "FINISHED"
    tags = parent_b.data.tags
    assert tags["genie.git_sha"] and tags["genie.step.sft"] == "cached" and tags["genie.step.sft2"] == "ran"
    assert re.fullmatch(r"e2e-\d{8}-\d{6}", tags["prefect.flow_run_name"])  # named after the pipeline
    assert len(tags["genie.dataset.sft.toy"]) == 16 and tags["genie.registered"].startswith("tiny-e2e/")
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_b.info.run_id}
    assert set(children) == {"sft2", "evaluate", "export", "register"}
    assert children["register"].data.tags["genie.promoted"] in ("true", "false")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # opens as model training, not GenAI
    # the parent carries every stage's numbers and the summary table
    assert {"sft2/train_loss", "sft/eval_loss", "eval/sft2/bleu-4"} <= set(parent_b.data.metrics)
    assert {"summary.md", "summary.json"} <= {a.path for a in client.list_artifacts(parent_b.info.run_id)}
    table = Path(client.download_artifacts(parent_b.info.run_id, "summary.md")).read_text()
    assert "| sft2 | train | ran |" in table and "| sft | train | cached |" in table

    sft2 = children["sft2"]
    assert sft2.data.tags["genie.resumed_from"] == "checkpoint-2" and sft2.data.params["learning_rate"] == "0.005"
    # the stage resumed in the run of its failed attempt: one run, each step once (1-2 from run A, 3-4 from B)
    assert sorted(m.step for m in client.get_metric_history(sft2.info.run_id, "loss")) == [1, 2, 3, 4]
    assert (
        sft2.info.status == "FINISHED" and "injected crash after checkpoint 2" in sft2.data.tags["genie.resumed_after"]
    )
    assert "genie.error" not in sft2.data.tags
    names = {a.path for a in client.list_artifacts(sft2.info.run_id)}
    assert {"genie_config.yaml", "trainer_log.jsonl", "stage.log", "train_results.json"} <= names
    evaluate = children["evaluate"]
    assert 0 <= evaluate.data.metrics["eval/sft2/bleu-4"] <= 100  # the chain base -> sft -> sft2, compared
    assert {"eval/base/bleu-4", "eval/sft/bleu-4", "eval/delta_bleu-4"} <= set(evaluate.data.metrics)
    assert "eval/sft2/log_ratio" in evaluate.data.metrics and "eval/sft2/kl" not in evaluate.data.metrics  # greedy
    artifacts = {a.path for a in client.list_artifacts(evaluate.info.run_id)}
    assert {"generated_predictions.jsonl", "comparison.json", "comparison.png"} <= artifacts

    # run A: the crashed stage is FAILED with its log tail; so is the pipeline run
    a_flow = str(finished["a"]["state"].state_details.flow_run_id)
    [parent_a] = [r for r in runs if r.data.tags.get("prefect.flow_run_id") == a_flow and r.info.run_name == "e2e"]
    assert (
        parent_a.info.status == "FAILED" and "injected crash after checkpoint 2" in parent_a.data.tags["genie.error"]
    )
    [sft_a] = [
        r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_a.info.run_id and r.info.run_name == "sft"
    ]
    assert {m.step for m in client.get_metric_history(sft_a.info.run_id, "eval_loss")} == {2, 4}


def test_champion_resolves_to_exported_model_that_generates(finished):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    holder = _mlflow().get_model_version_by_alias("tiny-e2e", "champion")
    export = step_dir(finished, "export")
    assert Path(holder.tags["genie.export_dir"]) == export / "model"
    assert "/models/m-" in holder.source  # the version is a logged model, which MLflow consumers load
    import mlflow

    mlflow.set_registry_uri(_mlflow()._registry_uri)
    replies = mlflow.pyfunc.load_model("models:/tiny-e2e@champion").predict(["Add 1 and 2."], {"max_new_tokens": 3})
    assert len(replies) == 1 and isinstance(replies[0], str)
    assert holder.tags["genie.metric"] == "eval_loss" and float(holder.tags["genie.metric.value"]) > 0
    selection = json.loads((export / "selection.json").read_text())
    assert selection["chosen"]["value"] == min(c["value"] for c in selection["candidates"])

    model_dir = Path(holder.tags["genie.export_dir"])
    assert (model_dir / "model.safetensors").is_file() and not (model_dir / "adapter_config.json").exists()
    assert (model_dir / "Modelfile").read_text().startswith("# Ollama")  # written by default
    assert model_dir.stat().st_mode & 0o755 == 0o755  # readable by others, not mkdtemp's 0700
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Add 1 and 2."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]


@pytest.mark.slow  # the same rule is checked on the keys in test_pipeline.py, in milliseconds
def test_changed_lr_reruns_that_stage_and_what_follows(finished):
    state, _ = run_flow(finished["config"], {"sft2.learning_rate": 1.0e-3})
    assert state.is_completed(), state.message
    tasks = task_states(state.state_details.flow_run_id)
    assert tasks["sft"] == "Cached" and tasks["sft2"] == "Completed" and tasks["evaluate"] == "Completed"
    assert tasks["export"] == "Cached"  # it reads sft, which did not change
    dirs = sorted(p.name for p in (finished["runs"] / "e2e").glob("sft2-*"))
    assert len(dirs) == 2  # a new directory for the new key; the old result stays reusable


def test_deleted_output_is_recomputed(finished):
    evaluate = step_dir(finished, "evaluate")
    shutil.rmtree(evaluate)
    state, _ = run_flow(finished["config"])
    tasks = task_states(state.state_details.flow_run_id)
    assert tasks["evaluate"] == "Completed" and tasks["sft2"] == "Cached" and tasks["sft"] == "Cached"
    assert (evaluate / "genie_result.json").is_file() and (evaluate / "generated_predictions.jsonl").is_file()


def test_two_rank_cpu_ddp_stage_after_pretokenizing(env, tiny_model_dir):
    """num_processes: 2 on a CPU runs two gloo ranks: the 32 rows are split, so one epoch is 4 steps, not 8.
    With pretokenize the datasets are tokenized by their own task first and the training child loads that cache."""
    data = write_registry(env["root"] / "ddp-data")
    config = pipeline_yaml(
        env["root"] / "ddp.yaml",
        tiny_model_dir,
        data,
        name="ddp",
        top={"pretokenize": True},
        sft={"num_processes": 2, "num_train_epochs": 1, "save_strategy": "no"},
    )
    state, _ = run_flow(config)
    assert state.is_completed(), state.message
    assert task_states(state.state_details.flow_run_id) == {"sft-tokenize": "Completed", "sft": "Completed"}
    out = stage_dir(env["runs"], "ddp", "sft")
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 4
    log = (out / "stage.log").read_text()
    assert "--multi_gpu" in log and "Tokenized dataset cache hit" in log
    assert "Tokenized sft (built)" in (out / "tokenize.log").read_text()


def _descendants_with(marker: str) -> list[psutil.Process]:
    """Processes naming ``marker`` (the run's directory), and warm interpreters and the stage workers forked from
    them, whose command line is the warm interpreter's."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            line = " ".join(proc.info["cmdline"] or [])
            if marker in line or "genie_core.extras.warm" in line:
                found.append(proc)
        except psutil.NoSuchProcess:
            pass
    return found


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_interrupted_run_leaves_no_child_process(env, tiny_model_dir):
    """SIGTERM to `genie run` (what a cancelled or stopped flow gets) takes the training tree down with it."""
    data = write_registry(env["root"] / "long-data")
    config = pipeline_yaml(
        env["root"] / "long.yaml",
        tiny_model_dir,
        data,
        name="interrupt",
        sft={"max_steps": 100000, "save_strategy": "no", "logging_steps": 50},
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", str(config)],
        env={**os.environ, "PREFECT_API_URL": env["api"]},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    marker = str(env["runs"] / "interrupt")
    try:
        _wait_for(
            lambda: any("genie_core.stage_child" in " ".join(p.cmdline()) for p in _descendants_with(marker)),
            240,
            "the training child",
        )
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode in (-15, 143) and "Crashed" in out, out[-3000:]  # Prefect re-raises the SIGTERM
    _wait_for(lambda: not _descendants_with(marker), 30, "the child tree to exit")
    client = _mlflow()
    exp = client.get_experiment_by_name("genie-tests")
    [stage] = client.search_runs(
        [exp.experiment_id], "tags.`genie.pipeline` = 'interrupt' and tags.`genie.step` = 'sft'"
    )
    assert stage.info.status == "KILLED"  # recorded as interrupted, not left RUNNING


def _ctrl_c_genie_run(config: Path, runs: Path, after_step: int = 0) -> tuple[int, float, str]:
    """Start `genie run` as a terminal would (its own process group, its own temporary Prefect server), press Ctrl-C
    once the stage has trained two steps past ``after_step``; return the exit code, the seconds from Ctrl-C to exit
    and the output."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    output = runs.parent / "ctrl-c.out"

    def trained() -> bool:
        for log in (runs / "ctrl-c").glob("sft-*/trainer_log.jsonl"):
            steps = [json.loads(line).get("current_steps", 0) for line in log.read_text().splitlines()[-3:]]
            if steps and max(steps) > after_step + 1:
                return True
        return False

    with open(output, "w") as out:  # a file, not a pipe nobody reads while we wait
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "run", str(config)],
            env={**env, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # a terminal's foreground command takes Ctrl-C; a suite started as a background job of a
            # non-interactive shell has SIGINT ignored, and an ignored disposition survives exec
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        _wait_for(lambda: trained() or proc.poll() is not None, 300, "the stage to train")
        assert proc.poll() is None, output.read_text()[-3000:]
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends to its foreground group
        pressed = time.monotonic()
        proc.wait(timeout=60)
        return proc.returncode, time.monotonic() - pressed, output.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_ctrl_c_on_genie_run_stops_within_seconds_and_resumes(env, tiny_model_dir):
    """Ctrl-C reaches only `genie run` (not its temporary Prefect server): the stage checkpoints, its MLflow runs end
    KILLED, everything exits within 10 s; the same command then resumes the stage in the same MLflow run."""
    data = write_registry(env["root"] / "ctrl-c-data")
    config = pipeline_yaml(
        env["root"] / "ctrl-c.yaml",
        tiny_model_dir,
        data,
        name="ctrl-c",
        sft={"max_steps": 100000, "save_steps": 100000, "logging_steps": 1},
    )
    code, seconds, out = _ctrl_c_genie_run(config, env["runs"])
    assert code == 130 and seconds < 10, (code, seconds, out[-3000:])
    assert "interrupted" in out and "Traceback" not in out, out[-3000:]
    assert not _descendants_with(str(env["runs"] / "ctrl-c")), "a stage process outlived `genie run`"
    [stage_dir] = (env["runs"] / "ctrl-c").glob("sft-*")
    [checkpoint] = [p for p in stage_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    client = _mlflow()
    exp = client.get_experiment_by_name("genie-tests")
    runs = client.search_runs([exp.experiment_id], "tags.`genie.pipeline` = 'ctrl-c'")
    assert {r.info.status for r in runs} == {"KILLED"} and len(runs) == 2, [
        (r.info.run_name, r.info.status) for r in runs
    ]
    [stage_run] = [r for r in runs if r.data.tags.get("genie.step") == "sft"]

    step = int(checkpoint.name.split("-")[1])
    code, seconds, out = _ctrl_c_genie_run(config, env["runs"], after_step=step)  # the same command again
    assert code == 130 and seconds < 10, (code, seconds, out[-3000:])
    assert f"resumes from {checkpoint}" in out, out[-3000:]
    stage_runs = client.search_runs(
        [exp.experiment_id], "tags.`genie.pipeline` = 'ctrl-c' and tags.`genie.step` = 'sft'"
    )
    assert [r.info.run_id for r in stage_runs] == [stage_run.info.run_id]  # one stage, one run, one history
    records = [json.loads(line) for line in (stage_dir / "trainer_log.jsonl").read_text().splitlines()]
    steps = [r["current_steps"] for r in records if "loss" in r]
    assert steps == list(range(1, len(steps) + 1)), "a step was logged twice or lost"
    assert [r["current_steps"] for r in records if "train_loss" in r] == [steps[-1]]  # only the last attempt's end
    history = [m.step for m in client.get_metric_history(stage_run.info.run_id, "loss")]
    assert sorted(history) == sorted(set(history))


@pytest.mark.slow
def test_deployment_registers_with_cron_runs_and_cancels(env, tiny_model_dir):
    """`genie deploy` registers deployments/prefect.yaml; a process worker runs a triggered run and a cancelled
    run leaves no child process behind."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment
    from prefect.states import Cancelling

    child_env = {
        **os.environ,
        "PREFECT_API_URL": env["api"],
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        "PREFECT_WORKER_CANCELLATION_POLL_SECONDS": "1",
    }
    deploy = subprocess.run(
        [sys.executable, "-m", "flows.cli", "deploy"], env=child_env, capture_output=True, text=True, timeout=300
    )
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("genie-pipeline/nightly-sft")
    assert dep.schedules[0].schedule.cron == "30 2 * * *" and dep.schedules[0].schedule.timezone == "Europe/Berlin"
    assert dep.work_pool_name == "genie-local"

    worker = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", "genie-local", "--limit", "1"],
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    data = write_registry(env["root"] / "dep-data")
    quick = pipeline_yaml(
        env["root"] / "dep.yaml", tiny_model_dir, data, name="deployed", sft={"max_steps": 2, "save_strategy": "no"}
    )
    slow = pipeline_yaml(
        env["root"] / "dep-long.yaml",
        tiny_model_dir,
        data,
        name="cancelled",
        sft={"max_steps": 100000, "save_strategy": "no", "logging_steps": 50},
    )
    try:
        run = run_deployment("genie-pipeline/nightly-sft", parameters={"config": str(quick)}, timeout=600)
        assert run.state.is_completed(), run.state
        assert stage_dir(env["runs"], "deployed", "sft") is not None

        run = run_deployment("genie-pipeline/nightly-sft", parameters={"config": str(slow)}, timeout=0)
        marker = str(env["runs"] / "cancelled")
        _wait_for(
            lambda: any("genie_core.stage_child" in " ".join(p.cmdline()) for p in _descendants_with(marker)),
            300,
            "the training child of the deployed run",
        )
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, Cancelling(message="test cancels"), force=True)
            _wait_for(lambda: client.read_flow_run(run.id).state.type == StateType.CANCELLED, 120, "Cancelled")
        _wait_for(lambda: not _descendants_with(marker), 60, "the child tree to exit")
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=60)


RLHF_STAGES = ("rm", "ppo", "dpo")


def _missing_stages() -> list[str]:
    import importlib.util

    return [s for s in RLHF_STAGES if importlib.util.find_spec(f"genie_core.stages.{s}") is None]


@pytest.mark.slow
@pytest.mark.skipif(bool(_missing_stages()), reason=f"stage modules not in this version: {_missing_stages()}")
def test_rlhf_and_dpo_pipelines_on_tiny_model(env, tiny_model_dir):
    """The example wiring (sft -> rm -> ppo -> evaluate -> export by reward -> register; sft -> dpo) end to end."""
    data = write_registry(env["root"] / "rlhf-data")
    pairs = [
        {"instruction": f"Add {a} and {b}.", "input": "", "chosen": f"The answer is {a + b}.", "rejected": "No."}
        for a in range(1, 9)
        for b in range(1, 5)
    ]
    (data / "pairs.json").write_text(json.dumps(pairs))
    info = json.loads((data / "dataset_info.json").read_text())
    info["pairs"] = {
        "file_name": "pairs.json",
        "ranking": True,
        "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"},
    }
    (data / "dataset_info.json").write_text(json.dumps(info))
    config = pipeline_yaml(
        env["root"] / "rlhf.yaml",
        tiny_model_dir,
        data,
        name="rlhf",
        sft={"max_steps": 2, "save_strategy": "no"},
        rm={
            "stage": "rm",
            "from": "sft",
            "resume_lora_training": False,
            "dataset": "pairs",
            "max_steps": 2,
            "save_strategy": "no",
        },
        ppo={
            "stage": "ppo",
            "from": "sft",
            "reward_model": "rm",
            "resume_lora_training": False,
            "max_steps": 2,
            "save_steps": 1,
            "max_new_tokens": 4,
        },
        evaluate={
            "kind": "evaluate",
            "stage": "ppo",
            "from": "ppo",
            "reward_model": "rm",
            "do_eval": True,
            "max_samples": 4,
            "max_new_tokens": 4,
        },
        dpo={
            "stage": "dpo",
            "from": "sft",
            "resume_lora_training": False,
            "dataset": "pairs",
            "max_steps": 2,
            "save_strategy": "no",
        },
        export={"kind": "export", "from": "ppo", "metric": "reward", "mode": "max"},
        register={"kind": "register", "from": "export", "model_name": "tiny-rlhf"},
    )
    state, _ = run_flow(config)
    assert state.is_completed(), state.message
    summary = state.result()
    assert [s["name"] for s in summary["steps"]] == ["sft", "rm", "ppo", "evaluate", "dpo", "export", "register"]
    export = json.loads((stage_dir(env["runs"], "rlhf", "export") / "genie_result.json").read_text())
    assert export["metric"] == "reward" and export["chosen"] in ("final", "checkpoint-1")
    client = _mlflow()
    assert client.get_model_version_by_alias("tiny-rlhf", "champion").tags["genie.export_dir"] == export["model_dir"]
    ppo = json.loads((stage_dir(env["runs"], "rlhf", "ppo") / "genie_result.json").read_text())
    assert [m.step for m in client.get_metric_history(ppo["mlflow_run_id"], "reward")][:2] == [1, 2]  # per step


def test_heldout_comparison_decides_export_and_champion(env, tiny_model_dir):
    """ppo (a learnable rule reward) -> evaluate base vs ppo on held-out prompts -> export by held-out reward ->
    register; then a candidate that is worse on the held-out prompts, though its training reward is higher, is
    refused by the gate (the candidate's result is constructed from the real one: training cannot be made to
    overfit on cue)."""
    from tasks.register import register_stage

    data = write_registry(env["root"] / "evidence-data")
    ppo = {**DIGIT_PPO, "per_device_train_batch_size": 16, "max_steps": 16, "save_steps": 8}
    config = pipeline_yaml(
        env["root"] / "evidence.yaml",
        tiny_model_dir,
        data,
        name="evidence",
        top={"eval_split": 0.25},
        ppo=ppo,
        evaluate={
            "kind": "evaluate",
            "from": "ppo",
            **{key: DIGIT_PPO[key] for key in SAMPLING_KEYS},
            "per_device_eval_batch_size": 16,
        },
        export={"kind": "export", "from": "ppo", "metric": "eval/ppo/reward_mean"},
        register={"kind": "register", "from": "export", "model_name": "tiny-evidence"},
    )
    state, _ = run_flow(config)
    assert state.is_completed(), state.message
    summary = state.result()
    comparison = next(s for s in summary["steps"] if s["name"] == "evaluate")["comparison"]
    rows = {m["name"]: m["metrics"] for m in comparison["models"]}
    assert list(rows) == ["base", "ppo"]
    assert rows["ppo"]["reward_mean"]["mean"] > rows["base"]["reward_mean"]["mean"] + 0.2

    client = _mlflow()
    parent = client.get_run(summary["mlflow_run_id"])
    assert parent.data.metrics["eval/ppo/reward_mean"] == pytest.approx(rows["ppo"]["reward_mean"]["mean"])
    assert parent.data.metrics["eval/delta_reward_ci_low"] > 0
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "evaluate")} >= {
        "evaluate/comparison.json",
        "evaluate/comparison.png",
    }

    export = json.loads((stage_dir(env["runs"], "evidence", "export") / "genie_result.json").read_text())
    assert export["metric"] == "eval/ppo/reward_mean" and export["mode"] == "max"
    assert export["value"] == pytest.approx(rows["ppo"]["reward_mean"]["mean"])  # held-out, not training reward
    register = json.loads((stage_dir(env["runs"], "evidence", "register") / "genie_result.json").read_text())
    assert register["promoted"] and "base's" in register["reason"] and "held-out" in register["reason"]
    champion = client.get_model_version_by_alias("tiny-evidence", "champion")
    assert champion.tags["genie.eval.split"] == comparison["split"]["digest"]
    assert float(champion.tags["genie.eval/ppo/reward_mean"]) == pytest.approx(export["value"])

    worse = {
        **export,
        "key": "constructed-worse",
        "value": export["value"] - 0.05,
        "metrics": {"train_reward": 10.0},  # far above anything the champion reached while training
        "heldout": {**export["heldout"], "metrics": {}},
    }
    plan = json.loads((stage_dir(env["runs"], "evidence", "register") / "genie_result.json").read_text())
    reg_plan = {
        "name": "register-worse",
        "kind": "register",
        "key": "constructed-worse",
        "stage_dir": str(env["root"] / "register-worse"),
        "pipeline": "evidence",
        "experiment": "genie-tests",
        "config": {},
        "options": {"model_name": "tiny-evidence", "alias": "champion", "gate": True, "min_delta": 0.0},
        "model_name_or_path": export["model_dir"],
        "adapters": [],
        "finetuning_type": "full",
        "template": plan["template"],
    }
    task = register_stage.with_options(refresh_cache=True, persist_result=False)
    refused = task(reg_plan, {"from": worse}, "")
    assert refused["registered"] and not refused["promoted"]
    assert "does not beat" in refused["reason"] and f"v{champion.version}" in refused["reason"]
    assert client.get_model_version_by_alias("tiny-evidence", "champion").version == champion.version


def test_sft_then_grpo_pipeline_on_tiny_model(env, tiny_model_dir):
    """The online stage as a pipeline step: sft -> grpo (a rule and a Python reward function from a file, over the
    merged SFT adapter) through Prefect, MLflow and the accelerate child; per-step rewards reach MLflow."""
    data = write_registry(env["root"] / "online-data")
    scorer = env["root"] / "scorer.py"
    scorer.write_text("def short(prompts, completions, **kw):\n    return [-len(c) / 10 for c in completions]\n")
    config = pipeline_yaml(
        env["root"] / "online.yaml",
        tiny_model_dir,
        data,
        name="online",
        sft={"max_steps": 2, "save_strategy": "no"},
        grpo={
            "stage": "grpo",
            "from": "sft",
            "resume_lora_training": False,
            "reward_funcs": f"rule:charset:0123456789,{scorer}:short",
            "num_generations": 4,
            "max_completion_length": 4,
            "max_steps": 2,
            "save_steps": 1,
        },
    )
    state, _ = run_flow(config)
    assert state.is_completed(), state.message
    assert [s["name"] for s in state.result()["steps"]] == ["sft", "grpo"]
    sft = json.loads((stage_dir(env["runs"], "online", "sft") / "genie_result.json").read_text())
    grpo = json.loads((stage_dir(env["runs"], "online", "grpo") / "genie_result.json").read_text())
    written = yaml.safe_load((Path(grpo["output_dir"]) / "genie_config.yaml").read_text())
    assert written["checkpoint_dir"] == sft["output_dir"]  # wired: the SFT adapter, merged first
    client = _mlflow()
    assert [m.step for m in client.get_metric_history(grpo["mlflow_run_id"], "reward")] == [1, 2]
    names = set(client.get_run(grpo["mlflow_run_id"]).data.metrics)
    assert any("short" in name for name in names), names  # the Python function's own reward, per step

# python bench/pipeline.py [--steps 3] [--port 4290]      (orchestration cost)
# python bench/pipeline.py --demo [PIPELINE.yaml]          (the demo's wall time per stage)
"""Orchestration cost of a 3-stage pipeline on SmolLM2-135M: per-stage overhead and a fully cached re-run.

``--demo`` instead runs the demo pipeline (examples/pipelines/rlhf_smollm2.yaml unless another file is given)
exactly as ``make demo`` does after set-up: ``genie run`` with a fresh runs directory and MLflow store and
Prefect's temporary server. It prints the whole command's wall time, each stage's wall time, child-process time,
training time and start time (launch to the child's first log line: process start and imports), the time
outside the stages (start-up, the Prefect server, the MLflow parent run, register), and the comparison's
candidate-minus-baseline held-out reward with its 95% interval, so speed and the effect are read from the same
run.

Starts a Prefect server (its own PREFECT_HOME, 127.0.0.1), then runs ``genie run`` twice as a user would, in a
fresh runs directory: sft -> sft2 (from sft) -> evaluate, a few steps each. Per stage it reports

- ``task_s``: the Prefect task run's duration (server timestamps),
- ``child_s``: the wall time of the `accelerate launch` child process,
- ``train_runtime_s``: the Trainer's own training time inside the child,
- ``overhead_s`` = task_s - child_s: what orchestration adds (config, MLflow runs and artifacts, Prefect states),
- ``overhead_vs_train_s`` = task_s - train_runtime_s: that plus process start, imports and model loading,

``fixed_per_run_s``: the flow run's time outside the stage tasks (planning and validating every stage, the MLflow
parent run, the flow's start and end), paid once per pipeline run,

and the wall time of the second, fully cached ``genie run`` process. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, home: Path, env: dict[str, str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server_env = {**env, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    proc = subprocess.Popen(
        cmd, env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("the Prefect server did not start")


def pipeline(path: Path, steps: int) -> Path:
    raw = {
        "name": "bench",
        "experiment": "genie-bench",
        "defaults": {
            "model_name_or_path": "smollm2",
            "template": "chatml",
            "finetuning_type": "lora",
            "lora_target": "q_proj,v_proj",
            "dataset": "alpaca_demo_en",
            "dataset_dir": str(ROOT / "data"),
            "cutoff_len": 128,
            "max_samples": 64,
            "per_device_train_batch_size": 4,
            "logging_steps": 1,
            "save_strategy": "no",
        },
        "stages": {
            "sft": {"max_steps": steps, "learning_rate": 2e-4},
            "sft2": {"from": "sft", "max_steps": steps, "learning_rate": 1e-4},
            "evaluate": {
                "kind": "evaluate",
                "from": "sft2",
                "max_samples": 4,
                "max_new_tokens": 8,
                "do_sample": False,
                "per_device_eval_batch_size": 4,
            },
        },
    }
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def genie_run(config: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", str(config)], env=env, capture_output=True, text=True, cwd=ROOT
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"genie run failed with code {proc.returncode}")
    return wall


def durations(flow_run_id: str, api: str) -> tuple[float, dict[str, float]]:
    """The flow run's duration and each task run's, from the server's timestamps."""
    os.environ["PREFECT_API_URL"] = api
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        flow = client.read_flow_run(flow_run_id)
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    tasks = {r.name: (r.end_time - r.start_time).total_seconds() for r in runs if r.start_time and r.end_time}
    return (flow.end_time - flow.start_time).total_seconds(), tasks


def start_seconds(log: Path) -> int | None:
    """Seconds from the child's launch (the log's ``==> date time $ cmd`` header) to its first genie log line: the
    process start and imports a warm start saves (whole seconds, as the log stamps them)."""
    import re
    from datetime import datetime

    if not log.is_file():
        return None
    launched = None
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        header = re.match(r"==> (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \$", line)
        if header:
            launched = datetime.strptime(header.group(1), "%Y-%m-%d %H:%M:%S")
            continue
        stamp = re.search(r"\[(\d\d:\d\d:\d\d) (INFO|WARNING) genie", line)
        if launched is not None and stamp:
            first = datetime.combine(launched.date(), datetime.strptime(stamp.group(1), "%H:%M:%S").time())
            return int((first - launched).total_seconds()) % 86400
    return None


def demo(config: Path) -> dict:
    """``genie run`` of the demo on fresh stores; per-stage times from each stage's genie_result.json."""
    name = yaml.safe_load(config.read_text())["name"]
    work = Path(tempfile.mkdtemp(prefix="genie-demo-bench-"))
    env = {**os.environ, "GENIE_RUNS_DIR": str(work / "runs"), "DO_NOT_TRACK": "true"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    env.pop("PREFECT_API_URL", None)
    subprocess.run(
        [sys.executable, "-m", "flows.cli", "models", "pull", "smollm2"], env=env, check=True, capture_output=True
    )
    load_before = os.getloadavg()[0]
    wall = genie_run(config, env)
    stages: dict[str, dict] = {}
    for path in sorted((work / "runs" / name).glob("*/genie_result.json"), key=lambda p: p.stat().st_mtime):
        result = json.loads(path.read_text())
        stages[result["name"]] = {
            "wall_s": result.get("wall_s"),
            "child_s": result.get("child_s"),
            "train_runtime_s": round(result.get("metrics", {}).get("train_runtime", 0.0), 1) or None,
            "start_s": start_seconds(path.parent / "stage.log"),
        }
    effect = None
    for path in (work / "runs" / name).glob("*/comparison.json"):
        summary = json.loads(path.read_text())
        wanted = (summary["baseline"], summary["candidate"], "reward_mean")
        for delta in summary["deltas"]:
            if (delta["from"], delta["to"], delta["metric"]) == wanted:
                effect = {
                    "metric": f"{delta['to']} - {delta['from']} reward_mean",
                    "mean": round(delta["mean"], 4),
                    "ci95": [round(v, 4) for v in delta["ci"]],
                    "prompts": delta["n"],
                }
    return {
        "bench": "pipeline-demo",
        "config": str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config),
        "wall_s": round(wall, 1),
        "stages": stages,
        "outside_stages_s": round(wall - sum(s["wall_s"] or 0.0 for s in stages.values()), 1),
        "held_out_effect": effect,
        "load_avg_1m_before": round(load_before, 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="training steps per stage")
    parser.add_argument("--port", type=int, default=0, help="Prefect server port (default: a free one)")
    parser.add_argument(
        "--demo", nargs="?", const=str(ROOT / "examples" / "pipelines" / "rlhf_smollm2.yaml"), default=None,
        help="time the demo pipeline (or this pipeline file) per stage instead",
    )  # fmt: skip
    ns = parser.parse_args()
    if ns.demo:
        print(json.dumps(demo(Path(ns.demo).resolve())))
        return 0
    work = Path(tempfile.mkdtemp(prefix="genie-bench-"))
    port = ns.port or free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "GENIE_RUNS_DIR": str(work / "runs"), "PREFECT_API_URL": api, "DO_NOT_TRACK": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    subprocess.run(
        [sys.executable, "-m", "flows.cli", "models", "pull", "smollm2"], env=env, check=True, capture_output=True
    )
    server = start_server(port, work / "prefect-home", env)
    try:
        config = pipeline(work / "bench.yaml", ns.steps)
        first = genie_run(config, env)
        results = {
            p.parent.name.rsplit("-", 1)[0]: json.loads(p.read_text())
            for p in (work / "runs" / "bench").glob("*/genie_result.json")
        }
        flow_run_id = next(iter(results.values()))["flow_run_id"]
        flow_s, tasks = durations(flow_run_id, api)
        stages = {}
        for name in ("sft", "sft2", "evaluate"):
            result = results[name]
            train = result["metrics"].get("train_runtime", 0.0)
            stages[name] = {
                "task_s": round(tasks[name], 2),
                "child_s": result["child_s"],
                "train_runtime_s": round(train, 2),
                "overhead_s": round(tasks[name] - result["child_s"], 2),
                "overhead_vs_train_s": round(tasks[name] - train, 2),
            }
        cached = genie_run(config, env)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    print(
        json.dumps(
            {
                "bench": "pipeline",
                "model": "SmolLM2-135M-Instruct",
                "steps_per_stage": ns.steps,
                "prefect": "server on 127.0.0.1",
                "first_run_s": round(first, 2),
                "cached_rerun_s": round(cached, 2),
                "max_overhead_s": max(s["overhead_s"] for s in stages.values()),
                # once per pipeline run, outside the stage tasks: planning and validating every stage (imports
                # transformers), opening the MLflow parent run (imports mlflow), the flow's own start and end
                "fixed_per_run_s": round(flow_s - sum(s["task_s"] for s in stages.values()), 2),
                "stages": stages,
                "load_avg_1m": round(os.getloadavg()[0], 2),
                "cpus": os.cpu_count(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

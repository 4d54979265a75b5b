"""The stage task: one training or evaluation stage (pt, sft, rm, ppo, dpo) in an `accelerate launch` child.

Every stage goes the same way: write the resolved config, open the stage's MLflow run under the pipeline's,
launch ``python -m accelerate.commands.launch ... -m genie_core.stage_child <stage_dir>/genie_config.yaml`` with
``MLFLOW_RUN_ID`` set, log results and artifacts, write ``genie_result.json`` last.
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from genie_core import __version__
from genie_core.eval.comparison import COMPARISON_FILE, COMPARISON_PLOT
from genie_core.extras.env import apply_quiet_env
from genie_core.extras.locks import DirLock
from genie_core.extras.process import run_child
from genie_core.hparams import dump_config
from genie_core.stages.common import complete_checkpoints, write_json
from genie_core.tracking import RUN_ID_ENV, URI_ENV, Tracker, get_tracker, numeric_metrics
from tasks.plan import RESULT_FILE, read_result

STAGE_LOG = "stage.log"
RUN_MARKER = ".mlflow_run.json"
RESULT_FILES = ("train_results.json", "eval_results.json", "predict_results.json")
ARTIFACTS = (
    "genie_config.yaml",
    "trainer_log.jsonl",
    "trainer_state.json",
    "generated_predictions.jsonl",
    "reward_scores.jsonl",
    COMPARISON_FILE,
    COMPARISON_PLOT,
    *RESULT_FILES,
    STAGE_LOG,
)
CACHE_DAYS = 365


def step_cache_key(context, parameters: dict[str, Any]) -> str:
    """Prefect's key for a step: the planned key (never the flow-run id, so a new run reuses finished steps)."""
    plan = parameters["plan"]
    return f"genie-{plan['kind']}-{plan['name']}-{plan['key']}"


# How every pipeline step's result is kept: under the planned key, as JSON on disk, for a year.
STEP_RESULT = {
    "cache_key_fn": step_cache_key,
    "persist_result": True,
    "result_serializer": "json",
    "cache_expiration": timedelta(days=CACHE_DAYS),
}


def child_environment(num_processes: int, run_id: str, tracking_uri: str) -> dict[str, str]:
    """The child's environment: quiet and offline defaults, accelerate's CPU switch, the stage's MLflow run."""
    from genie_core.stage_parent import child_env

    apply_quiet_env()
    env = child_env(num_processes)
    env.setdefault("TQDM_MININTERVAL", "5")  # a progress refresh every few seconds, not every step
    env.pop(RUN_ID_ENV, None)
    if run_id:
        env[RUN_ID_ENV] = run_id
        env[URI_ENV] = tracking_uri
    return env


def collect_metrics(stage_dir: Path) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for name in RESULT_FILES:
        path = stage_dir / name
        if path.is_file():
            metrics.update(json.loads(path.read_text(encoding="utf-8")))
    return metrics


def log_outputs(tracker: Tracker, run_id: str, stage_dir: Path, metrics: dict[str, Any]) -> None:
    """Final metrics, the per-step history when the child could not log it live, and the stage's files."""
    if not tracker.enabled or not run_id:
        return
    if not tracker.has_metric_history(run_id):
        backfill_history(tracker, run_id, stage_dir)
    step = _final_step(stage_dir)
    fresh = {k: v for k, v in numeric_metrics(metrics).items() if _before(tracker.last_step(run_id, k), step)}
    tracker.log_metrics(run_id, fresh, step=step)  # the child already logged some of these at this step
    for name in ARTIFACTS:
        tracker.log_artifact(run_id, stage_dir / name)
    for plot in sorted(stage_dir.glob("training_*.png")):
        tracker.log_artifact(run_id, plot)


def _before(last: int | None, step: int) -> bool:
    return last is None or last < step


def backfill_history(tracker: Tracker, run_id: str, stage_dir: Path) -> None:
    """Per-step metrics from trainer_log.jsonl, for stages whose loop does not log to MLflow itself."""
    path = stage_dir / "trainer_log.jsonl"
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        step = int(record.pop("current_steps", 0))
        for key in ("total_steps", "elapsed_time"):
            record.pop(key, None)
        tracker.log_metrics(run_id, record, step=step)


def _final_step(stage_dir: Path) -> int:
    try:
        return int(json.loads((stage_dir / "trainer_state.json").read_text())["global_step"])
    except (OSError, ValueError, KeyError):
        return 0


def record_failure(tracker: Tracker, run_id: str, stage_dir: Path, exc: BaseException) -> None:
    """The stage run ends FAILED (KILLED when interrupted) with the log tail as a tag and the log as an artifact."""
    if not tracker.enabled or not run_id:
        return
    interrupted = not isinstance(exc, Exception)  # KeyboardInterrupt, Prefect's TerminationSignal, SystemExit
    try:
        tail = getattr(exc, "tail", "") or str(exc)
        tracker.set_tags(run_id, {"genie.error": tail[-4000:], "genie.status": "interrupted" if interrupted else ""})
        tracker.log_artifact(run_id, stage_dir / STAGE_LOG)
    finally:
        tracker.end_run(run_id, "KILLED" if interrupted else "FAILED")


def finish(plan: dict[str, Any], run_id: str, metrics: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The step's result, written to ``genie_result.json`` last (temp file + rename)."""
    result = {
        "name": plan["name"],
        "kind": plan["kind"],
        "stage": plan["config"].get("stage"),
        "key": plan["key"],
        "output_dir": plan["stage_dir"],
        "model_name_or_path": plan["model_name_or_path"],
        "adapters": plan["adapters"],
        "finetuning_type": plan["finetuning_type"],
        "template": plan["template"],
        "metrics": numeric_metrics(metrics),
        "mlflow_run_id": run_id,
        "flow_run_id": str(flow_run.id or ""),
        "genie_version": __version__,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **extra,
    }
    Path(plan["stage_dir"]).mkdir(parents=True, exist_ok=True)
    write_json(Path(plan["stage_dir"]) / RESULT_FILE, result)
    return result


def stage_run(tracker: Tracker, plan: dict[str, Any], parent_run_id: str, resumed: str | None) -> str:
    """The stage's MLflow run: a resumed stage continues the run of its interrupted attempt (same id, one history),
    anything else starts a new one. The id is kept in the stage directory for the next attempt."""
    marker = Path(plan["stage_dir"]) / RUN_MARKER
    if resumed and tracker.enabled:
        try:
            before = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = {}
        if before.get("key") == plan["key"] and before.get("run_id") and tracker.reopen_run(before["run_id"]):
            if parent_run_id:
                tracker.set_tags(before["run_id"], {"mlflow.parentRunId": parent_run_id})
            return before["run_id"]
    run_id = tracker.start_run(plan["name"], parent_run_id or None, tags=stage_tags(plan, parent_run_id))
    if run_id:
        write_json(marker, {"run_id": run_id, "key": plan["key"]})
    return run_id


def stage_tags(plan: dict[str, Any], parent_run_id: str) -> dict[str, str]:
    tags = {
        "genie.pipeline": plan["pipeline"],
        "genie.step": plan["name"],
        "genie.kind": plan["kind"],
        "genie.key": plan["key"],
        "genie.stage_dir": plan["stage_dir"],
        "prefect.flow_run_id": str(flow_run.id or ""),
    }
    if plan["config"].get("stage"):
        tags["genie.stage"] = plan["config"]["stage"]
    tags.update({f"genie.dataset.{name}": digest for name, digest in plan.get("datasets", {}).items()})
    tags.update({f"genie.upstream.{role}": name for role, name in plan.get("upstream", {}).items()})
    return tags


@task(name="stage", **STEP_RESULT)
def train_stage(plan: dict[str, Any], parent_run_id: str = "") -> dict[str, Any]:
    """Run one pt/sft/rm/ppo/dpo stage (or its evaluation) in an accelerate child; resume from its checkpoints."""

    log = get_run_logger()
    stage_dir = Path(plan["stage_dir"])
    done = read_result(stage_dir, plan["key"])
    if done is not None:
        log.info("%s already finished in %s", plan["name"], stage_dir)
        return done

    with DirLock(stage_dir):  # a second pipeline writing this stage now gets an error naming this process
        return _run_train_stage(plan, parent_run_id, log)


def _run_train_stage(plan: dict[str, Any], parent_run_id: str, log) -> dict[str, Any]:
    from genie_core.stage_parent import CONFIG_NAME, launch_command

    stage_dir = Path(plan["stage_dir"])
    start = time.perf_counter()
    config_path = dump_config(plan["config"], stage_dir / CONFIG_NAME)
    checkpoints = complete_checkpoints(stage_dir)
    resumed = checkpoints[-1].name if checkpoints and plan["kind"] == "train" else None
    if resumed:
        log.info("%s resumes from %s", plan["name"], checkpoints[-1])

    tracker = get_tracker(plan["experiment"])
    run_id = stage_run(tracker, plan, parent_run_id, resumed)
    num_processes = int(plan["config"].get("num_processes", 1))
    try:
        tracker.log_params(run_id, plan["config"])
        if resumed:
            tracker.set_tags(run_id, {"genie.resumed_from": resumed})
        cmd = launch_command(config_path, num_processes, plan["config"].get("accelerate_config"))
        env = child_environment(num_processes, run_id, getattr(tracker, "uri", ""))
        log.info("%s: %s", plan["name"], " ".join(cmd))
        child_s = run_child(cmd, env, stage_dir / STAGE_LOG, log=log, cwd=os.getcwd())
        metrics = collect_metrics(stage_dir)
        log_outputs(tracker, run_id, stage_dir, metrics)
    except BaseException as exc:
        record_failure(tracker, run_id, stage_dir, exc)
        raise
    tracker.end_run(run_id, "FINISHED")
    wall = time.perf_counter() - start
    return finish(plan, run_id, metrics, wall_s=round(wall, 2), child_s=round(child_s, 2), resumed_from=resumed)


@task(
    name="tokenize",
    cache_key_fn=lambda context, parameters: f"genie-tokenize-{parameters['plan']['key']}",
    persist_result=True,
    result_serializer="json",
    cache_expiration=timedelta(days=CACHE_DAYS),
)
def tokenize_stage(plan: dict[str, Any]) -> dict[str, Any]:
    """Tokenize a stage's datasets into the shared Arrow cache in a child process, so training starts on a hit."""
    import sys

    from genie_core.stage_parent import CONFIG_NAME

    log = get_run_logger()
    stage_dir = Path(plan["stage_dir"])
    config_path = dump_config(plan["config"], stage_dir / CONFIG_NAME)
    cmd = [sys.executable, "-m", "tasks.tokenize_main", str(config_path)]
    wall = run_child(cmd, child_environment(1, "", ""), stage_dir / "tokenize.log", log=log, cwd=os.getcwd())
    return {"name": plan["name"], "key": plan["key"], "wall_s": round(wall, 2)}

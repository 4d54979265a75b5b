"""Around every pipeline step: its MLflow child run, the child process's environment, and its result file.

``step_run`` opens the step's run under the pipeline's (a resumed stage reopens its interrupted attempt's run),
ends it FINISHED, or FAILED/KILLED with the log tail when the body raises. ``finish`` writes ``genie_result.json``
last, so a step directory holding it is complete.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from genie_core import __version__
from genie_core.eval.comparison import COMPARISON_FILE, COMPARISON_PLOT
from genie_core.extras.env import apply_quiet_env
from genie_core.pipeline.plan import RESULT_FILE
from genie_core.stages.common import write_json
from genie_core.tracking import RUN_ID_ENV, URI_ENV, Tracker, numeric_metrics

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


def finish(
    plan: dict[str, Any], run_id: str, metrics: dict[str, Any], flow_run_id: str = "", **extra: Any
) -> dict[str, Any]:
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
        "flow_run_id": flow_run_id,
        "genie_version": __version__,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **extra,
    }
    Path(plan["stage_dir"]).mkdir(parents=True, exist_ok=True)
    write_json(Path(plan["stage_dir"]) / RESULT_FILE, result)
    return result


def open_run(
    tracker: Tracker, plan: dict[str, Any], parent_run_id: str, resumed: str | None = None, flow_run_id: str = ""
) -> str:
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
    tags = stage_tags(plan, flow_run_id)
    run_id = tracker.start_run(plan["name"], parent_run_id or None, tags=tags)
    if run_id:
        write_json(marker, {"run_id": run_id, "key": plan["key"]})
    return run_id


def stage_tags(plan: dict[str, Any], flow_run_id: str = "") -> dict[str, str]:
    tags = {
        "genie.pipeline": plan["pipeline"],
        "genie.step": plan["name"],
        "genie.kind": plan["kind"],
        "genie.key": plan["key"],
        "genie.stage_dir": plan["stage_dir"],
        "prefect.flow_run_id": flow_run_id,
    }
    if plan["config"].get("stage"):
        tags["genie.stage"] = plan["config"]["stage"]
    tags.update({f"genie.dataset.{name}": digest for name, digest in plan.get("datasets", {}).items()})
    tags.update({f"genie.upstream.{role}": name for role, name in plan.get("upstream", {}).items()})
    return tags


@contextmanager
def step_run(
    tracker: Tracker,
    plan: dict[str, Any],
    parent_run_id: str,
    resumed: str | None = None,
    flow_run_id: str = "",
) -> Iterator[str]:
    """The step's MLflow run for the body's duration: FINISHED when it returns, FAILED (KILLED when interrupted)
    with the log tail and the stage log attached when it raises."""
    run_id = open_run(tracker, plan, parent_run_id, resumed, flow_run_id)
    try:
        yield run_id
    except BaseException as exc:
        record_failure(tracker, run_id, Path(plan["stage_dir"]), exc)
        raise
    tracker.end_run(run_id, "FINISHED")

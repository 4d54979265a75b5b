"""Around a pipeline's steps: the MLflow parent run, and the summary a run prints and logs.

The parent run opens only when the first step has work to do, so re-running a finished pipeline neither imports
mlflow nor leaves an empty run behind; the summary points at the runs that made the cached results.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from genie_core import __version__
from genie_core.eval.comparison import COMPARISON_FILE, COMPARISON_PLOT, flat_metrics, read_comparison
from genie_core.extras.env import runs_dir
from genie_core.pipeline.plan import StepPlan
from genie_core.pipeline.spec import PipelineSpec
from genie_core.tracking import Tracker, get_tracker, tracking_enabled, tracking_uri

ROOT = Path(__file__).resolve().parents[2]


def git_sha() -> str:
    """The commit the code runs from (a read-only `git rev-parse`), or `unknown` outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class PipelineRun:
    """The MLflow parent run of one pipeline run, opened when the first step has work to do.

    A re-run of a finished pipeline therefore neither imports mlflow nor leaves an empty run behind; the
    summary points at the runs that made the cached results.
    """

    def __init__(self, spec: PipelineSpec, plans: list[StepPlan], flow_run_id: str = "", flow_run_name: str = ""):
        self.spec, self.plans = spec, plans
        self.flow_run_id, self.flow_run_name = flow_run_id, flow_run_name
        self._tracker: Tracker | None = None
        self._id: str | None = None

    @property
    def opened(self) -> bool:
        return bool(self._id)

    @property
    def tracker(self) -> Tracker:
        if self._tracker is None:
            self._tracker = get_tracker(self.spec.experiment)
        return self._tracker

    @property
    def id(self) -> str:
        if self._id is None:
            tags = {
                "genie.pipeline": self.spec.name,
                "genie.version": __version__,
                "genie.git_sha": git_sha(),
                "prefect.flow_run_id": self.flow_run_id,
                "prefect.flow_run_name": self.flow_run_name,
            }
            for plan in self.plans:
                tags.update({f"genie.dataset.{plan.name}.{name}": digest for name, digest in plan.datasets.items()})
            self.tracker.end_orphans({"genie.pipeline": self.spec.name})  # runs a SIGKILLed `genie run` left RUNNING
            self._id = self.tracker.start_run(self.spec.name, tags=tags)
            self.tracker.log_params(self._id, {f"{p.name}.key": p.key for p in self.plans})
            if self.spec.path:
                self.tracker.log_artifact(self._id, self.spec.path)
        return self._id

    def end(self, status: str, error: str = "") -> None:
        if not self.opened:
            return
        if error:
            self.tracker.set_tags(self._id, {"genie.error": error[-4000:]})
        self.tracker.end_run(self._id, status)


@contextmanager
def pipeline_run(
    spec: PipelineSpec, plans: list[StepPlan], flow_run_id: str = "", flow_run_name: str = ""
) -> Iterator[PipelineRun]:
    """The parent run around the steps; it ends FAILED (KILLED when interrupted) if a step raises."""
    run = PipelineRun(spec, plans, flow_run_id, flow_run_name)
    try:
        yield run
    except Exception as exc:
        run.end("FAILED", str(exc))
        raise
    except BaseException:
        run.end("KILLED")
        raise
    run.end("FINISHED")


def log_evidence(parent: PipelineRun, run_id: str, steps: list[dict[str, Any]]) -> None:
    """The pipeline's numbers on the parent run: every stage's final and held-out metrics as ``<step>/<metric>``,
    each comparison's ``eval/...`` metrics, table and chart."""
    metrics: dict[str, Any] = {}
    for step in steps:
        metrics.update({f"{step['name']}/{k}": v for k, v in step["metrics"].items() if not k.startswith("eval/")})
        if "comparison" in step:
            metrics.update(flat_metrics(step["comparison"]))
            for name in (COMPARISON_FILE, COMPARISON_PLOT):
                parent.tracker.log_artifact(run_id, Path(step["output_dir"]) / name, artifact_path=step["name"])
    parent.tracker.log_metrics(run_id, metrics)


def summary_table(steps: list[dict[str, Any]]) -> str:
    """The steps as a Markdown table: what ran, how long, the numbers that matter."""
    lines = ["| step | kind | status | seconds | metrics |", "|---|---|---|---|---|"]
    for step in steps:
        shown = {k: v for k, v in step["metrics"].items() if not k.startswith("eval/")}
        numbers = ", ".join(f"{k}={v:.4g}" for k, v in sorted(shown.items())[:8])
        if step.get("version"):
            numbers = f"v{step['version']} {'promoted' if step.get('promoted') else 'kept'}: {step.get('reason', '')}"
        wall = f"{step['wall_s']:.0f}" if step.get("wall_s") else ""
        status = "ran" if step["ran"] else "cached"
        lines.append(f"| {step['name']} | {step['kind']} | {status} | {wall} | {numbers} |")
    return "\n".join(lines) + "\n"


def log_summary_table(parent: PipelineRun, run_id: str, name: str, steps: list[dict[str, Any]]) -> None:
    """``summary.md`` (the table) and ``summary.json`` (every step's record) as artifacts of the parent run."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "summary.md").write_text(f"# {name}\n\n{summary_table(steps)}", encoding="utf-8")
        records = [{k: v for k, v in step.items() if k != "comparison"} for step in steps]
        (Path(tmp) / "summary.json").write_text(json.dumps(records, indent=2, default=str), encoding="utf-8")
        for file in ("summary.md", "summary.json"):
            parent.tracker.log_artifact(run_id, Path(tmp) / file)


def summarize(spec: PipelineSpec, plans: list[StepPlan], results: dict[str, dict], parent: PipelineRun) -> dict:
    """What `genie run` prints and a flow returns: per step whether it ran, its metrics and where it lives."""
    current = parent.flow_run_id
    steps = []
    for plan in plans:
        result = results.get(plan.name, {})
        step = {
            "name": plan.name,
            "kind": plan.kind,
            "ran": bool(current) and result.get("flow_run_id") == current,
            "output_dir": plan.stage_dir,
            "metrics": result.get("metrics", {}),
            "wall_s": result.get("wall_s"),
            "child_s": result.get("child_s"),
            **{k: result[k] for k in ("model_dir", "chosen", "version", "promoted", "reason") if k in result},
        }
        if plan.kind == "evaluate" and (comparison := read_comparison(plan.stage_dir)):
            step["comparison"] = comparison
        steps.append(step)
    parent_run_id = parent.id if parent.opened else ""
    if parent_run_id:  # cached steps keep their original runs; the parent points at them
        tags = {f"genie.step.{s['name']}": "ran" if s["ran"] else "cached" for s in steps}
        tags.update(
            {f"genie.step.{n}.run_id": r["mlflow_run_id"] for n, r in results.items() if r.get("mlflow_run_id")}
        )
        parent.tracker.set_tags(parent_run_id, tags)
        log_evidence(parent, parent_run_id, steps)
        log_summary_table(parent, parent_run_id, spec.name, steps)
    return {
        "pipeline": spec.name,
        "runs_dir": str(runs_dir() / spec.name),
        "tracking_uri": tracking_uri() if tracking_enabled() else "",
        "mlflow_run_id": parent_run_id,
        "mlflow_url": parent.tracker.run_url(parent_run_id) if parent_run_id else "",
        "flow_run_id": current,
        "steps": steps,
    }

"""Step dispatch for a pipeline flow: each step is its Prefect task, keyed by its planned key.

Results are persisted under ``<runs_dir>/.prefect-results`` (plain files, so a finished step is found again by a
new process, a new Prefect server or a worker). A step whose ``genie_result.json`` is gone runs again even when
Prefect still holds a cache record for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect.runtime import flow_run

from genie_core.extras.env import runs_dir
from genie_core.pipeline.plan import StepPlan, is_done
from genie_core.pipeline.spec import PipelineSpec
from genie_core.pipeline.summary import PipelineRun
from genie_core.pipeline.summary import pipeline_run as _pipeline_run
from tasks.export import export_stage
from tasks.register import register_stage
from tasks.stage import tokenize_stage, train_stage


def results_storage() -> Path:
    path = runs_dir() / ".prefect-results"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def pipeline_run(spec: PipelineSpec, plans: list[StepPlan]) -> Iterator[PipelineRun]:
    """The pipeline's MLflow parent run, tagged with the current Prefect flow run."""
    with _pipeline_run(spec, plans, str(flow_run.id or ""), str(flow_run.name or "")) as run:
        yield run


def run_step(plan: StepPlan, results: dict[str, dict], parent: PipelineRun) -> dict[str, Any]:
    """Run one step as its Prefect task; a step finished under the same key comes back cached."""
    done = is_done(plan)
    parent_run_id = "" if done else parent.id
    options = {"task_run_name": plan.name, "result_storage": results_storage(), "refresh_cache": not done}
    if plan.kind in ("train", "evaluate"):
        if plan.pretokenize and not done:
            tokenize_stage.with_options(task_run_name=f"{plan.name}-tokenize", result_storage=results_storage())(
                plan.to_dict()
            )
        return train_stage.with_options(**options)(plan.to_dict(), parent_run_id)
    upstream = {role: results[name] for role, name in plan.upstream.items()}
    task = export_stage if plan.kind == "export" else register_stage
    return task.with_options(**options)(plan.to_dict(), upstream, parent_run_id)

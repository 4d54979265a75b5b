"""The export task: merge the upstream stage's best checkpoint into a standalone model."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from genie_core.pipeline.steps import export_step
from tasks.stage import STEP_RESULT


@task(name="export", **STEP_RESULT)
def export_stage(plan: dict[str, Any], upstream: dict[str, dict], parent_run_id: str = "") -> dict[str, Any]:
    """Pick the best checkpoint by the step's metric and merge it (see genie_core.pipeline.selection)."""
    return export_step(plan, upstream, parent_run_id, get_run_logger(), str(flow_run.id or ""))

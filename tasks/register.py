"""The register task: an exported model becomes an MLflow model version; the alias moves only past the gate."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from genie_core.pipeline.steps import register_step
from tasks.stage import STEP_RESULT


@task(name="register", **STEP_RESULT)
def register_stage(plan: dict[str, Any], upstream: dict[str, dict], parent_run_id: str = "") -> dict[str, Any]:
    """Register the export and move the alias when it passes the gate (see genie_core.pipeline.selection)."""
    return register_step(plan, upstream, parent_run_id, get_run_logger(), str(flow_run.id or ""))

"""The stage tasks: tokenize, and one training or evaluation stage in an `accelerate launch` child."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from genie_core.pipeline.steps import tokenize_step, train_step

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


@task(name="stage", **STEP_RESULT)
def train_stage(plan: dict[str, Any], parent_run_id: str = "") -> dict[str, Any]:
    """Run one training stage (or its evaluation) in an accelerate child; resume from its checkpoints."""
    return train_step(plan, parent_run_id, get_run_logger(), str(flow_run.id or ""))


@task(
    name="tokenize",
    cache_key_fn=lambda context, parameters: f"genie-tokenize-{parameters['plan']['key']}",
    persist_result=True,
    result_serializer="json",
    cache_expiration=timedelta(days=CACHE_DAYS),
)
def tokenize_stage(plan: dict[str, Any]) -> dict[str, Any]:
    """Tokenize a stage's datasets into the shared Arrow cache in a child process, so training starts on a hit."""
    return tokenize_step(plan, get_run_logger())

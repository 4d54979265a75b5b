"""Pipelines as Prefect flows: ordering only; each step is a task from ``tasks/``.

    python -c "from flows import pipeline; pipeline('examples/pipelines/sft_smollm2.yaml')"

``pipeline`` runs any pipeline YAML; ``rlhf_pipeline``, ``sft_dpo_pipeline``, ``pt_sft_pipeline`` and
``sft_pipeline`` are the same flow with the matching example as the default config.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow

from genie_core.pipeline.plan import plan_pipeline
from genie_core.pipeline.spec import load_pipeline
from genie_core.pipeline.steps import warm_start
from genie_core.pipeline.summary import summarize
from tasks.runs import pipeline_run, run_step

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "pipelines"


def run_name() -> str:
    """``<pipeline>-<YYYYmmdd-HHMMSS>``: the Prefect UI lists runs by what they ran, not by random words."""
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    try:
        name = load_pipeline(params["config"], params.get("overrides")).name
    except Exception:  # the flow itself reports a bad config; the name just falls back
        name = Path(str(params.get("config", "pipeline"))).stem
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_pipeline(config: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Plan every step (keys, wiring, validation), then run them in order under one MLflow parent run."""
    spec = load_pipeline(config, overrides)
    plans = plan_pipeline(spec)
    results: dict[str, dict] = {}
    with warm_start(plans), pipeline_run(spec, plans) as parent:  # the warm imports overlap the parent run
        for plan in plans:
            results[plan.name] = run_step(plan, results, parent)
        return summarize(spec, plans, results, parent)


@flow(name="genie-pipeline", flow_run_name=run_name)
def pipeline(config: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the pipeline YAML ``config`` (with ``key=value`` / ``stage.key=value`` overrides)."""
    return run_pipeline(config, overrides)


@flow(name="genie-rlhf", flow_run_name=run_name)
def rlhf_pipeline(config: str = str(EXAMPLES / "rlhf_smollm2.yaml"), overrides: dict[str, Any] | None = None):
    """SFT -> reward model -> PPO -> evaluate -> export -> register."""
    return run_pipeline(config, overrides)


@flow(name="genie-sft-dpo", flow_run_name=run_name)
def sft_dpo_pipeline(config: str = str(EXAMPLES / "sft_dpo_smollm2.yaml"), overrides: dict[str, Any] | None = None):
    """SFT -> DPO -> evaluate -> export -> register."""
    return run_pipeline(config, overrides)


@flow(name="genie-pt-sft", flow_run_name=run_name)
def pt_sft_pipeline(config: str = str(EXAMPLES / "pt_sft_smollm2.yaml"), overrides: dict[str, Any] | None = None):
    """Continued pre-training -> SFT -> evaluate -> export -> register."""
    return run_pipeline(config, overrides)


@flow(name="genie-sft", flow_run_name=run_name)
def sft_pipeline(config: str = str(EXAMPLES / "sft_smollm2.yaml"), overrides: dict[str, Any] | None = None):
    """SFT -> evaluate -> export -> register."""
    return run_pipeline(config, overrides)

"""The work of each pipeline step, without Prefect: tokenize, train/evaluate, export, register.

Each function takes the planned step (a dict), the results of the steps it reads from, the pipeline's MLflow run
id and a logger, and returns the step's result (also written to ``genie_result.json``). A step finished under the
same key returns its stored result. The Prefect tasks in ``tasks/`` call these and add caching and the flow run.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from genie_core.extras.env import runs_dir
from genie_core.extras.locks import DirLock
from genie_core.extras.process import run_child
from genie_core.extras.warm import warm_interpreter
from genie_core.hparams import dump_config
from genie_core.hparams.parser import setting
from genie_core.pipeline.plan import MERGED_DIR, StepPlan, is_done, read_result
from genie_core.pipeline.selection import METRIC_TAG, evidence_tags, gate_decision, heldout_evidence, select_best
from genie_core.pipeline.step_run import (
    STAGE_LOG,
    child_environment,
    collect_metrics,
    finish,
    log_outputs,
    stage_tags,
    step_run,
)
from genie_core.stage_parent import CONFIG_NAME, launch_command, single_process_command
from genie_core.stages.common import complete_checkpoints, write_json
from genie_core.tracking import get_tracker

EXPORT_CONFIG = "export_config.yaml"
SELECTION_FILE = "selection.json"


@contextmanager
def warm_start(plans: list[StepPlan]) -> Iterator[None]:
    """One warm interpreter (``extras/warm.py``) for the children of the steps still to run; none when every step
    is done, so a cached re-run imports nothing."""
    pending = [plan for plan in plans if plan.kind in ("train", "evaluate", "export") and not is_done(plan)]
    log_path = Path(pending[0].stage_dir).parent / "warm.log" if pending else Path(os.devnull)
    with warm_interpreter(log_path, child_environment(1, "", ""), wanted=bool(pending)):
        yield


def tokenize_step(plan: dict[str, Any], log: logging.Logger | logging.LoggerAdapter) -> dict[str, Any]:
    """Tokenize a stage's datasets into the shared Arrow cache in a child process, so training starts on a hit."""
    stage_dir = Path(plan["stage_dir"])
    config_path = dump_config(plan["config"], stage_dir / CONFIG_NAME)
    cmd = [sys.executable, "-m", "genie_core.pipeline.tokenize_child", str(config_path)]
    wall = run_child(cmd, child_environment(1, "", ""), stage_dir / "tokenize.log", log=log, cwd=os.getcwd())
    return {"name": plan["name"], "key": plan["key"], "wall_s": round(wall, 2)}


def train_step(
    plan: dict[str, Any], parent_run_id: str, log: logging.Logger | logging.LoggerAdapter, flow_run_id: str = ""
) -> dict[str, Any]:
    """Run one training stage in an accelerate child (a comparison in a plain one); resume from its last checkpoint."""
    stage_dir = Path(plan["stage_dir"])
    done = read_result(stage_dir, plan["key"])
    if done is not None:
        log.info("%s already finished in %s", plan["name"], stage_dir)
        return done
    with DirLock(stage_dir):  # a second pipeline writing this stage now gets an error naming this process
        return _train(plan, parent_run_id, log, flow_run_id)


def _train(plan: dict[str, Any], parent_run_id: str, log, flow_run_id: str) -> dict[str, Any]:
    stage_dir = Path(plan["stage_dir"])
    start = time.perf_counter()
    config_path = dump_config(plan["config"], stage_dir / CONFIG_NAME)
    checkpoints = complete_checkpoints(stage_dir)
    resumed = checkpoints[-1].name if checkpoints and plan["kind"] == "train" else None
    if resumed:
        log.info("%s resumes from %s", plan["name"], checkpoints[-1])

    tracker = get_tracker(plan["experiment"])
    num_processes = int(setting(plan["config"], "num_processes"))
    with step_run(tracker, plan, parent_run_id, resumed, flow_run_id) as run_id:
        tracker.log_params(run_id, plan["config"])
        if resumed:
            tracker.set_tags(run_id, {"genie.resumed_from": resumed})
        env = child_environment(num_processes, run_id, getattr(tracker, "uri", ""))
        if _single_process(plan["config"], num_processes):
            cmd, extra = single_process_command(config_path)
            env.update(extra)
        else:
            cmd = launch_command(config_path, num_processes, plan["config"].get("accelerate_config"))
        log.info("%s: %s", plan["name"], " ".join(cmd))
        child_s = run_child(cmd, env, stage_dir / STAGE_LOG, log=log, cwd=os.getcwd())
        metrics = collect_metrics(stage_dir)
        log_outputs(tracker, run_id, stage_dir, metrics)
    wall = time.perf_counter() - start
    return finish(
        plan, run_id, metrics, flow_run_id, wall_s=round(wall, 2), child_s=round(child_s, 2), resumed_from=resumed
    )


def _single_process(config: dict[str, Any], num_processes: int) -> bool:
    """A comparison on one process: nothing in it is distributed, so it needs no launcher."""
    return bool(config.get("compare_models")) and num_processes == 1 and not config.get("accelerate_config")


def export_step(
    plan: dict[str, Any],
    upstream: dict[str, dict],
    parent_run_id: str,
    log: logging.Logger | logging.LoggerAdapter,
    flow_run_id: str = "",
) -> dict[str, Any]:
    """Merge the best checkpoint of the upstream stage into a standalone model (safetensors, tokenizer, template)."""
    stage_dir = Path(plan["stage_dir"])
    done = read_result(stage_dir, plan["key"])
    if done is not None and Path(done.get("model_dir", "")).is_dir():
        return done
    options = plan["options"]
    metric, mode = options.get("metric"), options.get("mode", "min")
    chosen, scored = select_best(upstream["from"], metric, mode, upstream.get("metric_from"))
    log.info(
        "%s: chose %s of %s (%s=%s)",
        plan["name"],
        chosen["label"],
        upstream["from"]["name"],
        metric,
        chosen.get("value"),
    )

    start = time.perf_counter()
    stage_dir.mkdir(parents=True, exist_ok=True)
    write_json(stage_dir / SELECTION_FILE, {"metric": metric, "mode": mode, "chosen": chosen, "candidates": scored})
    model_dir = Path(plan["model_name_or_path"])
    config: dict[str, Any] = {
        "model_name_or_path": chosen["model_name_or_path"],
        "finetuning_type": "lora",
        "output_dir": str(model_dir),
        "overwrite_output_dir": True,
        "export_ollama": bool(options.get("ollama", True)),  # a Modelfile costs nothing; `ollama: false` skips it
    }
    if chosen["adapters"]:
        config["checkpoint_dir"] = ",".join(chosen["adapters"])
        kept = runs_dir() / plan["pipeline"] / MERGED_DIR
        if kept.is_dir():  # earlier steps kept the base with the first adapter merged: start from it
            config["merge_cache_dir"] = str(kept)
    if plan.get("template"):
        config["template"] = plan["template"]
    config_path = dump_config(config, stage_dir / EXPORT_CONFIG)

    tracker = get_tracker(plan["experiment"])
    with step_run(tracker, plan, parent_run_id, flow_run_id=flow_run_id) as run_id:
        tracker.log_params(run_id, {"metric": metric or "", "mode": mode, "chosen": chosen["label"], **config})
        cmd = [sys.executable, "-m", "genie_core.export", str(config_path)]
        child_s = run_child(cmd, child_environment(1, "", ""), stage_dir / STAGE_LOG, log=log, cwd=os.getcwd())
        metrics = {metric: chosen["value"]} if metric and chosen.get("value") is not None else {}
        tracker.log_metrics(run_id, metrics, step=chosen["step"])
        for name in (SELECTION_FILE, EXPORT_CONFIG, STAGE_LOG):
            tracker.log_artifact(run_id, stage_dir / name)
    return finish(
        plan,
        run_id,
        metrics,
        flow_run_id,
        heldout=heldout_evidence(upstream.get("metric_from"), metric),
        model_dir=str(model_dir),
        chosen=chosen["label"],
        metric=metric,
        mode=mode,
        value=chosen.get("value"),
        source_step=upstream["from"]["name"],
        wall_s=round(time.perf_counter() - start, 2),
        child_s=round(child_s, 2),
    )


def register_step(
    plan: dict[str, Any],
    upstream: dict[str, dict],
    parent_run_id: str,
    log: logging.Logger | logging.LoggerAdapter,
    flow_run_id: str = "",
) -> dict[str, Any]:
    """Register the exported model as a version of ``model_name`` and move the alias if it passes the gate."""
    done = read_result(plan["stage_dir"], plan["key"])
    if done is not None:
        return done
    exported = upstream["from"]
    options = plan["options"]
    name, alias = options["model_name"], options["alias"]
    tracker = get_tracker(plan["experiment"])
    if not tracker.enabled:
        log.warning("Tracking is off: %s is not registered.", exported["model_dir"])
        return finish(plan, "", {}, flow_run_id, registered=False, reason="tracking is off")

    metric, value, mode = exported.get("metric"), exported.get("value"), exported.get("mode", "min")
    version = tracker.find_version(name, "genie.export_key", exported["key"])
    if version is None:
        tags = {"genie.export_key": exported["key"], "genie.pipeline": plan["pipeline"], "genie.mode": mode}
        if metric and value is not None:
            tags.update({METRIC_TAG: metric, f"{METRIC_TAG}.value": repr(float(value))})
        tags.update(evidence_tags(exported.get("heldout")))
        version = tracker.register_version(
            name, str(Path(exported["model_dir"]).resolve()), exported["mlflow_run_id"], tags
        )
    champion = tracker.get_alias(name, alias)
    if champion is not None and champion.version == version.version:
        promote, reason = True, "already the holder"
    else:
        promote, reason = gate_decision(
            champion, metric, value, mode, bool(options["gate"]), float(options["min_delta"]), exported.get("heldout")
        )
    if promote:
        tracker.set_alias(name, alias, version.version)
    run_id = tracker.start_run(plan["name"], parent_run_id or None, tags=stage_tags(plan, flow_run_id))
    tracker.log_params(
        run_id,
        {
            "model_name": name,
            "alias": alias,
            "version": version.version,
            "source": version.source,
            "export_dir": version.export_dir,
        },
    )
    tracker.set_tags(run_id, {"genie.promoted": str(promote).lower(), "genie.reason": reason})
    tracker.end_run(run_id, "FINISHED")
    log.info("%s v%s %s '%s': %s", name, version.version, "takes" if promote else "does not take", alias, reason)
    if parent_run_id:
        tracker.set_tags(
            parent_run_id,
            {"genie.registered": f"{name}/{version.version}", f"genie.alias.{alias}": str(promote).lower()},
        )
    return finish(
        plan,
        exported.get("mlflow_run_id", ""),
        {},
        flow_run_id,
        registered=True,
        model_name=name,
        version=version.version,
        alias=alias,
        promoted=promote,
        reason=reason,
        source=version.export_dir,
        mlflow_source=version.source,
        registered_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )

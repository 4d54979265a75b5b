"""The export task: pick a train stage's best checkpoint by a metric, merge its adapters, save a standalone model.

Candidates are the stage's final model and each complete ``checkpoint-N``. A candidate's value is the last
value of the metric logged at or before its step (``trainer_state.json`` history and ``trainer_log.jsonl``);
the final model also sees the stage's ``*_results.json``. With ``metric_from: <evaluate step>`` the value
comes from that step's results instead (e.g. ``predict_bleu-4``), for the final model. The merge itself
runs in a child process (``python -m genie_core.export <config.yaml>``).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from genie_core.eval.comparison import candidate_delta, flat_metrics, read_comparison
from genie_core.extras.errors import ConfigError
from genie_core.extras.process import run_child
from genie_core.hparams import dump_config
from genie_core.stages.common import complete_checkpoints, write_json
from genie_core.tracking import get_tracker
from tasks.plan import read_result
from tasks.stage import STAGE_LOG, STEP_RESULT, child_environment, finish, record_failure, stage_tags

EXPORT_CONFIG = "export_config.yaml"
SELECTION_FILE = "selection.json"


def metric_history(stage_dir: str | Path) -> list[dict[str, Any]]:
    """Every logged record with its step: the Trainer's log history, then genie's trainer_log.jsonl."""
    stage_dir = Path(stage_dir)
    records: list[dict[str, Any]] = []
    state = stage_dir / "trainer_state.json"
    if state.is_file():
        records += [dict(r) for r in json.loads(state.read_text(encoding="utf-8")).get("log_history", [])]
    log = stage_dir / "trainer_log.jsonl"
    if log.is_file():
        for line in log.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                record["step"] = record.get("current_steps", 0)
                records.append(record)
    return records


def value_at(history: list[dict[str, Any]], metric: str, step: int) -> float | None:
    """The last finite value of ``metric`` logged at or before ``step``."""
    best_step, value = -1, None
    for record in history:
        v, s = record.get(metric), int(record.get("step", 0))
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and best_step <= s <= step:
            best_step, value = s, float(v)
    return value


def candidates(source: dict[str, Any]) -> list[dict[str, Any]]:
    """The final model of a train stage and each earlier complete checkpoint, as (model, adapters) to export."""
    out = Path(source["output_dir"])
    try:
        final_step = int(json.loads((out / "trainer_state.json").read_text())["global_step"])
    except (OSError, ValueError, KeyError):
        final_step = max([int(c.name.split("-")[1]) for c in complete_checkpoints(out)] or [0])
    found = [
        {
            "label": "final",
            "step": final_step,
            "model_name_or_path": source["model_name_or_path"],
            "adapters": list(source["adapters"]),
        }
    ]
    lora = bool(source["adapters"])
    for ckpt in complete_checkpoints(out):
        step = int(ckpt.name.split("-")[1])
        if step >= final_step:
            continue
        found.append(
            {
                "label": ckpt.name,
                "step": step,
                "model_name_or_path": source["model_name_or_path"] if lora else str(ckpt),
                "adapters": [*source["adapters"][:-1], str(ckpt)] if lora else [],
            }
        )
    return found


def select_best(
    source: dict[str, Any], metric: str | None, mode: str, metric_source: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The chosen candidate and every candidate with its value; no metric means the final model."""
    found = candidates(source)
    if not metric:
        return found[0], found
    if metric_source is not None:
        value = (metric_source.get("metrics") or {}).get(metric)
        if value is None:
            logged = ", ".join(sorted(metric_source.get("metrics") or {})) or "none"
            raise ConfigError(f"metric '{metric}' is not in the results of '{metric_source['name']}' ({logged}).")
        found = [{**found[0], "value": float(value)}]
        return found[0], found
    history = metric_history(source["output_dir"])
    for cand in found:
        cand["value"] = value_at(history, metric, cand["step"])
    final_value = (source.get("metrics") or {}).get(metric)
    if final_value is not None:
        found[0]["value"] = float(final_value)
    scored = [c for c in found if c.get("value") is not None]
    if not scored:
        logged = sorted({k for r in history for k in r if k not in ("step", "epoch", "current_steps")})
        raise ConfigError(
            f"metric '{metric}' was never logged by stage '{source['name']}'; logged: {', '.join(logged) or 'none'}."
        )
    pick = min if mode == "min" else max
    best = pick(scored, key=lambda c: (c["value"], -c["step"]) if mode == "min" else (c["value"], c["step"]))
    return best, found


def heldout_evidence(source: dict[str, Any] | None, metric: str | None) -> dict[str, Any] | None:
    """What the register gate needs from a held-out comparison: which prompts and scorer, and the predecessor's value.

    None when the metric does not come from a comparison (a training metric says nothing about unseen data).
    """
    summary = read_comparison(source["output_dir"]) if source else None
    if not summary or not metric:
        return None
    delta = candidate_delta(summary, metric)
    evidence = {
        "evaluate_step": source["name"],
        "split": summary["split"]["digest"],
        "prompts": summary["split"]["prompts"],
        "scorer": summary["scorer"]["id"],
        "candidate": summary["candidate"],
        "baseline": summary["baseline"],
        "metrics": flat_metrics(summary),
    }
    if delta is not None and metric == f"eval/{summary['candidate']}/{delta['metric']}":
        baseline = next(m for m in summary["models"] if m["name"] == summary["baseline"])
        evidence.update(
            metric=delta["metric"],
            baseline_value=baseline["metrics"][delta["metric"]]["mean"],
            delta=delta["mean"],
            delta_ci=delta["ci"],
        )
    return evidence


@task(name="export", **STEP_RESULT)
def export_stage(plan: dict[str, Any], upstream: dict[str, dict], parent_run_id: str = "") -> dict[str, Any]:
    """Merge the best checkpoint of the upstream stage into a standalone model (safetensors, tokenizer, template)."""
    log = get_run_logger()
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
    if plan.get("template"):
        config["template"] = plan["template"]
    config_path = dump_config(config, stage_dir / EXPORT_CONFIG)

    tracker = get_tracker(plan["experiment"])
    run_id = tracker.start_run(plan["name"], parent_run_id or None, tags=stage_tags(plan, parent_run_id))
    try:
        tracker.log_params(run_id, {"metric": metric or "", "mode": mode, "chosen": chosen["label"], **config})
        cmd = [sys.executable, "-m", "genie_core.export", str(config_path)]
        child_s = run_child(cmd, child_environment(1, "", ""), stage_dir / STAGE_LOG, log=log, cwd=os.getcwd())
        metrics = {metric: chosen["value"]} if metric and chosen.get("value") is not None else {}
        tracker.log_metrics(run_id, metrics, step=chosen["step"])
        for name in (SELECTION_FILE, EXPORT_CONFIG, STAGE_LOG):
            tracker.log_artifact(run_id, stage_dir / name)
    except BaseException as exc:
        record_failure(tracker, run_id, stage_dir, exc)
        raise
    tracker.end_run(run_id, "FINISHED")
    return finish(
        plan,
        run_id,
        metrics,
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

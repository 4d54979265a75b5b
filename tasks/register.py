"""The register task: an exported model becomes an MLflow model version; the alias moves only past a gate.

The version's source is the exported directory, so ``models:/<name>@champion`` resolves to files any
transformers loader reads. With ``gate: true`` (the default) the alias moves to the new version only when its
metric beats the current holder's by more than ``min_delta`` (lower for ``mode: min``, higher for ``max``);
``gate: false`` always moves it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from genie_core.tracking import ModelVersionInfo, get_tracker
from tasks.plan import read_result
from tasks.stage import STEP_RESULT, finish, stage_tags

METRIC_TAG = "genie.metric"
SPLIT_TAG = "genie.eval.split"  # digest of the held-out prompts the metric was measured on
SCORER_TAG = "genie.eval.scorer"  # digest of the reward model, rules and generating settings that scored them


def gate_decision(
    champion: ModelVersionInfo | None,
    metric: str | None,
    value: float | None,
    mode: str = "min",
    gate: bool = True,
    min_delta: float = 0.0,
    heldout: dict[str, Any] | None = None,
) -> tuple[bool, str]:
    """Whether the new version takes the alias, and why (in words for the log and the result).

    With held-out evidence the candidate must first beat the model it started from on the compared prompts, and
    is compared with the current holder only when both were measured on the same prompts with the same scorer.
    """
    if not gate:
        return True, "gate off: the newest export always takes the alias"
    sign = "<" if mode == "min" else ">"
    beaten = ""
    if heldout and "baseline_value" in heldout and value is not None:
        base = heldout["baseline_value"]
        theirs = f"{heldout['baseline']}'s {base:.6g} on the same {heldout['prompts']} held-out prompts"
        if not _better(value, base, mode, min_delta):
            return False, f"{metric} {value:.6g} does not beat {theirs} (mode {mode})"
        beaten = f"{metric} {value:.6g} {sign} {theirs}"
    if champion is None:
        return True, f"no current holder; {beaten}" if beaten else "no current holder"
    if not metric or value is None:
        return False, "no metric to compare with the current holder (set metric on the export step, or gate: false)"
    if champion.tags.get(METRIC_TAG) != metric or f"{METRIC_TAG}.value" not in champion.tags:
        return False, f"current holder v{champion.version} has no {metric} to compare (set gate: false to replace it)"
    if heldout:
        for tag, what in ((SPLIT_TAG, "split"), (SCORER_TAG, "scorer")):
            if champion.tags.get(tag) != heldout[what]:
                return False, (
                    f"current holder v{champion.version} was measured with another held-out {what} "
                    f"({champion.tags.get(tag) or 'none'} vs {heldout[what]}), so the numbers do not compare; "
                    "set gate: false to replace it"
                )
    old = float(champion.tags[f"{METRIC_TAG}.value"])
    if _better(value, old, mode, min_delta):
        return True, f"{metric} {value:.6g} {sign} {old:.6g} of v{champion.version}"
    return False, f"{metric} {value:.6g} does not beat {old:.6g} of v{champion.version} (mode {mode})"


def _better(value: float, old: float, mode: str, min_delta: float) -> bool:
    return value < old - min_delta if mode == "min" else value > old + min_delta


def evidence_tags(heldout: dict[str, Any] | None) -> dict[str, str]:
    """The held-out comparison as version tags: which prompts and scorer, the baseline, the delta, every metric."""
    if not heldout:
        return {}
    tags = {SPLIT_TAG: heldout["split"], SCORER_TAG: heldout["scorer"], "genie.eval.prompts": str(heldout["prompts"])}
    if "baseline_value" in heldout:
        tags.update(
            {
                "genie.eval.baseline": heldout["baseline"],
                "genie.eval.baseline_value": repr(float(heldout["baseline_value"])),
                "genie.eval.delta": repr(float(heldout["delta"])),
                "genie.eval.delta_ci": json.dumps([round(float(v), 6) for v in heldout["delta_ci"]]),
            }
        )
    tags.update({f"genie.{key}": repr(float(v)) for key, v in heldout.get("metrics", {}).items()})
    return tags


@task(name="register", **STEP_RESULT)
def register_stage(plan: dict[str, Any], upstream: dict[str, dict], parent_run_id: str = "") -> dict[str, Any]:
    """Register the exported model as a version of ``model_name`` and move the alias if it passes the gate."""
    log = get_run_logger()
    done = read_result(plan["stage_dir"], plan["key"])
    if done is not None:
        return done
    exported = upstream["from"]
    options = plan["options"]
    name, alias = options["model_name"], options["alias"]
    tracker = get_tracker(plan["experiment"])
    if not tracker.enabled:
        log.warning("Tracking is off: %s is not registered.", exported["model_dir"])
        return finish(plan, "", {}, registered=False, reason="tracking is off")

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
    run_id = tracker.start_run(plan["name"], parent_run_id or None, tags=stage_tags(plan, parent_run_id))
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

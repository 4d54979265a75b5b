"""Which checkpoint a pipeline exports and whether its version takes the alias: pure decisions, no side effects.

A candidate's value is the last value of the metric logged at or before its step (``trainer_state.json`` history
and ``trainer_log.jsonl``); the final model also sees the stage's ``*_results.json``. With a held-out comparison
upstream, the register gate first asks whether the candidate beat the model it started from on unseen prompts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from genie_core.eval.comparison import candidate_delta, flat_metrics, read_comparison
from genie_core.extras.errors import ConfigError
from genie_core.stages.common import complete_checkpoints
from genie_core.tracking import ModelVersionInfo


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

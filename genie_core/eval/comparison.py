"""The numbers of a held-out comparison: bootstrap intervals, paired deltas, the table, the chart, the flat metrics.

Kept apart from ``compare`` (which loads models) so that `genie run`'s summary, the export step and the register
gate can read a comparison without importing torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from genie_core.hparams.eval_args import ChainModel

COMPARISON_FILE = "comparison.json"
COMPARISON_PLOT = "comparison.png"
# descriptive metrics: their deltas are shown without a verdict (a KL or a length is a cost, not a quality)
DESCRIPTIVE = frozenset({"kl", "log_ratio", "response_length"})


# ---- statistics ------------------------------------------------------------------------------------------------


def bootstrap_mean(values, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Mean with a percentile-bootstrap 95% interval over the items."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return {"mean": float("nan"), "ci": [float("nan"), float("nan")], "n": 0}
    idx = np.random.default_rng(seed).integers(0, x.size, size=(resamples, x.size))
    low, high = np.percentile(x[idx].mean(axis=1), [2.5, 97.5])
    return {"mean": float(x.mean()), "ci": [float(low), float(high)], "n": int(x.size)}


def paired_delta(before, after, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Mean of ``after - before`` over the same prompts, with a paired bootstrap 95% interval."""
    a, b = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in shape: {a.shape} vs {b.shape}")
    return bootstrap_mean(b - a, resamples, seed)


def summarize(chain: list[ChainModel], scores: dict, reference: str, resamples: int, seed: int) -> dict[str, Any]:
    """Per model: each metric's mean with its interval; per pair of models: paired deltas with intervals."""
    names = [m.name for m in chain]
    metrics = sorted({k for per in scores.values() for k in per}, key=_metric_order)
    models = []
    for entry in chain:
        stats = {k: bootstrap_mean(scores[entry.name][k], resamples, seed) for k in metrics if k in scores[entry.name]}
        models.append({**entry.to_dict(), "metrics": stats})
    deltas = []  # every later model against every earlier one, paired by prompt
    for i, before in enumerate(names):
        for after in names[i + 1 :]:
            for k in metrics:
                if k in scores[before] and k in scores[after]:
                    d = paired_delta(scores[before][k], scores[after][k], resamples, seed)
                    deltas.append({"from": before, "to": after, "metric": k, **d})
    return {
        "models": models,
        "candidate": names[-1],
        "baseline": names[-2],
        "kl_reference": reference,
        "metrics": metrics,
        "deltas": deltas,
        "resamples": resamples,
    }


def _metric_order(key: str) -> tuple[int, str]:
    first = ("reward_mean", "pref_accuracy", "pref_margin", "bleu-4", "rouge-l")
    last = ("kl", "log_ratio", "response_length")
    if key in first:
        return (0, f"{first.index(key)}")
    if key in last:
        return (2, f"{last.index(key)}")
    return (1, key)


def delta_key(metric: str) -> str:
    return f"eval/delta_{metric.removesuffix('_mean')}"


def flat_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """``eval/<model>/<metric>`` for every model, ``eval/delta_<metric>`` (+ ``_ci_low``/``_ci_high``) for the
    candidate against its predecessor, and ``eval/prompts``."""
    flat: dict[str, float] = {"eval/prompts": float(summary["split"]["prompts"]) if "split" in summary else 0.0}
    for model in summary["models"]:
        for metric, stats in model["metrics"].items():
            flat[f"eval/{model['name']}/{metric}"] = stats["mean"]
    for d in summary["deltas"]:
        if d["from"] == summary["baseline"] and d["to"] == summary["candidate"]:
            key = delta_key(d["metric"])
            flat[key], flat[f"{key}_ci_low"], flat[f"{key}_ci_high"] = d["mean"], d["ci"][0], d["ci"][1]
    return flat


def candidate_delta(summary: dict[str, Any], metric: str) -> dict[str, Any] | None:
    """The candidate-vs-predecessor delta of ``metric`` (``reward_mean`` or ``eval/<model>/reward_mean``)."""
    metric = metric.rsplit("/", 1)[-1]
    for d in summary["deltas"]:
        if d["metric"] == metric and d["from"] == summary["baseline"] and d["to"] == summary["candidate"]:
            return d
    return None


def format_table(summary: dict[str, Any]) -> str:
    """The comparison as a text table: one row per model, then the candidate's deltas with their intervals."""
    metrics = summary["metrics"]
    split = summary.get("split", {})
    lines = [
        f"Held-out comparison: {split.get('prompts', '?')} prompts of {split.get('datasets', '?')} "
        f"(eval_split {split.get('eval_split', 0)}, set {split.get('digest', '?')}); "
        f"divergence to {summary['kl_reference']}"
    ]
    width = max(12, *(len(m) + 2 for m in metrics))
    lines.append(f"  {'model':<10}" + "".join(f"{m:>{width}}" for m in metrics))
    for model in summary["models"]:
        cells = "".join(
            f"{model['metrics'][m]['mean']:>{width}.4g}" if m in model["metrics"] else f"{'-':>{width}}"
            for m in metrics
        )
        lines.append(f"  {model['name']:<10}" + cells)
    for d in summary["deltas"]:
        if d["to"] != summary["candidate"] or d["from"] != summary["baseline"]:
            continue
        low, high = d["ci"]
        verdict = ""
        if d["metric"] not in DESCRIPTIVE:
            verdict = " better" if low > 0 else " worse" if high < 0 else " no clear difference"
        lines.append(
            f"  {d['to']} - {d['from']} {d['metric']}: {d['mean']:+.4g} [95% CI {low:+.4g}, {high:+.4g}]{verdict}"
        )
    return "\n".join(lines)


def plot_comparison(summary: dict[str, Any], path: Path) -> Path:
    """One panel per metric, a bar per model with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = summary["metrics"]
    names = [m["name"] for m in summary["models"]]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        stats = [m["metrics"].get(metric) for m in summary["models"]]
        means = [s["mean"] if s else 0.0 for s in stats]
        errs = np.array([[s["mean"] - s["ci"][0], s["ci"][1] - s["mean"]] if s else [0, 0] for s in stats]).T
        ax.bar(names, means, yerr=errs, capsize=4, color=["#a1a1aa"] * (len(names) - 1) + ["#2563eb"])
        ax.set_title(metric)
        ax.tick_params(axis="x", labelrotation=30)
    fig.suptitle(f"Held-out comparison ({summary.get('split', {}).get('prompts', '?')} prompts, 95% CI)")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path


def read_comparison(stage_dir: str | Path) -> dict[str, Any] | None:
    path = Path(stage_dir) / COMPARISON_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None

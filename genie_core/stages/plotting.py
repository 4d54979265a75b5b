"""Loss plots from trainer_log.jsonl."""

from __future__ import annotations

import json
import math
from pathlib import Path

from genie_core.extras.logging import get_logger
from genie_core.stages.callbacks import TRAINER_LOG

logger = get_logger(__name__)


def smooth(values: list[float], weight: float | None = None) -> list[float]:
    """Exponential moving average; heavier smoothing for longer curves."""
    if not values:
        return []
    if weight is None:
        weight = 1.8 * (1 / (1 + math.exp(-0.05 * len(values))) - 0.5)
    out, last = [], values[0]
    for v in values:
        last = last * weight + (1 - weight) * v
        out.append(last)
    return out


def plot_loss(output_dir: str | Path, keys: tuple[str, ...] = ("loss", "eval_loss")) -> list[Path]:
    """Write training_<key>.png for each key present in the log; returns the written files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output_dir = Path(output_dir)
    log = output_dir / TRAINER_LOG
    if not log.exists():
        return []
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    written = []
    for key in keys:
        points = [(r["current_steps"], r[key]) for r in records if key in r]
        if not points:
            continue
        steps, values = zip(*points)
        plt.figure()
        plt.plot(steps, values, color="#1f77b4", alpha=0.4, label="original")
        plt.plot(steps, smooth(list(values)), color="#1f77b4", label="smoothed")
        plt.title(f"{key} of {output_dir.name}")
        plt.xlabel("step")
        plt.ylabel(key)
        plt.legend()
        path = output_dir / f"training_{key}.png"
        plt.savefig(path, format="png", dpi=100)
        plt.close()
        written.append(path)
        logger.info("Loss plot saved: %s", path)
    return written

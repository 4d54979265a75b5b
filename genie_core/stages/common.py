"""Pieces every stage shares: resume detection, saving results, finishing up."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from genie_core.extras.logging import get_logger, is_main_process

logger = get_logger(__name__)
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """Checkpoints that finished saving (trainer_state.json is written last), oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _CHECKPOINT.match(child.name)
        if match and child.is_dir() and (child / "trainer_state.json").is_file():
            found.append((int(match.group(1)), child))
    return [p for _, p in sorted(found)]


def resume_checkpoint(args) -> str | None:
    """The checkpoint to resume from: explicit resume_from_checkpoint, else the last complete one."""
    t = args.training
    if t.resume_from_checkpoint:
        return str(t.resume_from_checkpoint)
    if args.finetuning.overwrite_output_dir or not t.do_train:
        return None
    checkpoints = complete_checkpoints(t.output_dir)
    if checkpoints:
        logger.info("Resuming from %s (set overwrite_output_dir: true to start over).", checkpoints[-1])
        return str(checkpoints[-1])
    return None


def seed_run(args) -> None:
    """Seed every RNG from the config before any stage builds its model: a new LoRA adapter or value head starts from
    random weights, so without this two runs of one config train from different starting points."""
    from transformers import set_seed

    set_seed(args.training.seed)


def prepare_output_dir(args) -> Path:
    out = Path(args.training.output_dir)
    if args.finetuning.overwrite_output_dir and args.training.do_train and is_main_process():
        for ckpt in out.glob("checkpoint-*"):
            shutil.rmtree(ckpt, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write a JSON file atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path)


def save_metrics(output_dir: str | Path, split: str, metrics: dict[str, Any]) -> None:
    if not is_main_process():
        return
    write_json(Path(output_dir) / f"{split}_results.json", metrics)
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(metrics.items()))
    logger.info("%s metrics: %s", split, shown)

"""What a stage directory says about its run, read from its files alone: progress and ETA, phase, log tail, settings.

The same reading serves runs started from the board and runs started by `genie run` in a terminal (the demo's too),
because both leave the same files in ``<runs_dir>/<pipeline>/<step>-<key>/``:

    genie_config.yaml   the resolved stage config, written when the stage starts
    tokenize.log        the pre-tokenizing child's output (pipelines with ``pretokenize``)
    stage.log           the training child's output
    trainer_log.jsonl   one JSON line per logging step (current_steps, total_steps, elapsed_time, loss, ...)
    .genie.lock         flock'ed by the `genie run` process while it runs the stage; holds its pid
    genie_result.json   written last, when the stage has finished
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CONFIG_FILE, STAGE_LOG, TOKENIZE_LOG = "genie_config.yaml", "stage.log", "tokenize.log"
TRAINER_LOG, RESULT_FILE, LOCK_FILE = "trainer_log.jsonl", "genie_result.json", ".genie.lock"

# the phases a run goes through, as the board names them
STARTING, TOKENIZING, LOADING, TRAINING, EVALUATING, SAVING = (
    "starting",
    "tokenizing",
    "loading model",
    "training",
    "evaluating",
    "saving",
)
FINISHED, FAILED, STOPPING, STOPPED = "finished", "failed", "stopping", "stopped"

# lines of stage.log that tell the phase, by the logger or library that printed them
_EVAL = re.compile(
    r"genie\.eval\.|genie\.stages\.compare\b|\beval metrics\b|\bpredict metrics\b|Generating \(|Running Evaluation"
)
_SAVING = re.compile(r"Model saved to|\btrain metrics\b|Loss plot saved|Policy adapter saved")
_TRAIN = re.compile(r"\] step \d+/\d+|Resuming from|Resumed PPO")
_LOADING = re.compile(r"genie\.model\.|Loading (weights|checkpoint)")
_TOKENIZING = re.compile(r"genie\.data\.|Saving the dataset|Running tokenizer|^Map\b|Tokeniz")
_LAUNCH = re.compile(r"^==> \d{4}-\d\d-\d\d .* \$ ")
_STOP = re.compile(r"^==> stopping the child process tree|^\[genie\] .*resume")
_BAR = re.compile(r"^\s*\d+%\|.*\| *\d+/\d+ \[")  # a bare tqdm bar: the trainer's (training or evaluation)
_ERROR = re.compile(r"^error: |^\w*(Error|Exception)\b: ")


@dataclass(frozen=True)
class Progress:
    """Where training is, from trainer_log.jsonl; ``eta_s`` is None until a step has been timed."""

    current: int
    total: int
    elapsed_s: float  # since this attempt started (a resumed run starts counting again)
    eta_s: float | None

    @property
    def fraction(self) -> float:
        return min(self.current / self.total, 1.0) if self.total > 0 else 0.0


def tail_lines(path: Path | None, lines: int = 40, max_bytes: int = 65536) -> list[str]:
    """The last ``lines`` non-empty lines of a log, each tqdm refresh (``\\r``) dropped but the last of its line."""
    if path is None:
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(max(fh.seek(0, os.SEEK_END) - max_bytes, 0))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    kept = [line.split("\r")[-1] for line in text.split("\n")]
    return [line for line in kept if line.strip()][-lines:]


def trainer_records(folder: Path | None) -> list[dict[str, Any]]:
    """The JSON lines of ``trainer_log.jsonl`` (a line being written is skipped)."""
    path = folder / TRAINER_LOG if folder else None
    if path is None or not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def progress_of(records: list[dict[str, Any]]) -> Progress | None:
    """Step, total, elapsed time and the time left at the pace of the current attempt.

    A resumed run starts ``elapsed_time`` from 0 at its checkpoint's step, so the pace is measured from the step the
    last attempt started at (the step before its ``elapsed_time`` dropped), not from step 0.
    """
    timed = []
    for record in records:
        try:
            step, total = int(record["current_steps"]), int(record["total_steps"])
            timed.append((step, total, float(record.get("elapsed_time") or 0.0)))
        except (KeyError, TypeError, ValueError):
            continue
    if not timed:
        return None
    current, total, elapsed = timed[-1]
    base = 0
    for (step, _, before), (_, _, after) in zip(timed, timed[1:]):
        if after < before:  # a new attempt began after ``step``
            base = step
    done = current - base
    eta = elapsed / done * max(total - current, 0) if done > 0 and elapsed > 0 else None
    return Progress(current, total, elapsed, 0.0 if current >= total > 0 else eta)


def phase_from_log(lines: list[str]) -> str | None:
    """The phase the last lines of stage.log show, or None when they show none yet.

    Read from the end: the first line that names a phase decides. A bare progress bar is the trainer's: training,
    unless it comes after the model was saved (then it is the evaluation that follows training).
    """
    bar = False
    for line in reversed(lines):
        text = line.strip()
        if _STOP.search(text):
            return STOPPING
        if _EVAL.search(text):
            return EVALUATING
        if _SAVING.search(text):
            return EVALUATING if bar else SAVING
        if _TRAIN.search(text):
            return TRAINING
        if _BAR.search(text):
            bar = True
        elif _LOADING.search(text):
            return TRAINING if bar else LOADING
        elif _TOKENIZING.search(text):
            return TOKENIZING
        elif _LAUNCH.search(text):
            return TRAINING if bar else STARTING
    return TRAINING if bar else None


def live_phase(folder: Path | None) -> str:
    """The phase of a run that is still going, from the files present and the last lines of its logs."""
    if folder is None or not folder.is_dir():
        return STARTING  # `genie run` is starting its server and planning the stage
    if (folder / RESULT_FILE).is_file():
        return FINISHED
    stage_log, tokenize_log = folder / STAGE_LOG, folder / TOKENIZE_LOG
    if stage_log.is_file():
        return phase_from_log(tail_lines(stage_log, 60)) or STARTING
    if tokenize_log.is_file():
        return TOKENIZING
    return STARTING


def failure_reason(lines: list[str]) -> str:
    """The child's own last error line (``error: ...``, or a traceback's exception line), or ''."""
    for line in reversed(lines):
        text = line.strip()
        if _ERROR.search(text):
            return text
    return ""


def was_stopped(lines: list[str]) -> bool:
    return any(_STOP.search(line.strip()) for line in lines)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_yaml(path: Path) -> dict[str, Any] | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


# ---- is anyone still writing the stage? --------------------------------------------------------------------------


def writer_alive(folder: Path) -> bool:
    """True while a process works on the stage: the `genie run` holding its lock, or a child reading its config.

    Never takes the lock itself (a check must not make a starting run fail); reads its pid and /proc/locks instead.
    """
    return _lock_held(folder / LOCK_FILE) or _child_alive(folder / CONFIG_FILE)


def _lock_held(path: Path) -> bool:
    import psutil

    try:
        text = path.read_text(encoding="utf-8")
        stat = path.stat()
        pid = int(re.match(r"pid (\d+)", text).group(1))  # type: ignore[union-attr]
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or proc.create_time() > stat.st_mtime + 1:
            return False  # gone, or a later process that reused the pid
    except (OSError, AttributeError, ValueError, psutil.Error):
        return False
    try:  # the process may outlive the stage (later stages of its pipeline): is the lock still taken?
        locks = Path("/proc/locks").read_text()
    except OSError:
        return True
    inode = f":{stat.st_ino} "
    return any(" FLOCK " in f" {line} " and inode in line for line in locks.splitlines())


def _child_alive(config: Path) -> bool:
    """A tokenizing or training child started on this stage's config (the tokenizing step holds no lock)."""
    import psutil

    wanted = str(config)
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if wanted in (proc.info["cmdline"] or []) and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except psutil.Error:
            continue
    return False

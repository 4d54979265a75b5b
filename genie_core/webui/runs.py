"""Runs started from the board: a one-stage pipeline YAML run by a detached `genie run`, watched through its files.

    <runs_dir>/webui/<name>/pipeline.yaml     what the Start button wrote
                           /run.log           stdout and stderr of `python -m flows.cli run pipeline.yaml`
                           /submission.json   pid, start time, stage
                           /exit_code         written when the board saw the process end
    <runs_dir>/<name>/<stage>-<key>/          the stage's output, as for any `genie run` (trainer_log.jsonl, ...)

The process gets a session (process group) of its own and writes to a file, so closing the page or stopping the
board neither stalls nor kills it: it is an ordinary `genie run`, recorded in Prefect and MLflow. Everything shown
is read back from files. Stop sends SIGTERM to the process group; `genie run` then stops the training child's tree
and records the runs as KILLED.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from genie_core.extras.env import runs_dir
from genie_core.extras.errors import ConfigError, GenieError
from genie_core.webui.run_config import pipeline_dict

SUBMISSIONS = "webui"
PIPELINE_FILE, LOG_FILE, INFO_FILE, EXIT_FILE, STOP_FILE = (
    "pipeline.yaml",
    "run.log",
    "submission.json",
    "exit_code",
    "stop_requested",
)
RESULT_FILE = "genie_result.json"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def submissions_dir() -> Path:
    return runs_dir() / SUBMISSIONS


def new_name(wanted: str | None, stage: str) -> str:
    """A pipeline name not used yet: ``wanted`` or ``webui-<stage>-<time>``, with a -2, -3 suffix when taken."""
    base = (wanted or "").strip() or f"webui-{stage}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not _NAME.match(base):
        raise ConfigError(f"run name '{base}': start with a letter; use only letters, digits, - and _.")
    name, n = base, 1
    while (submissions_dir() / name).exists() or (runs_dir() / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


# ---- submitted runs ---------------------------------------------------------------------------------------------


@dataclass
class Submission:
    name: str  # the pipeline name, also the folder names
    step: str  # the one stage's step name
    pid: int
    started: float  # the process's create time (tells our process from a reused pid)
    command: list[str]
    stage_root: str  # <runs_dir>/<name>, where the stage directory appears
    experiment: str = "llm-genie"

    @property
    def folder(self) -> Path:
        return submissions_dir() / self.name

    @property
    def log_path(self) -> Path:
        return self.folder / LOG_FILE

    def save(self) -> None:
        (self.folder / INFO_FILE).write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, name: str) -> Submission:
        if not _NAME.match(name or ""):
            raise GenieError(f"'{name}' is not a run name.")
        path = submissions_dir() / name / INFO_FILE
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            raise GenieError(f"no run named '{name}' in {submissions_dir()}.") from None


def submit(config: dict[str, Any], name: str | None = None, experiment: str = "llm-genie") -> Submission:
    """Write the pipeline YAML and start `genie run` on it, detached; returns at once."""
    import psutil

    name = new_name(name, str(config.get("stage", "sft")))
    folder = submissions_dir() / name
    folder.mkdir(parents=True)
    pipeline = pipeline_dict(name, config, experiment)
    yaml_path = folder / PIPELINE_FILE
    yaml_path.write_text(
        f"# genie run {yaml_path}\n" + yaml.safe_dump(pipeline, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    command = [sys.executable, "-m", "flows.cli", "run", str(yaml_path)]
    with open(folder / LOG_FILE, "ab") as log:
        log.write(f"==> {time.strftime('%Y-%m-%d %H:%M:%S')} $ {' '.join(command)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # its own process group: the page and the board can go away
        )
    try:
        started = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        started = time.time()
    step = next(iter(pipeline["stages"]))
    sub = Submission(name, step, proc.pid, started, command, str(runs_dir() / name), pipeline["experiment"])
    sub.save()
    threading.Thread(target=_record_exit, args=(proc, folder), daemon=True, name=f"reap-{name}").start()
    return sub


def _record_exit(proc: subprocess.Popen, folder: Path) -> None:
    code = proc.wait()
    (folder / EXIT_FILE).write_text(str(code), encoding="utf-8")


def list_submissions() -> list[str]:
    """Names of the runs started from the board, newest first."""
    root = submissions_dir()
    if not root.is_dir():
        return []
    started = {}
    for path in root.glob(f"*/{INFO_FILE}"):
        try:
            started[path.parent.name] = float(json.loads(path.read_text(encoding="utf-8"))["started"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(started, key=lambda name: started[name], reverse=True)


def _process(sub: Submission):
    """The run's `genie run` process while it is alive (never a later process that reused its pid)."""
    import psutil

    try:
        proc = psutil.Process(sub.pid)
        if abs(proc.create_time() - sub.started) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.NoSuchProcess:
        return None


def status(sub: Submission) -> str:
    """running | stopping | finished | failed | stopped."""
    stop_asked = (sub.folder / STOP_FILE).exists()
    if _process(sub) is not None:
        return "stopping" if stop_asked else "running"
    try:
        code: int | None = int((sub.folder / EXIT_FILE).read_text().strip())
    except (OSError, ValueError):
        code = None
    if code == 0 or (code is None and f"Pipeline {sub.name} finished in" in log_tail(sub, 40)):
        return "finished"
    return "stopped" if stop_asked else "failed"


def stop(sub: Submission, grace_s: float = 30.0) -> str:
    """SIGTERM the run's process group; whatever is left after ``grace_s`` (training children too) gets SIGKILL."""
    import psutil

    proc = _process(sub)
    if proc is None:
        return f"{sub.name} is not running ({status(sub)})."
    (sub.folder / STOP_FILE).write_text(time.strftime("%Y-%m-%d %H:%M:%S"), encoding="utf-8")
    tree = [proc, *proc.children(recursive=True)]
    try:
        os.killpg(sub.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        proc.terminate()

    def alive() -> list:
        # polled, not waited for: waiting would reap the process before the exit-code thread sees its status
        out = []
        for p in tree:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except psutil.NoSuchProcess:
                pass
        return out

    def finish_off() -> None:
        deadline = time.monotonic() + grace_s
        while alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        for p in alive():
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass

    threading.Thread(target=finish_off, daemon=True, name=f"stop-{sub.name}").start()
    return f"Stopping {sub.name}: `genie run` stops the training process and records the run as KILLED."


# ---- what a run left behind -------------------------------------------------------------------------------------


def stage_dir(sub: Submission) -> Path | None:
    """``<runs_dir>/<name>/<step>-<key>``, once the run has planned it."""
    found = sorted(Path(sub.stage_root).glob(f"{sub.step}-*"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def read_result(sub: Submission) -> dict[str, Any] | None:
    folder = stage_dir(sub)
    try:
        return json.loads((folder / RESULT_FILE).read_text(encoding="utf-8")) if folder else None
    except (OSError, ValueError):
        return None


def loss_points(sub: Submission) -> list[dict[str, Any]]:
    """``{"step", "value", "series"}`` rows for loss and eval_loss, from the stage's trainer_log.jsonl."""
    folder = stage_dir(sub)
    path = folder / "trainer_log.jsonl" if folder else None
    if path is None or not path.is_file():
        return []
    points = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written
        for series in ("loss", "eval_loss"):
            if isinstance(record.get(series), (int, float)):
                points.append({"step": int(record.get("current_steps", 0)), "value": record[series], "series": series})
    return points


def progress(sub: Submission) -> tuple[int, int] | None:
    """(current step, total steps) from the last trainer_log.jsonl line."""
    folder = stage_dir(sub)
    path = folder / "trainer_log.jsonl" if folder else None
    if path is None or not path.is_file():
        return None
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for line in reversed(lines):
        try:
            record = json.loads(line)
            return int(record["current_steps"]), int(record["total_steps"])
        except (ValueError, KeyError):
            continue
    return None


def log_tail(sub: Submission, lines: int = 40, max_bytes: int = 65536) -> str:
    """The last ``lines`` lines of run.log, each progress-bar refresh on a line of its own dropped but the last."""
    try:
        with open(sub.log_path, "rb") as fh:
            fh.seek(max(fh.seek(0, os.SEEK_END) - max_bytes, 0))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line.split("\r")[-1] for line in text.split("\n")]
    return "\n".join([line for line in kept if line.strip()][-lines:])


def chat_target(sub: Submission) -> dict[str, Any]:
    """Model, adapters, tuning type and template to chat with (or export) what the run trained."""
    result = read_result(sub)
    if result:
        adapters = result.get("adapters") or []
        return {
            "model_name_or_path": result.get("model_name_or_path") or "",
            "checkpoint_dir": ",".join(adapters),
            "finetuning_type": result.get("finetuning_type") or "lora",
            "template": result.get("template") or "",
        }
    raise GenieError(f"{sub.name} has no finished result yet ({status(sub)}); chat with it once it has finished.")

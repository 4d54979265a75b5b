"""Runs started from the board: a one-stage pipeline YAML run by a detached `genie run`, watched through its files.

    <runs_dir>/webui/<name>/pipeline.yaml     what the Start button wrote
                           /run.log           stdout and stderr of `genie run pipeline.yaml`
                           /submission.json   pid, start time, stage
                           /exit_code         written when the board saw the process end
    <runs_dir>/<name>/<stage>-<key>/          the stage's output, as for any `genie run` (trainer_log.jsonl, ...)

``plan_run`` names the run and renders its YAML and command without writing anything (the command preview shows
it); ``launch`` writes and starts exactly that. The process gets a session (process group) of its own and writes
to a file, so closing the page or stopping the board neither stalls nor kills it: it is an ordinary `genie run`,
recorded in Prefect and MLflow. Everything shown is read back from files. Stop sends SIGTERM to the process group;
`genie run` then stops the training child's tree and records the runs as KILLED.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from genie_core.extras.env import runs_dir
from genie_core.extras.errors import ConfigError, GenieError
from genie_core.hparams.parser import setting
from genie_core.tracking import DEFAULT_EXPERIMENT
from genie_core.webui import run_files
from genie_core.webui.run_config import pipeline_dict, pipeline_yaml

SUBMISSIONS = "webui"
PIPELINE_FILE, LOG_FILE, INFO_FILE, EXIT_FILE, STOP_FILE = (
    "pipeline.yaml",
    "run.log",
    "submission.json",
    "exit_code",
    "stop_requested",
)
RESULT_FILE = run_files.RESULT_FILE
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def genie_command() -> str:
    """The installed `genie` command (beside this interpreter, else on PATH): the board submits runs the way a user
    types them, through the documented entry point, and never imports the pipeline layer above it."""
    beside = Path(sys.executable).with_name("genie")
    found = str(beside) if beside.is_file() else shutil.which("genie")
    if not found:
        raise ConfigError("the `genie` command is not installed here; run `pip install -e .` in the project first.")
    return found


def submissions_dir() -> Path:
    return runs_dir() / SUBMISSIONS


def new_name(wanted: str | None, stage: str) -> str:
    """A pipeline name not used yet: ``wanted`` or ``webui-<stage>-<time>``, with a -2, -3 suffix when taken."""
    base = check_name((wanted or "").strip() or f"webui-{stage}-{time.strftime('%Y%m%d-%H%M%S')}")
    name, n = base, 1
    while (submissions_dir() / name).exists() or (runs_dir() / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def check_name(name: str) -> str:
    """``name`` when it can name a pipeline (and its folders); ``ConfigError`` otherwise."""
    if not _NAME.match(name):
        raise ConfigError(f"run name '{name}': start with a letter; use only letters, digits, - and _.")
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
    experiment: str = DEFAULT_EXPERIMENT

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


@dataclass(frozen=True)
class Planned:
    """What Start will write and run: the pipeline YAML and the `genie run` command. The command preview shows
    this same object, so what is previewed is what runs."""

    name: str
    step: str
    experiment: str
    yaml_text: str

    @property
    def folder(self) -> Path:
        return submissions_dir() / self.name

    @property
    def yaml_path(self) -> Path:
        return self.folder / PIPELINE_FILE

    @property
    def command(self) -> list[str]:
        return [genie_command(), "run", str(self.yaml_path)]


def plan_run(config: dict[str, Any], name: str | None = None, experiment: str = DEFAULT_EXPERIMENT) -> Planned:
    """Name the run and render its one-stage pipeline; writes nothing."""
    name = new_name(name, str(setting(config, "stage")))
    pipeline = pipeline_dict(name, config, experiment)
    text = pipeline_yaml(pipeline, submissions_dir() / name / PIPELINE_FILE)
    return Planned(name, next(iter(pipeline["stages"])), pipeline["experiment"], text)


def submit(config: dict[str, Any], name: str | None = None, experiment: str = DEFAULT_EXPERIMENT) -> Submission:
    """Write the pipeline YAML and start `genie run` on it, detached; returns at once."""
    return launch(plan_run(config, name, experiment))


def launch(planned: Planned) -> Submission:
    """Write ``planned``'s YAML and start its command in a session of its own; returns at once."""
    import psutil

    folder = planned.folder
    folder.mkdir(parents=True)
    planned.yaml_path.write_text(planned.yaml_text, encoding="utf-8")
    command = planned.command
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
    stage_root = str(runs_dir() / planned.name)
    sub = Submission(planned.name, planned.step, proc.pid, started, command, stage_root, planned.experiment)
    sub.save()
    threading.Thread(target=_record_exit, args=(proc, folder), daemon=True, name=f"reap-{planned.name}").start()
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
    return run_files.read_json(folder / RESULT_FILE) if folder else None


def loss_points(sub: Submission) -> list[dict[str, Any]]:
    """``{"step", "value", "series"}`` rows for loss and eval_loss, from the stage's trainer_log.jsonl."""
    return loss_points_in(stage_dir(sub))


def loss_points_in(folder: Path | None) -> list[dict[str, Any]]:
    points = []
    for record in run_files.trainer_records(folder):
        for series in ("loss", "eval_loss"):
            if isinstance(record.get(series), (int, float)):
                points.append({"step": int(record.get("current_steps", 0)), "value": record[series], "series": series})
    return points


def progress(sub: Submission) -> tuple[int, int] | None:
    """(current step, total steps) from the last trainer_log.jsonl line."""
    done = run_files.progress_of(run_files.trainer_records(stage_dir(sub)))
    return (done.current, done.total) if done else None


def log_tail(sub: Submission, lines: int = 40, max_bytes: int = 65536) -> str:
    """The last ``lines`` lines of run.log, each progress-bar refresh on a line of its own dropped but the last."""
    return "\n".join(run_files.tail_lines(sub.log_path, lines, max_bytes))


def chat_target(sub: Submission) -> dict[str, Any]:
    """Model, adapters, tuning type and template to chat with (or export) what the run trained."""
    return chat_target_in(stage_dir(sub), sub.name, lambda: status(sub))


def chat_target_in(folder: Path | None, name: str, state: Callable[[], str]) -> dict[str, Any]:
    """``chat_target`` of a stage folder; ``state`` says why there is none yet (called only then)."""
    result = run_files.read_json(folder / RESULT_FILE) if folder else None
    if result:
        adapters = result.get("adapters") or []
        return {
            "model_name_or_path": result.get("model_name_or_path") or "",
            "checkpoint_dir": ",".join(adapters),
            "finetuning_type": result.get("finetuning_type") or "lora",
            "template": result.get("template") or "",
        }
    raise GenieError(f"{name} has no finished result yet ({state()}); chat with it once it has finished.")

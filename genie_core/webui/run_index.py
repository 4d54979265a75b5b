"""Every run in the runs directory, whoever started it: the board's own submissions and the stages of pipelines
run by `genie run` in a terminal (the demo's too).

A board run is named by its pipeline name (``board-run``); any other stage by ``<pipeline>/<step>-<key>``, its
folder under the runs directory. A board run's stage folder is listed once, under the board run's name.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genie_core.extras.env import runs_dir
from genie_core.extras.errors import GenieError
from genie_core.webui import run_files, runs
from genie_core.webui.run_config import read_arguments

_STAGE_DIR = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*-[0-9a-f]{10}$")
_STAGE_ID = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)/([A-Za-z][A-Za-z0-9_-]*-[0-9a-f]{10})$")


@dataclass(frozen=True)
class Settings:
    """What a run was started with: its stage config, and the pipeline name and experiment when known."""

    config: dict[str, Any]
    name: str | None
    experiment: str | None


@dataclass(frozen=True)
class RunRef:
    """One run of the list: a board submission, or a stage folder of any pipeline."""

    id: str
    started: float
    submission: runs.Submission | None = None
    folder: Path | None = None

    @property
    def label(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.started))
        return f"{self.id} ({'board' if self.submission else 'genie run'}, {when})"

    def stage_dir(self) -> Path | None:
        return runs.stage_dir(self.submission) if self.submission else self.folder

    def log_path(self) -> Path | None:
        """The board run's `genie run` output; for other runs, the training child's output."""
        if self.submission:
            return self.submission.log_path
        return self.folder / run_files.STAGE_LOG if self.folder else None

    def state(self) -> str:
        """running | stopping | finished | failed | stopped."""
        if self.submission:
            return runs.status(self.submission)
        folder = self.folder
        if folder is None or (folder / run_files.RESULT_FILE).is_file():
            return run_files.FINISHED
        lines = run_files.tail_lines(folder / run_files.STAGE_LOG, 20)
        stopped = run_files.was_stopped(lines)
        if run_files.writer_alive(folder):
            return run_files.STOPPING if stopped else "running"
        return run_files.STOPPED if stopped else run_files.FAILED

    def phase(self, state: str | None = None) -> str:
        """starting, tokenizing, loading model, training, evaluating, saving, finished, failed, stopping, stopped."""
        state = state or self.state()
        if state == "running":
            return run_files.live_phase(self.stage_dir())
        return state

    def failure(self) -> str:
        """The last error line the run's logs hold, or ''."""
        folder = self.stage_dir()
        for path in (folder / run_files.STAGE_LOG if folder else None, self.log_path()):
            reason = run_files.failure_reason(run_files.tail_lines(path, 40))
            if reason:
                return reason
        return ""

    def settings(self) -> Settings:
        """The board run's pipeline file, or the stage config the pipeline wrote into the stage folder."""
        if self.submission:
            config, name, experiment = read_arguments(self.submission.folder / runs.PIPELINE_FILE)
            return Settings(config, name or self.submission.name, experiment or self.submission.experiment)
        config = run_files.read_yaml(self.folder / run_files.CONFIG_FILE) if self.folder else None
        if config is None:
            raise GenieError(f"{self.id} has no readable {run_files.CONFIG_FILE}.")
        return Settings(config, self.folder.parent.name if self.folder else None, None)

    def chat_target(self) -> dict[str, Any]:
        return runs.chat_target_in(self.stage_dir(), self.id, self.state)


def list_runs() -> list[RunRef]:
    """Every run, newest start first."""
    found: list[RunRef] = []
    owned: set[Path] = set()
    for name in runs.list_submissions():
        try:
            sub = runs.Submission.load(name)
        except GenieError:
            continue
        found.append(RunRef(sub.name, sub.started, submission=sub))
        folder = runs.stage_dir(sub)
        if folder is not None:
            owned.add(folder)
    root = runs_dir()
    pipelines = [p for p in root.iterdir() if p.is_dir() and p.name != runs.SUBMISSIONS] if root.is_dir() else []
    for pipeline in pipelines:
        for folder in pipeline.iterdir():
            ref = _stage_ref(folder)
            if ref is not None and folder not in owned:
                found.append(ref)
    return sorted(found, key=lambda ref: ref.started, reverse=True)


def _stage_ref(folder: Path) -> RunRef | None:
    if not _STAGE_DIR.match(folder.name):
        return None
    try:
        started = (folder / run_files.CONFIG_FILE).stat().st_mtime  # written when the stage starts
    except OSError:
        return None
    return RunRef(f"{folder.parent.name}/{folder.name}", started, folder=folder)


def open_run(run_id: str | None) -> RunRef:
    """The run named ``run_id`` (a board run's name or ``<pipeline>/<step>-<key>``), or ``GenieError``."""
    text = (run_id or "").strip()
    match = _STAGE_ID.match(text)
    if match:
        ref = _stage_ref(runs_dir() / match.group(1) / match.group(2))
        if ref is None:
            raise GenieError(f"no run '{text}' in {runs_dir()}.")
        return ref
    sub = runs.Submission.load(text)
    return RunRef(sub.name, sub.started, submission=sub)

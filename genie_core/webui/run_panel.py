"""The Train tab's lower half, as values: the selected run's status line, progress bar (phase, steps, ETA), loss
curve and log tail. Everything is read from the run's files on each tick, so a run started anywhere shows the same.
"""

from __future__ import annotations

import html
from typing import Any

from genie_core.extras.errors import GenieError
from genie_core.webui import run_files, runs
from genie_core.webui.run_index import RunRef, list_runs, open_run

LOG_LINES = 200
BAR_COLORS = {run_files.FINISHED: "#16a34a", run_files.FAILED: "#dc2626", run_files.STOPPED: "#71717a"}
BAR_STYLE = "height: 10px; background: #e4e4e7; border-radius: 5px; overflow: hidden; margin: 4px 0;"
# column-reverse keeps a scrolled box pinned to its end: the newest lines show, older ones are a scroll up
LOG_STYLE = (
    "display: flex; flex-direction: column-reverse; overflow: auto; max-height: 24em; border: 1px solid #d4d4d8; "
    "border-radius: 4px; padding: 6px;"
)


def _error(exc: Exception) -> str:
    return f"**Error:** {html.escape(str(exc))}"


def run_choices() -> list[tuple[str, str]]:
    """(label, run id) for every run in the runs directory, newest first."""
    return [(ref.label, ref.id) for ref in list_runs()]


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def progress_text(phase: str, done: run_files.Progress | None, reason: str = "") -> str:
    """One line: the phase, then steps, percentage, time spent and time left when trainer_log.jsonl has them."""
    parts = [phase]
    if done:
        parts.append(f"step {done.current}/{done.total} ({done.fraction:.0%})")
        parts.append(f"{duration(done.elapsed_s)} elapsed")
        if done.eta_s is not None and phase not in (run_files.FINISHED, run_files.FAILED, run_files.STOPPED):
            parts.append(f"about {duration(done.eta_s)} left")
    if reason:
        parts.append(reason)
    return " · ".join(parts)


def progress_html(phase: str, done: run_files.Progress | None, reason: str = "") -> str:
    fraction = 1.0 if phase == run_files.FINISHED else done.fraction if done else 0.0
    color = BAR_COLORS.get(phase, "#f97316")
    return (
        f'<div class="genie-progress" data-phase="{html.escape(phase)}">'
        f'<div style="{BAR_STYLE}"><div style="width: {fraction * 100:.1f}%; height: 100%; background: {color};">'
        f"</div></div><span>{html.escape(progress_text(phase, done, reason))}</span></div>"
    )


def log_html(ref: RunRef, lines: list[str]) -> str:
    path = ref.log_path()
    caption = f"Log: <code>{html.escape(str(path))}</code> (last {LOG_LINES} lines)" if path else "Log"
    body = html.escape("\n".join(lines)) or "(nothing logged yet)"
    return (
        f"<div>{caption}</div><div style='{LOG_STYLE}'>"
        f"<pre style='margin: 0; white-space: pre-wrap;'>{body}</pre></div>"
    )


def status_line(ref: RunRef, state: str, records: list[dict[str, Any]], points: list[dict[str, Any]]) -> str:
    parts = [f"**{ref.id}**: {state}"]
    done = run_files.progress_of(records)
    if done:
        parts.append(f"step {done.current}/{done.total}")
    losses = [p for p in points if p["series"] == "loss"]
    if losses:
        parts.append(f"last loss {losses[-1]['value']:.4g} at step {losses[-1]['step']} ({len(points)} loss points)")
    folder = ref.stage_dir()
    result = run_files.read_json(folder / run_files.RESULT_FILE) if folder else None
    if result and result.get("mlflow_run_id"):
        parts.append(f"MLflow run `{result['mlflow_run_id']}`")
    return " · ".join(parts) + (f"  \nOutput: `{folder}`" if folder else "")


def watch(run_id: str | None):
    """(status line, progress bar, loss points, log) of the run ``run_id``."""
    import pandas as pd

    empty = pd.DataFrame({"step": [], "value": [], "series": []})
    if not run_id:
        return "No run selected.", "", empty, ""
    try:
        ref = open_run(run_id)
    except GenieError as exc:
        return _error(exc), "", empty, ""
    state = ref.state()
    phase = ref.phase(state)
    folder = ref.stage_dir()
    records = run_files.trainer_records(folder)
    points = runs.loss_points_in(folder)
    reason = ref.failure() if phase == run_files.FAILED else ""
    bar = progress_html(phase, run_files.progress_of(records), reason)
    lines = run_files.tail_lines(ref.log_path(), LOG_LINES)
    curve = pd.DataFrame(points) if points else empty
    return status_line(ref, state, records, points), bar, curve, log_html(ref, lines)


def stop(run_id: str | None) -> str:
    if not run_id:
        return "No run selected."
    try:
        ref = open_run(run_id)
        if ref.submission is None:
            return f"{ref.id} was started by `genie run`, not from this board: stop it where it runs (Ctrl-C)."
        return runs.stop(ref.submission)
    except GenieError as exc:
        return _error(exc)

"""Run a training child under supervision: its whole tree stops when we stop, whatever stops us.

``run_child`` (pipeline stages): full log to a file, important lines to the run log. ``supervised_call``
(`genie train`): output straight to the terminal. Both start the child in its own session with a parent-death
signal, so Ctrl-C in the terminal reaches only us and we pass it on as SIGTERM (the child then checkpoints and
exits), and SIGKILL of us still takes the child down.

The child gets its own session (process group), so it can be signalled as a unit without touching the flow.
Whatever ends the wait (the child failing, a cancelled flow's SIGTERM, Ctrl-C, any exception), the ``finally``
below terminates the child's process group and every descendant that left it (torchrun workers start their
own sessions), then kills what is still alive after a grace period.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import time
from collections import deque
from pathlib import Path

import psutil

from genie_core.extras.errors import GenieError
from genie_core.extras.supervise import EXIT_STOPPED, die_with_parent

# a tqdm bar ("desc:  50%|█████     | 2/4 [00:11<00:11,  5.59s/it]"); output printed right after one shares its line
_BAR = re.compile(r"[^|\r\n]*?\d+%\|[^|]*\|[^\]]*\]")
_GENIE_LINE = re.compile(r"^\[\d\d:\d\d:\d\d (INFO|WARNING|ERROR|CRITICAL) genie")
_PROBLEM = re.compile(r"Traceback|Error\b|error:|Exception\b|Killed|exit(ed)? (code|status)")
_NOISE = ("gemm_4bit_forward", "warnings.warn(", "FutureWarning", "Setting accelerator to CPU")


class StageFailed(GenieError):
    """A child process exited non-zero; the message ends with the last lines of its log."""

    def __init__(self, message: str, tail: str = "", log_path: str | None = None):
        super().__init__(message + (f"\n--- last lines of {log_path} ---\n{tail}" if tail else ""))
        self.tail, self.log_path = tail, log_path


def strip_progress(line: str) -> str:
    """The line without its progress bars ('' for a pure progress refresh)."""
    return _BAR.sub("", line).strip()


def is_important(line: str) -> bool:
    """What the run log gets: genie's own lines and anything that looks like a failure; never progress bars."""
    line = strip_progress(line)
    if not line or any(noise in line for noise in _NOISE):
        return False
    return bool(_GENIE_LINE.match(line) or _PROBLEM.search(line))


def kill_tree(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the child's group and all its descendants; SIGKILL whatever outlives ``grace_s``."""
    try:
        root = psutil.Process(proc.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    for p in tree[1:]:  # descendants in other sessions
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(tree, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def run_child(
    cmd: list[str],
    env: dict[str, str],
    log_path: str | Path,
    log: logging.Logger | logging.LoggerAdapter | None = None,
    cwd: str | None = None,
    tail_lines: int = 40,
    grace_s: float = 10.0,
) -> float:
    """Run ``cmd`` to completion and return its wall time in seconds; raise ``StageFailed`` on a non-zero exit."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=tail_lines)
    start = time.perf_counter()
    with open(log_path, "a", encoding="utf-8") as fh:
        fh.write(f"\n==> {time.strftime('%Y-%m-%d %H:%M:%S')} $ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            errors="replace",
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:  # universal newlines: each tqdm refresh (\r) arrives as its own line
                fh.write(raw)
                line = strip_progress(raw)
                if not line:
                    continue
                tail.append(line)
                if log is not None and is_important(line):
                    level = logging.WARNING if _PROBLEM.search(line) or " WARNING " in line[:30] else logging.INFO
                    log.log(level, line)
            returncode = proc.wait()
        finally:
            if proc.poll() is None:
                fh.write("==> stopping the child process tree\n")
                kill_tree(proc, grace_s)
    wall = time.perf_counter() - start
    if returncode != 0:
        reason = next((line[7:] for line in reversed(tail) if line.startswith("error: ")), "")
        where = f"child exited with code {returncode} after {wall:.0f} s"
        raise StageFailed(f"{reason} ({where})" if reason else where, "\n".join(tail), str(log_path))
    return wall


class Terminated(BaseException):
    """SIGTERM arrived while we supervised a child (Ctrl-C arrives as KeyboardInterrupt)."""


def supervised_call(cmd: list[str], env: dict[str, str], grace_s: float = 8.0) -> int:
    """Run ``cmd`` with the terminal as its output; on Ctrl-C or SIGTERM stop its tree and return 130/143."""

    def on_term(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_term)
    proc = None
    try:
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=die_with_parent)
        return proc.wait()
    except KeyboardInterrupt:
        return 130
    except Terminated:
        return EXIT_STOPPED
    finally:
        if proc is not None and proc.poll() is None:
            print("[genie] stopping the training process (it saves a checkpoint first) ...", flush=True)
            kill_tree(proc, grace_s)
        signal.signal(signal.SIGTERM, previous)

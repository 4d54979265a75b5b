"""Training processes never outlive whoever started them, and stop at a step boundary when asked.

Three pieces, used by the launching parent and the training child alike:

- ``die_with_parent`` asks the Linux kernel to send SIGTERM when the parent exits, whatever killed it (SIGKILL
  included). It is inherited across ``exec``, so it also works as ``Popen(preexec_fn=...)`` for a launcher we do
  not own (``accelerate launch``).
- ``install_stop_handler`` turns SIGTERM/SIGINT in the child into a request: the training loop checkpoints at
  the end of its current step and exits with ``StopRequested``. A deadline (``GENIE_STOP_GRACE_S``, default 6 s)
  exits anyway if the step does not end in time, and a second Ctrl-C exits at once.
- ``stop_requested`` is what loops check; it is also true when the parent is gone (the fallback where no
  parent-death signal exists).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

EXIT_STOPPED = 143  # 128 + SIGTERM, what a supervisor expects from a process it asked to stop
_PR_SET_PDEATHSIG = 1

_libc = None
if sys.platform.startswith("linux"):
    try:  # resolved now: a preexec_fn runs between fork and exec and should not load libraries
        _libc = ctypes.CDLL(None, use_errno=True)
        _prctl = _libc.prctl
    except (OSError, AttributeError):
        _libc = None


class StopRequested(BaseException):
    """The process was asked to stop (a signal, or its parent died) and stopped after saving what it could.

    A BaseException, so no ``except Exception`` on the way up treats it as a stage failure and writes results.
    """


_state = {"requested": False, "parent": None, "signal": None}


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Have the kernel send ``sig`` to this process when its parent exits (Linux; a no-op elsewhere)."""
    if _libc is not None:
        _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def grace_seconds() -> float:
    try:
        return max(float(os.environ.get("GENIE_STOP_GRACE_S", "6")), 0.0)
    except ValueError:
        return 6.0


def install_stop_handler() -> None:
    """Turn SIGTERM and SIGINT into a stop request; only the main thread may call this."""
    _state["parent"] = os.getppid()
    if _state["parent"] == 1:  # the parent died before we got here
        _state["requested"] = True
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


def _on_signal(signum, frame) -> None:
    if _state["requested"] and signum == signal.SIGINT and _state["signal"] == signal.SIGINT:
        os._exit(130)  # a second Ctrl-C: the user does not want to wait for the checkpoint
    if _state["requested"]:
        return
    _state["requested"], _state["signal"] = True, signum
    name = signal.Signals(signum).name
    print(
        f"[genie] {name} received: saving a checkpoint at the end of this step, then stopping "
        f"(at most {grace_seconds():.0f} s).",
        file=sys.stderr,
        flush=True,
    )
    timer = threading.Timer(grace_seconds(), os._exit, (EXIT_STOPPED,))
    timer.daemon = True
    timer.start()


def stop_requested() -> bool:
    """True after SIGTERM/SIGINT, or once the process that launched this one is gone."""
    if _state["requested"]:
        return True
    parent = _state["parent"]
    if parent is not None and os.getppid() != parent:
        _state["requested"] = True
    return bool(_state["requested"])


def quick_exit(code: int) -> None:
    """Exit now, skipping interpreter teardown: with torch loaded it takes seconds that a stopping process (and
    the person who pressed Ctrl-C) should not wait for. Everything worth keeping is written before this."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

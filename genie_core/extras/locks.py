"""One writer per output directory: a second process gets a clear error naming the one that holds it.

An advisory ``flock`` on ``<dir>/.genie.lock``: the kernel drops it when the holder exits, however it exits, so
a killed run never leaves a stale lock behind. The file keeps the holder's PID and command for the message.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

from genie_core.extras.errors import GenieError

LOCK_NAME = ".genie.lock"


class DirLocked(GenieError):
    """Another live process is writing the directory."""


class DirLock:
    """``with DirLock(path):`` holds the directory for this process; not re-entrant across processes."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fh: IO[str] | None = None

    def acquire(self) -> DirLock:
        if sys.platform == "win32":  # no flock; one writer is then the user's responsibility
            return self
        import fcntl

        self.directory.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise DirLocked(
                f"{self.directory} is being written by another process ({holder}). Wait for it to finish, "
                "stop it, or choose another output directory."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}: {' '.join(sys.argv)[:200]}")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the descriptor drops the flock
            self._fh = None

    def __enter__(self) -> DirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

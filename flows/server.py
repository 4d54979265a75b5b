"""The temporary Prefect server of a `genie run` with no ``PREFECT_API_URL``, out of the terminal's reach.

Prefect starts its own temporary server in the caller's process group, so Ctrl-C in the terminal kills the server
too, and the flow then spends minutes retrying a dead API while it tries to record the interruption. This one is
the same server (Prefect's ephemeral app under uvicorn), started in its own session with a parent-death signal:
Ctrl-C reaches only `genie run`, which records the interruption and stops the server itself; a SIGKILLed
`genie run` still takes the server down.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from genie_core.extras.errors import GenieError
from genie_core.extras.supervise import die_with_parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _command(port: int) -> list[str]:
    import importlib.util

    app_dir = Path(importlib.util.find_spec("prefect").origin).parent.parent  # found, not imported: seconds saved
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(app_dir),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


@dataclass
class StartedServer:
    """A server process that is booting; ``temporary_server`` waits for it and stops it."""

    proc: subprocess.Popen
    url: str
    log_path: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(log_path: Path) -> StartedServer:
    """Start the server process and return at once, importing nothing of Prefect: it boots (several seconds, with
    migrations on a new database) while the caller imports the flow and opens the MLflow store. The server reads
    the same environment, profile and PREFECT_HOME as the caller."""
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",  # no background services: this server lives for one flow run
        "PREFECT__SERVER_FINAL": "1",
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        proc = subprocess.Popen(
            _command(port),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    return StartedServer(proc, f"http://127.0.0.1:{port}/api", log_path)


@contextmanager
def temporary_server(started: StartedServer) -> Iterator[str]:
    """Wait for a started server, make it the active ``PREFECT_API_URL`` for the block, stop it afterwards."""
    try:
        import httpx
        from prefect.settings import (
            PREFECT_API_URL,
            PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
            temporary_settings,
        )

        timeout = float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
        _wait_healthy(started.proc, started.url, timeout, started.log_path, httpx)
        with temporary_settings({PREFECT_API_URL: started.url}):
            try:
                yield started.url
            finally:
                _drain_clients()
    finally:
        started.stop()


def _drain_clients() -> None:
    """Send the logs and events still queued while the server is up; at interpreter exit it would be gone and the
    workers would retry against it for minutes."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    try:
        APILogWorker.instance().drain()
    except RuntimeError:  # never started
        pass
    EventsWorker.drain_all(timeout=5)


def _wait_healthy(proc: subprocess.Popen, url: str, timeout: float, log_path: Path, httpx) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                if client.get(f"{url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise GenieError(
        f"the temporary Prefect server did not start within {timeout:.0f} s (see {log_path}); "
        "raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS or start one with `genie ui --prefect`."
    )

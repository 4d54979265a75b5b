"""`genie ui [--prefect]`: the MLflow UI over the pipeline runs (and Prefect's) on 127.0.0.1, until Ctrl-C.

    genie ui                      # MLflow on http://127.0.0.1:5000
    genie ui --prefect            # + a Prefect server on http://127.0.0.1:4200 (then export PREFECT_API_URL)

Both servers run in their own process groups, logs in ``<runs_dir>/ui-*.log``, and are stopped as groups when
this command ends (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from genie_core.extras.env import apply_quiet_env, runs_dir
from genie_core.tracking import UI_MODE, tracking_uri


def _start(cmd: list[str], log_file: Path, env: dict[str, str]) -> subprocess.Popen:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    fh = open(log_file, "ab")
    return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the server's process group (its workers too), SIGKILL after ``grace_s``."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="genie ui", description="Browse pipeline runs (MLflow) and flows (Prefect).")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine)")
    parser.add_argument("--port", type=int, default=5000, help="MLflow UI port")
    parser.add_argument("--prefect", action="store_true", help="also start a Prefect server (UI + scheduler)")
    parser.add_argument("--prefect-port", type=int, default=4200)
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for a server to come up")
    ns = parser.parse_args(argv)
    apply_quiet_env()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: list[tuple[str, subprocess.Popen]] = []
    uri = tracking_uri()
    logs = runs_dir()

    def shutdown(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, shutdown)
    try:
        if uri.startswith(("http://", "https://")):
            print(f"MLflow:  {uri}  (MLFLOW_TRACKING_URI points at a server; nothing to start)", flush=True)
        else:
            if uri.startswith("sqlite:///"):
                Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--registry-store-uri", uri]
            cmd += ["--host", ns.host, "--port", str(ns.port), "--workers", "1"]
            cmd += ["--artifacts-destination", str(logs / "mlartifacts")]
            proc = _start(cmd, logs / "ui-mlflow.log", env)
            procs.append(("MLflow", proc))
            url = f"http://{ns.host}:{ns.port}"
            if not _wait_healthy(f"{url}/health", proc, ns.timeout):
                print(f"error: the MLflow UI did not come up; see {logs / 'ui-mlflow.log'}", file=sys.stderr)
                return 1
            print(f"MLflow:  {url}/#/experiments{UI_MODE}   (store: {uri})", flush=True)
        if ns.prefect:
            cmd = [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                ns.host,
                "--port",
                str(ns.prefect_port),
            ]
            proc = _start(cmd, logs / "ui-prefect.log", {**env, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
            procs.append(("Prefect", proc))
            url = f"http://{ns.host}:{ns.prefect_port}"
            if not _wait_healthy(f"{url}/api/health", proc, ns.timeout):
                print(f"error: the Prefect server did not come up; see {logs / 'ui-prefect.log'}", file=sys.stderr)
                return 1
            print(f"Prefect: {url}   (for flows to report here: export PREFECT_API_URL={url}/api)", flush=True)
        if not procs:
            return 0
        print("Ctrl-C stops.", flush=True)
        while all(p.poll() is None for _, p in procs):
            time.sleep(1)
        name, dead = next((n, p) for n, p in procs if p.poll() is not None)
        print(f"error: the {name} server exited with code {dead.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for _, proc in procs:
            stop_group(proc)

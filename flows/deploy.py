"""`genie deploy`: register the scheduled pipeline deployments of ``deployments/prefect.yaml``.

    genie deploy                       # every deployment in deployments/prefect.yaml
    genie deploy --name nightly-sft    # one of them

The same as ``prefect --no-prompt deploy --all --prefect-file deployments/prefect.yaml`` run from the
repository root, after making sure the local ``process`` work pools it names exist. It needs a running Prefect
server (``PREFECT_API_URL``); the temporary one a plain ``genie run`` starts has no scheduler.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT / "deployments" / "prefect.yaml"


def work_pools(prefect_file: Path) -> list[str]:
    """The work pool names the deployments use."""
    data = yaml.safe_load(prefect_file.read_text(encoding="utf-8")) or {}
    names = []
    for dep in data.get("deployments") or []:
        pool = (dep.get("work_pool") or {}).get("name")
        if pool and pool not in names:
            names.append(pool)
    return names


def ensure_pool(name: str, env: dict[str, str]) -> None:
    """Create a local `process` work pool unless it exists (the deploy command refuses unknown pools)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return
        except ObjectNotFound:
            pass
    cmd = [sys.executable, "-m", "prefect", "--no-prompt", "work-pool", "create", name, "--type", "process"]
    subprocess.run(cmd, env=env, check=True, cwd=ROOT)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="genie deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=str(DEFAULT_FILE), help="prefect.yaml to deploy (default: %(default)s)")
    parser.add_argument("--name", action="append", help="deploy only this deployment (repeatable)")
    ns = parser.parse_args(argv)
    from genie_core.extras.env import apply_quiet_env

    apply_quiet_env()
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        print(
            "error: deployments live on a Prefect server. Start one (`genie ui --prefect` or `prefect server start "
            "--host 127.0.0.1`), then `export PREFECT_API_URL=http://127.0.0.1:4200/api` and run this again.",
            file=sys.stderr,
        )
        return 2
    prefect_file = Path(ns.file).resolve()
    if not prefect_file.is_file():
        print(f"error: {prefect_file} does not exist.", file=sys.stderr)
        return 2
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    for pool in work_pools(prefect_file):
        ensure_pool(pool, env)
    cmd = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--prefect-file", str(prefect_file)]
    cmd += [arg for name in ns.name for arg in ("--name", name)] if ns.name else ["--all"]
    # `{{ $PWD }}` in the pull step resolves here: the worker runs the flows from this checkout
    code = subprocess.run(cmd, env=env, cwd=ROOT).returncode
    if code == 0:
        pools = ", ".join(work_pools(prefect_file))
        print(f"\nDeployed to {api}. Runs start when a worker polls the pool: prefect worker start --pool {pools}")
    return code

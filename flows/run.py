"""`genie run PIPELINE.yaml [key=value ...] [stage.key=value ...]`: run a pipeline as one Prefect flow.

    genie run examples/pipelines/sft_smollm2.yaml
    genie run examples/pipelines/sft_smollm2.yaml learning_rate=1e-4 sft.max_steps=40

`key=value` applies to every stage, `stage.key=value` to one. Re-running the same command reuses every
finished stage, resumes an interrupted one from its last checkpoint and runs what follows.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

USAGE = """usage: genie run PIPELINE.yaml [key=value ...] [stage.key=value ...]
`key=value` sets a config key for every stage; `stage.key=value` for one stage.
Outputs go to $GENIE_RUNS_DIR/<pipeline>/ (default ~/.cache/llm-genie/runs); `genie ui` shows the MLflow runs.

The pipeline file's top-level keys: {pipeline_keys}.
Per step: {step_keys}; every other step key is a stage config key (`genie train --help` lists them)."""


def usage() -> str:
    from genie_core.pipeline.spec import PIPELINE_KEYS, STEP_KEYS

    steps = "; ".join(f"{kind}: {', '.join(keys)}" for kind, keys in STEP_KEYS.items())
    return USAGE.format(pipeline_keys=", ".join(PIPELINE_KEYS), step_keys=steps)


# Prefect's own INFO chatter (temporary server banner, engine internals) off; task and flow run lines stay
QUIET_PREFECT = {
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL": "INFO",
    "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "INFO",
}


def quiet_prefect() -> None:
    """Must run before Prefect is imported; the user's own settings win."""
    for key, value in QUIET_PREFECT.items():
        os.environ.setdefault(key, value)


def main(argv: list[str]) -> int:
    from genie_core.extras.env import apply_quiet_env
    from genie_core.hparams import parse_cli_tokens
    from genie_core.pipeline.plan import plan_pipeline
    from genie_core.pipeline.spec import load_pipeline

    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    apply_quiet_env()
    quiet_prefect()
    config, overrides = parse_cli_tokens(argv)
    if config is None:
        print(f"error: give a pipeline YAML first.\n{usage()}", file=sys.stderr)
        return 2
    spec = load_pipeline(config, overrides)  # structural errors now, before Prefect starts
    plans = plan_pipeline(spec)  # and every stage's config, model path and data, in under a second
    print(f"Pipeline {spec.name}: {' -> '.join(step.name for step in spec.steps)}", flush=True)
    from genie_core.pipeline.steps import warm_start

    try:
        with warm_start(plans):  # the stages' imports happen while the Prefect server boots and MLflow opens
            return _run(spec, config, overrides)
    except (_Interrupted, KeyboardInterrupt) as stop:
        from genie_core.extras.supervise import quick_exit

        if isinstance(stop, KeyboardInterrupt):  # before the flow began, or a second Ctrl-C while leaving the block
            print(f"\nPipeline {spec.name} interrupted.", file=sys.stderr)
        # the warm interpreter is stopped by now (leaving the block waits for it): exiting inside the block left it
        # to die of its parent-death signal just after this process, where whoever waits on us could still see it
        quick_exit(getattr(stop, "code", 130))  # the runs are recorded; interpreter teardown would take seconds
        raise  # not reached


class _Interrupted(Exception):
    """Ctrl-C or SIGTERM, reported; carries the exit status out of the warm interpreter's block."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _run(spec, config: str, overrides: dict | None) -> int:
    start = time.perf_counter()
    server = start_prefect_server()  # it boots while this process imports the flow and opens the MLflow store
    try:
        from prefect.exceptions import TerminationSignal

        from flows.pipelines import pipeline

        open_tracking(spec.experiment)
    except BaseException:
        if server is not None:
            server.stop()
        raise
    try:
        with prefect_api(server):
            state = pipeline(config, overrides, return_state=True)
    except (KeyboardInterrupt, TerminationSignal) as exc:
        code = 130 if isinstance(exc, KeyboardInterrupt) else 143
        print(
            f"\nPipeline {spec.name} interrupted; the stage's process tree was stopped. Run the same command "
            "again to resume from the last checkpoint.",
            file=sys.stderr,
        )
        raise _Interrupted(code) from None
    wall = time.perf_counter() - start
    if not state.is_completed():
        print(f"\nPipeline {spec.name} {state.name.lower()} after {wall:.0f} s: {state.message}", file=sys.stderr)
        print(
            "Fix the cause and run the same command again: finished stages are reused, an interrupted one "
            "resumes from its last checkpoint.",
            file=sys.stderr,
        )
        return 1
    print_summary(state.result(), wall)
    return 0


def start_prefect_server():
    """Our own temporary Prefect server, started now, unless ``PREFECT_API_URL`` names one."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    from flows.server import start_server
    from genie_core.extras.env import runs_dir

    print("Prefect: a temporary local server for this run (`genie ui --prefect` keeps one running).", flush=True)
    return start_server(runs_dir() / "prefect-server.log")


def open_tracking(experiment: str) -> None:
    """Import MLflow and create or migrate its store now, while the server boots; the flow then finds it ready.
    A store that cannot be opened is reported by the flow, as before."""
    from genie_core.tracking import get_tracker

    try:
        get_tracker(experiment)
    except Exception:  # noqa: BLE001 - the flow's own tracker call says what is wrong
        pass


@contextmanager
def prefect_api(server) -> Iterator[None]:
    """The configured Prefect API, or our temporary server (already started), which the terminal's Ctrl-C does not
    reach."""
    if server is None:
        yield
        return
    from flows.server import temporary_server

    with temporary_server(server):
        yield


def print_summary(summary: dict, wall: float) -> None:
    print(f"\nPipeline {summary['pipeline']} finished in {wall:.0f} s")
    for step in summary["steps"]:
        status = (
            f"ran {step['wall_s']:.0f} s"
            if step["ran"] and step.get("wall_s")
            else "ran"
            if step["ran"]
            else ("cached")
        )
        extra = ""
        if step.get("chosen"):
            extra = f"  chose {step['chosen']} -> {step['model_dir']}"
        elif step.get("version"):
            extra = f"  v{step['version']} {'promoted' if step['promoted'] else 'kept'}: {step['reason']}"
        elif step["metrics"]:
            keys = ("loss", "bleu-4", "accuracy", "reward_mean", "margin_mean")
            shown = {k: v for k, v in step["metrics"].items() if k.endswith(keys) and not k.startswith("eval/")}
            extra = "  " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(shown.items())[:4])
        print(f"  {step['name']:<12} {status:<10}{extra}")
    for step in summary["steps"]:
        if "comparison" in step:
            from genie_core.eval.comparison import format_table

            print(f"\n{step['name']}: {format_table(step['comparison'])}")
    print(f"\nOutputs:  {summary['runs_dir']}")
    where = summary["tracking_uri"]
    if where:
        url = summary["mlflow_url"] or "(nothing ran: the stages' own runs hold the results)"
        browse = "browse with `genie ui`, then " if where.startswith("sqlite:") else ""
        print(f"MLflow:   {where}\n          {browse}{url}")
    if os.environ.get("PREFECT_API_URL"):
        print(f"Prefect:  {os.environ['PREFECT_API_URL'].removesuffix('/api')}/runs/flow-run/{summary['flow_run_id']}")
    else:
        print("Prefect:  `genie ui --prefect` shows this and earlier flow runs")

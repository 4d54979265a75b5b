"""Experiment tracking behind a null object: MLflow when it is installed and on, nothing otherwise.

The only module of genie_core that imports mlflow (besides ``tracking_model``, the pyfunc code MLflow itself
loads), and only inside functions, so the library (and the training child) pays for it only when a run is
actually tracked. Two sides use it:

- the pipeline (parent) opens a run per pipeline and a child run per stage, logs the resolved config,
  results and artifacts, and registers exported models (``get_tracker``);
- the training child attaches to the stage run named by ``MLFLOW_RUN_ID`` and logs per-step metrics from
  rank 0 (``tracking_callbacks`` for Trainer-based stages, ``StepLogger`` for hand-written loops).

Runs are addressed by id through ``MlflowClient``, never through mlflow's thread-local "active run",
so a task on a worker thread or in another process logs to the right place.

The default store is ``sqlite:///<runs_dir>/mlflow.db`` (see ``genie_core.extras.env.runs_dir``): the same
file whatever the current directory. ``MLFLOW_TRACKING_URI`` points it elsewhere (a server, another file);
``GENIE_TRACKING=off`` turns tracking off.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from genie_core.extras.env import runs_dir
from genie_core.extras.logging import get_logger, is_main_process

logger = get_logger(__name__)

RUN_ID_ENV = "MLFLOW_RUN_ID"
URI_ENV = "MLFLOW_TRACKING_URI"
DEFAULT_EXPERIMENT = "llm-genie"
_PARAM_MAX = 6000  # mlflow's limit on a param value
_TAG_MAX = 5000  # comfortably under mlflow's tag value limit
_BATCH = 100  # mlflow accepts at most 100 params per log_batch
# MLflow 3 opens an untagged experiment as a GenAI one (an empty Traces page); ours are model training
EXPERIMENT_KIND = "mlflow.experimentKind"
EXPORT_DIR_TAG = "genie.export_dir"
# MLflow 3's UI picks GenAI or model-training pages from this URL parameter (else the browser's last choice,
# GenAI on a first visit); every link we print asks for model training
UI_MODE = "?workflowType=machine_learning"
EXPERIMENT_KIND_TAG = (EXPERIMENT_KIND, "custom_model_development")


def tracking_enabled() -> bool:
    return os.environ.get("GENIE_TRACKING", "on").lower() not in ("off", "0", "false", "no") and bool(
        importlib.util.find_spec("mlflow")
    )


def default_tracking_uri() -> str:
    return f"sqlite:///{runs_dir() / 'mlflow.db'}"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the sqlite file under the runs directory."""
    return os.environ.get(URI_ENV) or default_tracking_uri()


def _local_artifact_root(uri: str) -> str | None:
    """Artifacts of a sqlite store live next to its file; a server chooses for itself."""
    db = _sqlite_file(uri)
    return (db.parent / "mlartifacts").as_uri() if db else None


def _sqlite_file(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")).resolve() if uri.startswith("sqlite:///") else None


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"a.b": "value"}`` strings within mlflow's limits."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            out[name] = text[:_PARAM_MAX]
    return out


def numeric_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a metrics dict (mlflow rejects strings; NaN would hide the curve)."""
    out = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(float(value)):
            out[key] = float(value)
    return out


@dataclass
class ModelVersionInfo:
    name: str
    version: str
    source: str  # MLflow's: the logged model's artifacts for versions we register
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def export_dir(self) -> str:
        """The exported model directory itself (what `genie chat`/`genie api` load)."""
        return self.tags.get(EXPORT_DIR_TAG, self.source)


class Tracker(Protocol):
    enabled: bool

    def start_run(self, name: str, parent_run_id: str | None = None, tags: dict[str, str] | None = None) -> str: ...
    def end_run(self, run_id: str, status: str = "FINISHED") -> None: ...
    def log_params(self, run_id: str, params: dict[str, Any]) -> None: ...
    def log_metrics(self, run_id: str, metrics: dict[str, Any], step: int | None = None) -> None: ...
    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None: ...
    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None: ...
    def has_metric_history(self, run_id: str) -> bool: ...
    def last_step(self, run_id: str, key: str) -> int | None: ...
    def reopen_run(self, run_id: str) -> bool: ...
    def end_orphans(self, tags: dict[str, str]) -> list[str]: ...
    def run_url(self, run_id: str) -> str: ...
    def register_version(
        self, name: str, source: str, run_id: str | None = None, tags: dict[str, str] | None = None
    ) -> ModelVersionInfo | None: ...
    def get_alias(self, name: str, alias: str) -> ModelVersionInfo | None: ...
    def set_alias(self, name: str, alias: str, version: str) -> None: ...
    def find_version(self, name: str, tag: str, value: str) -> ModelVersionInfo | None: ...


class NullTracker:
    """Does nothing, so callers never branch on whether tracking is on."""

    enabled = False

    def start_run(self, name, parent_run_id=None, tags=None) -> str:
        return ""

    def end_run(self, run_id, status="FINISHED") -> None:
        pass

    def log_params(self, run_id, params) -> None:
        pass

    def log_metrics(self, run_id, metrics, step=None) -> None:
        pass

    def set_tags(self, run_id, tags) -> None:
        pass

    def log_artifact(self, run_id, path, artifact_path=None) -> None:
        pass

    def has_metric_history(self, run_id) -> bool:
        return False

    def last_step(self, run_id, key) -> int | None:
        return None

    def reopen_run(self, run_id) -> bool:
        return False

    def end_orphans(self, tags) -> list[str]:
        return []

    def run_url(self, run_id) -> str:
        return ""

    def register_version(self, name, source, run_id=None, tags=None) -> ModelVersionInfo | None:
        return None

    def get_alias(self, name, alias) -> ModelVersionInfo | None:
        return None

    def set_alias(self, name, alias, version) -> None:
        pass

    def find_version(self, name, tag, value) -> ModelVersionInfo | None:
        return None


def owner_tags() -> dict[str, str]:
    """Which process owns a run, so a later run can tell a live run from one whose process was killed."""
    import socket

    import psutil

    me = psutil.Process()
    return {"genie.host": socket.gethostname(), "genie.pid": str(me.pid), "genie.pid_start": f"{me.create_time():.2f}"}


def owner_alive(tags: dict[str, str]) -> bool:
    """False only when the owner ran on this host and that process (same pid and start time) is gone."""
    import socket

    import psutil

    if tags.get("genie.host") != socket.gethostname() or not tags.get("genie.pid"):
        return True  # another machine's run, or one that predates owner tags: not ours to judge
    try:
        proc = psutil.Process(int(tags["genie.pid"]))
        return f"{proc.create_time():.2f}" == tags.get("genie.pid_start") and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, ValueError):
        return False


def _quiet_mlflow_logs() -> None:
    # "Creating initial MLflow database tables..." and alembic's migration chatter on a new store
    for name in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent"):
        logging.getLogger(name).setLevel(logging.WARNING)


class MlflowTracker:
    """MLflow through ``MlflowClient`` with explicit run ids."""

    enabled = True

    def __init__(self, experiment: str = DEFAULT_EXPERIMENT, uri: str | None = None):
        from mlflow import MlflowClient

        _quiet_mlflow_logs()
        self.uri = uri or tracking_uri()
        self.experiment = experiment
        self._experiment_id: str | None = None
        db = _sqlite_file(self.uri)
        if db is None:
            self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
            return
        db.parent.mkdir(parents=True, exist_ok=True)
        from filelock import FileLock

        # A new sqlite store is created and migrated by whoever opens it first; two pipelines starting together
        # on a fresh store would both migrate it. One at a time, under a lock beside the file.
        with FileLock(f"{db}.lock"):
            if not db.exists():  # created here, so even the Default experiment keeps its artifacts beside the file
                from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

                SqlAlchemyStore(self.uri, _local_artifact_root(self.uri))
            self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
            self.client.search_experiments(max_results=1)
            self.client.search_registered_models(max_results=1)

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is not None:
                self._experiment_id = found.experiment_id
                if EXPERIMENT_KIND not in found.tags:  # made before we tagged them, or by someone else
                    self.client.set_experiment_tag(found.experiment_id, *EXPERIMENT_KIND_TAG)
            else:
                root = _local_artifact_root(self.uri)
                location = f"{root}/{self.experiment}" if root else None
                try:
                    self._experiment_id = self.client.create_experiment(
                        self.experiment, artifact_location=location, tags=dict([EXPERIMENT_KIND_TAG])
                    )
                except Exception:  # another process created it between our lookup and create
                    found = self.client.get_experiment_by_name(self.experiment)
                    if found is None:
                        raise
                    self._experiment_id = found.experiment_id
        return self._experiment_id

    # runs ------------------------------------------------------------------------------------------------------
    def start_run(self, name: str, parent_run_id: str | None = None, tags: dict[str, str] | None = None) -> str:
        all_tags = {k: str(v)[:_TAG_MAX] for k, v in {**owner_tags(), **(tags or {})}.items()}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id  # what the UI nests by
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        return run.info.run_id

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        if run_id:
            self.client.set_terminated(run_id, status=status)

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in flatten(params).items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(run_id, params=items[start : start + _BATCH])

    def log_metrics(self, run_id: str, metrics: dict[str, Any], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step or 0) for k, v in numeric_metrics(metrics).items()]
        if items:
            self.client.log_batch(run_id, metrics=items)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)[:_TAG_MAX]) for k, v in tags.items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(run_id, tags=items[start : start + _BATCH])

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(run_id, str(path), artifact_path)
        elif path.is_file():
            self.client.log_artifact(run_id, str(path), artifact_path)

    def has_metric_history(self, run_id: str) -> bool:
        return bool(self.client.get_run(run_id).data.metrics)

    def last_step(self, run_id: str, key: str) -> int | None:
        history = self.client.get_metric_history(run_id, key)
        return max((m.step for m in history), default=None)

    def reopen_run(self, run_id: str) -> bool:
        """Mark an earlier run of a resumed stage RUNNING again, so one stage keeps one run and one history."""
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return False
        if run.info.lifecycle_stage != "active" or run.info.experiment_id != self.experiment_id:
            return False
        before = run.data.tags.get("genie.error") or run.data.tags.get("genie.status") or ""
        self.client.update_run(run_id, status="RUNNING")
        for key in ("genie.error", "genie.status"):  # they described the attempt that ended; this one goes on
            if key in run.data.tags:
                self.client.delete_tag(run_id, key)
        self.set_tags(run_id, {**owner_tags(), "genie.resumed_after": f"{run.info.status}: {before}"[:_TAG_MAX]})
        return True

    def end_orphans(self, tags: dict[str, str]) -> list[str]:
        """End as KILLED the RUNNING runs carrying ``tags`` whose owning process is gone (SIGKILL, OOM, a crash)."""
        where = " and ".join(["attributes.status = 'RUNNING'", *(f"tags.`{k}` = '{v}'" for k, v in tags.items())])
        ended = []
        for run in self.client.search_runs([self.experiment_id], where, max_results=500):
            if not owner_alive(run.data.tags):
                self.client.set_tag(run.info.run_id, "genie.status", "orphaned: its process died while it ran")
                self.client.set_terminated(run.info.run_id, status="KILLED")
                ended.append(run.info.run_id)
        if ended:
            logger.info("Marked %d run(s) KILLED whose process died while they ran.", len(ended))
        return ended

    def run_url(self, run_id: str) -> str:
        base = self.uri if self.uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
        return f"{base.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{run_id}{UI_MODE}"

    # model registry ----------------------------------------------------------------------------------------------
    def register_version(
        self, name: str, source: str, run_id: str | None = None, tags: dict[str, str] | None = None
    ) -> ModelVersionInfo:
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise
        tags = {k: str(v) for k, v in (tags or {}).items()}
        model = self.log_export_model(name, source, run_id)
        tags[EXPORT_DIR_TAG] = str(Path(source).resolve())
        mv = self.client.create_model_version(
            name, source=model.artifact_location, run_id=run_id or None, tags=tags, model_id=model.model_id
        )
        return ModelVersionInfo(name, str(mv.version), mv.source, mv.run_id, dict(mv.tags or tags))

    def log_export_model(self, name: str, export_dir: str, run_id: str | None = None):
        """An MLflow logged model (pyfunc, from ``tracking_model``) that loads ``export_dir`` where it lives.

        The registry page then shows a loadable model (``mlflow.pyfunc.load_model("models:/NAME/1")``) whose
        weights are not copied into the artifact store a second time.
        """
        import tempfile

        import mlflow.pyfunc
        from mlflow.entities import LoggedModelStatus
        from mlflow.models import infer_signature

        model = self.client.create_logged_model(
            self.experiment_id, name=name, source_run_id=run_id or None, model_type="genie-export"
        )
        code = Path(__file__).with_name("tracking_model.py")
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.pyfunc.save_model(
                f"{tmp}/model",
                python_model=str(code),
                model_config={"export_dir": str(Path(export_dir).resolve())},
                signature=infer_signature(["a prompt"], ["a reply"], params={"max_new_tokens": 128}),
                pip_requirements=["torch", "transformers", "mlflow"],  # no environment inference: it is slow
            )
            self.client.log_model_artifacts(model.model_id, f"{tmp}/model")
        return self.client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)

    def get_alias(self, name: str, alias: str) -> ModelVersionInfo | None:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None
        return ModelVersionInfo(name, str(mv.version), mv.source, mv.run_id, dict(mv.tags or {}))

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))

    def find_version(self, name: str, tag: str, value: str) -> ModelVersionInfo | None:
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.search_model_versions(f"name = '{name}' and tags.`{tag}` = '{value}'")
        except MlflowException:
            return None
        if not found:
            return None
        mv = max(found, key=lambda v: int(v.version))
        return ModelVersionInfo(name, str(mv.version), mv.source, mv.run_id, dict(mv.tags or {}))


def get_tracker(experiment: str | None = None) -> Tracker:
    """An ``MlflowTracker`` for ``experiment``, or a ``NullTracker`` when tracking is off or mlflow is missing."""
    if not tracking_enabled():
        return NullTracker()
    return MlflowTracker(experiment or DEFAULT_EXPERIMENT)


# ---- child side -----------------------------------------------------------------------------------------------


class StepLogger:
    """Per-step metrics into the stage run named by ``MLFLOW_RUN_ID``; a no-op off rank 0 or without a run.

    Logging never stops training: after the first failure it warns once and turns itself off.
    """

    def __init__(self, run_id: str | None = None):
        self.run_id = run_id if run_id is not None else os.environ.get(RUN_ID_ENV, "")
        self.enabled = bool(self.run_id) and is_main_process() and tracking_enabled()
        self._client = None
        self._logged_before: dict[str, int] = {}  # per key, the last step an earlier attempt of this run logged

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if not self.enabled:
            return
        values = numeric_metrics(metrics)
        if not values:
            return
        try:
            from mlflow.entities import Metric

            if self._client is None:
                from mlflow import MlflowClient

                _quiet_mlflow_logs()
                self._client = MlflowClient(tracking_uri=tracking_uri())
            values = {k: v for k, v in values.items() if step > self._before(k)}
            if not values:
                return
            now = int(time.time() * 1000)
            self._client.log_batch(self.run_id, metrics=[Metric(k, v, now, int(step)) for k, v in values.items()])
        except Exception as exc:  # the run may be gone or the server down; training goes on
            logger.warning("Metric logging to run %s failed (%s); continuing without it.", self.run_id, exc)
            self.enabled = False

    def _before(self, key: str) -> int:
        """A resumed stage re-runs the steps after its checkpoint; the ones already in the history stay as they are,
        so each step appears once."""
        if key not in self._logged_before:
            history = self._client.get_metric_history(self.run_id, key)
            self._logged_before[key] = max((m.step for m in history), default=-1)
        return self._logged_before[key]


_CALLBACK_CLASS = None


def _callback_class():
    """Built on first use so importing this module never imports transformers."""
    global _CALLBACK_CLASS
    if _CALLBACK_CLASS is None:
        from transformers import TrainerCallback

        class MetricsCallback(TrainerCallback):
            """Sends every ``Trainer.log`` record (loss, lr, eval_*, reward...) to the stage run."""

            def __init__(self, step_logger: StepLogger):
                self.step_logger = step_logger

            def on_log(self, args, state, control, logs=None, **kwargs):
                self.step_logger.log(logs or {}, state.global_step)

        _CALLBACK_CLASS = MetricsCallback
    return _CALLBACK_CLASS


def tracking_callbacks() -> list:
    """Trainer callbacks that log to the stage run, or none when this process is not attached to one."""
    step_logger = StepLogger()
    if not step_logger.enabled:
        return []
    return [_callback_class()(step_logger)]

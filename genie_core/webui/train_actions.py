"""What the Train tab's buttons do, on the form as a ``{field: value}`` dict.

Start and the command preview share ``prepare``: the preview shows the very ``Planned`` run (YAML and command)
that Start would write and run. Save writes the same pipeline YAML; Load, and selecting a past run, put a
stage config back into the fields.
"""

from __future__ import annotations

import html
import shlex
from pathlib import Path
from typing import Any

from genie_core.extras.errors import ConfigError, GenieError
from genie_core.webui import board_state, run_config, runs
from genie_core.webui.common import Roots
from genie_core.webui.form import ALL_FIELDS, form_from_config
from genie_core.webui.model_list import model_choices
from genie_core.webui.run_index import list_runs, open_run

RECENT_RUNS_READ = 20  # runs whose models the model dropdown offers


def _error(exc: Exception) -> str:
    return f"**Error:** {html.escape(str(exc))}"


def stage_config_of(values: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """(stage config, run name, experiment) of the form; the reward model only counts for ppo."""
    form = {k: v for k, v in values.items() if k not in ("run_name", "experiment", "extra")}
    if form.get("stage") != "ppo":
        form.pop("reward_model", None)
    config = run_config.stage_config(form, values.get("extra") or "")
    return config, str(values.get("run_name") or ""), str(values.get("experiment") or "")


def prepare(roots: Roots, values: dict[str, Any]) -> runs.Planned:
    """Check the form as Start does (paths, config, datasets) and plan the run: what Start writes and runs."""
    config, name, experiment = stage_config_of(values)
    config = roots.check_config(config)
    run_config.check_config(config)
    return runs.plan_run(config, name, experiment)


def start(roots: Roots, values: dict[str, Any]) -> tuple[str, runs.Submission | None]:
    try:
        sub = runs.launch(prepare(roots, values))
    except GenieError as exc:
        return _error(exc), None
    board_state.remember_model(values.get("model_name_or_path"))
    board_state.save_form(values)
    message = (
        f"Started **{sub.name}** (process {sub.pid}). It runs on its own: closing this page does not stop it. "
        f"Pipeline: `{sub.folder / runs.PIPELINE_FILE}`"
    )
    return message, sub


def command_preview(roots: Roots, values: dict[str, Any]) -> str:
    """The `genie run` command and pipeline YAML Start would run now, as Markdown."""
    try:
        planned = prepare(roots, values)
    except GenieError as exc:
        return _error(exc)
    note = "" if values.get("run_name") else " (no run name given: Start names the run when clicked)"
    return (
        f"Start runs `genie run {planned.yaml_path}`{note}, as:\n\n"
        f"```bash\n{shlex.join(planned.command)}\n```\n\n"
        f"`{planned.yaml_path.name}`:\n\n```yaml\n{planned.yaml_text}```"
    )


def args_path(roots: Roots, typed: str | None, values: dict[str, Any], must_exist: bool) -> Path:
    """The arguments file: the typed path (under the roots) or the default one named after the run."""
    if (typed or "").strip():
        path = roots.check(typed, "arguments file", must_exist=must_exist, is_dir=False)
        if must_exist and not path.is_file():
            raise ConfigError(f"arguments file: {path} is not a file.")
        return path
    return board_state.default_args_path(values.get("run_name"), values.get("stage"))


def save_args(roots: Roots, values: dict[str, Any], typed: str | None) -> tuple[str, str]:
    """Write the form as a pipeline file (`genie run` runs it as it is); returns (message, path)."""
    try:
        path = args_path(roots, typed, values, must_exist=False)
        if path.suffix not in (".yaml", ".yml"):
            raise ConfigError(f"arguments file: {path} must end in .yaml.")
        config, name, experiment = stage_config_of(values)
        name = runs.check_name(name or path.stem)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(run_config.pipeline_yaml(run_config.pipeline_dict(name, config, experiment), path), "utf-8")
    except (GenieError, OSError) as exc:
        return _error(exc), typed or ""
    return f"Saved the arguments to `{path}`.", str(path)


def load_args(roots: Roots, values: dict[str, Any], typed: str | None) -> tuple[dict[str, Any] | None, str]:
    """(field values read from the arguments file, message); (None, message) when it cannot be read."""
    try:
        path = args_path(roots, typed, values, must_exist=True)
        if not path.is_file():
            raise ConfigError(f"arguments file: {path} does not exist; Save first, or type a path.")
        config, name, experiment = run_config.read_arguments(path)
    except GenieError as exc:
        return None, _error(exc)
    board_state.remember_model(config.get("model_name_or_path"))
    return form_from_config(config, name, experiment), f"Loaded the arguments of `{path}`."


def restore_run(run_id: str | None) -> tuple[dict[str, Any] | None, str]:
    """(the run's settings as field values, message)."""
    if not run_id:
        return None, "No run selected."
    try:
        settings = open_run(run_id).settings()
    except GenieError as exc:
        return None, _error(exc)
    values = form_from_config(settings.config, settings.name, settings.experiment)
    return values, f"The form now holds the settings of **{run_id}**; Start runs them again under a new name."


def persist(values: dict[str, Any]) -> None:
    """Keep the form for the next page load; a failure to write must not disturb the page."""
    try:
        board_state.save_form({k: values[k] for k in ALL_FIELDS if k in values})
    except OSError:
        pass


def models_offered() -> list[tuple[str, str]]:
    """The model dropdown's choices: pulled models, then the board's recent models and those of recent runs."""
    recent = board_state.recent_models()
    for ref in list_runs()[:RECENT_RUNS_READ]:
        try:
            model = ref.settings().config.get("model_name_or_path")
        except GenieError:
            continue
        if isinstance(model, str):
            recent.append(model)
    return model_choices(recent)

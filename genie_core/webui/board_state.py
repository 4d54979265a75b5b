"""What the board remembers between page loads, as small files next to its runs (``<runs_dir>/webui``).

    board_form.json      the Train tab's last field values: a reload (or another browser) finds the form as left
    recent_models.json   models the board started runs with or loaded, newest first
    saved/<name>.yaml    arguments saved with Save (pipeline files: `genie run` runs them as they are)

Every write goes to a temporary file renamed into place, so a page reading while another writes sees the old or
the new file, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from genie_core.webui.form import merge_saved
from genie_core.webui.runs import check_name, submissions_dir

FORM_FILE, RECENT_FILE, SAVED_DIR = "board_form.json", "recent_models.json", "saved"
RECENT_KEPT = 10


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def save_form(values: dict[str, Any]) -> None:
    _write(submissions_dir() / FORM_FILE, values)


def load_form() -> dict[str, Any]:
    """The last saved field values over a fresh form (fields added since fall back to their defaults)."""
    saved = _read(submissions_dir() / FORM_FILE)
    return merge_saved(saved if isinstance(saved, dict) else {})


def remember_model(model: str | None) -> None:
    model = (model or "").strip()
    if model:
        kept = [m for m in recent_models() if m != model]
        _write(submissions_dir() / RECENT_FILE, [model, *kept][:RECENT_KEPT])


def recent_models() -> list[str]:
    saved = _read(submissions_dir() / RECENT_FILE)
    return [str(m) for m in saved if isinstance(m, str)] if isinstance(saved, list) else []


def default_args_path(run_name: str | None, stage: str | None) -> Path:
    """Where Save writes (and Load reads) when no path is given: named after the run, or after the stage."""
    name = check_name((run_name or "").strip() or f"webui-{stage or 'sft'}")
    return submissions_dir() / SAVED_DIR / f"{name}.yaml"

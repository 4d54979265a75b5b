"""The model dropdown and its choices: the `genie models pull` registry (pulled or not) and recently used models.

The dropdown stays editable, so any model folder can still be typed in; these are only the ones worth a click.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from genie_core.model.pull import PULLABLE, is_pulled, models_dir, smollm2_dir

# where each pullable name lands once pulled; a name without an entry is offered as "pulled on first use"
PULLED_DIRS: dict[str, Callable[[], Path]] = {"smollm2": smollm2_dir}


def pulled_choices() -> list[tuple[str, str]]:
    """(label, value) for every pullable name, then for any other model folder under the pulled-models folder."""
    out: list[tuple[str, str]] = []
    known: set[Path] = set()
    for name in PULLABLE:
        where = PULLED_DIRS.get(name)
        folder = where() if where else None
        if folder is not None and is_pulled(folder):
            out.append((f"{name} (pulled)", name))
            known.add(folder.resolve())
        else:
            out.append((f"{name} (not pulled yet: fetched on first use)", name))
    root = models_dir()
    others = sorted(p for p in root.iterdir() if p.is_dir() and is_pulled(p)) if root.is_dir() else []
    out += [(str(p), str(p)) for p in others if p.resolve() not in known]
    return out


def model_choices(recent: Iterable[str]) -> list[tuple[str, str]]:
    """Pulled models first, then recently used ones that still exist (a pullable name always does), no repeats."""
    out = pulled_choices()
    seen = {value for _, value in out}
    for model in recent:
        model = (model or "").strip()
        if not model or model in seen:
            continue
        if model in PULLABLE or Path(model).expanduser().exists():
            out.append((model, model))
            seen.add(model)
    return out


def model_box(elem_id: str, value: str = ""):
    """An editable dropdown: pick a pulled or recent model, or type any folder."""
    import gradio as gr

    return gr.Dropdown(
        choices=[],
        value=value or None,
        allow_custom_value=True,
        label="Model: pick a pulled or recent one, or type a folder",
        elem_id=elem_id,
        scale=3,
    )

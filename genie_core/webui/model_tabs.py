"""The board's Chat and Export tabs: load a model with its adapters (typed in, or what the selected run trained),
chat with it, or merge and save it with ``genie_core.export``."""

from __future__ import annotations

import html
import threading
from typing import Any

from genie_core.extras.errors import GenieError
from genie_core.webui.common import Roots
from genie_core.webui.run_index import open_run

MODEL_KEYS = ("model_name_or_path", "checkpoint_dir", "template", "finetuning_type")


class EngineSlot:
    """The one chat engine a board holds; loading another closes the previous one."""

    def __init__(self) -> None:
        self.engine = None
        self._lock = threading.Lock()

    def get(self):
        if self.engine is None:
            raise GenieError("load a model first (Load, above).")
        return self.engine

    def load(self, overrides: dict[str, Any]) -> str:
        from genie_core.chat.engine import ChatEngine
        from genie_core.hparams import get_args

        args = get_args(None, {**overrides, "output_dir": "unused-by-chat"})
        with self._lock:
            self.unload()
            self.engine = ChatEngine.from_args(args)
            return f"Loaded **{self.engine.model_name}** (template `{self.engine.template.name}`)."

    def unload(self) -> str:
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        return "No model loaded."


def _error(exc: Exception) -> str:
    return f"**Error:** {html.escape(str(exc))}"


def model_config(roots: Roots, model: str, checkpoints: str, template: str, ftype: str) -> dict[str, Any]:
    """The model keys of a form, each path checked against the roots."""
    config = {"model_name_or_path": roots.check_model(model), "finetuning_type": ftype or "lora"}
    adapters = roots.check_many(checkpoints, "adapter")
    if adapters:
        config["checkpoint_dir"] = ",".join(adapters)
    if template and template != "auto":
        config["template"] = template
    return config


def from_run(name: str | None):
    """The model fields filled in with what run ``name`` trained, and a message."""
    import gradio as gr

    keep = [gr.update()] * len(MODEL_KEYS)
    if not name:
        return [*keep, "Select a run on the Train tab first."]
    try:
        target = open_run(name).chat_target()
    except GenieError as exc:
        return [*keep, _error(exc)]
    target["template"] = target["template"] or "auto"
    return [*(target[k] for k in MODEL_KEYS), f"Filled in from **{name}**."]


def model_fields(prefix: str) -> list:
    import gradio as gr

    from genie_core.template import list_templates
    from genie_core.webui.model_list import model_box

    with gr.Row():
        model = model_box(f"{prefix}model")
        checkpoints = gr.Textbox(label="Adapters (checkpoint_dir, comma-separated)", elem_id=f"{prefix}checkpoints")
        template = gr.Dropdown(list_templates(), value="auto", label="Template", elem_id=f"{prefix}template")
        ftype = gr.Radio(["lora", "freeze", "full"], value="lora", label="Tuning method", elem_id=f"{prefix}ftype")
    return [model, checkpoints, template, ftype]


def chat_tab(roots: Roots, slot: EngineSlot, run):
    """Lay out the tab; returns its model box (the board fills in its choices when a page loads)."""
    import gradio as gr

    from genie_core.webui.chat_page import chat_panel

    fields = model_fields("chat_")
    with gr.Row():
        use_run = gr.Button("Use the selected run", elem_id="chat_use_run")
        load = gr.Button("Load", variant="primary", elem_id="chat_load")
        unload = gr.Button("Unload", elem_id="chat_unload")
    message = gr.Markdown("No model loaded.", elem_id="chat_message")

    def do_load(*values):
        try:
            return slot.load(model_config(roots, *values))
        except GenieError as exc:
            return _error(exc)

    use_run.click(from_run, run, [*fields, message])
    load.click(do_load, fields, message)
    unload.click(slot.unload, None, message)
    chat_panel(slot.get, prefix="chat_")
    return fields[0]


def export_tab(roots: Roots, run):
    """Lay out the tab; returns its model box."""
    import gradio as gr

    fields = model_fields("export_")
    with gr.Row():
        out = gr.Textbox(label="Export to (a new folder)", elem_id="export_dir", scale=3)
        size = gr.Number(2.0, label="export_size (GB per shard)")
        ollama = gr.Checkbox(False, label="Ollama Modelfile")
    with gr.Row():
        use_run = gr.Button("Use the selected run", elem_id="export_use_run")
        go = gr.Button("Export", variant="primary", elem_id="export_button")
    message = gr.Markdown(elem_id="export_message")

    def do_export(model, checkpoints, template, ftype, out_dir, export_size, export_ollama):
        from genie_core.export import ExportArguments, export_model
        from genie_core.hparams import get_args

        try:
            config = model_config(roots, model, checkpoints, template, ftype)
            config["output_dir"] = str(roots.check(out_dir, "export folder", must_exist=False))
            args = get_args(None, config)
            path = export_model(args, ExportArguments(float(export_size), bool(export_ollama)))
        except GenieError as exc:
            return _error(exc)
        return f"Exported to `{path}`."

    use_run.click(from_run, run, [*fields, message])
    go.click(do_export, [*fields, out, size, ollama], message)
    return fields[0]

"""The board's Train tab: model, template, dataset (with a preview), stage, tuning method, hyper-parameters; Start
submits a detached pipeline run (see ``runs``), the command preview shows exactly what Start runs, Save and Load
keep the arguments in a file, and the lower half watches the selected run from its files (see ``run_panel``).

The form survives a page reload (``board_state``), and selecting a run in the list puts its settings in the form.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from genie_core.extras.errors import GenieError
from genie_core.webui import board_state, run_panel, train_actions
from genie_core.webui.common import Roots
from genie_core.webui.form import QUANTIZATION_CHOICES, choices_of, defaults
from genie_core.webui.model_list import model_box

WATCH_EVERY_S = 2.0
PRE_STYLE = "white-space: pre-wrap; border: 1px solid #d4d4d8; border-radius: 4px; padding: 6px; margin: 4px 0 10px;"
DROPPED_STYLE = " color: #b91c1c;"
_TOKENIZERS: dict[str, Any] = {}


def _error(exc: Exception) -> str:
    return f"**Error:** {html.escape(str(exc))}"


def _tokenizer(model: str):
    """The model's tokenizer for the preview, loaded once per model."""
    if model not in _TOKENIZERS:
        from genie_core.hparams.model_args import ModelArguments
        from genie_core.model import load_tokenizer

        _TOKENIZERS[model] = load_tokenizer(ModelArguments(model_name_or_path=model))
    return _TOKENIZERS[model]


def runs_datasets(roots: Roots, dataset_dir: str) -> list[str]:
    from genie_core.webui.preview import list_datasets

    return list_datasets(roots.check(dataset_dir, "dataset folder"))


def dataset_choices(roots: Roots, dataset_dir: str, chosen: list[str] | None, keep_missing: bool = False):
    """The dataset dropdown for ``dataset_dir`` and a message; names not in the folder are dropped, or kept (and
    named in the message) when ``keep_missing``, so restored settings show what the run used."""
    import gradio as gr

    chosen = list(chosen or [])
    try:
        names = runs_datasets(roots, dataset_dir)
    except GenieError as exc:
        return gr.update(choices=chosen if keep_missing else [], value=chosen if keep_missing else []), _error(exc)
    missing = [n for n in chosen if n not in names]
    note = f"{len(names)} datasets in `{dataset_dir}`."
    if keep_missing and missing:
        note += f" Not in it: {', '.join(missing)}."
        return gr.update(choices=names + missing, value=chosen), note
    return gr.update(choices=names, value=[n for n in chosen if n in names]), note


def preview(roots: Roots, model: str, template: str, dataset_dir: str, names: list[str], stage: str) -> str:
    """A few rows of each chosen dataset as the model will see them, as HTML."""
    from genie_core.webui.preview import preview_rows

    try:
        if not names:
            raise GenieError("choose a dataset first.")
        folder = roots.check(dataset_dir, "dataset folder")
        tokenizer = None
        if (model or "").strip():
            tokenizer = _tokenizer(roots.check_model(model))
        elif template in (None, "", "auto"):
            raise GenieError("template auto uses the model's tokenizer: enter the model first, or pick a template.")
        rows = preview_rows(folder, list(names), template, stage, tokenizer)
    except GenieError as exc:
        return _error(exc)
    shown = [
        f'<div class="genie-preview-row"><b>{html.escape(r.dataset)}</b> <code>{html.escape(r.source)}</code>'
        f"<pre style='{PRE_STYLE}{DROPPED_STYLE if r.dropped else ''}'>{html.escape(r.text)}</pre></div>"
        for r in rows
    ]
    note = (
        ""
        if (model or "").strip()
        else "<p>bos/eos shown as &lt;s&gt;/&lt;/s&gt;; enter the model to see its own.</p>"
    )
    return note + ("".join(shown) or "<p>No rows.</p>")


@dataclass
class TrainTab:
    """The components other parts of the board read or fill: the form's fields, the run list, the model box."""

    fields: dict[str, Any]
    data_note: Any
    run: Any

    def form_updates(self, roots: Roots, values: dict[str, Any], keep_missing: bool, models=None) -> list:
        """Updates for every field (in ``fields`` order) and the data note, setting the form to ``values``; the
        model box gets ``models`` as its choices when given."""
        import gradio as gr

        datasets, note = dataset_choices(roots, values["dataset_dir"], values["dataset"], keep_missing)
        out = {key: values[key] for key in self.fields}
        out["dataset"] = datasets
        out["model_name_or_path"] = gr.update(value=values["model_name_or_path"] or None)
        if models is not None:
            out["model_name_or_path"] = gr.update(value=values["model_name_or_path"] or None, choices=models)
        return [*out.values(), note]

    def on_page_load(self, demo, roots: Roots, model_boxes: list) -> None:
        """Fill the form as it was left, list the runs (newest selected) and offer the models, on every page load."""
        import gradio as gr

        def load():
            runs_list = run_panel.run_choices()
            models = train_actions.models_offered()
            return (
                *self.form_updates(roots, board_state.load_form(), keep_missing=False, models=models),
                gr.update(choices=runs_list, value=runs_list[0][1] if runs_list else None),
                *[gr.update(choices=models)] * len(model_boxes),
            )

        demo.load(load, None, [*self.fields.values(), self.data_note, self.run, *model_boxes])


def train_tab(roots: Roots) -> TrainTab:
    """Lay out the tab inside the current ``gr.Blocks``."""
    import gradio as gr

    from genie_core.template import list_templates

    d = defaults()
    f: dict[str, Any] = {}
    with gr.Row():
        f["model_name_or_path"] = model_box("model")
        f["template"] = gr.Dropdown(list_templates(), value=d["template"], label="Template", elem_id="template")
        f["checkpoint_dir"] = gr.Textbox(label="Start from adapter (optional)", elem_id="checkpoint_dir", scale=2)
    with gr.Row():
        f["dataset_dir"] = gr.Textbox(value=d["dataset_dir"], label="Dataset folder", elem_id="dataset_dir")
        f["dataset"] = gr.Dropdown([], multiselect=True, label="Dataset", elem_id="dataset", scale=2)
        preview_button = gr.Button("Preview", elem_id="preview_button", scale=0)
    data_note = gr.Markdown(elem_id="data_note")
    preview_box = gr.HTML(elem_id="preview")
    with gr.Row():
        f["stage"] = gr.Radio(choices_of("stage"), value=d["stage"], label="Stage", elem_id="stage")
        f["finetuning_type"] = gr.Radio(
            choices_of("finetuning_type"), value=d["finetuning_type"], label="Tuning method", elem_id="finetuning_type"
        )
        f["quantization_bit"] = gr.Dropdown(
            QUANTIZATION_CHOICES, value=d["quantization_bit"], label="quantization_bit", elem_id="quantization_bit"
        )
    with gr.Accordion("Hyper-parameters", open=True):
        with gr.Row():
            f["learning_rate"] = gr.Number(d["learning_rate"], label="learning_rate", elem_id="learning_rate")
            f["num_train_epochs"] = gr.Number(
                d["num_train_epochs"], label="num_train_epochs", elem_id="num_train_epochs"
            )
            f["max_steps"] = gr.Number(d["max_steps"], precision=0, label="max_steps (0: epochs)", elem_id="max_steps")
            f["lr_scheduler_type"] = gr.Dropdown(
                choices_of("lr_scheduler_type"), value=d["lr_scheduler_type"], label="lr_scheduler_type"
            )
        with gr.Row():
            f["per_device_train_batch_size"] = gr.Number(
                d["per_device_train_batch_size"], precision=0, label="batch size per device", elem_id="batch_size"
            )
            f["gradient_accumulation_steps"] = gr.Number(
                d["gradient_accumulation_steps"], precision=0, label="gradient_accumulation_steps"
            )
            f["cutoff_len"] = gr.Number(d["cutoff_len"], precision=0, label="cutoff_len", elem_id="cutoff_len")
            f["max_samples"] = gr.Number(
                d["max_samples"], precision=0, label="max_samples (0: all)", elem_id="max_samples"
            )
        with gr.Row():
            f["val_size"] = gr.Number(d["val_size"], label="val_size (0: none)", elem_id="val_size")
            f["logging_steps"] = gr.Number(
                d["logging_steps"], precision=0, label="logging_steps", elem_id="logging_steps"
            )
            f["save_steps"] = gr.Number(
                d["save_steps"], precision=0, label="save_steps (0: no checkpoints)", elem_id="save_steps"
            )
        with gr.Row():
            f["lora_rank"] = gr.Number(d["lora_rank"], precision=0, label="lora_rank", elem_id="lora_rank")
            f["lora_alpha"] = gr.Number(d["lora_alpha"], label="lora_alpha (0: 2 x rank)")
            f["lora_dropout"] = gr.Number(d["lora_dropout"], label="lora_dropout")
            f["lora_target"] = gr.Textbox(label="lora_target (empty: the family's default)")
        f["reward_model"] = gr.Textbox(label="reward_model (ppo: an rm stage's output folder)")
        f["extra"] = gr.Textbox(label="More stage config keys (YAML, `key: value` lines)", lines=2, elem_id="extra")
    with gr.Row():
        f["run_name"] = gr.Textbox(label="Run name (empty: webui-<stage>-<time>)", elem_id="run_name")
        f["experiment"] = gr.Textbox(value=d["experiment"], label="MLflow experiment", elem_id="experiment")
    with gr.Row():
        args_file = gr.Textbox(
            label="Arguments file (empty: runs folder/webui/saved/<run name>.yaml)", elem_id="args_path", scale=3
        )
        save_button = gr.Button("Save arguments", elem_id="save_args", scale=0)
        load_button = gr.Button("Load arguments", elem_id="load_args", scale=0)
        command_button = gr.Button("Preview command", elem_id="preview_command", scale=0)
    with gr.Row():
        start_button = gr.Button("Start", variant="primary", elem_id="start")
        stop_button = gr.Button("Stop", variant="stop", elem_id="stop")
    message = gr.Markdown(elem_id="message")
    command_box = gr.Markdown(elem_id="command_preview")
    with gr.Row():
        run = gr.Dropdown([], label="Run (selecting one puts its settings in the form)", elem_id="run", scale=3)
        refresh = gr.Button("Refresh", elem_id="refresh", scale=0)
    status = gr.Markdown(elem_id="run_status")
    progress = gr.HTML(elem_id="run_progress")
    curve = gr.LinePlot(x="step", y="value", color="series", label="Loss", elem_id="loss_plot", height=260)
    log = gr.HTML(elem_id="log_tail")

    tab = TrainTab(f, data_note, run)
    keys, fields = list(f), list(f.values())
    form_outputs = [*fields, data_note]

    def as_dict(values: tuple) -> dict[str, Any]:
        return dict(zip(keys, values))

    def start(*values):
        text, sub = train_actions.start(roots, as_dict(values))
        if sub is None:
            return text, gr.update()
        return text, gr.update(choices=run_panel.run_choices(), value=sub.name)

    def save(typed, *values):
        return train_actions.save_args(roots, as_dict(values), typed)

    def load(typed, *values):
        loaded, text = train_actions.load_args(roots, as_dict(values), typed)
        if loaded is None:
            return [gr.update()] * len(form_outputs) + [text]
        return [*tab.form_updates(roots, loaded, keep_missing=True), text]

    def restore(run_id):
        restored, text = train_actions.restore_run(run_id)
        if restored is None:
            return [gr.update()] * len(form_outputs) + [text]
        return [*tab.form_updates(roots, restored, keep_missing=True), text]

    datasets_in = [f["dataset_dir"], f["dataset"]]
    f["dataset_dir"].blur(lambda d, c: dataset_choices(roots, d, c), datasets_in, [f["dataset"], data_note])
    f["dataset_dir"].submit(lambda d, c: dataset_choices(roots, d, c), datasets_in, [f["dataset"], data_note])
    preview_inputs = [f[k] for k in ("model_name_or_path", "template", "dataset_dir", "dataset", "stage")]
    preview_button.click(lambda *v: preview(roots, *v), preview_inputs, preview_box)
    start_button.click(start, fields, [message, run], concurrency_limit=1)
    command_button.click(lambda *v: train_actions.command_preview(roots, as_dict(v)), fields, command_box)
    save_button.click(save, [args_file, *fields], [message, args_file])
    load_button.click(load, [args_file, *fields], [*form_outputs, message])
    stop_button.click(run_panel.stop, run, message)
    gr.on(
        [field.change for field in fields],
        lambda *v: train_actions.persist(as_dict(v)),
        fields,
        None,
        trigger_mode="always_last",
        show_progress="hidden",
    )
    watched = [status, progress, curve, log]
    run.input(restore, run, [*form_outputs, message])  # a user's pick, not the list's own updates
    run.change(run_panel.watch, run, watched)
    refresh.click(lambda: gr.update(choices=run_panel.run_choices()), None, run).then(run_panel.watch, run, watched)
    gr.Timer(WATCH_EVERY_S).tick(run_panel.watch, run, watched, show_progress="hidden")
    return tab

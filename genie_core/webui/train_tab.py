"""The board's Train tab: model, template, dataset (with a preview), stage, tuning method, hyper-parameters; Start
submits a detached pipeline run (see ``runs``) and the lower half watches the selected run from its files."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from genie_core.extras.errors import GenieError
from genie_core.webui import run_config, runs
from genie_core.webui.common import PROJECT_DATA, Roots

STAGES = ["sft", "pt", "rm", "dpo", "ppo"]
METHODS = ["lora", "freeze", "full"]
SCHEDULERS = ["linear", "cosine", "constant", "constant_with_warmup", "polynomial"]
WATCH_EVERY_S = 2.0
PRE_STYLE = "white-space: pre-wrap; border: 1px solid #d4d4d8; border-radius: 4px; padding: 6px; margin: 4px 0 10px;"
DROPPED_STYLE = " color: #b91c1c;"
_TOKENIZERS: dict[str, Any] = {}


def default_dataset_dir() -> str:
    return "data" if Path("data/dataset_info.json").is_file() or not PROJECT_DATA.is_dir() else str(PROJECT_DATA)


def _error(exc: Exception) -> str:
    return f"**Error:** {html.escape(str(exc))}"


def _tokenizer(model: str):
    """The model's tokenizer for the preview, loaded once per model."""
    if model not in _TOKENIZERS:
        from genie_core.hparams.model_args import ModelArguments
        from genie_core.model import load_tokenizer

        _TOKENIZERS[model] = load_tokenizer(ModelArguments(model_name_or_path=model))
    return _TOKENIZERS[model]


def dataset_choices(roots: Roots, dataset_dir: str, chosen: list[str] | None):
    """The dataset dropdown for ``dataset_dir`` (keeping the choices that still exist) and a message."""
    import gradio as gr

    try:
        names = runs_datasets(roots, dataset_dir)
    except GenieError as exc:
        return gr.update(choices=[], value=[]), _error(exc)
    kept = [n for n in chosen or [] if n in names]
    return gr.update(choices=names, value=kept), f"{len(names)} datasets in `{dataset_dir}`."


def runs_datasets(roots: Roots, dataset_dir: str) -> list[str]:
    from genie_core.webui.preview import list_datasets

    return list_datasets(roots.check(dataset_dir, "dataset folder"))


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


def start(roots: Roots, keys: list[str], values: tuple) -> tuple[str, Any]:
    """Check the form, write the pipeline and start it; returns (message, runs dropdown update)."""
    import gradio as gr

    form = dict(zip(keys, values))
    name, experiment, extra = form.pop("run_name"), form.pop("experiment"), form.pop("extra")
    if form.get("stage") != "ppo":
        form.pop("reward_model", None)
    try:
        config = roots.check_config(run_config.stage_config(form, extra))
        run_config.check_config(config)
        sub = runs.submit(config, name, experiment)
    except GenieError as exc:
        return _error(exc), gr.update()
    message = (
        f"Started **{sub.name}** (process {sub.pid}). It runs on its own: closing this page does not stop it. "
        f"Pipeline: `{sub.folder / runs.PIPELINE_FILE}`"
    )
    return message, gr.update(choices=runs.list_submissions(), value=sub.name)


def watch(name: str | None):
    """Status line, loss curve and log tail of the run ``name``."""
    import pandas as pd

    empty = pd.DataFrame({"step": [], "value": [], "series": []})
    if not name:
        return "No run selected.", empty, ""
    try:
        sub = runs.Submission.load(name)
    except GenieError as exc:
        return _error(exc), empty, ""
    state = runs.status(sub)
    points = runs.loss_points(sub)
    losses = [p for p in points if p["series"] == "loss"]
    parts = [f"**{sub.name}**: {state}"]
    done = runs.progress(sub)
    if done:
        parts.append(f"step {done[0]}/{done[1]}")
    if losses:
        parts.append(f"last loss {losses[-1]['value']:.4g} at step {losses[-1]['step']} ({len(points)} loss points)")
    result = runs.read_result(sub)
    if result and result.get("mlflow_run_id"):
        parts.append(f"MLflow run `{result['mlflow_run_id']}`")
    folder = runs.stage_dir(sub)
    line = " · ".join(parts) + (f"  \nOutput: `{folder}`" if folder else "")
    return line, pd.DataFrame(points) if points else empty, runs.log_tail(sub)


def stop(name: str | None) -> str:
    if not name:
        return "No run selected."
    try:
        return runs.stop(runs.Submission.load(name))
    except GenieError as exc:
        return _error(exc)


def train_tab(roots: Roots):
    """Lay out the tab inside the current ``gr.Blocks``; returns the runs dropdown (other tabs read it)."""
    import gradio as gr

    from genie_core.template import list_templates

    f: dict[str, Any] = {}
    with gr.Row():
        f["model_name_or_path"] = gr.Textbox(label="Model folder (or smollm2)", elem_id="model", scale=3)
        f["template"] = gr.Dropdown(list_templates(), value="auto", label="Template", elem_id="template")
        f["checkpoint_dir"] = gr.Textbox(label="Start from adapter (optional)", elem_id="checkpoint_dir", scale=2)
    with gr.Row():
        f["dataset_dir"] = gr.Textbox(value=default_dataset_dir(), label="Dataset folder", elem_id="dataset_dir")
        f["dataset"] = gr.Dropdown([], multiselect=True, label="Dataset", elem_id="dataset", scale=2)
        preview_button = gr.Button("Preview", elem_id="preview_button", scale=0)
    data_note = gr.Markdown(elem_id="data_note")
    preview_box = gr.HTML(elem_id="preview")
    with gr.Row():
        f["stage"] = gr.Radio(STAGES, value="sft", label="Stage", elem_id="stage")
        f["finetuning_type"] = gr.Radio(METHODS, value="lora", label="Tuning method", elem_id="finetuning_type")
        f["quantization_bit"] = gr.Dropdown(["none", "8", "4"], value="none", label="quantization_bit")
    with gr.Accordion("Hyper-parameters", open=True):
        with gr.Row():
            f["learning_rate"] = gr.Number(2e-4, label="learning_rate", elem_id="learning_rate")
            f["num_train_epochs"] = gr.Number(1.0, label="num_train_epochs", elem_id="num_train_epochs")
            f["max_steps"] = gr.Number(0, precision=0, label="max_steps (0: epochs)", elem_id="max_steps")
            f["lr_scheduler_type"] = gr.Dropdown(SCHEDULERS, value="cosine", label="lr_scheduler_type")
        with gr.Row():
            f["per_device_train_batch_size"] = gr.Number(4, precision=0, label="batch size per device")
            f["gradient_accumulation_steps"] = gr.Number(1, precision=0, label="gradient_accumulation_steps")
            f["cutoff_len"] = gr.Number(1024, precision=0, label="cutoff_len", elem_id="cutoff_len")
            f["max_samples"] = gr.Number(0, precision=0, label="max_samples (0: all)", elem_id="max_samples")
        with gr.Row():
            f["val_size"] = gr.Number(0, label="val_size (0: none)")
            f["logging_steps"] = gr.Number(5, precision=0, label="logging_steps", elem_id="logging_steps")
            f["save_steps"] = gr.Number(100, precision=0, label="save_steps (0: no checkpoints)", elem_id="save_steps")
        with gr.Row():
            f["lora_rank"] = gr.Number(8, precision=0, label="lora_rank")
            f["lora_alpha"] = gr.Number(0, label="lora_alpha (0: 2 x rank)")
            f["lora_dropout"] = gr.Number(0.1, label="lora_dropout")
            f["lora_target"] = gr.Textbox(label="lora_target (empty: the family's default)")
        f["reward_model"] = gr.Textbox(label="reward_model (ppo: an rm stage's output folder)")
        f["extra"] = gr.Textbox(label="More stage config keys (YAML, `key: value` lines)", lines=2, elem_id="extra")
    with gr.Row():
        f["run_name"] = gr.Textbox(label="Run name (empty: webui-<stage>-<time>)", elem_id="run_name")
        f["experiment"] = gr.Textbox(value="llm-genie", label="MLflow experiment", elem_id="experiment")
    with gr.Row():
        start_button = gr.Button("Start", variant="primary", elem_id="start")
        stop_button = gr.Button("Stop", variant="stop", elem_id="stop")
    message = gr.Markdown(elem_id="message")
    with gr.Row():
        run = gr.Dropdown(runs.list_submissions(), label="Run", elem_id="run", scale=3)
        refresh = gr.Button("Refresh", elem_id="refresh", scale=0)
    status = gr.Markdown(elem_id="run_status")
    curve = gr.LinePlot(x="step", y="value", color="series", label="Loss", elem_id="loss_plot", height=260)
    log = gr.Textbox(label="Log (last lines)", lines=12, max_lines=12, autoscroll=True, elem_id="log_tail")

    keys = list(f)
    datasets_in = [f["dataset_dir"], f["dataset"]]
    f["dataset_dir"].blur(lambda d, c: dataset_choices(roots, d, c), datasets_in, [f["dataset"], data_note])
    f["dataset_dir"].submit(lambda d, c: dataset_choices(roots, d, c), datasets_in, [f["dataset"], data_note])
    preview_inputs = [f[k] for k in ("model_name_or_path", "template", "dataset_dir", "dataset", "stage")]
    preview_button.click(lambda *v: preview(roots, *v), preview_inputs, preview_box)
    start_button.click(lambda *v: start(roots, keys, v), list(f.values()), [message, run], concurrency_limit=1)
    stop_button.click(stop, run, message)
    outputs = [status, curve, log]
    run.change(watch, run, outputs)
    refresh.click(lambda: gr.update(choices=runs.list_submissions()), None, run).then(watch, run, outputs)
    gr.Timer(WATCH_EVERY_S).tick(watch, run, outputs, show_progress="hidden")
    return f["dataset_dir"], f["dataset"], data_note, run

"""`genie webui`: the training board in the browser.

    genie webui [--host 127.0.0.1] [--port 7861] [--roots DIR,DIR]

Train: pick a model (pulled or recent, or type a folder), template, dataset (with a preview of formatted rows),
stage, tuning method and the common hyper-parameters, whose defaults are the stage's own; Start writes a one-stage
pipeline YAML and runs it with `genie run` as a detached process, so closing the page never stalls or kills
training, and the run is recorded in Prefect and MLflow like any other. Preview command shows that YAML and
command; Save and Load keep the arguments in a file; the form survives a reload. The run list holds every run in
the runs directory, the board's and `genie run`'s alike; selecting one puts its settings in the form, and the tab
follows it: status, phase and progress with ETA, live loss curve, the log's last lines, Stop. Chat and Export work
on a model with its adapters, or on what the selected run trained. Only paths under the roots are accepted
(default: the current directory, the project's data folder and GENIE_HOME; the runs directory always).
"""

from __future__ import annotations

import argparse
import sys
import threading

from genie_core.webui.common import Roots, serve, set_gradio_env

TITLE = "LLM-Genie training board"


def build_board(roots: Roots | None = None):
    """The board as a ``gr.Blocks``, accepting paths under ``roots``."""
    set_gradio_env()
    import gradio as gr

    from genie_core.webui.model_tabs import EngineSlot, chat_tab, export_tab
    from genie_core.webui.train_tab import train_tab

    roots = roots or Roots.from_spec(None)
    slot = EngineSlot()
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"## {TITLE}\nAllowed folders: {roots.describe()}", elem_id="roots")
        with gr.Tab("Train"):
            tab = train_tab(roots)
        with gr.Tab("Chat"):
            chat_model = chat_tab(roots, slot, tab.run)
        with gr.Tab("Export"):
            export_model = export_tab(roots, tab.run)
        tab.on_page_load(demo, roots, [chat_model, export_model])
    return demo


def warm_up() -> None:
    """Import what Preview and Start need (transformers, the config dataclasses) before a click waits for it."""
    import genie_core.model  # noqa: F401
    import genie_core.stage_parent  # noqa: F401
    from genie_core.hparams.parser import valid_keys

    valid_keys()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="genie webui", description="The training board in the browser.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it)")
    parser.add_argument("--port", type=int, default=7861, help="TCP port (default 7861)")
    parser.add_argument(
        "--roots",
        default="",
        help="comma-separated folders the page may read and write (default: the current directory, the project's "
        "data folder and GENIE_HOME; the runs directory is always allowed)",
    )
    ns = parser.parse_args(argv)
    roots = Roots.from_spec(ns.roots)
    print(f"Allowed folders: {roots.describe()}", flush=True)
    threading.Thread(target=warm_up, daemon=True, name="warm-up").start()
    serve(build_board(roots), ns.host, ns.port)
    return 0


if __name__ == "__main__":
    from genie_core.extras.entry import run_main

    sys.exit(run_main(main))  # same environment and error handling as the `genie` command

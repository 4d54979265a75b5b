"""`genie webchat`: chat with a model (+ adapters) in the browser, the reply streamed as it is generated.

    genie webchat --model_name_or_path smollm2 --template chatml [--checkpoint_dir saves/sft] [--port 7860]

Model, adapter, template and generating options are those of `genie chat`; the page has a system prompt, the
generating arguments as sliders and a Clear button. Binds 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from genie_core.chat.args import help_lines, parse_infer_args
from genie_core.extras.errors import GenieError
from genie_core.hparams import GeneratingArguments
from genie_core.webui.common import serve, set_gradio_env

USAGE = """usage: genie webchat [CONFIG.yaml] --model_name_or_path M [--template T] [--checkpoint_dir A[,B]] \
[--finetuning_type lora|full|freeze] [--quantization_bit 4|8] [--default_system TEXT] \
[--do_sample --temperature --top_p --top_k --max_new_tokens --repetition_penalty] [--host H] [--port N]
Page options:
"""


@dataclass
class PageArguments:
    host: str = field(default="127.0.0.1", metadata={"help": "Address to bind; 0.0.0.0 exposes the page."})
    port: int = field(default=7860, metadata={"help": "TCP port."})


def to_messages(history: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Gradio's chat history -> our user/assistant messages (text only)."""
    out = []
    for turn in history or []:
        role = turn.get("role")
        if role in ("user", "assistant"):
            out.append({"role": role, "content": _text(turn.get("content"))})
    return out


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("value") or "")
    if isinstance(content, (list, tuple)):
        return "".join(_text(part) for part in content)
    return "" if content is None else str(content)


def stream_reply(
    engine, history: list[dict[str, Any]], query: str, system: str, generation: dict[str, Any]
) -> Iterator[list[dict[str, Any]]]:
    """The history with the user's turn and the reply so far, once per generated piece of text."""
    messages = [*to_messages(history), {"role": "user", "content": query}]
    shown = [*history, {"role": "user", "content": query}, {"role": "assistant", "content": ""}]
    yield shown
    for delta in engine.stream_chat(messages, system.strip() or None, **generation):
        shown[-1] = {"role": "assistant", "content": shown[-1]["content"] + delta}
        yield shown


def chat_panel(get_engine: Callable[[], Any], generating: GeneratingArguments | None = None, prefix: str = "") -> None:
    """System prompt, chat, input, Send/Clear and generating sliders, inside the current ``gr.Blocks``.

    ``get_engine`` returns the engine to use or raises ``GenieError`` (shown in the page) when there is none;
    ``prefix`` keeps element ids unique when a page holds several panels.
    """
    import gradio as gr

    g = generating or GeneratingArguments()
    system = gr.Textbox(label="System prompt (empty: the template's default)", lines=2, elem_id=f"{prefix}system")
    chatbot = gr.Chatbot(label="Chat", elem_id=f"{prefix}chatbot", height=380)
    with gr.Row():
        query = gr.Textbox(show_label=False, placeholder="Type a message", scale=8, elem_id=f"{prefix}query")
        send = gr.Button("Send", variant="primary", scale=1, elem_id=f"{prefix}send")
        clear = gr.Button("Clear", scale=1, elem_id=f"{prefix}clear")
    with gr.Accordion("Generating arguments", open=False):
        with gr.Row():
            do_sample = gr.Checkbox(value=g.do_sample, label="do_sample (off: greedy)")
            max_new_tokens = gr.Slider(1, 4096, value=g.max_new_tokens, step=1, label="max_new_tokens")
            temperature = gr.Slider(0.01, 2.0, value=g.temperature, step=0.01, label="temperature")
        with gr.Row():
            top_p = gr.Slider(0.01, 1.0, value=g.top_p, step=0.01, label="top_p")
            top_k = gr.Slider(0, 200, value=g.top_k, step=1, label="top_k (0: off)")
            repetition_penalty = gr.Slider(1.0, 2.0, value=g.repetition_penalty, step=0.01, label="repetition_penalty")

    def respond(message, history, system_text, sample, max_new, temp, p, k, penalty):
        if not (message or "").strip():
            yield "", history
            return
        generation = {
            "do_sample": bool(sample),
            "max_new_tokens": int(max_new),
            "temperature": float(temp),
            "top_p": float(p),
            "top_k": int(k),
            "repetition_penalty": float(penalty),
        }
        try:
            engine = get_engine()
            for shown in stream_reply(engine, history or [], message, system_text or "", generation):
                yield "", shown
        except GenieError as exc:  # EngineBusy is one too
            raise gr.Error(str(exc)) from None

    inputs = [query, chatbot, system, do_sample, max_new_tokens, temperature, top_p, top_k, repetition_penalty]
    query.submit(respond, inputs, [query, chatbot])
    send.click(respond, inputs, [query, chatbot])
    clear.click(lambda: ("", []), None, [query, chatbot])


def build_chat_page(engine, title: str | None = None):
    """The `genie webchat` page for a loaded ``ChatEngine``."""
    set_gradio_env()
    import gradio as gr

    title = title or f"Chat with {engine.model_name}"
    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"## {title}\nTemplate `{engine.template.name}`.")
        chat_panel(lambda: engine, engine.generating)
    return demo


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE + help_lines(PageArguments))
        return 0 if argv else 2
    args, (page,) = parse_infer_args(argv, PageArguments)
    from genie_core.chat.engine import ChatEngine

    engine = ChatEngine.from_args(args)
    try:
        serve(build_chat_page(engine), page.host, page.port)
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    from genie_core.extras.entry import run_main

    sys.exit(run_main(main))  # same environment and error handling as the `genie` command

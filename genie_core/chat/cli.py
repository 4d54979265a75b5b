"""`genie chat`: talk to a model (+ adapters) in the terminal, with the reply streamed as it is generated.

    genie chat --model_name_or_path smollm2 --template chatml [--checkpoint_dir saves/sft] [--default_system ...]

Reads lines from stdin, so it also works from a pipe: ``clear`` starts a new conversation, ``exit`` (or end of
input) quits.
"""

from __future__ import annotations

import sys

from genie_core.chat.args import parse_infer_args
from genie_core.extras.errors import GenieError
from genie_core.schema import Message

USAGE = """usage: genie chat [CONFIG.yaml] --model_name_or_path M [--template T] [--checkpoint_dir A[,B]] \
[--finetuning_type lora|full|freeze] [--quantization_bit 4|8] [--default_system TEXT] \
[--do_sample --temperature --top_p --top_k --max_new_tokens --repetition_penalty]
In the chat: `clear` resets the history, `exit` quits."""
WELCOME = "Chat with {name} (template {template}). Type `clear` to reset the history, `exit` to quit."


def repl(engine, read=input, write=None) -> int:
    """Run the read-reply loop until ``exit`` or end of input; returns the number of replies given."""
    write = write or _write
    history: list[Message] = []
    replies = 0
    while True:
        write("\nUser: ")  # input() would send its prompt to stderr on a terminal
        try:
            line = read("")
        except EOFError:
            write("\n")
            break
        except KeyboardInterrupt:
            write("\n")
            break
        query = line.strip()
        if not query:
            continue
        if query.lower() == "exit":
            break
        if query.lower() == "clear":
            history = []
            write("History cleared.\n")
            continue
        write("Assistant: ")
        reply = ""
        try:
            for delta in engine.stream_chat([*history, {"role": "user", "content": query}]):
                write(delta)
                reply += delta
        except KeyboardInterrupt:
            write(" [interrupted]")
        except GenieError as exc:
            write(f"\n[error] {exc}\n")
            continue
        write("\n")
        history += [{"role": "user", "content": query}, {"role": "assistant", "content": reply}]
        replies += 1
    return replies


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    args, _ = parse_infer_args(argv)
    from genie_core.chat.engine import ChatEngine

    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="replace")  # a stray byte from the terminal must not end the session
    engine = ChatEngine.from_args(args)
    try:
        print(WELCOME.format(name=engine.model_name, template=engine.template.name), flush=True)
        repl(engine)
    finally:
        engine.close()
    return 0

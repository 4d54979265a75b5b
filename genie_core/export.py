"""`genie export`: merge LoRA adapters into the base and save a standalone model directory.

    genie export --model_name_or_path smollm2 --template chatml --checkpoint_dir saves/sft --output_dir exported \
        [--export_size 2] [--export_ollama true]

The directory holds safetensors shards of at most ``export_size`` GB, the tokenizer with a chat template that writes
exactly what the training template wrote, a generation config with the template's stop tokens and the generating
arguments, ``genie_export.json`` (which template and adapters made it) and, on request, an Ollama ``Modelfile``.
Everything is written to a temporary directory beside ``output_dir`` and renamed into place at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from genie_core.chat.args import help_lines, parse_infer_args
from genie_core.extras.errors import ConfigError
from genie_core.extras.logging import get_logger
from genie_core.hparams.parser import skip_unused_quantizer
from genie_core.template.base import Template, _fill

if TYPE_CHECKING:
    import torch

logger = get_logger(__name__)

USAGE = """usage: genie export [CONFIG.yaml] --model_name_or_path M --template T [--checkpoint_dir A[,B]] \
--output_dir DIR [options]
Model and adapter options are the same as for `genie train`; generating options go into generation_config.json.
"""


@dataclass
class ExportArguments:
    export_size: float = field(default=2.0, metadata={"help": "Largest safetensors shard, in GB."})
    export_ollama: bool = field(default=False, metadata={"help": "Also write an Ollama Modelfile for the template."})

    def __post_init__(self) -> None:
        if self.export_size <= 0:
            raise ConfigError(f"export_size must be > 0 (GB per shard), got {self.export_size}.")


def check_export(args) -> Path:
    """Everything that can be refused before a model is loaded; returns the output directory."""
    out = Path(args.training.output_dir)
    if args.model.quantization_bit is not None:
        raise ConfigError(
            f"quantization_bit={args.model.quantization_bit}: a 4/8-bit base cannot be merged exactly. Drop "
            "quantization_bit; the base is then loaded in compute_dtype and the (Q)LoRA adapter merges into it."
        )
    config_file = Path(str(args.model.model_name_or_path)) / "config.json"
    if config_file.is_file():
        try:
            quant = json.loads(config_file.read_text(encoding="utf-8")).get("quantization_config")
        except (OSError, ValueError):
            quant = None
        if quant:
            method = quant.get("quant_method", "unknown") if isinstance(quant, dict) else "unknown"
            raise ConfigError(
                f"model_name_or_path: {config_file.parent} is a quantized checkpoint ({method}); adapters cannot be "
                "merged into it exactly. Export from the full-precision base model the adapter was trained on."
            )
    if out.exists() and any(out.iterdir()) and not args.finetuning.overwrite_output_dir:
        raise ConfigError(f"output_dir: {out} is not empty; choose a new directory or set overwrite_output_dir: true.")
    if args.finetuning.finetuning_type == "lora" and not args.model.adapter_dirs:
        logger.warning("No checkpoint_dir given: exporting the base model with nothing merged into it.")
    return out


def checkpoint_dtype(name_or_path) -> torch.dtype | None:
    """The 16-bit dtype a local checkpoint's config.json declares, else None (float32 or unknown: keep float32)."""
    import torch

    from genie_core.model.loader import resolve_model_path

    path, gguf_file = resolve_model_path(str(name_or_path))  # pulled names (smollm2) and ~ too; hub ids: None
    if gguf_file:
        return None
    try:
        config = json.loads((Path(path).expanduser() / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    declared = config.get("dtype") or config.get("torch_dtype")
    return {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(str(declared))


def _cast_weights(model, dtype) -> None:
    """Cast the parameters to ``dtype`` except those the model class keeps in float32, as its own 16-bit load would:
    the strict list always (MoE router weights, ``gate.weight``), the other only for float16."""
    import torch

    keep = list(getattr(model, "_keep_in_fp32_modules_strict", None) or [])
    if dtype == torch.float16:
        keep += list(getattr(model, "_keep_in_fp32_modules", None) or [])
    for name, param in model.named_parameters():
        if param.is_floating_point() and not any(f".{k}." in f".{name}." for k in keep):
            param.data = param.data.to(dtype)


def export_model(args, export_args: ExportArguments | None = None) -> Path:
    """Merge, save and atomically publish the model to ``args.training.output_dir``; returns that path."""
    from genie_core.chat.engine import EXPORT_INFO_FILE, load_inference_tokenizer  # torch: not for --help
    from genie_core.model import load_model

    export_args = export_args or ExportArguments()
    out = check_export(args)
    tokenizer, template = load_inference_tokenizer(args)
    saved_dtype = None
    if args.model.compute_dtype in (None, "auto") and not args.model.gguf_file:  # merge in float32, save in the
        saved_dtype = checkpoint_dtype(args.model.model_name_or_path)  # base's dtype: the same file on CPU and GPU
        args.model.compute_dtype = "float32"
    model = load_model(tokenizer, args.model, args.finetuning, is_trainable=False)
    if hasattr(model, "peft_config"):
        raise ConfigError("the adapters could not be merged into the base; export needs a full-precision base.")
    if saved_dtype is not None:
        logger.info(
            "Merged in float32; saving in the base's %s (compute_dtype: bfloat16 merges in half the memory).",
            str(saved_dtype).removeprefix("torch."),
        )
        _cast_weights(model, saved_dtype)

    stop_ids = template.get_stop_token_ids(tokenizer)
    _set_generation_config(model, tokenizer, stop_ids, args.generating)
    if type(template) is Template:  # a named template: ship it as jinja so other tools format chats the same way
        tokenizer.chat_template = template_to_jinja(template)

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    work.chmod(0o777 & ~_umask())  # mkdtemp makes it private (0700); an export is for others to read
    try:
        shard_bytes = max(int(export_args.export_size * 1e9), 1)
        logger.info("Saving merged model to %s (shards up to %.2f GB)", out, export_args.export_size)
        model.save_pretrained(work, max_shard_size=shard_bytes)
        tokenizer.padding_side = "left"  # what generation with a batch wants
        tokenizer.save_pretrained(work)
        info = {
            "template": template.name,
            "base_model": args.model.model_name_or_path,
            "adapters": args.model.adapter_dirs,
            "finetuning_type": args.finetuning.finetuning_type,
            "stop_token_ids": stop_ids,
        }
        (work / EXPORT_INFO_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False), encoding="utf-8")
        if export_args.export_ollama:
            (work / "Modelfile").write_text(ollama_modelfile(template, tokenizer, args.generating), encoding="utf-8")
        _publish(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("Exported to %s", out)
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(work: Path, out: Path) -> None:
    """Swap the finished directory into place; an old export is only removed once the new one is there."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(work, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _set_generation_config(model, tokenizer, stop_ids: list[int], generating) -> None:
    config = model.generation_config
    config.eos_token_id = stop_ids if len(stop_ids) > 1 else (stop_ids[0] if stop_ids else None)
    config.pad_token_id = tokenizer.pad_token_id
    if tokenizer.bos_token_id is not None:
        config.bos_token_id = tokenizer.bos_token_id
    config.max_new_tokens = generating.max_new_tokens
    config.repetition_penalty = generating.repetition_penalty
    config.do_sample = generating.do_sample
    if generating.do_sample:
        config.temperature, config.top_p, config.top_k = generating.temperature, generating.top_p, generating.top_k
    else:  # sampling settings on a greedy config are refused when it is saved
        config.temperature = config.top_p = config.top_k = None


# ---- chat template as jinja ---------------------------------------------------------------------------------


def _lit(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _expr(fmt: str, **slots: str) -> str:
    """A jinja expression for a format string: literals quoted, slots as the given expressions, markers by name."""
    parts: list[str] = []
    names = {name: f"\x00{name}\x00" for name in slots}
    for piece in _fill(fmt, {name: marker for name, marker in names.items()}):
        if isinstance(piece, str):
            for k, chunk in enumerate(piece.split("\x00")):
                if k % 2 == 1:
                    parts.append(f"({slots[chunk]})")
                elif chunk:
                    parts.append(_lit(chunk))
        elif piece.kind == "token":
            parts.append(_lit(piece.token))
        else:
            parts.append(f"{piece.kind}_token")
    return " ~ ".join(parts) if parts else '""'


def template_to_jinja(template: Template) -> str:
    """A chat template for ``tokenizer.apply_chat_template`` that renders what ``template.render`` renders.

    Messages use HF roles (system first, user, assistant with optional ``tool_calls``, tool); ``tools`` is a list of
    function definitions (bare or in OpenAI's ``{"type": "function", "function": ...}`` wrapper).
    """
    t = template
    tools_in_prefix, tools_in_system = "{{tools}}" in t.prefix, "{{tools}}" in t.system_format
    lines = [
        "{%- set ns = namespace(system=" + _lit(t.default_system) + ", offset=0, fns=[]) -%}",
        "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{%- set ns.system = messages[0]['content'] -%}{%- set ns.offset = 1 -%}{%- endif -%}",
        "{%- for tool in (tools or []) -%}"
        "{%- set ns.fns = ns.fns + [tool['function'] if tool['function'] is defined else tool] -%}{%- endfor -%}",
        "{%- set tools_block = (" + _expr(t.tools_format, tools="ns.fns | tojson") + ") if ns.fns else '' -%}",
    ]
    if tools_in_prefix:
        sys_expr = _expr(t.system_format, system="ns.system")
        lines.append("{%- set sys_block = (" + sys_expr + ") if ns.system else '' -%}")
    elif tools_in_system:
        sys_expr = _expr(t.system_format, system="ns.system", tools="tools_block")
        lines.append("{%- set sys_block = (" + sys_expr + ") if (ns.system or tools_block) else '' -%}")
    else:
        lines.append(
            "{%- set body = ns.system ~ ('\\n\\n' if ns.system and tools_block else '') ~ tools_block -%}"
            "{%- set sys_block = (" + _expr(t.system_format, system="body") + ") if body else '' -%}"
        )
    lines.append("{{- " + _expr(t.prefix, tools="tools_block" if tools_in_prefix else "''") + " -}}")
    if not t.system_in_user:
        lines.append("{{- sys_block -}}")
    user_content = "message['content']"
    if t.system_in_user:
        user_content = "(sys_block if loop.first else '') ~ " + user_content
    call = "{'name': c['function']['name'], 'arguments': c['function']['arguments']}"
    lines += [
        "{%- set turns = messages[ns.offset:] -%}",
        "{%- for message in turns -%}",
        "{%- set idx = (loop.index0 // 2 + 1) | string -%}",
        "{%- if loop.index0 % 2 == 0 -%}",
        "{%- if not loop.first -%}{{- " + _expr(t.separator) + " -}}{%- endif -%}",
        "{%- set content = " + user_content + " -%}",
        "{%- if message['role'] == 'tool' -%}{{- "
        + _expr(t.observation_format, content="content", idx="idx")
        + " -}}{%- else -%}{{- "
        + _expr(t.user_format, content="content", idx="idx")
        + " -}}{%- endif -%}",
        "{%- if not loop.last or add_generation_prompt -%}{{- "
        + _expr(t.generation_prompt, idx="idx")
        + " -}}{%- endif -%}",
        "{%- elif message['tool_calls'] is defined and message['tool_calls'] -%}",
        "{%- set calls = namespace(items=[]) -%}",
        "{%- for c in message['tool_calls'] -%}{%- set calls.items = calls.items + [" + call + "] -%}{%- endfor -%}",
        "{%- set content = (calls.items[0] if calls.items | length == 1 else calls.items) | tojson -%}",
        "{{- " + _expr(t.function_format, content="content", idx="idx") + " -}}",
        "{%- else -%}",
        "{{- " + _expr(t.assistant_format, content="message['content']", idx="idx") + " -}}",
        "{%- endif -%}",
        "{%- endfor -%}",
        "{%- if turns and turns | length % 2 == 0 -%}{{- " + _expr(t.separator) + " -}}{%- endif -%}",
    ]
    return "".join(lines)


# ---- Ollama --------------------------------------------------------------------------------------------------


def _go(fmt: str, tokenizer, **slots: str) -> str:
    """A format string as Go template text: slots become the given actions, markers their token text."""
    out = []
    for piece in _fill(fmt, {name: f"\x00{name}\x00" for name in slots}):
        if isinstance(piece, str):
            for k, chunk in enumerate(piece.split("\x00")):
                out.append(slots[chunk] if k % 2 == 1 else chunk.replace("{{", '{{ "{{" }}'))
        elif piece.kind == "token":
            out.append(piece.token)
        elif piece.kind == "eos":
            out.append(tokenizer.eos_token or "")
        # bos is left out: the runtime's tokenizer adds it
    return "".join(out)


def ollama_modelfile(template: Template, tokenizer, generating) -> str:
    """An Ollama Modelfile (``FROM .``) whose TEMPLATE follows ``template`` for system, user and assistant turns."""
    t = template
    if "{{idx}}" in "".join([t.user_format, t.assistant_format, t.generation_prompt]):
        logger.warning("Template '%s' numbers its rounds; the Modelfile writes every round as round 1.", t.name)
    system = _go(t.system_format, tokenizer, system="{{ $.System }}", tools="")
    user = _go(t.user_format, tokenizer, content="{{ .Content }}", idx="1")
    if t.system_in_user:
        user = _go(
            t.user_format, tokenizer, content=f"{{{{ if $first }}}}{system}{{{{ end }}}}{{{{ .Content }}}}", idx="1"
        )
    # no whitespace-trimming actions ({{- ...}}): they would eat the newlines the template's own text ends with
    body = [
        _go(t.prefix, tokenizer, tools=""),
        "" if t.system_in_user else f"{{{{ if .System }}}}{system}{{{{ end }}}}",
        "{{ $first := true }}",
        "{{ range .Messages }}",
        '{{ if eq .Role "user" }}',
        f"{{{{ if not $first }}}}{_go(t.separator, tokenizer)}{{{{ end }}}}{user}",
        _go(t.generation_prompt, tokenizer, idx="1"),
        "{{ $first = false }}",
        '{{ else if eq .Role "assistant" }}',
        _go(t.assistant_format, tokenizer, content="{{ .Content }}", idx="1"),
        "{{ end }}",
        "{{ end }}",
    ]
    lines = ["# Ollama: `ollama create NAME -f Modelfile` in this directory", "FROM ."]
    lines.append(f'TEMPLATE """{"".join(body)}"""')
    if t.default_system:
        lines.append(f'SYSTEM """{t.default_system}"""')
    stops = list(dict.fromkeys([*t.stop_words, *([tokenizer.eos_token] if tokenizer.eos_token else [])]))
    lines += [f"PARAMETER stop {json.dumps(s, ensure_ascii=False)}" for s in stops]
    lines.append(f"PARAMETER num_predict {generating.max_new_tokens}")
    lines.append(f"PARAMETER repeat_penalty {generating.repetition_penalty}")
    if generating.do_sample:
        lines += [
            f"PARAMETER temperature {generating.temperature}",
            f"PARAMETER top_p {generating.top_p}",
            f"PARAMETER top_k {generating.top_k}",
        ]
    else:
        lines.append("PARAMETER temperature 0")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE + help_lines(ExportArguments))
        return 0 if argv else 2
    skip_unused_quantizer(argv)  # before the arguments import transformers' trainer (and with it bitsandbytes)
    args, (export_args,) = parse_infer_args(
        argv, ExportArguments, aliases={"export_dir": "output_dir"}, needs_output_dir=True
    )
    print(export_model(args, export_args))
    return 0


def command(argv: list[str]) -> int:
    """``python -m genie_core.export``: the same environment and error handling as the `genie` command."""
    from genie_core.extras.entry import run_main

    return run_main(main, argv)


if __name__ == "__main__":
    from genie_core.extras.warm import run_warm

    status = run_warm("genie_core.export:command", sys.argv[1:])  # forked from a pipeline's warm interpreter
    sys.exit(command(sys.argv[1:]) if status is None else status)

"""`genie export`: the merged model decodes like base + adapter; shards, tokenizer, chat template; clear refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from genie_core.export import ExportArguments, export_model, main, template_to_jinja
from genie_core.extras.errors import ConfigError
from genie_core.hparams import get_args
from genie_core.template import get_template, list_templates
from genie_core.template.base import to_hf_messages

PROMPTS = ["<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n", "The capital of France is"]


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter with non-zero weights (peft starts B at zero, which would make merging trivially exact)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("adapter")
    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(out)
    (out / "genie_config.yaml").write_text("template: chatml\nstage: sft\n")  # what `genie train` leaves there
    return out


def _greedy(model, tokenizer, text: str) -> list[int]:
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return out[0, ids["input_ids"].shape[1] :].tolist()


def _cli(model_dir: Path, out: Path, *extra: str) -> list[str]:
    return ["--model_name_or_path", str(model_dir), "--output_dir", str(out), "--do_sample", "false", *extra]


def test_merged_export_decodes_like_base_plus_adapter(tiny_model_dir, adapter_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "exported"
    assert main(_cli(tiny_model_dir, out, "--checkpoint_dir", str(adapter_dir), "--export_size", "0.0001")) == 0

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    plain = [_greedy(base, tokenizer, p) for p in PROMPTS]
    with_adapter = PeftModel.from_pretrained(base, adapter_dir).eval()
    expected = [_greedy(with_adapter, tokenizer, p) for p in PROMPTS]
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    merged_tok = AutoTokenizer.from_pretrained(out)
    assert [_greedy(merged, merged_tok, p) for p in PROMPTS] == expected
    assert expected != plain  # the adapter changes the output, so equality above means it was merged

    ids = tokenizer(PROMPTS[1], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, with_adapter(ids).logits, atol=1e-4, rtol=1e-4)


def test_export_directory_contents(tiny_model_dir, adapter_dir, tmp_path):
    from transformers import AutoTokenizer, GenerationConfig

    out = tmp_path / "exported"
    main(_cli(tiny_model_dir, out, "--checkpoint_dir", str(adapter_dir), "--export_size", "0.0001",
              "--export_ollama", "true", "--max_new_tokens", "77"))  # fmt: skip
    shards = sorted(out.glob("model-*.safetensors"))
    assert len(shards) >= 2 and (out / "model.safetensors.index.json").is_file()
    assert all(p.stat().st_size <= 0.0001 * 1e9 * 1.5 for p in shards)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp directory left behind

    tokenizer = AutoTokenizer.from_pretrained(out)
    template = get_template("chatml", tokenizer)
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
        {"role": "user", "content": "?"},
    ]
    rendered = tokenizer.apply_chat_template(
        to_hf_messages(messages, "Be brief."), tokenize=False, add_generation_prompt=True
    )
    assert rendered == template.render(messages, "Be brief.", add_generation_prompt=True)

    generation = GenerationConfig.from_pretrained(out)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in generation.eos_token_id and generation.max_new_tokens == 77 and generation.do_sample is False

    info = json.loads((out / "genie_export.json").read_text())
    assert info["template"] == "chatml" and info["adapters"] == [str(adapter_dir)]
    modelfile = (out / "Modelfile").read_text()
    assert modelfile.startswith("# Ollama") and "FROM ." in modelfile
    assert "<|im_start|>user\n{{ .Content }}<|im_end|>\n<|im_start|>assistant\n" in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile and "PARAMETER num_predict 77" in modelfile


def test_chat_engine_loads_the_export_with_its_template(tiny_model_dir, adapter_dir, tmp_path):
    from genie_core.chat.engine import ChatEngine

    out = tmp_path / "exported"
    main(_cli(tiny_model_dir, out, "--checkpoint_dir", str(adapter_dir), "--template", "chatml"))
    conv = [{"role": "user", "content": "hello"}]
    common = {"output_dir": "x", "do_sample": False, "max_new_tokens": 10}
    merged = ChatEngine.from_args(get_args(None, {"model_name_or_path": str(out), **common}))
    adapter = ChatEngine.from_args(
        get_args(None, {"model_name_or_path": str(tiny_model_dir), "checkpoint_dir": str(adapter_dir), **common})
    )
    try:
        assert merged.template.name == "chatml"  # read from genie_export.json, not guessed
        assert merged.chat(conv)[0].text == adapter.chat(conv)[0].text
    finally:
        merged.close()
        adapter.close()


def _never_load(*args, **kwargs):
    raise AssertionError("the model must not be loaded for a refused export")


def test_quantized_requests_are_refused_before_loading(tiny_model_dir, adapter_dir, tmp_path, monkeypatch):
    import genie_core.model as model_pkg

    monkeypatch.setattr(model_pkg, "load_model", _never_load)
    out = tmp_path / "exported"
    args = get_args(
        None,
        {"model_name_or_path": str(tiny_model_dir), "checkpoint_dir": str(adapter_dir), "output_dir": str(out),
         "quantization_bit": 4},
    )  # fmt: skip
    with pytest.raises(ConfigError, match="quantization_bit=4.*Drop quantization_bit"):
        export_model(args)

    quantized = tmp_path / "quantized_base"
    shutil.copytree(tiny_model_dir, quantized)
    config = json.loads((quantized / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (quantized / "config.json").write_text(json.dumps(config))
    args = get_args(None, {"model_name_or_path": str(quantized), "output_dir": str(out)})
    with pytest.raises(ConfigError, match="quantized checkpoint \\(bitsandbytes\\)"):
        export_model(args)
    assert not out.exists()


def test_cli_refusals_exit_2_with_a_message(tiny_model_dir, tmp_path, capsys):
    from flows.cli import main as genie

    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert genie(["export", *_cli(tiny_model_dir, out)]) == 2
    assert "not empty" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"
    assert genie(["export", "--model_name_or_path", str(tiny_model_dir)]) == 2
    assert "output_dir is required" in capsys.readouterr().err
    assert genie(["export", *_cli(tiny_model_dir, tmp_path / "x"), "--export_size", "0"]) == 2
    assert "export_size must be > 0" in capsys.readouterr().err


def test_failed_export_leaves_nothing_half_written(tiny_model_dir, tmp_path, monkeypatch):
    import genie_core.export as export_mod

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export_mod, "ollama_modelfile", broken)
    out = tmp_path / "exported"
    args = get_args(None, {"model_name_or_path": str(tiny_model_dir), "template": "chatml", "output_dir": str(out)})
    with pytest.raises(OSError, match="disk full"):
        export_model(args, ExportArguments(export_ollama=True))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", [n for n in list_templates() if n != "auto"])
def test_jinja_chat_template_renders_like_the_template(name, tiny_tokenizer_dir):
    """Golden: what other tools render with the exported jinja equals what training encoded."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    template = get_template(name, tokenizer)
    template.fix_tokenizer(tokenizer)
    jinja = template_to_jinja(template)
    tools = [{"name": "get_weather", "description": "Weather.", "parameters": {"type": "object"}}]
    call = json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})
    conversations = [
        [{"role": "user", "content": "Hi"}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
         {"role": "user", "content": "?"}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
        [{"role": "user", "content": "Weather?"}, {"role": "function", "content": call},
         {"role": "observation", "content": '{"t": 20}'}],
    ]  # fmt: skip
    for system in (None, "Be brief."):
        for tool_list in (None, tools):
            for messages in conversations:
                generation = len(messages) % 2 == 1
                tools_text = json.dumps(tool_list, ensure_ascii=False) if tool_list else None
                ours = template.render(messages, system, tools_text, add_generation_prompt=generation)
                theirs = tokenizer.apply_chat_template(
                    to_hf_messages(messages, system),
                    tools=tool_list,
                    tokenize=False,
                    add_generation_prompt=generation,
                    chat_template=jinja,
                )
                assert theirs == ours, (system, bool(tool_list), len(messages))


def test_a_16_bit_base_exports_in_its_own_dtype_merged_in_float32(tiny_model_dir, adapter_dir, tmp_path):
    """The merge runs in float32 on any device and the file keeps the base's dtype: a bf16 base gives a bf16
    export equal to the float32 merge rounded once, whatever machine exports it."""
    import shutil

    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    base16 = tmp_path / "base16"
    shutil.copytree(tiny_model_dir, base16)
    AutoModelForCausalLM.from_pretrained(tiny_model_dir).to(torch.bfloat16).save_pretrained(base16)
    out = tmp_path / "exported"
    assert main(_cli(base16, out, "--checkpoint_dir", str(adapter_dir))) == 0
    saved = load_file(str(out / "model.safetensors"))
    assert {t.dtype for t in saved.values()} == {torch.bfloat16}
    base = AutoModelForCausalLM.from_pretrained(base16, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload().state_dict()
    for name, tensor in saved.items():
        torch.testing.assert_close(tensor, merged[name].to(torch.bfloat16), rtol=0, atol=0)


def test_weights_a_model_keeps_in_float32_stay_so_in_a_16_bit_export():
    """As transformers' own 16-bit load: the strict list (dotted names too) always, the other only for fp16."""
    from torch import nn

    from genie_core.export import _cast_weights

    class Moe(nn.Module):
        _keep_in_fp32_modules_strict = ["gate.weight"]
        _keep_in_fp32_modules = ["norm"]

        def __init__(self):
            super().__init__()
            self.mlp = nn.ModuleDict({"gate": nn.Linear(4, 4), "up": nn.Linear(4, 4)})
            self.norm = nn.LayerNorm(4)

    for dtype, norm in ((torch.bfloat16, torch.bfloat16), (torch.float16, torch.float32)):
        model = Moe()
        _cast_weights(model, dtype)
        dtypes = {n: p.dtype for n, p in model.named_parameters()}
        assert dtypes["mlp.gate.weight"] == torch.float32 and dtypes["mlp.gate.bias"] == dtype
        assert dtypes["mlp.up.weight"] == dtype and dtypes["norm.weight"] == norm

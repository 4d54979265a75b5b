"""Every model family in the table: recognised from its config, its defaults true of a real model of it, and a tiny
random model of it trains with LoRA on its default targets and with freeze tuning on its feed-forward block.

Native families are built from their transformers config; remote-code families load from a folder under
``tests/remote_code`` (its own configuration/modeling files and an ``auto_map``) with ``trust_remote_code``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from helpers import stage_config, write_registry

from genie_core.extras.errors import ConfigError
from genie_core.hparams import FinetuningArguments, ModelArguments, get_args
from genie_core.model import find_decoder_layers, find_linear_modules, load_model, load_tokenizer
from genie_core.model.families import (
    BASE_TEMPLATES,
    GENERIC,
    format_family_table,
    get_family,
    get_family_by_name,
    list_families,
)
from genie_core.stages.packing import packing_probe
from genie_core.template import TEMPLATES, get_template

REMOTE_CODE = Path(__file__).parent / "remote_code"

TINY = dict(
    vocab_size=640,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=2,
    tie_word_embeddings=False,
)
# model_type -> (family, what its tiny config needs beyond TINY)
NATIVE = {
    "llama": ("llama", {}),
    "mistral": ("mistral", {}),
    "ministral": ("mistral", {"head_dim": 8, "layer_types": ["full_attention"] * 2}),
    "qwen2": ("qwen2", {}),
    "qwen3": ("qwen3", {"head_dim": 8}),
    "gemma": ("gemma", {"head_dim": 8}),
    "gemma2": ("gemma", {"head_dim": 8}),
    "gemma3_text": ("gemma", {"head_dim": 8}),
    "phi3": ("phi3", {}),
    "falcon": ("falcon", {}),
    "bloom": ("bloom", {"n_layer": 2, "n_head": 4}),
    "glm": ("glm4", {"head_dim": 8}),
    "glm4": ("glm4", {"head_dim": 8}),
}
UNPACKABLE = {"bloom"}  # native families whose attention ignores restarted position ids
REMOTE = ["baichuan", "qwen", "chatglm", "internlm", "internlm2", "xverse"]
CONVO = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
    {"role": "user", "content": "Add 12 and 30."},
    {"role": "assistant", "content": "The answer is 42."},
]


# ---- building tiny models ------------------------------------------------------------------------------------------


def _tiny_native(model_type: str, root: Path, tokenizer_dir: Path) -> Path:
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(model_type, **{**TINY, **NATIVE[model_type][1]})
    torch.manual_seed(0)
    out = root / model_type
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    for item in tokenizer_dir.iterdir():
        shutil.copy(item, out / item.name)
    return out


def _save_family_tokenizer(family: str, tokenizer_dir: Path, out: Path) -> None:
    """The test tokenizer, given the quirk of the family's own tokenizer where one matters."""
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    if family == "qwen":  # Qwen's tiktoken tokenizer names no bos, eos, unk or pad token
        tok.bos_token = tok.eos_token = tok.unk_token = None
    if family == "chatglm":  # ChatGLM2's tokenizer prepends [gMASK]sop whenever special tokens are added
        tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "[gMASK]", "sop"]})
        gmask, sop = tok.convert_tokens_to_ids(["[gMASK]", "sop"])
        tok._tokenizer.post_processor = TemplateProcessing(
            single="[gMASK] sop $A", pair="[gMASK] sop $A $B", special_tokens=[("[gMASK]", gmask), ("sop", sop)]
        )
    tok.save_pretrained(out)


def _tiny_remote(family: str, root: Path, tokenizer_dir: Path) -> Path:
    """A copy of ``tests/remote_code/<family>`` with random weights and the test tokenizer, as a checkpoint ships."""
    from transformers import AutoConfig, AutoModelForCausalLM

    out = root / family
    shutil.copytree(REMOTE_CODE / family, out)
    shutil.copy(REMOTE_CODE / "tiny_core.py", out)  # the shared maths the modeling file imports relatively
    config = AutoConfig.from_pretrained(out, trust_remote_code=True)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config, trust_remote_code=True).save_pretrained(out)
    _save_family_tokenizer(family, tokenizer_dir, out)
    return out


def _load(model_dir: Path, trust_remote_code: bool = False, template: str | None = None, **finetuning):
    margs = ModelArguments(model_name_or_path=str(model_dir), trust_remote_code=trust_remote_code)
    fargs = FinetuningArguments(lora_dropout=0.0, **finetuning)
    tokenizer = load_tokenizer(margs)
    if template:
        get_template(template, tokenizer).fix_tokenizer(tokenizer)
    return tokenizer, load_model(tokenizer, margs, fargs, is_trainable=True)


# ---- training ------------------------------------------------------------------------------------------------------


def _chat_batch(tokenizer, template_name: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two copies of CONVO in the family's format, prompts masked out of the labels."""
    template = get_template(template_name or "default", tokenizer)
    ids: list[int] = []
    labels: list[int] = []
    for prompt, response in template.encode_multiturn(tokenizer, CONVO):
        ids += prompt + response
        labels += [-100] * len(prompt) + response
    return torch.tensor([ids, ids]), torch.tensor([labels, labels])


def _train(model, batch: tuple[torch.Tensor, torch.Tensor], steps: int) -> tuple[set[str], list[float]]:
    """``steps`` AdamW steps; returns the names of parameters that changed and the loss before, during and after."""
    ids, labels = batch
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optim.step()
        optim.zero_grad()
        losses.append(loss.item())
    with torch.no_grad():
        losses.append(model(input_ids=ids, labels=labels).loss.item())
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    return changed, losses


def _trainable(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def _lora_leaves(model) -> list[str]:
    return [name.split(".")[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")]


def _check_lora(model, family, batch) -> None:
    leaves = _lora_leaves(model)
    n_layers = len(find_decoder_layers(model)[1])
    assert sorted(leaves) == sorted(family.lora_targets * n_layers)  # every layer, exactly the default targets
    changed, losses = _train(model, batch, steps=2)
    assert changed == _trainable(model)
    assert changed and all(".lora_A." in n or ".lora_B." in n for n in changed)
    assert losses[-1] < losses[0]


def _check_freeze(model, family, batch) -> None:
    layers_name, layers = find_decoder_layers(model)
    assert re.search(rf"(?:^|\.)(?:{family.layer_pattern})$", layers_name)  # found by the family's pattern
    ffn = f"{layers_name}.{len(layers) - 1}.{family.freeze_modules[0]}."
    expected = {n for n, _ in model.named_parameters() if n.startswith(ffn)}
    assert expected and _trainable(model) == expected
    changed, losses = _train(model, batch, steps=1)
    assert changed == expected
    assert losses[-1] < losses[0]


# ---- the table -----------------------------------------------------------------------------------------------------


def _check_packed_equals_alone(model) -> None:
    """Per-example logits of a packed row (restarting positions) equal each example run alone."""
    from genie_core.data.collator import PackingCollator

    torch.manual_seed(1)
    rows = [torch.randint(5, 200, (n,)).tolist() for n in (6, 11, 4)]
    packed = PackingCollator()([{"input_ids": r, "labels": r} for r in rows])
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits[0]
        start = 0
        for r in rows:
            alone = model(input_ids=torch.tensor([r]), use_cache=False).logits[0]
            assert torch.allclose(logits[start : start + len(r)], alone, atol=1e-4)
            start += len(r)


def test_every_family_in_the_issue_is_registered():
    names = {f.name for f in list_families()}
    assert {"llama", "bloom", "falcon", "baichuan", "internlm", "qwen", "xverse", "chatglm"} <= names  # the seed's
    assert {"qwen2", "qwen3", "mistral", "gemma", "phi3", "glm4"} <= names  # and today's


@pytest.mark.parametrize("name", ["llama", "bloom", "falcon", "baichuan", "internlm", "qwen", "xverse", "chatglm"])
def test_seed_table_defaults(name):
    seed = {
        "llama": (["q_proj", "v_proj"], ("llama2",)),
        "bloom": (["query_key_value"], BASE_TEMPLATES),
        "falcon": (["query_key_value"], ()),
        "baichuan": (["W_pack"], ("baichuan",)),
        "internlm": (["q_proj", "v_proj"], ("intern",)),
        "qwen": (["c_attn"], ("chatml",)),
        "xverse": (["q_proj", "v_proj"], ()),
        "chatglm": (["query_key_value"], ("chatglm2",)),
    }
    targets, templates = seed[name]
    family = get_family_by_name(name)
    assert family.lora_targets == targets
    assert set(templates) <= set(family.templates)


@pytest.mark.parametrize("family", list_families(), ids=lambda f: f.name)
def test_family_entries_are_complete_and_name_real_templates(family):
    assert family.model_types and family.architectures and family.layer_pattern
    assert family.lora_targets and set(family.lora_targets) <= set(family.lora_all)
    assert family.freeze_modules and set(family.module_aliases.values()) <= set(family.freeze_modules)
    assert set(family.templates) <= set(TEMPLATES), "every template a family names must be registered"
    for model_type in family.model_types:
        assert get_family(model_type) is family
    for arch in family.architectures:
        assert get_family({"model_type": "renamed", "architectures": [arch]}) is family


def test_recognition_by_model_type_then_architecture():
    assert get_family({"model_type": "qwen2", "architectures": ["QWenLMHeadModel"]}).name == "qwen2"
    assert get_family({"model_type": "baichuan2_custom", "architectures": ["BaichuanForCausalLM"]}).name == "baichuan"
    assert get_family({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}) is GENERIC
    assert get_family(None) is GENERIC


def test_models_list_prints_the_table():
    from flows.cli import main

    table = format_family_table()
    header = table.splitlines()[0].split()
    assert header[:4] == ["family", "model_type", "lora_target", "template"]
    for family in list_families():
        row = next(line for line in table.splitlines() if line.startswith(family.name + " "))
        assert ",".join(family.lora_targets) in row and ("yes" if family.trust_remote_code else "no") in row
    assert "all: W_pack,o_proj,gate_proj,up_proj,down_proj" in table
    assert "[gMASK]sop" in table  # ChatGLM2's prefix-token quirk is spelled out
    assert main(["models", "list"]) == 0


# ---- native families -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", sorted(NATIVE))
def test_native_family_lora_and_freeze(model_type, tmp_path, tiny_tokenizer_dir):
    model_dir = _tiny_native(model_type, tmp_path, tiny_tokenizer_dir)
    family = get_family_by_name(NATIVE[model_type][0])
    tokenizer, model = _load(model_dir, template=family.template)
    assert get_family(model) is family
    batch = _chat_batch(tokenizer, family.template)
    _check_lora(model, family, batch)

    _, model = _load(model_dir, finetuning_type="freeze", num_layer_trainable=1)
    assert sorted(find_linear_modules(model)) == sorted(family.lora_all)  # `all` in the table is the real set
    _check_freeze(model, family, batch)
    problem = packing_probe(model)
    if model_type in UNPACKABLE:  # ALiBi takes no position ids: packing stays off, and the log says why
        assert problem and "BloomForCausalLM" in problem and "position ids" in problem
    else:  # packing defaults on because each example keeps its own logits in a packed row
        assert problem is None
        _check_packed_equals_alone(model)


def test_lora_all_follows_the_table(tmp_path, tiny_tokenizer_dir):
    model_dir = _tiny_native("phi3", tmp_path, tiny_tokenizer_dir)
    _, model = _load(model_dir, lora_target="all")
    assert sorted(set(_lora_leaves(model))) == sorted(get_family_by_name("phi3").lora_all)


def test_self_attn_reaches_self_attention(tmp_path, tiny_tokenizer_dir):
    """One freeze config fits every family: BLOOM's attention is `self_attention`, `self_attn` names it too."""
    model_dir = _tiny_native("bloom", tmp_path, tiny_tokenizer_dir)
    _, model = _load(model_dir, finetuning_type="freeze", num_layer_trainable=1, name_module_trainable="self_attn")
    assert _trainable(model) and all(n.startswith("transformer.h.1.self_attention.") for n in _trainable(model))


# ---- remote-code families ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REMOTE)
def test_remote_code_family_lora_and_freeze(name, tmp_path, tiny_tokenizer_dir):
    model_dir = _tiny_remote(name, tmp_path, tiny_tokenizer_dir)
    family = get_family_by_name(name)
    assert family.trust_remote_code
    tokenizer, model = _load(model_dir, trust_remote_code=True, template=family.template)
    assert get_family(model) is family and type(model.get_base_model()).__module__.startswith("transformers_modules")
    batch = _chat_batch(tokenizer, family.template)
    _check_lora(model, family, batch)

    freeze = {"finetuning_type": "freeze", "num_layer_trainable": 1}  # name_module_trainable: the default mlp
    _, model = _load(model_dir, trust_remote_code=True, template=family.template, **freeze)
    assert sorted(find_linear_modules(model)) == sorted(family.lora_all)
    _check_freeze(model, family, batch)
    problem = packing_probe(model)
    if problem is None:
        _check_packed_equals_alone(model)
    else:  # packing stays off for it, and the log says which model and why
        assert type(model).__name__ in problem and "position ids" in problem


def test_remote_code_without_trust_is_refused_by_name(tmp_path, tiny_tokenizer_dir):
    model_dir = _tiny_remote("baichuan", tmp_path, tiny_tokenizer_dir)
    margs = ModelArguments(model_name_or_path=str(model_dir))
    with pytest.raises(ConfigError, match="baichuan checkpoint.*set trust_remote_code: true"):
        load_tokenizer(margs)


def test_qwen_tokenizer_without_special_tokens_gets_them_from_the_template(tmp_path, tiny_tokenizer_dir):
    model_dir = _tiny_remote("qwen", tmp_path, tiny_tokenizer_dir)
    margs = ModelArguments(model_name_or_path=str(model_dir), trust_remote_code=True)
    tokenizer = load_tokenizer(margs)
    assert tokenizer.eos_token is None and tokenizer.pad_token is None
    with pytest.raises(ConfigError, match="no pad, eos or unk token"):
        load_model(tokenizer, margs, FinetuningArguments(), is_trainable=True)  # no stop word to pad with
    get_template("chatml", tokenizer).fix_tokenizer(tokenizer)
    assert tokenizer.eos_token == tokenizer.pad_token == "<|im_end|>"
    model = load_model(tokenizer, margs, FinetuningArguments(), is_trainable=True)
    assert set(_lora_leaves(model)) == {"c_attn"}


def test_chatglm_prefix_tokens_appear_once(tmp_path, tiny_tokenizer_dir):
    model_dir = _tiny_remote("chatglm", tmp_path, tiny_tokenizer_dir)
    tokenizer = load_tokenizer(ModelArguments(model_name_or_path=str(model_dir), trust_remote_code=True))
    gmask, sop = tokenizer.convert_tokens_to_ids(["[gMASK]", "sop"])
    assert tokenizer("Hi").input_ids[:2] == [gmask, sop]  # the quirk: the tokenizer adds them itself
    ids, labels = _chat_batch(tokenizer, "chatglm2")
    assert ids[0].tolist()[:2] == [gmask, sop] and ids[0].tolist().count(gmask) == 1
    assert labels[0, :2].tolist() == [-100, -100]


def test_remote_family_through_the_sft_stage(tmp_path, tiny_tokenizer_dir, genie_home):
    """ChatGLM2 end to end: remote code, its template with prefix tokens, LoRA on query_key_value, adapter saved."""
    from safetensors.torch import load_file

    from genie_core.stages import run_stage

    model_dir = _tiny_remote("chatglm", tmp_path, tiny_tokenizer_dir)
    data_dir = write_registry(tmp_path / "data")
    out = tmp_path / "out"
    cfg = stage_config(model_dir, data_dir, out, template="chatglm2", trust_remote_code=True, max_steps=2)
    results = run_stage(get_args(None, cfg))
    assert torch.isfinite(torch.tensor(results["train"]["train_loss"]))
    adapter = load_file(str(out / "adapter_model.safetensors"))
    assert adapter and all("query_key_value" in key for key in adapter)
    assert any("lora_B" in key and value.abs().sum() > 0 for key, value in adapter.items())

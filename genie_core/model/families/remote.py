"""Families whose modeling code ships with the checkpoint: loading them needs ``trust_remote_code: true``."""

from __future__ import annotations

from genie_core.model.families.native import LLAMA_FREEZE, LLAMA_LINEARS, QV, SELF_ATTENTION
from genie_core.model.families.registry import ModelFamily, register_family

REMOTE = "Needs trust_remote_code: true (the modeling code ships with the checkpoint)."

FAMILIES = (
    ModelFamily(
        "baichuan",
        ("baichuan",),
        ["W_pack"],
        "baichuan",
        r"model\.layers",
        trust_remote_code=True,
        architectures=("BaichuanForCausalLM", "BaiChuanForCausalLM"),
        lora_all=("W_pack", "o_proj", "gate_proj", "up_proj", "down_proj"),
        freeze_modules=LLAMA_FREEZE,
        other_templates=("baichuan2",),
        notes="Baichuan-7B/13B and Baichuan2 (same model_type; template baichuan2 for Baichuan2-Chat). "
        "W_pack is the fused q/k/v.",
        quirks=(REMOTE, "Chat roles are the reserved tokens 195/196, written by the template."),
    ),
    ModelFamily(
        "qwen",
        ("qwen",),
        ["c_attn"],
        "chatml",
        r"transformer\.h",
        trust_remote_code=True,
        architectures=("QWenLMHeadModel",),
        lora_all=("c_attn", "c_proj", "w1", "w2"),
        freeze_modules=("mlp", "attn", "ln_1", "ln_2"),
        module_aliases={"self_attn": "attn"},
        notes="First-generation Qwen (Qwen-7B/14B and -Chat); c_attn is the fused q/k/v.",
        quirks=(
            REMOTE,
            "The tiktoken tokenizer defines no bos, eos, unk or pad token: the template's stop word <|im_end|> "
            "becomes eos and pad.",
        ),
    ),
    ModelFamily(
        "chatglm",
        ("chatglm",),
        ["query_key_value"],
        "chatglm2",
        r"transformer(\.encoder)?\.layers",
        trust_remote_code=True,
        architectures=("ChatGLMModel", "ChatGLMForConditionalGeneration"),
        lora_all=("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
        freeze_modules=("mlp", "self_attention", "input_layernorm", "post_attention_layernorm"),
        module_aliases=SELF_ATTENTION,
        other_templates=("chatglm3", "glm4"),
        notes="ChatGLM2-6B (chatglm2), ChatGLM3-6B (chatglm3) and the remote-code glm-4-9b-chat (glm4).",
        quirks=(
            REMOTE,
            "The tokenizer prepends [gMASK]sop whenever special tokens are added; the template writes the prefix "
            "once and genie encodes with add_special_tokens=False.",
            "The tokenizer's own pad only pads on the left; genie's collators pad (right) themselves.",
            "The LM head is transformer.output_layer and is never a LoRA target.",
        ),
    ),
    ModelFamily(
        "internlm",
        ("internlm",),
        QV,
        "intern",
        r"model\.layers",
        trust_remote_code=True,
        architectures=("InternLMForCausalLM",),
        lora_all=LLAMA_LINEARS,
        freeze_modules=LLAMA_FREEZE,
        notes="InternLM-7B/20B and -Chat (first generation).",
        quirks=(REMOTE, "Chat replies end with <eoa>, added as a stop word."),
    ),
    ModelFamily(
        "internlm2",
        ("internlm2",),
        ["wqkv"],
        "intern2",
        r"model\.layers",
        trust_remote_code=True,
        architectures=("InternLM2ForCausalLM",),
        lora_all=("wqkv", "wo", "w1", "w2", "w3"),
        freeze_modules=("feed_forward", "attention", "attention_norm", "ffn_norm"),
        module_aliases={"mlp": "feed_forward", "self_attn": "attention"},
        notes="InternLM2 and InternLM2.5; wqkv is the fused q/k/v, the LM head is called output.",
        quirks=(REMOTE, "Decoder sub-modules are attention/feed_forward: mlp and self_attn are accepted for them."),
    ),
    ModelFamily(
        "xverse",
        ("xverse",),
        QV,
        "xverse",
        r"model\.layers",
        trust_remote_code=True,
        architectures=("XverseForCausalLM",),
        lora_all=LLAMA_LINEARS,
        freeze_modules=LLAMA_FREEZE,
        notes="XVERSE-7B/13B/65B; base checkpoints take any of default/alpaca/vicuna, -Chat uses xverse.",
        quirks=(REMOTE, "The chat format has no system role: a system prompt is plain text before the first turn."),
    ),
)

for _family in FAMILIES:
    register_family(_family)

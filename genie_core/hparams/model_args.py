"""Arguments that say which model, tokenizer and adapters to load, and how."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional


@dataclass
class ModelArguments:
    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "Local directory, hub id, a `.gguf` file, or a pulled name such as `smollm2`."},
    )
    checkpoint_dir: Optional[str] = field(
        default=None,
        metadata={
            "help": "Comma-separated adapter directories (LoRA) or a full checkpoint (full/freeze) to start from. "
            "Alias: adapter_name_or_path."
        },
    )
    gguf_file: Optional[str] = field(
        default=None, metadata={"help": "GGUF file name inside `model_name_or_path` (set automatically for .gguf)."}
    )
    cache_dir: Optional[str] = field(default=None, metadata={"help": "Where hub downloads are stored."})
    model_revision: str = field(default="main", metadata={"help": "Hub revision (branch, tag or commit)."})
    use_fast_tokenizer: bool = field(default=True, metadata={"help": "Use a fast (Rust) tokenizer when one exists."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow modeling code shipped in the model directory to run."}
    )
    compute_dtype: Literal["auto", "float32", "float16", "bfloat16"] = field(
        default="auto",
        metadata={"help": "Weights dtype. `auto`: bf16/fp16 when the training args ask for it, else float32."},
    )
    quantization_bit: Optional[int] = field(
        default=None, metadata={"help": "Load the base in 4 or 8 bit (bitsandbytes); with LoRA this is QLoRA."}
    )
    quantization_type: Literal["nf4", "fp4"] = field(default="nf4", metadata={"help": "4-bit data type."})
    double_quantization: bool = field(default=True, metadata={"help": "Quantize the 4-bit quantization constants."})
    attn_implementation: Optional[Literal["eager", "sdpa", "flash_attention_2"]] = field(
        default=None, metadata={"help": "Attention kernel; default lets transformers choose."}
    )
    merge_cache_dir: Optional[str] = field(
        default=None,
        metadata={
            "help": "LoRA: keep the base with the first checkpoint_dir adapter merged here and load it from here next "
            "time instead of merging again (keyed by base, adapter, dtype, vocabulary). Pipelines set it when two or "
            "more steps merge the same adapter."
        },
    )

    def __post_init__(self) -> None:
        if self.quantization_bit is not None and self.quantization_bit not in (4, 8):
            from genie_core.extras.errors import ConfigError

            raise ConfigError(f"quantization_bit must be 4 or 8, got {self.quantization_bit}.")

    @property
    def adapter_dirs(self) -> list[str]:
        if not self.checkpoint_dir:
            return []
        return [p.strip() for p in self.checkpoint_dir.split(",") if p.strip()]

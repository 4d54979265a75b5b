"""Arguments for text generation (predict, chat, API)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional


@dataclass
class GeneratingArguments:
    do_sample: bool = field(default=True, metadata={"help": "Sample; False means greedy (or beam) decoding."})
    temperature: float = field(default=0.95, metadata={"help": "Softmax temperature when sampling."})
    top_p: float = field(default=0.7, metadata={"help": "Nucleus sampling probability mass."})
    top_k: int = field(default=50, metadata={"help": "Keep this many most likely tokens when sampling."})
    num_beams: int = field(default=1, metadata={"help": "Beam search width; 1 disables beam search."})
    max_new_tokens: int = field(default=512, metadata={"help": "Most tokens generated per reply."})
    repetition_penalty: float = field(default=1.0, metadata={"help": "Penalty for repeated tokens; 1.0 is none."})
    length_penalty: float = field(default=1.0, metadata={"help": "Beam search length penalty."})
    max_length: Optional[int] = field(default=None, metadata={"help": "Cap on prompt + reply tokens, if set."})

    def to_generate_kwargs(self) -> dict[str, Any]:
        kwargs = asdict(self)
        if kwargs["max_length"] is None:
            kwargs.pop("max_length")
        if not self.do_sample:
            for key in ("temperature", "top_p", "top_k"):
                kwargs.pop(key)
        return kwargs

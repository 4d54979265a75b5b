"""The chat engine: a model with its adapters, the template it was trained with, and a batching generator.

``ChatEngine.from_args(args)`` loads what ``genie train`` would (base, LoRA adapters merged or a full checkpoint,
``fix_tokenizer``), picks the training template when the adapter directory records one, and starts a ``Batcher``.
``chat``/``stream_chat`` serve one conversation; ``submit`` (a conversation) and ``submit_ids`` (a prompt already
encoded, e.g. a plain completion's) are the non-blocking forms the API server uses so that concurrent requests
share batches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genie_core.chat.batcher import Batcher, BatcherConfig, GenerationRequest, RequestHandle
from genie_core.chat.constrain import TokenTable
from genie_core.chat.grammar import Machine
from genie_core.chat.sampling import SamplingParams
from genie_core.chat.tools import ToolCall, parse_tool_calls
from genie_core.extras.errors import GenieError
from genie_core.extras.logging import get_logger
from genie_core.hparams import GeneratingArguments
from genie_core.schema import Message

logger = get_logger(__name__)

EXPORT_INFO_FILE = "genie_export.json"
GENERATION_KEYS = ("do_sample", "temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty")
# per-request sampling options that the generating arguments do not have (their defaults change nothing)
REQUEST_KEYS = ("presence_penalty", "frequency_penalty", "logit_bias", "seed")


@dataclass
class Reply:
    text: str
    finish_reason: str  # stop | length | tool_calls | cancelled
    prompt_tokens: int
    completion_tokens: int
    tool_calls: list[ToolCall] = field(default_factory=list)


def trained_template(model_args) -> str | None:
    """The template recorded next to the adapters (``genie_config.yaml``) or in an export (``genie_export.json``)."""
    candidates = []
    for adapter in model_args.adapter_dirs:
        candidates += [Path(adapter) / "genie_config.yaml", Path(adapter).parent / "genie_config.yaml"]
    model_dir = Path(model_args.model_name_or_path or "")
    candidates.append(model_dir / EXPORT_INFO_FILE)
    for path in candidates:
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and data.get("template"):
            return str(data["template"])
    return None


def _holds_value_head(model_args) -> bool:
    from genie_core.model.value_head import VALUE_HEAD_FILE

    source = model_args.adapter_dirs[-1] if model_args.adapter_dirs else model_args.model_name_or_path or ""
    return (Path(source) / VALUE_HEAD_FILE).is_file()


def load_inference_tokenizer(args) -> tuple:
    """Tokenizer and template for serving or export, rendered the way training rendered them."""
    from genie_core.model import load_tokenizer
    from genie_core.template import get_template

    tokenizer = load_tokenizer(args.model)
    template = get_template(resolve_template_name(args.model, args.data.template), tokenizer)
    template.fix_tokenizer(tokenizer)
    if args.data.default_system is not None:
        template.default_system = args.data.default_system
    return tokenizer, template


def resolve_template_name(model_args, asked: str | None) -> str | None:
    """The template to chat with: the one asked for, else the training one; a mismatch is warned about loudly."""
    trained = trained_template(model_args)
    if not asked and trained:
        logger.info("Using template '%s', the one this model was trained with", trained)
        return trained
    if trained and asked and asked.strip().lower() != trained.strip().lower():
        logger.warning(
            "TEMPLATE MISMATCH: the model was trained with template '%s' but you chose '%s'. Replies will likely "
            "be poor; set template: %s unless this is on purpose.",
            trained,
            asked,
            trained,
        )
    return asked


def model_generation_defaults(generating: GeneratingArguments, config, set_by_user: set[str]) -> GeneratingArguments:
    """The sampling settings the model ships (its ``generation_config.json``) win over our generic defaults; what
    the user set wins over both. A model without such a file keeps ours."""
    if config is None or getattr(config, "_from_model_config", True):
        return generating
    shipped = {
        key: getattr(config, key)
        for key in ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty", "max_new_tokens")
        if key not in set_by_user and getattr(config, key, None) is not None
    }
    return dataclasses.replace(generating, **shipped) if shipped else generating


class ChatEngine:
    """Generate replies for conversations in our message schema (user/assistant/observation/function)."""

    def __init__(
        self,
        model,
        tokenizer,
        template,
        generating: GeneratingArguments | None = None,
        batcher_config: BatcherConfig | None = None,
        model_name: str = "model",
    ):
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.generating = generating or GeneratingArguments()
        self.model_name = model_name
        stop_ids = template.get_stop_token_ids(tokenizer)
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        for tid in eos if isinstance(eos, list) else [eos]:
            if tid is not None and tid not in stop_ids:
                stop_ids.append(tid)
        self.stop_token_ids = stop_ids
        self.max_positions = getattr(model.config, "max_position_embeddings", None)
        self.batcher = Batcher(model, tokenizer, stop_ids, batcher_config)
        self._score_lock = threading.Lock()

    @property
    def can_score(self) -> bool:
        """Whether the model carries a reward (value) head, as an rm stage output does."""
        return getattr(self.model, "v_head", None) is not None

    @classmethod
    def from_args(cls, args, batcher_config: BatcherConfig | None = None) -> ChatEngine:
        """Load tokenizer, template and model (adapters merged) as the training stage did, ready to generate."""
        import torch

        from genie_core.model import load_model

        tokenizer, template = load_inference_tokenizer(args)
        reward = _holds_value_head(args.model)
        model = load_model(tokenizer, args.model, args.finetuning, is_trainable=False, add_valuehead=reward)
        if torch.cuda.is_available() and not getattr(model, "hf_device_map", None):
            model = model.to("cuda")
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        generating = model_generation_defaults(args.generating, model.generation_config, set(args.raw))
        name = Path(args.model.model_name_or_path).name or args.model.model_name_or_path
        if args.model.adapter_dirs:
            name += "+" + "+".join(Path(p).name for p in args.model.adapter_dirs)
        return cls(model, tokenizer, template, generating, batcher_config, model_name=name)

    # ---- requests ---------------------------------------------------------------------------------------------

    def encode(self, messages: list[Message], system: str | None = None, tools: str | None = None) -> list[int]:
        """Prompt ids for a conversation that ends with a user (or tool result) turn."""
        if not messages:
            raise GenieError("messages is empty: send at least one user message.")
        ids = self.template.encode_prompt(self.tokenizer, messages, system, tools or None)
        self._check_length(ids)
        return ids

    @property
    def vocab_size(self) -> int:
        """Rows of the output layer: the token ids the model can produce."""
        return self.batcher.vocab_size

    @property
    def token_table(self) -> TokenTable:
        return self.batcher.token_table

    def sampling(self, **overrides: Any) -> tuple[SamplingParams, int]:
        """Sampling settings and max_new_tokens: the command's generating args, with per-request overrides.

        ``logit_bias`` maps token ids to a bias added to their logits (as OpenAI's: -100 bans, 100 forces).
        """
        unknown = set(overrides) - set(GENERATION_KEYS) - set(REQUEST_KEYS)
        if unknown:
            raise GenieError(f"unknown generation option(s): {', '.join(sorted(unknown))}.")
        values = {k: getattr(self.generating, k) for k in GENERATION_KEYS}
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values["max_new_tokens"] < 1:
            raise GenieError(f"max_new_tokens must be >= 1, got {values['max_new_tokens']}.")
        if values["temperature"] < 0 or not 0 < values["top_p"] <= 1 or values["repetition_penalty"] <= 0:
            raise GenieError("temperature must be >= 0, top_p in (0, 1] and repetition_penalty > 0.")
        bias = values.pop("logit_bias", None) or {}
        outside = [t for t in bias if not 0 <= int(t) < self.vocab_size]
        if outside:
            last = self.vocab_size - 1
            raise GenieError(f"logit_bias: token id {outside[0]} is not in the vocabulary (0 to {last}).")
        values["logit_bias"] = tuple(sorted((int(t), float(v)) for t, v in bias.items()))
        max_new = int(values.pop("max_new_tokens"))
        return SamplingParams(**values), max_new

    def encode_text(self, prompt: str) -> list[int]:
        """Prompt ids of plain text (no chat template), with the tokenizer's own special tokens (e.g. BOS)."""
        ids = self.tokenizer.encode(prompt, add_special_tokens=True)
        if not ids:
            raise GenieError("the text holds no tokens; send at least one character.")
        self._check_length(ids)
        return ids

    def _check_length(self, ids: list[int]) -> None:
        if self.max_positions and len(ids) >= self.max_positions:
            raise GenieError(
                f"the prompt is {len(ids)} tokens but the model takes at most {self.max_positions}; "
                "shorten the prompt."
            )

    def submit(
        self,
        messages: list[Message],
        system: str | None = None,
        tools: str | None = None,
        **options: Any,
    ) -> RequestHandle:
        """Queue a conversation for generation; raises ``EngineBusy`` when the queue is full."""
        return self.submit_ids(self.encode(messages, system, tools), **options)

    def submit_ids(
        self,
        prompt_ids: list[int],
        *,
        n: int = 1,
        stop: list[str] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        logprobs: int | None = None,
        constraint: Callable[[], Machine] | None = None,
        **generation: Any,
    ) -> RequestHandle:
        """Queue encoded prompt ids; ``logprobs`` and ``constraint`` as in ``GenerationRequest``."""
        params, max_new = self.sampling(**generation)
        request = GenerationRequest(prompt_ids, params, max_new, list(stop or []), n, logprobs, constraint)
        return self.batcher.submit(request, loop)

    def chat(
        self, messages: list[Message], system: str | None = None, tools: str | None = None, **kwargs: Any
    ) -> list[Reply]:
        """Whole replies (``n`` of them); with ``tools``, tool calls are parsed out of each reply."""
        handle = self.submit(messages, system, tools, **kwargs)
        return [
            self.to_reply(c.text, c.finish_reason, handle.prompt_tokens, c.completion_tokens, tools)
            for c in handle.result()
        ]

    def stream_chat(
        self, messages: list[Message], system: str | None = None, tools: str | None = None, **kwargs: Any
    ) -> Iterator[str]:
        """Text deltas of one reply as they are generated."""
        handle = self.submit(messages, system, tools, **kwargs)
        try:
            for event in handle:
                if event.text:
                    yield event.text
        finally:
            handle.cancel()

    @staticmethod
    def to_reply(text: str, reason: str, prompt_tokens: int, completion_tokens: int, tools: str | None) -> Reply:
        calls: list[ToolCall] = []
        if tools:
            text, calls = parse_tool_calls(text)
        return Reply(text, "tool_calls" if calls else reason, prompt_tokens, completion_tokens, calls)

    def score(self, texts: list[str], max_length: int | None = None, batch_size: int = 8) -> list[float]:
        """Reward of each text (already in the template's format) from the value head, at its last token."""
        import torch

        from genie_core.model.value_head import last_hidden_and_values, sequence_scores

        if not self.can_score:
            raise GenieError("this model has no value head; serve the output directory of an rm stage to score.")
        limit = min(max_length or self.max_positions or 1 << 30, self.max_positions or 1 << 30)
        encoded = [self.tokenizer.encode(t, add_special_tokens=False)[:limit] for t in texts]
        if not all(encoded):
            raise GenieError("messages: every text must contain at least one token.")
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        scores: list[float] = []
        with self._score_lock, torch.inference_mode():
            for start in range(0, len(encoded), batch_size):
                chunk = encoded[start : start + batch_size]
                longest = max(len(ids) for ids in chunk)
                ids = torch.tensor([x + [pad] * (longest - len(x)) for x in chunk], device=device)
                mask = torch.tensor([[1] * len(x) + [0] * (longest - len(x)) for x in chunk], device=device)
                _, values = last_hidden_and_values(self.model, self.model.v_head, ids, mask, return_logits=False)
                scores += sequence_scores(values, mask).float().tolist()
        return scores

    def info(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "template": self.template.name,
            "stop_token_ids": self.stop_token_ids,
            "generating": {k: getattr(self.generating, k) for k in GENERATION_KEYS},
            "batching": json.loads(json.dumps(self.batcher.config.__dict__)),
        }

    def close(self) -> None:
        self.batcher.close()

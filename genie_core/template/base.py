"""Chat templates: one declarative description of a chat format, rendered to text or encoded to ids.

A format string holds literal text plus slots: ``{{content}}``, ``{{system}}``, ``{{tools}}``, ``{{idx}}`` (1-based
round number) and special-token markers ``{{bos}}``, ``{{eos}}`` and ``{{token:NAME}}``. Markers are inserted as ids,
never tokenized as text, so the boundary between prompt and reply is exact; and slot values are never re-parsed, so
a message that happens to contain ``{{eos}}`` stays plain text.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

from genie_core.extras.errors import ConfigError, DataError
from genie_core.extras.logging import get_logger
from genie_core.schema import Message

logger = get_logger(__name__)

# how bos/eos markers read when no tokenizer is bound; the families registered here all spell them this way
BOS_TEXT, EOS_TEXT = "<s>", "</s>"
_SLOT = re.compile(r"\{\{(\w+|token:[^{}]+)\}\}")
_TEXT_SLOTS = frozenset({"content", "system", "tools", "idx"})
_USER_SIDE, _REPLY_SIDE = ("user", "observation"), ("assistant", "function")
_FORMAT_FIELDS = (
    "prefix",
    "system_format",
    "tools_format",
    "user_format",
    "observation_format",
    "generation_prompt",
    "assistant_format",
    "function_format",
    "separator",
)


@dataclass(frozen=True)
class Special:
    """A token that is inserted by id: ``bos``/``eos`` of the tokenizer, or a named ``token``."""

    kind: str  # "bos" | "eos" | "token"
    token: str = ""


Piece = str | Special


def _fill(fmt: str, slots: dict[str, str | list[Piece]] | None = None) -> list[Piece]:
    """Split a format string into pieces, substituting slot values without parsing them again."""
    slots = slots or {}
    pieces: list[Piece] = []
    for i, part in enumerate(_SLOT.split(fmt)):
        if i % 2 == 0:
            if part:
                pieces.append(part)
        elif part in ("bos", "eos"):
            pieces.append(Special(part))
        elif part.startswith("token:"):
            pieces.append(Special("token", part[len("token:") :]))
        else:
            value = slots.get(part, "")
            pieces.extend([value] if isinstance(value, str) else value)
    return [p for p in pieces if p != ""]


def _join(blocks: list[list[Piece]], sep: str) -> list[Piece]:
    out: list[Piece] = []
    for block in (b for b in blocks if b):
        if out:
            out.append(sep)
        out.extend(block)
    return out


def single_token_id(tokenizer: Any, word: str) -> int | None:
    """Id of ``word`` when the tokenizer holds it as one token (a vocab entry or text that encodes to one id)."""
    tid = tokenizer.convert_tokens_to_ids(word)
    if isinstance(tid, int) and (tid != tokenizer.unk_token_id or word == tokenizer.unk_token):
        return tid
    ids = tokenizer.encode(word, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def _check_roles(messages: list[Message]) -> None:
    for i, msg in enumerate(messages):
        allowed = _USER_SIDE if i % 2 == 0 else _REPLY_SIDE
        if msg["role"] not in allowed:
            raise DataError(
                f"message {i} has role '{msg['role']}', expected one of {'/'.join(allowed)}: turns must alternate "
                "(user|observation) and (assistant|function)"
            )


def _need_reply_last(messages: list[Message]) -> None:
    if not messages or len(messages) % 2:
        raise DataError("the conversation must end with an assistant/function turn (even number of messages)")


def _need_prompt_last(messages: list[Message]) -> None:
    if len(messages) % 2 == 0:
        raise DataError("the conversation must end with a user/observation turn (odd number of messages)")


@dataclass
class Template:
    """A chat format described by format strings (see the module docstring for the slot syntax).

    The sequence is ``prefix``, the system block, then for each turn ``separator`` (not before the first), the user or
    observation turn, ``generation_prompt`` (the assistant header), the assistant or function turn. The separator
    after a reply belongs to the next prompt, so replies end at their terminator; ``render`` writes it after the last
    reply too, while the encoded training sequence stops at the last terminator.

    The tools block (``tools_format`` with the tools text) goes where ``prefix`` or ``system_format`` has a
    ``{{tools}}`` slot; without one it is joined after the system text with a blank line. ``system_in_user`` puts
    the system block at the start of the first user message instead of before it (llama2, mistral).
    """

    name: str
    prefix: str = ""
    system_format: str = "{{system}}"
    tools_format: str = "{{tools}}"
    system_in_user: bool = False
    user_format: str = "{{content}}"
    observation_format: str | None = None  # None: same as user_format
    generation_prompt: str = ""
    assistant_format: str = "{{content}}{{eos}}"
    function_format: str | None = None  # None: same as assistant_format
    separator: str = ""
    stop_words: list[str] = field(default_factory=list)
    default_system: str = ""
    _tokenizer: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.observation_format is None:
            self.observation_format = self.user_format
        if self.function_format is None:
            self.function_format = self.assistant_format
        for key in _FORMAT_FIELDS:
            for slot in _SLOT.findall(getattr(self, key)):
                if slot not in _TEXT_SLOTS | {"bos", "eos"} and not slot.startswith("token:"):
                    raise ValueError(f"template '{self.name}': unknown slot {{{{{slot}}}}} in {key}")

    def bind(self, tokenizer: Any) -> Template:
        """A copy whose ``render`` spells bos/eos the way ``tokenizer`` does."""
        return dataclasses.replace(self, stop_words=list(self.stop_words), _tokenizer=tokenizer)

    # ---- public API -------------------------------------------------------------------------------------------

    def render(
        self,
        messages: list[Message],
        system: str | None = None,
        tools: str | None = None,
        add_generation_prompt: bool = False,
    ) -> str:
        """The exact text the model sees; the generation prompt is added when the last turn is a user one."""
        sides, tail = self._sides(messages, system, tools, add_generation_prompt)
        return "".join(self._text(p) for side in sides for p in side) + "".join(self._text(p) for p in tail)

    def encode_multiturn(
        self, tokenizer: Any, messages: list[Message], system: str | None = None, tools: str | None = None
    ) -> list[tuple[list[int], list[int]]]:
        """One (prompt_ids, response_ids) pair per turn; each response ends with the terminator to learn."""
        _need_reply_last(messages)
        sides = self._encode_sides(tokenizer, messages, system, tools, False)
        return list(zip(sides[0::2], sides[1::2]))

    def encode_oneturn(
        self, tokenizer: Any, messages: list[Message], system: str | None = None, tools: str | None = None
    ) -> tuple[list[int], list[int]]:
        """All earlier turns as the prompt, the last reply as the response (rm/dpo pairs, length checks)."""
        _need_reply_last(messages)
        sides = self._encode_sides(tokenizer, messages, system, tools, False)
        return [i for side in sides[:-1] for i in side], sides[-1]

    def encode_prompt(
        self, tokenizer: Any, messages: list[Message], system: str | None = None, tools: str | None = None
    ) -> list[int]:
        """Ids up to and including the generation prompt, for inference."""
        _need_prompt_last(messages)
        sides = self._encode_sides(tokenizer, messages, system, tools, True)
        return [i for side in sides for i in side]

    def get_stop_token_ids(self, tokenizer: Any) -> list[int]:
        """eos plus every stop word that is a single token (generation can only stop on ids)."""
        ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        for word in self.stop_words:
            tid = single_token_id(tokenizer, word)
            if tid is not None and tid not in ids:
                ids.append(tid)
        return ids

    def fix_tokenizer(self, tokenizer: Any) -> None:
        """Give the tokenizer an eos (the first stop word when it has none), one-token stop words and a pad token.

        Stop words are added to the vocabulary only when they are not single tokens already; the model's embeddings
        must then be resized, which the model loader does when the tokenizer is longer than the vocabulary.
        """
        missing = [w for w in self.stop_words if single_token_id(tokenizer, w) is None]
        if missing:
            tokenizer.add_tokens(missing, special_tokens=True)
            logger.warning("Added stop words %s as special tokens; the embeddings will be resized", missing)
        if tokenizer.eos_token_id is None and self.stop_words:
            tokenizer.eos_token = self.stop_words[0]
            logger.info("Set eos token to the template's stop word %s", self.stop_words[0])
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token_id is not None:
                tokenizer.pad_token = tokenizer.eos_token
            elif tokenizer.unk_token_id is not None:
                tokenizer.pad_token = tokenizer.unk_token
            else:
                logger.warning("Tokenizer has neither eos nor unk token; no pad token was set")

    # ---- internals ------------------------------------------------------------------------------------------

    def _system_parts(self, system: str | None, tools: str | None) -> tuple[list[Piece], list[Piece]]:
        """(system block, tools block for a ``{{tools}}`` slot in the prefix); either may be empty."""
        text = self.default_system if system is None else system
        body: list[Piece] = [text] if text else []
        tools_block = _fill(self.tools_format, {"tools": tools}) if tools else []
        if "{{tools}}" in self.prefix:
            prefix_tools, slot_tools = tools_block, []
        elif "{{tools}}" in self.system_format:
            prefix_tools, slot_tools = [], tools_block
        else:
            body, prefix_tools, slot_tools = _join([body, tools_block], "\n\n"), [], []
        if not body and not slot_tools:
            return [], prefix_tools
        return _fill(self.system_format, {"system": body, "tools": slot_tools}), prefix_tools

    def _sides(
        self, messages: list[Message], system: str | None, tools: str | None, generation: bool
    ) -> tuple[list[list[Piece]], list[Piece]]:
        """Pieces per side (prompt, reply, prompt, ...) and the separator that trails a final reply."""
        _check_roles(messages)
        if not messages:
            return [], []
        system_block, prefix_tools = self._system_parts(system, tools)
        sides: list[list[Piece]] = []
        for i, msg in enumerate(messages):
            idx = str(i // 2 + 1)
            content: list[Piece] = [msg["content"]] if msg["content"] else []
            if i % 2:
                fmt = self.function_format if msg["role"] == "function" else self.assistant_format
                sides.append(_fill(fmt, {"content": content, "idx": idx}))
                continue
            if i == 0:
                side = _fill(self.prefix, {"tools": prefix_tools})
                if self.system_in_user:
                    content = system_block + content
                else:
                    side += system_block
            else:
                side = _fill(self.separator)
            fmt = self.observation_format if msg["role"] == "observation" else self.user_format
            side += _fill(fmt, {"content": content, "idx": idx})
            if i + 1 < len(messages) or generation:
                side += _fill(self.generation_prompt, {"idx": idx})
            sides.append(side)
        tail = _fill(self.separator) if len(messages) % 2 == 0 else []
        return sides, tail

    def _encode_sides(
        self, tokenizer: Any, messages: list[Message], system: str | None, tools: str | None, generation: bool
    ) -> list[list[int]]:
        sides, _ = self._sides(messages, system, tools, generation)
        return [self._ids(tokenizer, side) for side in sides]

    def _text(self, piece: Piece) -> str:
        if isinstance(piece, str):
            return piece
        if piece.kind == "token":
            return piece.token
        tok = self._tokenizer
        if tok is None:
            return BOS_TEXT if piece.kind == "bos" else EOS_TEXT
        return (tok.bos_token if piece.kind == "bos" else tok.eos_token) or ""

    def _ids(self, tokenizer: Any, pieces: list[Piece]) -> list[int]:
        """Encode text runs with the tokenizer and insert markers as ids."""
        ids: list[int] = []
        text = ""
        for piece in pieces:
            if isinstance(piece, str):
                text += piece
                continue
            if text:
                ids += tokenizer.encode(text, add_special_tokens=False)
                text = ""
            ids += self._special_ids(tokenizer, piece)
        if text:
            ids += tokenizer.encode(text, add_special_tokens=False)
        return ids

    def _special_ids(self, tokenizer: Any, piece: Special) -> list[int]:
        if piece.kind == "bos":
            return [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        if piece.kind == "eos":
            if tokenizer.eos_token_id is None:
                raise ConfigError(
                    f"template '{self.name}' ends replies with eos but the tokenizer has none; "
                    "call template.fix_tokenizer(tokenizer) or pick a template with a stop word"
                )
            return [tokenizer.eos_token_id]
        tid = single_token_id(tokenizer, piece.token)
        return [tid] if tid is not None else tokenizer.encode(piece.token, add_special_tokens=False)


# ---- the tokenizer's own chat template ---------------------------------------------------------------------------

_SENTINEL = "Sentinel-reply-7"


def _tool_call_message(content: str) -> dict[str, Any]:
    """A function turn as the assistant message with ``tool_calls`` that HF chat templates expect."""
    try:
        calls = json.loads(content)
    except ValueError:
        return {"role": "assistant", "content": content}
    calls = calls if isinstance(calls, list) else [calls]
    if not calls or not all(isinstance(c, dict) and "name" in c for c in calls):
        return {"role": "assistant", "content": content}
    tool_calls = []
    for call in calls:
        args = call.get("arguments", call.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                pass
        tool_calls.append({"type": "function", "function": {"name": call["name"], "arguments": args}})
    return {"role": "assistant", "content": "", "tool_calls": tool_calls}


def to_hf_messages(messages: list[Message], system: str | None) -> list[dict[str, Any]]:
    """Our schema -> the message dicts of ``apply_chat_template`` (observation -> tool role)."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for msg in messages:
        if msg["role"] == "observation":
            out.append({"role": "tool", "content": msg["content"]})
        elif msg["role"] == "function":
            out.append(_tool_call_message(msg["content"]))
        else:
            out.append({"role": msg["role"], "content": msg["content"]})
    return out


@dataclass
class TokenizerTemplate(Template):
    """Renders with the tokenizer's own jinja chat template (``template: auto``).

    Prompt/response ids come from rendering growing prefixes of the conversation and tokenizing the differences;
    whitespace after a reply's terminator moves to the next prompt, as for the declared templates.
    """

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> TokenizerTemplate:
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                "template: the tokenizer has no chat_template, so `auto` cannot be used; "
                "set `template` to a named format (see `genie templates`)"
            )
        template = cls(name="auto", _tokenizer=tokenizer)
        template.stop_words = template._infer_stop_words(tokenizer)
        return template

    def render(
        self,
        messages: list[Message],
        system: str | None = None,
        tools: str | None = None,
        add_generation_prompt: bool = False,
    ) -> str:
        if self._tokenizer is None:
            raise ConfigError("template: `auto` needs a tokenizer; use get_template('auto', tokenizer)")
        return self._apply(self._tokenizer, messages, system, tools, add_generation_prompt)

    def _apply(
        self, tokenizer: Any, messages: list[Message], system: str | None, tools: str | None, generation: bool
    ) -> str:
        _check_roles(messages)
        kwargs: dict[str, Any] = {}
        if tools:
            try:
                parsed = json.loads(tools)
                kwargs["tools"] = parsed if isinstance(parsed, list) else [parsed]
            except ValueError:  # free-text tool descriptions can only travel in the system prompt
                system = "\n\n".join(p for p in (system, tools) if p)
        if system is None:
            system = self.default_system
        return tokenizer.apply_chat_template(
            to_hf_messages(messages, system), tokenize=False, add_generation_prompt=generation, **kwargs
        )

    def _encode_sides(
        self, tokenizer: Any, messages: list[Message], system: str | None, tools: str | None, generation: bool
    ) -> list[list[int]]:
        texts: list[str] = []
        done = ""
        for k in range(len(messages)):
            gen = k % 2 == 0 and (k + 1 < len(messages) or generation)
            full = self._apply(tokenizer, messages[: k + 1], system, tools, gen)
            if not full.startswith(done):
                raise ConfigError(
                    "template: the tokenizer's chat template rewrites earlier turns as the conversation grows, so "
                    "prompt and reply cannot be split; set `template` to a named format"
                )
            texts.append(full[len(done) :])
            done = full
        for k in range(1, len(texts), 2):
            body = texts[k].rstrip()
            if body and body != texts[k]:
                if k + 1 < len(texts):
                    texts[k + 1] = texts[k][len(body) :] + texts[k + 1]
                texts[k] = body
        return [tokenizer.encode(t, add_special_tokens=False) for t in texts]

    def _infer_stop_words(self, tokenizer: Any) -> list[str]:
        """The single token the chat template writes right after a reply, when it is not eos already."""
        convo: list[Message] = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": _SENTINEL}]
        try:
            text = self._apply(tokenizer, convo, None, None, False)
        except Exception as exc:  # a template that rejects this probe still renders real data; stop on eos only
            logger.warning("Could not probe the chat template for its stop word: %s", exc)
            return []
        pos = text.rfind(_SENTINEL)
        after = text[pos + len(_SENTINEL) :].strip() if pos >= 0 else ""
        if after and after != tokenizer.eos_token and single_token_id(tokenizer, after) is not None:
            return [after]
        return []

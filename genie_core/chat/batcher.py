"""A background thread that generates for several requests at once.

Requests wait in a bounded queue. The worker takes the oldest one, waits ``batch_wait_ms`` for others to arrive,
and decodes up to ``max_batch_size`` rows together: prompts are left-padded, every row samples with its own
settings, streams its own text and leaves the batch when it stops. A request that arrives while a batch runs joins
it at the next step when rows are free: its prompt is encoded on its own, and its KV cache is left-padded and
stacked onto the running one (models whose caches are not plain growing tensors, e.g. sliding-window layers, wait
for the next batch instead). A full queue refuses new work (``EngineBusy``) instead of growing without bound.
"""

from __future__ import annotations

import asyncio
import inspect
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from genie_core.chat.sampling import BatchSampler, SamplingParams
from genie_core.chat.textstream import TextStream
from genie_core.extras.errors import GenieError
from genie_core.extras.logging import get_logger

logger = get_logger(__name__)


class EngineBusy(GenieError):
    """The request queue is full; the caller should retry later."""


@dataclass
class BatcherConfig:
    max_batch_size: int = field(default=8, metadata={"help": "Most sequences decoded together in one batch."})
    max_queue: int = field(
        default=64, metadata={"help": "Most requests waiting for a batch; further requests are refused as busy."}
    )
    batch_wait_ms: float = field(
        default=10.0, metadata={"help": "After a request arrives, wait this long for others to share its batch."}
    )

    def __post_init__(self) -> None:
        from genie_core.extras.errors import ConfigError

        if self.max_batch_size < 1 or self.max_queue < 1 or self.batch_wait_ms < 0:
            raise ConfigError("max_batch_size and max_queue must be >= 1 and batch_wait_ms >= 0.")


@dataclass
class GenerationRequest:
    prompt_ids: list[int]
    params: SamplingParams = field(default_factory=SamplingParams)
    max_new_tokens: int = 512
    stop: list[str] = field(default_factory=list)
    n: int = 1


class Event(NamedTuple):
    """A piece of one reply: new text, and ``finish_reason`` (stop, length, cancelled, error) on its last event."""

    index: int
    text: str
    finish_reason: str | None = None
    completion_tokens: int = 0


@dataclass
class Completion:
    text: str
    finish_reason: str
    completion_tokens: int


_DONE = object()


class RequestHandle:
    """What ``Batcher.submit`` returns: iterate it (sync or async) for events, or call ``result()``."""

    def __init__(self, request: GenerationRequest, loop: asyncio.AbstractEventLoop | None = None):
        self.request = request
        self.prompt_tokens = len(request.prompt_ids)
        self.error: str | None = None
        self._loop = loop
        self._events: Any = asyncio.Queue() if loop is not None else queue.Queue()
        self._cancelled = threading.Event()
        self._open_rows = request.n

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Stop generating for this request (e.g. the client went away); its rows leave the batch."""
        self._cancelled.set()

    def _put(self, item: Any) -> None:
        if self._loop is None:
            self._events.put(item)
            return
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, item)
        except RuntimeError:  # the event loop is gone, so nobody is listening
            self.cancel()

    def _emit(self, event: Event) -> None:
        self._put(event)
        if event.finish_reason is not None:
            self._open_rows -= 1
            if self._open_rows == 0:
                self._put(_DONE)

    def _fail(self, message: str) -> None:
        self.error = message
        self._put(_DONE)

    def __iter__(self):
        while True:
            item = self._events.get()
            if item is _DONE:
                break
            yield item
        if self.error:
            raise GenieError(f"generation failed: {self.error}")

    async def __aiter__(self):
        while True:
            item = await self._events.get()
            if item is _DONE:
                break
            yield item
        if self.error:
            raise GenieError(f"generation failed: {self.error}")

    def result(self) -> list[Completion]:
        return _collect(self.request.n, iter(self))

    async def aresult(self) -> list[Completion]:
        return _collect(self.request.n, [ev async for ev in self])


def _collect(n: int, events) -> list[Completion]:
    texts, reasons, counts = [""] * n, ["stop"] * n, [0] * n
    for ev in events:
        texts[ev.index] += ev.text
        if ev.finish_reason is not None:
            reasons[ev.index], counts[ev.index] = ev.finish_reason, ev.completion_tokens
    return [Completion(t, r, c) for t, r, c in zip(texts, reasons, counts)]


@dataclass
class _Row:
    handle: RequestHandle
    index: int
    stream: TextStream
    tokens: int = 0


@dataclass
class _Running:
    """The decoding state of a batch: its rows, the next-token logits, KV cache, attention mask and positions."""

    rows: list[_Row]
    logits: torch.Tensor
    cache: Any
    mask: torch.Tensor
    next_pos: torch.Tensor
    sampler: BatchSampler

    def select(self, keep: list[int]) -> None:
        index = torch.tensor(keep, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.sampler.select(index)
        self.mask, self.next_pos = self.mask[index], self.next_pos[index]
        self.rows = [self.rows[i] for i in keep]

    def merge(self, other: _Running) -> None:
        """Append ``other``'s rows; the shorter cache and mask are left-padded to the longer one."""
        mine, theirs = self.mask.shape[1], other.mask.shape[1]
        width = max(mine, theirs)
        for layer, new in zip(self.cache.layers, other.cache.layers):
            layer.keys = torch.cat([_left_pad(layer.keys, width), _left_pad(new.keys, width)])
            layer.values = torch.cat([_left_pad(layer.values, width), _left_pad(new.values, width)])
        self.mask = torch.cat([_left_pad(self.mask, width, dim=1), _left_pad(other.mask, width, dim=1)])
        self.logits = torch.cat([self.logits, other.logits])
        self.next_pos = torch.cat([self.next_pos, other.next_pos])
        self.sampler.extend(other.sampler)
        self.rows += other.rows


def _left_pad(t: torch.Tensor, width: int, dim: int = -2) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def _joinable(cache) -> bool:
    """New rows can be merged into plain growing caches only (not sliding-window or other layer kinds)."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer and layer.is_initialized for layer in layers)


class Batcher:
    """Owns the model while it runs; ``submit`` is safe to call from any thread."""

    def __init__(self, model, tokenizer, stop_token_ids: list[int], config: BatcherConfig | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.config = config or BatcherConfig()
        self.stop_token_ids = set(stop_token_ids)
        self.device = next(model.parameters()).device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.max_positions = getattr(model.config, "max_position_embeddings", None) or 1 << 30
        self.stats = {"batches": 0, "requests": 0, "rows": 0, "max_rows": 0, "joined": 0}
        self.vocab_size = model.get_output_embeddings().weight.shape[0]
        self._running: list[RequestHandle] = []
        self._takes_logits_to_keep = "logits_to_keep" in inspect.signature(model.forward).parameters
        self._pending: deque[RequestHandle] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="genie-batcher", daemon=True)
        self._thread.start()

    # ---- public ---------------------------------------------------------------------------------------------

    def submit(self, request: GenerationRequest, loop: asyncio.AbstractEventLoop | None = None) -> RequestHandle:
        """Queue a request; events arrive on the returned handle (on ``loop`` for async callers)."""
        if request.n > self.config.max_batch_size:
            raise GenieError(f"n={request.n} exceeds max_batch_size={self.config.max_batch_size}.")
        handle = RequestHandle(request, loop)
        with self._cond:
            if self._closed:
                raise GenieError("the engine is shut down.")
            if len(self._pending) >= self.config.max_queue:
                raise EngineBusy(f"{len(self._pending)} requests are already waiting; try again shortly.")
            self._pending.append(handle)
            self._cond.notify()
        return handle

    @property
    def queued(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=30)

    # ---- worker ---------------------------------------------------------------------------------------------

    def _next_batch(self) -> list[RequestHandle] | None:
        """Block for the first request, then gather more for up to ``batch_wait_ms`` while rows are free."""
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            batch = [self._pending.popleft()]
            rows = batch[0].request.n
            deadline = time.monotonic() + self.config.batch_wait_ms / 1000
            while rows < self.config.max_batch_size:
                if self._pending:
                    if rows + self._pending[0].request.n > self.config.max_batch_size:
                        break
                    batch.append(self._pending.popleft())
                    rows += batch[-1].request.n
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    break
                self._cond.wait(timeout=left)
        live = []
        for handle in batch:
            if handle.cancelled:
                handle._fail("cancelled")
            else:
                live.append(handle)
        return live

    def _take_joiners(self, free_rows: int) -> list[RequestHandle]:
        """Waiting requests that fit into ``free_rows`` of the running batch (oldest first, never skipping one)."""
        taken: list[RequestHandle] = []
        with self._cond:
            while self._pending and self._pending[0].request.n <= free_rows:
                handle = self._pending.popleft()
                if handle.cancelled:
                    handle._fail("cancelled")
                    continue
                taken.append(handle)
                free_rows -= handle.request.n
        return taken

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                break
            if not batch:
                continue
            self._running = list(batch)
            try:
                self._generate(batch)
            except Exception as exc:  # keep serving: report the failure to this batch's callers
                logger.exception("Generation failed for a batch of %d request(s)", len(self._running))
                for handle in self._running:
                    handle._fail(f"{type(exc).__name__}: {exc}")
            self._running = []
        with self._cond:
            for handle in self._pending:
                handle._fail("the engine shut down")
            self._pending.clear()

    def _forward(self, **inputs):
        if self._takes_logits_to_keep:
            inputs["logits_to_keep"] = 1
        out = self.model(**inputs, use_cache=True)
        return out.logits[:, -1, :], out.cache if hasattr(out, "cache") else out.past_key_values

    def _prefill(self, handles: list[RequestHandle]) -> _Running:
        """Encode the prompts of ``handles`` (left-padded) and return the batch state ready to sample."""
        from transformers import DynamicCache

        rows = [_Row(h, i, TextStream(self.tokenizer, h.request.stop)) for h in handles for i in range(h.request.n)]
        prompts = [r.handle.request.prompt_ids for r in rows]
        self.stats["requests"] += len(handles)
        self.stats["rows"] += len(rows)
        longest = max(len(p) for p in prompts)
        input_ids = torch.tensor([[self.pad_id] * (longest - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        sampler = BatchSampler([r.handle.request.params for r in rows], prompts, self.vocab_size, self.device)
        cache = DynamicCache(config=self.model.config)
        logits, cache = self._forward(input_ids=input_ids, attention_mask=mask, position_ids=positions, cache=cache)
        return _Running(rows, logits, cache, mask, positions[:, -1:] + 1, sampler)

    @torch.inference_mode()
    def _generate(self, batch: list[RequestHandle]) -> None:
        state = self._prefill(batch)
        self.stats["batches"] += 1
        joinable = _joinable(state.cache)
        while state.rows:
            free = self.config.max_batch_size - len(state.rows)
            joiners = self._take_joiners(free) if joinable and free > 0 else []
            if joiners:  # continuous batching: new requests start without waiting for this batch to end
                self._running += joiners
                state.merge(self._prefill(joiners))
                self.stats["joined"] += len(joiners)
            self.stats["max_rows"] = max(self.stats["max_rows"], len(state.rows))
            tokens = state.sampler(state.logits)
            state.sampler.observe(tokens)
            keep = [i for i, (row, tok) in enumerate(zip(state.rows, tokens.tolist())) if self._advance(row, tok)]
            if not keep:
                break
            if len(keep) < len(state.rows):
                state.select(keep)
                tokens = tokens[torch.tensor(keep, device=self.device)]
            state.mask = torch.cat([state.mask, state.mask.new_ones(len(state.rows), 1)], dim=1)
            state.logits, state.cache = self._forward(
                input_ids=tokens.unsqueeze(1),
                attention_mask=state.mask,
                position_ids=state.next_pos,
                cache=state.cache,
            )
            state.next_pos = state.next_pos + 1

    def _advance(self, row: _Row, token: int) -> bool:
        """Feed one sampled token to its row; emit text; return whether the row keeps generating."""
        handle = row.handle
        if token in self.stop_token_ids:
            return self._finish(row, "stop")
        row.tokens += 1
        row.stream.push(token)
        if row.stream.stopped:
            return self._finish(row, "stop")
        request = handle.request
        if row.tokens >= request.max_new_tokens or len(request.prompt_ids) + row.tokens >= self.max_positions:
            return self._finish(row, "length")
        if handle.cancelled or self._closed:
            return self._finish(row, "cancelled")
        delta = row.stream.take()
        if delta:
            handle._emit(Event(row.index, delta))
        return True

    def _finish(self, row: _Row, reason: str) -> bool:
        row.handle._emit(Event(row.index, row.stream.take(final=True), reason, row.tokens))
        return False

"""A background thread that generates for several requests at once.

Requests wait in a bounded queue. The worker takes the oldest one, waits ``batch_wait_ms`` for others to arrive,
and decodes up to ``max_batch_size`` rows together: prompts are left-padded, every row samples with its own
settings, streams its own text and leaves the batch when it stops. A request that arrives while a batch runs joins
it at the next step when rows are free: its prompt is encoded on its own, and its KV cache is left-padded and
stacked onto the running one (models whose caches are not plain growing tensors, e.g. sliding-window layers, wait
for the next batch instead). A full queue refuses new work (``EngineBusy``) instead of growing without bound.

A request may ask for log-probabilities (``logprobs``: the chosen token's and its ``k`` best alternatives', taken
from the scores the row was sampled from, see ``sampling``) and may carry a ``constraint``: a grammar machine that
only lets tokens through which keep the reply well formed (``constrain``); its row ends as soon as the machine is
complete.

A failure stays with the request that causes it: a row that cannot sample fails its request and leaves the batch,
and a prefill or decoding step that raises with several requests aboard is retried with each request alone (resuming
from the tokens it already has), so only the request that fails alone is reported as failed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from genie_core.chat.constrain import TokenTable, allowed_tokens
from genie_core.chat.grammar import Machine, feed_all
from genie_core.chat.sampling import BatchSampler, SamplingParams
from genie_core.chat.textstream import TextStream
from genie_core.extras.errors import GenieError
from genie_core.extras.logging import get_logger
from genie_core.extras.threads import ThreadBudget
from genie_core.model.few_rows import few_row_linears

logger = get_logger(__name__)


_THREAD_CHECK_STEPS = 32  # a long reply re-reads the free cores this often


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
    logprobs: int | None = None  # None: none; k: each token's log-probability and its k best alternatives
    constraint: Callable[[], Machine] | None = None  # a fresh grammar machine per row


class TokenLogprob(NamedTuple):
    """One generated token: its log-probability and the ``k`` most likely tokens at its position (id, logprob)."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


class Event(NamedTuple):
    """A piece of one reply: new text, and ``finish_reason`` (stop, length, cancelled, error) on its last event.

    ``logprobs`` holds the tokens generated since the previous event of the row (text held back, e.g. half a
    character, arrives with a later event, and so do its tokens).
    """

    index: int
    text: str
    finish_reason: str | None = None
    completion_tokens: int = 0
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass
class Completion:
    text: str
    finish_reason: str
    completion_tokens: int
    logprobs: list[TokenLogprob] = field(default_factory=list)


_DONE = object()
_NO_DISTRIBUTION = (
    "sampling produced no valid distribution (non-finite scores); check temperature, top_k, top_p and "
    "repetition_penalty"
)


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
        self._done = False

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

    @property
    def failed(self) -> bool:
        return self.error is not None

    def _emit(self, event: Event) -> None:
        if self._done:
            return
        self._put(event)
        if event.finish_reason is not None:
            self._open_rows -= 1
            if self._open_rows == 0:
                self._done = True
                self._put(_DONE)

    def _fail(self, message: str) -> None:
        """End the request with an error; later events of its other rows are dropped."""
        if self._done:
            return
        self.error, self._done = message, True
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
    out = [Completion("", "stop", 0) for _ in range(n)]
    for ev in events:
        done = out[ev.index]
        done.text += ev.text
        done.logprobs += ev.logprobs
        if ev.finish_reason is not None:
            done.finish_reason, done.completion_tokens = ev.finish_reason, ev.completion_tokens
    return out


@dataclass
class _Row:
    handle: RequestHandle
    index: int
    stream: TextStream
    params: SamplingParams  # the request's, with a seed of its own per row
    machine: Machine | None = None
    ids: list[int] = field(default_factory=list)  # generated so far: a retried row resumes from them
    pending: list[TokenLogprob] = field(default_factory=list)  # log-probs not yet sent with an event
    done: bool = False

    @property
    def tokens(self) -> int:
        return len(self.ids)

    @property
    def live(self) -> bool:
        return not self.done and not self.handle.failed


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
        self.stats = {
            "batches": 0,
            "requests": 0,
            "rows": 0,
            "max_rows": 0,
            "joined": 0,
            "tokens": 0,  # sampled tokens, all rows together
            "cancelled": 0,  # rows that left because their request was cancelled (e.g. the client went away)
            "failed": 0,  # requests that ended with an error
            "retries": 0,  # batches that failed and were re-run request by request
        }
        self.vocab_size = model.get_output_embeddings().weight.shape[0]
        self.embedding_rows = model.get_input_embeddings().weight.shape[0]
        self._table: TokenTable | None = None
        self._table_lock = threading.Lock()
        self._rows: list[_Row] = []  # every row of the batch being decoded, finished ones too
        self._takes_logits_to_keep = "logits_to_keep" in inspect.signature(model.forward).parameters
        self.threads = ThreadBudget("generation")  # a server outlives the training runs started beside it
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
        # on a GPU an id past the embedding is a device-side assert, which ends every later request too
        outside = next((t for t in request.prompt_ids if not 0 <= t < self.embedding_rows), None)
        if outside is not None:
            raise GenieError(f"prompt token id {outside} is not in the vocabulary (0 to {self.embedding_rows - 1}).")
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
    def token_table(self) -> TokenTable:
        """Each token's bytes (built on first use: constrained decoding and log-prob text need it)."""
        with self._table_lock:
            if self._table is None:
                self._table = TokenTable(self.tokenizer, self.vocab_size)
            return self._table

    @property
    def queued(self) -> int:
        return len(self._pending)

    @property
    def running(self) -> int:
        """Rows still generating in the current batch."""
        return sum(row.live for row in list(self._rows))

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=30)
        self.threads.close()

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
            if batch:
                self._rows = self._new_rows(batch)  # joiners are appended to this list as they arrive
                self._run(self._rows, join=True)
                self._rows = []
        with self._cond:
            for handle in self._pending:
                handle._fail("the engine shut down")
            self._pending.clear()

    def _new_rows(self, handles: list[RequestHandle]) -> list[_Row]:
        self.stats["requests"] += len(handles)
        rows = [self._row(h, i) for h in handles for i in range(h.request.n)]
        self.stats["rows"] += len(rows)
        return rows

    def _row(self, handle: RequestHandle, index: int) -> _Row:
        request = handle.request
        params = request.params
        if params.seed is not None:  # the n replies of one request must not be n copies
            params = dataclasses.replace(params, seed=params.seed + index)
        machine = request.constraint() if request.constraint is not None else None
        return _Row(handle, index, TextStream(self.tokenizer, request.stop), params, machine)

    def _run(self, rows: list[_Row], join: bool) -> None:
        """Decode ``rows`` to the end; if that raises with several requests aboard, re-run each one alone.

        Re-runs resume from the tokens each row already streamed and take no joiners, so every re-run either ends
        its own request or fails it alone: a failure is only ever reported to a request that fails by itself.
        """
        try:
            with few_row_linears(self.model):  # decode steps: the layout this CPU streams weights fastest in
                self._decode(rows, join)
            return
        except Exception as exc:  # keep serving: find out which request the failure belongs to
            error = exc
        left = []
        for row in rows:
            if row.live and row.handle.cancelled:
                self._finish(row, "cancelled")  # nobody waits for it: no need to retry
            elif row.live:
                left.append(row)
        handles = list(dict.fromkeys(row.handle for row in left))
        if len(handles) <= 1:
            logger.error("Generation failed for a request", exc_info=error)
            for handle in handles:
                self._fail(handle, f"{type(error).__name__}: {error}")
            return
        logger.warning(
            "A batch of %d requests failed (%s: %s); retrying them one by one",
            len(handles),
            type(error).__name__,
            error,
        )
        self.stats["retries"] += 1
        for handle in handles:
            self._run([row for row in left if row.handle is handle], join=False)

    def _fail(self, handle: RequestHandle, message: str) -> None:
        if not handle.failed:
            self.stats["failed"] += 1
        handle._fail(message)

    def _forward(self, **inputs):
        if self._takes_logits_to_keep:
            inputs["logits_to_keep"] = 1
        out = self.model(**inputs, use_cache=True)
        return out.logits[:, -1, :], out.cache if hasattr(out, "cache") else out.past_key_values

    def _prefill(self, rows: list[_Row]) -> _Running:
        """Encode the prompts of ``rows`` (plus what they generated already; left-padded), ready to sample."""
        from transformers import DynamicCache

        prompts = [r.handle.request.prompt_ids + r.ids for r in rows]
        longest = max(len(p) for p in prompts)
        input_ids = torch.tensor([[self.pad_id] * (longest - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        sampler = BatchSampler([r.params for r in rows], prompts, self.vocab_size, self.device, [r.ids for r in rows])
        cache = DynamicCache(config=self.model.config)
        logits, cache = self._forward(input_ids=input_ids, attention_mask=mask, position_ids=positions, cache=cache)
        return _Running(list(rows), logits, cache, mask, positions[:, -1:] + 1, sampler)

    def _join(self, state: _Running, free_rows: int, batch_rows: list[_Row]) -> None:
        """Prefill waiting requests that fit and merge them in; a request whose prefill fails is failed alone."""
        joiners = self._take_joiners(free_rows)
        if not joiners:
            return
        rows = self._new_rows(joiners)
        batch_rows += rows
        self.stats["joined"] += len(joiners)
        try:
            states = [self._prefill(rows)]
        except Exception:  # find the request(s) whose prompt fails; the running rows are not involved
            groups = [[row for row in rows if row.handle is handle] for handle in joiners]
            states = [st for st in map(self._prefill_alone, groups) if st is not None]
        for other in states:  # outside the guard: a failed merge leaves the batch broken, for _run to retry
            state.merge(other)

    def _prefill_alone(self, rows: list[_Row]) -> _Running | None:
        """Prefill the rows of one request; if that fails, the request fails and None comes back."""
        try:
            return self._prefill(rows)
        except Exception as exc:
            logger.warning("Prefill failed for a request (%s: %s)", type(exc).__name__, exc)
            self._fail(rows[0].handle, f"{type(exc).__name__}: {exc}")
            return None

    def _sample(self, state: _Running) -> tuple[list[int], list[str | None], list[TokenLogprob | None]]:
        """Every row's next token, why it could not sample (or None) and its log-probs; row by row if that raises."""
        try:
            return self._sample_rows(state.sampler, state.logits, state.rows)
        except Exception as exc:
            if len(state.rows) == 1:
                raise
            logger.warning("Sampling failed for a batch of %d rows (%s); sampling row by row", len(state.rows), exc)
        tokens: list[int] = []
        errors: list[str | None] = []
        entries: list[TokenLogprob | None] = []
        for i in range(len(state.rows)):
            try:
                (token,), (error,), (entry,) = self._sample_rows(
                    state.sampler.row(i), state.logits[i : i + 1], state.rows[i : i + 1]
                )
            except Exception as exc:
                token, error, entry = 0, f"{type(exc).__name__}: {exc}", None
            tokens.append(token)
            errors.append(error)
            entries.append(entry)
        return tokens, errors, entries

    def _sample_rows(
        self, sampler: BatchSampler, logits: torch.Tensor, rows: list[_Row]
    ) -> tuple[list[int], list[str | None], list[TokenLogprob | None]]:
        scores, valid = sampler.process(logits)
        problems: dict[int, str] = {}
        constrained = [i for i, row in enumerate(rows) if row.machine is not None and row.live]
        if constrained:
            scores = scores.clone()  # masked in place below; may be the logits themselves
            usable = valid.tolist()
            for i in constrained:
                problem = self._constrain(rows[i], scores, logits, i) if usable[i] else None
                if problem:
                    problems[i] = problem
            if problems:
                valid = valid & torch.tensor([i not in problems for i in range(len(rows))], device=valid.device)
        tokens, valid = sampler.choose(scores, valid)
        errors = [problems.get(i) or (None if ok else _NO_DISTRIBUTION) for i, ok in enumerate(valid.tolist())]
        token_list = tokens.tolist()
        return token_list, errors, self._logprobs(rows, scores, token_list)

    def _constrain(self, row: _Row, scores: torch.Tensor, logits: torch.Tensor, i: int) -> str | None:
        """Leave only the tokens the row's grammar allows in ``scores[i]`` (in place); an error if none fits."""
        request = row.handle.request
        remaining = min(request.max_new_tokens, self.max_positions - len(request.prompt_ids)) - row.tokens
        first_only = bool(row.params.greedy) and request.logprobs is None
        assert row.machine is not None
        ids, from_fallback = allowed_tokens(
            row.machine, self.token_table, scores[i], logits[i].float(), remaining, first_only
        )
        if not ids:
            return "no token can continue the reply in the required format"
        keep = torch.tensor(ids, device=scores.device)
        values = (logits[i].float() if from_fallback else scores[i])[keep]
        scores[i] = float("-inf")
        scores[i, keep] = values
        return None

    def _logprobs(self, rows: list[_Row], scores: torch.Tensor, tokens: list[int]) -> list[TokenLogprob | None]:
        """Log-probs for the rows that asked, from the scores they were sampled from.

        Sampling rows: after penalties, temperature, top-k and top-p (and a grammar), so a token left out is at
        -inf; greedy rows: the softmax of their penalized logits at temperature 1, the distribution an arg-max
        reads.
        """
        wanted = [i for i, row in enumerate(rows) if row.handle.request.logprobs is not None]
        entries: list[TokenLogprob | None] = [None] * len(rows)
        if not wanted:
            return entries
        index = torch.tensor(wanted, device=scores.device)
        logp = torch.log_softmax(scores[index], dim=-1)
        k = min(max(rows[i].handle.request.logprobs or 0 for i in wanted), logp.shape[-1])
        top_values, top_ids = torch.topk(logp, k, dim=-1) if k else (logp[:, :0], logp[:, :0].long())
        chosen = logp.gather(1, torch.tensor([[tokens[i]] for i in wanted], device=scores.device)).squeeze(1)
        for j, (i, value) in enumerate(zip(wanted, chosen.tolist())):
            count = rows[i].handle.request.logprobs or 0
            top = tuple(zip(top_ids[j, :count].tolist(), top_values[j, :count].tolist()))
            entries[i] = TokenLogprob(tokens[i], value, top)
        return entries

    @torch.inference_mode()
    def _decode(self, rows: list[_Row], join: bool) -> None:
        self.threads.apply()
        state = self._prefill(rows)
        self.stats["batches"] += 1
        join = join and _joinable(state.cache)
        steps = 0
        while True:
            steps += 1
            if steps % _THREAD_CHECK_STEPS == 0:
                self.threads.apply()
            free = self.config.max_batch_size - len(state.rows)
            if join and free > 0:  # continuous batching: new requests start without waiting for this batch to end
                self._join(state, free, rows)
            self.stats["max_rows"] = max(self.stats["max_rows"], len(state.rows))
            tokens, errors, entries = self._sample(state)
            state.sampler.observe(torch.tensor(tokens, device=self.device))
            for row, token, error, entry in zip(state.rows, tokens, errors, entries):
                if not row.live:
                    continue  # another row of its request failed earlier in this step
                if error is not None:
                    self._fail(row.handle, error)
                    continue
                try:
                    self._advance(row, token, entry)
                except Exception as exc:  # e.g. decoding the text: only this request is affected
                    logger.warning("Streaming a token failed (%s: %s)", type(exc).__name__, exc)
                    self._fail(row.handle, f"{type(exc).__name__}: {exc}")
            keep = [i for i, row in enumerate(state.rows) if row.live]
            if not keep:
                break
            if len(keep) < len(state.rows):
                state.select(keep)
            state.mask = torch.cat([state.mask, state.mask.new_ones(len(state.rows), 1)], dim=1)
            state.logits, state.cache = self._forward(
                input_ids=torch.tensor([[tokens[i]] for i in keep], device=self.device),
                attention_mask=state.mask,
                position_ids=state.next_pos,
                cache=state.cache,
            )
            state.next_pos = state.next_pos + 1

    def _advance(self, row: _Row, token: int, entry: TokenLogprob | None = None) -> bool:
        """Feed one sampled token to its row; emit text; return whether the row keeps generating."""
        handle = row.handle
        self.stats["tokens"] += 1
        if token in self.stop_token_ids:
            return self._finish(row, "stop")
        row.ids.append(token)
        if entry is not None:
            row.pending.append(entry)
        if row.machine is not None and not feed_all(row.machine, self.token_table.bytes_of(token)):
            raise RuntimeError(f"token {token} broke the reply's required format")  # the mask let it through
        row.stream.push(token)
        if row.stream.stopped or (row.machine is not None and row.machine.done):
            return self._finish(row, "stop")
        request = handle.request
        if row.tokens >= request.max_new_tokens or len(request.prompt_ids) + row.tokens >= self.max_positions:
            return self._finish(row, "length")
        if handle.cancelled or self._closed:
            return self._finish(row, "cancelled")
        delta = row.stream.take()
        if delta:
            handle._emit(Event(row.index, delta, logprobs=tuple(row.pending)))
            row.pending.clear()
        return True

    def _finish(self, row: _Row, reason: str) -> bool:
        row.done = True
        if reason == "cancelled":
            self.stats["cancelled"] += 1
        row.handle._emit(Event(row.index, row.stream.take(final=True), reason, row.tokens, tuple(row.pending)))
        row.pending.clear()
        return False

"""Continuous batching: the requests of a server share one running batch of decode steps.

The engine knows nothing of HTTP. A caller submits a `Job` (prompt ids, settings, one seed per
sequence, a token budget, stop texts) and reads its `Ticket`: text pieces per sequence as they
are sampled, then each sequence's finish reason. One engine thread runs the model:

- every step, each running sequence (a "row") gets one token; a GroupQueryAttention GPT file
  steps all of them in one model call (runtime/row_cache.py), each row at its own length;
- a job waiting in the queue joins at the next step: its prompt is read alone into a free row
  (the same call a run of its own makes), and a row leaves the batch when its text ends, hits a
  stop text, runs out of tokens, or its ticket is cancelled (a client that went away);
- every row follows its own window plan (runtime/window.py) and draws from its own random
  stream `default_rng(seed)`, so its text does not depend on which rows ran beside it: the
  text a run of its own gives (runtime/multi_sample.py's rules: sample j of a job with seed s
  draws from seed s + j, as `--num-samples` does).

Other text files (a layer stack, a GPT without GroupQueryAttention, a stateful yoke) take the
same queue and steps, each row stepped with a model call of its own (`token_batches` of one
row); a GAN job draws its sentences in one call. The queue is bounded: `submit` raises
`QueueFull` when the waiting rows would pass `max_waiting`.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from runtime.gan import GANSampler
from runtime.gpt import TextGenerator
from runtime.row_cache import RowCache
from runtime.sampler import SEED_LIMIT, SamplingSettings, sample_rows
from runtime.stop_texts import StopFilter
from runtime.window import WindowPlan

FINISH_STOP = "stop"  # a stop text, or a GAN's sentence
FINISH_LENGTH = "length"  # the token budget
FINISH_CANCELLED = "cancelled"  # the ticket was cancelled (never shown to a client that left)
FINISH_ERROR = "error"


class QueueFull(Exception):
    """The engine's queue holds as many waiting sequences as it may."""


@dataclass(frozen=True)
class Job:
    """One request: len(seeds) sequences continuing `prompt_ids` (a GAN job: len(seeds)
    sentences from one random stream, `seeds[0]`, at `settings.temperature`, and no prompt)."""

    prompt_ids: list[int]
    settings: SamplingSettings
    seeds: list[int | None]
    max_new_tokens: int
    stops: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Output:
    """A piece of sequence `index`'s text, or (with `finish_reason`) its end."""

    index: int
    piece: str = ""
    finish_reason: str | None = None


class Ticket:
    """A submitted job. Its outputs go to `sink` (a queue several tickets may share), each
    sequence numbered from `first_index`; `cancel()` drops its rows at the next step.
    `completion_tokens[i]` counts sequence i's sampled tokens."""

    def __init__(self, job: Job, sink: queue.SimpleQueue[Output] | None = None,
                 first_index: int = 0) -> None:
        self.job = job
        self.sink: queue.SimpleQueue[Output] = queue.SimpleQueue() if sink is None else sink
        self.first_index = first_index
        self.completion_tokens = [0] * len(job.seeds)
        self.error: str | None = None
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    def put(self, output: Output) -> None:
        self.sink.put(replace(output, index=output.index + self.first_index))

    def outputs(self, poll: float = 0.05, alive: Callable[[], bool] = lambda: True
                ) -> Iterator[Output]:
        """This ticket's outputs (with its own sink) until every sequence has finished."""
        return collect(self.sink, [self], poll, alive)


def collect(sink: queue.SimpleQueue[Output], tickets: list[Ticket], poll: float = 0.05,
            alive: Callable[[], bool] = lambda: True) -> Iterator[Output]:
    """The outputs `tickets` send to `sink` until each of their sequences has finished.
    `alive()` is asked whenever `poll` seconds pass without one; once it says False (a client
    that went away) the tickets are cancelled and the iteration ends."""
    open_sequences = sum(len(t.job.seeds) for t in tickets)
    while open_sequences:
        try:
            output = sink.get(timeout=poll)
        except queue.Empty:
            if not alive():
                for ticket in tickets:
                    ticket.cancel()
                return
            continue
        if output.finish_reason is not None:
            open_sequences -= 1
        yield output


class _Row:
    """One running sequence: its context, window plan, random stream and text filter."""

    def __init__(self, ticket: Ticket, index: int, block_size: int, rolls: bool,
                 decoder: Callable[[int], str]) -> None:
        job = ticket.job
        self.ticket, self.index = ticket, index
        self.context = list(job.prompt_ids)
        self.plan = WindowPlan(len(self.context), block_size, rolls)
        self.rng = np.random.default_rng(job.seeds[index])
        self.decode = decoder
        self.filter = StopFilter(job.stops)
        self.logits: np.ndarray | None = None
        self.tokens: Iterator[list[int]] | None = None  # a row stepped alone

    def take(self, token: int) -> str | None:
        """Append `token`, emit its text; the finish reason once the sequence has ended."""
        self.context.append(token)
        produced = self.ticket.completion_tokens[self.index] = \
            self.ticket.completion_tokens[self.index] + 1
        piece = self.filter.feed(self.decode(token))
        if piece:
            self.ticket.put(Output(self.index, piece))
        if self.filter.stopped:
            return FINISH_STOP
        if produced >= self.ticket.job.max_new_tokens:
            rest = self.filter.flush()
            if rest:
                self.ticket.put(Output(self.index, rest))
            return FINISH_LENGTH
        return None


class Engine:
    """The decode loop of a server: one thread, one running batch of at most `max_rows`
    sequences, a queue of at most `max_waiting` more."""

    def __init__(self, sampler: Any, *, max_rows: int = 16, max_waiting: int = 64) -> None:
        if max_rows < 1 or max_waiting < 0:
            raise ValueError("max_rows must be >= 1 and max_waiting >= 0")
        self.sampler = sampler
        self.max_rows, self.max_waiting = max_rows, max_waiting
        self.is_gan = isinstance(sampler, GANSampler)
        model = getattr(sampler, "model", None)
        self.batched = isinstance(sampler, TextGenerator) and model.shape.cache_buffers
        self._cache = RowCache(model, max_rows) if self.batched else None
        self._block_size = getattr(sampler, "block_size", 0)
        self._rolls = bool(self.batched)
        self._waiting: deque[tuple[Ticket, int]] = deque()  # (ticket, sequence index)
        self._rows: list[_Row] = []  # running; row i sits in cache row i
        self._lock = threading.Condition()
        self._closing = False
        self.steps = 0  # batched model calls so far (a test reads it)
        self._thread = threading.Thread(target=self._run, name="textgen-engine", daemon=True)
        self._thread.start()

    # --- the caller's side ---

    def submit(self, job: Job, sink: queue.SimpleQueue[Output] | None = None,
               first_index: int = 0) -> Ticket:
        """Queue `job`; its outputs go to `sink` (see `Ticket`). QueueFull when full."""
        ticket = Ticket(job, sink, first_index)
        with self._lock:
            if self._closing:
                raise QueueFull("the server is shutting down")
            free_rows = max(0, self.max_rows - len(self._rows))  # taken at the next step
            if len(self._waiting) + len(job.seeds) > self.max_waiting + free_rows:
                raise QueueFull(f"the queue holds {len(self._waiting)} waiting sequences; at "
                                f"most {self.max_waiting} may wait")
            if self.is_gan:  # one call draws every sentence of the job
                self._waiting.append((ticket, -1))
            else:
                self._waiting.extend((ticket, i) for i in range(len(job.seeds)))
            self._lock.notify()
        return ticket

    def load(self) -> dict[str, int]:
        """Running and waiting sequences, for /health."""
        with self._lock:
            return {"running": len(self._rows), "waiting": len(self._waiting)}

    def close(self, timeout: float = 10.0) -> None:
        """Stop: every waiting and running sequence ends as cancelled; the thread exits."""
        with self._lock:
            self._closing = True
            self._lock.notify()
        self._thread.join(timeout)

    # --- the engine thread ---

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closing and not self._waiting and not self._rows:
                    self._lock.wait()
                if self._closing:
                    break
            try:
                self._tick()
            except Exception as exc:  # a failed step ends its requests, not the server
                self._fail_all(f"{type(exc).__name__}: {exc}")
        self._fail_all(None)

    def _fail_all(self, error: str | None) -> None:
        """End every sequence: as an error (`error`), or cancelled at shutdown (None)."""
        with self._lock:
            waiting = list(self._waiting)
            self._waiting.clear()
        ended = [(row.ticket, row.index) for row in self._rows] + waiting
        self._rows = []
        for ticket, index in ended:
            if error is not None:
                ticket.error = error
            indices = range(len(ticket.job.seeds)) if index < 0 else [index]
            for i in indices:
                ticket.put(Output(i, finish_reason=FINISH_ERROR if error else FINISH_CANCELLED))

    def _admit(self) -> list[_Row]:
        """Waiting sequences moved into free rows (GAN jobs run here, whole)."""
        admitted: list[_Row] = []
        while True:
            with self._lock:
                if not self._waiting or len(self._rows) >= self.max_rows:
                    return admitted
                ticket, index = self._waiting.popleft()
            if ticket.cancelled:
                for i in (range(len(ticket.job.seeds)) if index < 0 else [index]):
                    ticket.put(Output(i, finish_reason=FINISH_CANCELLED))
                continue
            if index < 0:
                self._run_gan(ticket)
                continue
            row = _Row(ticket, index, self._block_size, self._rolls, self.sampler.piece_decoder())
            self._rows.append(row)
            admitted.append(row)

    def _run_gan(self, ticket: Ticket) -> None:
        job = ticket.job
        ids = self.sampler.sample_ids(len(job.seeds), job.seeds[0], job.settings.temperature)
        for i, row in enumerate(ids):
            sentence = self.sampler.tokenizer.decode(row)
            ticket.completion_tokens[i] = len(sentence.split())  # words
            ticket.put(Output(i, sentence))
            ticket.put(Output(i, finish_reason=FINISH_STOP))

    def _tick(self) -> None:
        """One step: admit, then one token for every running row."""
        admitted = self._admit()
        if self.batched:
            self._read_prompts(admitted)
        else:
            for row in admitted:
                job = row.ticket.job
                row.tokens = self.sampler.token_batches(
                    row.context, [job.settings], [job.seeds[row.index]], job.max_new_tokens)
        kept: list[_Row] = []
        for row, token in zip(self._rows, self._next_tokens(self._rows), strict=True):
            finish = FINISH_CANCELLED if token is None else row.take(token)
            if finish is None:
                kept.append(row)
                continue
            row.ticket.put(Output(row.index, finish_reason=finish))
            if row.tokens is not None:
                row.tokens.close()  # type: ignore[attr-defined]
        if self.batched:
            self._compact(kept)
        self._rows = kept
        if self.batched and kept:
            self._step(kept)

    def _next_tokens(self, rows: list[_Row]) -> list[int | None]:
        """Each row's next token (None for a cancelled row): a row stepped alone takes its own
        run's; the others are chosen together from their logits (`sample_rows`), each with its
        own settings and random stream."""
        tokens: list[int | None] = [None] * len(rows)
        chosen = []
        for i, row in enumerate(rows):
            if row.ticket.cancelled:
                continue
            if row.tokens is not None:
                tokens[i] = next(row.tokens)[0]
            else:
                chosen.append(i)
        if chosen:
            picked = [rows[i] for i in chosen]
            settings = [row.ticket.job.settings for row in picked]
            previous = [row.context[-row.plan.cached:] if s.repetition_penalty != 1.0 else ()
                        for row, s in zip(picked, settings, strict=True)]
            sampled = sample_rows(np.stack([row.logits for row in picked]), settings,
                                  [row.rng for row in picked], previous)
            for i, token in zip(chosen, sampled, strict=True):
                tokens[i] = token
        return tokens

    def _read_prompts(self, admitted: list[_Row]) -> None:
        assert self._cache is not None
        first = len(self._rows) - len(admitted)
        for offset, row in enumerate(admitted):
            slot = first + offset
            earlier = next((r for r in admitted[:offset]
                            if r.ticket is row.ticket and r.context == row.context), None)
            if earlier is not None:  # a sibling read the same prompt: the same bytes, copied
                self._cache.copy_row(self._rows.index(earlier), slot)
                row.logits = earlier.logits
                continue
            row.logits = self._cache.read(slot, row.context[-row.plan.first().count:])

    def _compact(self, kept: list[_Row]) -> None:
        """Kept rows moved down so that they fill cache rows 0..len(kept)-1, in order."""
        assert self._cache is not None
        position = {id(row): slot for slot, row in enumerate(self._rows)}
        for target, row in enumerate(kept):
            source = position[id(row)]
            if source != target:
                self._cache.copy_row(source, target)

    def _step(self, rows: list[_Row]) -> None:
        """Every row's next read: a slide's re-read alone, the others in one batched step."""
        assert self._cache is not None
        tokens: list[int | None] = []
        for slot, row in enumerate(rows):
            read = row.plan.after_token()
            if read.fresh:
                row.logits = self._cache.read(slot, row.context[-read.count:])
                tokens.append(None)
                continue
            if read.drop:
                self._cache.roll(slot, read.drop)
            tokens.append(row.context[-1])
        if all(token is None for token in tokens):
            return
        logits = self._cache.step(tokens)
        self.steps += 1
        for row, token, row_logits in zip(rows, tokens, logits, strict=True):
            if token is not None:
                row.logits = row_logits.copy()


def job_seeds(seed: int | None, count: int) -> list[int | None]:
    """Sequence j's seed: `seed + j` (runtime/multi_sample.py's rule), fresh entropy without."""
    return [None if seed is None else (seed + j) % SEED_LIMIT for j in range(count)]


def run_alone(sampler: Any, job: Job) -> list[str]:
    """The texts a job's sequences get from the sampler itself, each in a run of its own: what
    every sequence must equal when it is served beside others (tests, the serving bench)."""
    if isinstance(sampler, GANSampler):
        return sampler.sample(len(job.seeds), job.seeds[0], job.settings.temperature)
    texts = []
    for seed in job.seeds:
        decoder, text_filter, pieces = sampler.piece_decoder(), StopFilter(job.stops), []
        for tokens in sampler.token_batches(job.prompt_ids, [job.settings], [seed],
                                            job.max_new_tokens):
            pieces.append(text_filter.feed(decoder(tokens[0])))
            if text_filter.stopped:
                break
        else:
            pieces.append(text_filter.flush())
        texts.append("".join(pieces))
    return texts

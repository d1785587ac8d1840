"""Stage 2, `escalate`: the engine on the partitions that hold the incidents' states.

It owns the `escalations` table and is driven two ways, one batch at a time (`Runtime.stage_lock`):

- records of `streamproc.events` (and, from older workers, `streamproc.ticks`): `on_records`, the
  Faust agent's batches;
- the worker's own wake-ups: `on_wakeups`, called by the ticker with the incidents of its active
  partitions whose wake time has come. A wake-up used to be a tick record produced to
  `streamproc.ticks` and read back on the same worker: a produce, a fetch, Faust's per-record
  machinery and two JSON codings per wake-up, about six of them per incident in the bench mix.
  Applied here it costs the engine call alone. Nothing is lost by it: the state (with its wake
  time) is written after the wake-up's outputs are acknowledged, as for a record, and the next
  owner of a partition rebuilds the schedule from the table, so a wake-up cut short by a crash or
  a rebalance runs again there (same message ids; the senders drop repeats). A rebalance waits
  for a wake-up batch under way (`Runtime.quiesce`) before Faust flushes the changelog and gives
  the partition up.

Either way a batch's outputs are enqueued together, every acknowledgement is awaited once, and
only then are the states written, with one status record per changed instance (`summaries.py`,
docs/decisions/status-topic.md). States are kept parsed in memory (`StateCache`) between batches.

Spec §8: a silence copy changes its partition's book and moves the start of the partition's
silenced instances (`silences.py`); the book is written after the states it changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streamproc.engine.state import IncidentState
from streamproc.kafka import topics
from streamproc.kafka.headers import correlation_headers, correlation_of
from streamproc.processor import metrics
from streamproc.processor.batches import records
from streamproc.processor.catchup import barrier_token
from streamproc.processor.faustfix import LocalEvent, make_current
from streamproc.processor.producer import Outputs, Record
from streamproc.processor.records import (
    SILENCE_HEADER,
    Processed,
    book_key,
    dump_state,
    has_header,
    load_state,
    on_event,
    on_tick,
    on_wake,
)
from streamproc.processor.runtime import Runtime
from streamproc.processor.silences import dump_book, on_silence_copy
from streamproc.processor.summaries import status_update, worker_wake
from streamproc.processor.worklog import log_processed, now_us


class StateCache:
    """The escalation states of this worker's active partitions as last read or written, parsed,
    up to `size` of them (the oldest written are dropped first). Emptied on every rebalance: it
    only ever holds what this worker's table holds."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._states: dict[bytes, IncidentState] = {}

    def get(self, key: bytes) -> IncidentState | None:
        return self._states.get(key)

    def put(self, key: bytes, state: IncidentState | None) -> None:
        if self.size <= 0:
            return
        self._states.pop(key, None)
        if state is None:
            return
        self._states[key] = state
        if len(self._states) > self.size:
            del self._states[next(iter(self._states))]

    def fill(self, items: Iterable[tuple[bytes, IncidentState]]) -> None:
        for key, state in items:
            if len(self._states) >= self.size:
                return
            self._states[key] = state

    def clear(self) -> None:
        self._states.clear()

    def __len__(self) -> int:
        return len(self._states)


@dataclass
class _Batch:
    """One batch's work: the states as it left them, the records to produce, what to log."""

    states: dict[bytes, tuple[Any, IncidentState | None, bool]] = field(default_factory=dict)
    """key -> (the event to write it under, latest state, changed): later records of a key see it."""
    pending: list[Record] = field(default_factory=list)
    done: list[tuple[bytes, bool, int, Processed, str | None, str | None]] = field(default_factory=list)
    """(key, a wake-up?, partition, what it gave, correlation id, the record's own correlation id)"""
    books: dict[int, Any] = field(default_factory=dict)
    """Events partitions whose silence book changed -> the record that changed it last."""
    barrier_read: bool = False


class EscalateStage:
    def __init__(self, runtime: Runtime, table: Any, outputs: Outputs, partitions: int, cache_size: int) -> None:
        self.runtime, self.table, self.outputs, self.partitions = runtime, table, outputs, partitions
        self.cache = StateCache(cache_size)

    def _stored(self, key: bytes) -> IncidentState | None:
        """A state as last written (the current event must be on its partition)."""
        state = self.cache.get(key)
        if state is None:
            state = load_state(self.table.get(key))
            if state is not None:
                self.cache.put(key, state)
        return state

    def _current(self, work: _Batch, key: bytes) -> tuple[IncidentState | None, bool]:
        """A state as this batch left it (and whether the batch changed it), else as stored."""
        if key in work.states:
            _, state, changed = work.states[key]
            return state, changed
        return self._stored(key), False

    def _applied(
        self,
        work: _Batch,
        event: Any,
        key: bytes,
        partition: int,
        processed: Processed,
        changed: bool,
        wake_up: bool,
        event_correlation: str | None,
    ) -> None:
        """Keep what a record or a wake-up gave for the end of the batch."""
        work.states[key] = (event, processed.state, changed or processed.changed)
        self.runtime.silences.track(self.runtime.engine, key, partition, processed.state)
        # Records derived from an instance carry the id of the record that opened it.
        correlation_id = processed.correlation_id or event_correlation
        work.pending.extend(records(processed.outputs, correlation_headers(correlation_id)))
        work.done.append((key, wake_up, partition, processed, correlation_id, event_correlation))

    async def on_records(self, batch: list[Any]) -> None:
        async with self.runtime.stage_lock:
            work = _Batch()
            for event in batch:
                self._record(work, event)
            await self._finish(work)

    async def on_wakeups(self, due: list[tuple[str, int]]) -> None:
        """(incident key, wake time) of this worker's active partitions, popped from its schedule."""
        runtime = self.runtime
        async with runtime.stage_lock:
            if not runtime.ready:
                return  # a rebalance began: the next owner's schedule has them (rebuilt from the table)
            work = _Batch()
            now = now_us()
            flood, book_of = runtime.flood_for(), runtime.silences.book
            for name, due_us in due:
                key = name.encode()
                partition = topics.partition_for(key, self.partitions)
                event = LocalEvent(topics.EVENTS, partition, now / 1e6)
                make_current(event)
                state, changed = self._current(work, key)
                processed = on_wake(runtime.engine, state, due_us, now, flood, self.partitions, book_of(partition))
                self._applied(work, event, key, partition, processed, changed, True, None)
            await self._finish(work)

    def _record(self, work: _Batch, event: Any) -> None:
        runtime = self.runtime
        message = event.message
        if message.topic == topics.EVENTS:
            runtime.backlog.read_event(message.partition, message.offset)
        key: bytes | None = event.key
        token = barrier_token(message.headers)
        if token is not None:
            work.barrier_read |= runtime.catchup.events_read(message.partition, token)
            return
        if key is None:
            return  # nothing the processor writes; not an incident's
        make_current(event)  # the table reads and writes the record's partition
        partition = message.partition
        silences = runtime.silences
        if has_header(message.headers, SILENCE_HEADER):
            # Spec §8: this partition's copy of a silence or unsilence.
            change, moved = on_silence_copy(
                runtime.engine,
                silences,
                event.value,
                partition,
                message.offset,
                lambda k: self._current(work, k)[0],
                runtime.flood_for(),
                self.partitions,
            )
            work.pending.extend(records(change.outputs))
            if change.changed:
                work.books[partition] = event
            for watcher, processed in moved:
                work.states[watcher] = (
                    event,
                    processed.state,
                    (watcher in work.states and work.states[watcher][2]) or processed.changed,
                )
                work.pending.extend(records(processed.outputs, correlation_headers(processed.correlation_id)))
                work.done.append((watcher, False, partition, processed, processed.correlation_id, None))
            return
        state, changed = self._current(work, key)
        event_correlation = correlation_of(message.headers)
        book = silences.book(partition)
        wake_up = message.topic == topics.TICKS
        if wake_up:  # a tick record (workers before local wake-ups produced them)
            processed = on_tick(
                runtime.engine, state, event.value, now_us(), runtime.flood_for(), self.partitions, book
            )
        else:
            processed = on_event(
                runtime.engine,
                state,
                event.value,
                partition,
                message.offset,
                now_us(),
                event_correlation,
                runtime.flood_for(),
                self.partitions,
                book,
            )
        self._applied(work, event, key, partition, processed, changed, wake_up, event_correlation)

    async def _finish(self, work: _Batch) -> None:
        runtime = self.runtime
        # The status topic (docs/decisions/status-topic.md): one record per changed instance (or a
        # due tombstone), with the outputs.
        now = now_us()
        retention = runtime.engine.config.status.resolved_retention
        for key, (event, state, changed) in work.states.items():
            settled, status, now_changed = status_update(key, state, changed, now, retention)
            if status is not None:
                work.pending.append((status.topic, key, status.value or None, None, None))
                work.states[key] = (event, settled, now_changed)
        # Outputs first, acknowledged; then the state. A crash in between repeats outputs
        # (deduplicated downstream by message_id); it can never lose them.
        await self.outputs.send(work.pending)
        now = now_us()
        for key, wake_up, partition, processed, correlation_id, event_correlation in work.done:
            metrics.count(processed.outputs, now)
            if processed.expiries:
                metrics.expired(processed.expiries)
            log_processed(key, wake_up, partition, processed, correlation_id, event_correlation)
        for key, (event, state, changed) in work.states.items():
            partition = event.message.partition
            if changed and state is not None:
                make_current(event)
                self.table[key] = dump_state(state)
                self.cache.put(key, state)
            runtime.set_wake(key.decode(), partition, worker_wake(state))
            metrics.open_escalations.set(key.decode(), partition, state.status if state is not None else None)
        # A partition's book after its states: a book in the changelog means the states it changed
        # are there too (a copy the book already holds is skipped when read again).
        for partition, event in work.books.items():
            make_current(event)
            self.table[book_key(partition)] = dump_book(runtime.silences.books[partition])
        runtime.processed += len(work.done)
        if work.barrier_read or runtime.lagging:
            runtime.changed.set()

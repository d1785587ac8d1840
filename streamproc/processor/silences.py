"""Spec §8 silences in the live processor: one book of known silences per events partition.

A silence or unsilence names an application, not an incident, and the instances it holds live on
every partition. Stage 1 therefore copies each one to every events partition (explicit partition,
`records.SILENCE_HEADER`), behind the events it read before it on its source partition. Stage 2
keeps, for each events partition, the `SilenceBook` built from that partition's copies, in the
escalations table under `records.book_key(partition)`: it is written (changelog) with the states
it changed, after their outputs are acknowledged, and it moves with the partition on a rebalance
and survives a SIGKILL exactly like the partition's states. Every partition sees the same silence
events in the same order, so every book is the one replay keeps.

A change of a partition's book calls `Engine.silences_changed` for that partition's states that
watch the silence's application (silenced instances, waiting monitors: `Engine.watches_silences`),
found in an in-memory index (`SilenceIndex`) rebuilt from the table on every rebalance and kept up
to date as states are written. Without silences and monitors the index stays empty and the hot
path reads no book from the table (the books of the active partitions live in memory).

A repeated copy (the agent re-reads what it had applied before a crash) is skipped: the book
remembers the offset of the last copy that changed it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, ValidationError

from streamproc.engine.core import Engine
from streamproc.engine.maintenance import NO_SILENCES, SilenceBook
from streamproc.engine.state import IncidentState
from streamproc.flood import FloodControl
from streamproc.kafka import topics
from streamproc.processor.records import (
    Output,
    Processed,
    book_partition,
    dead_letter,
    expiries,
    outputs_of,
    rejection_kind,
)
from streamproc.timeutil import to_us
from streamproc.wire.events import Silence, Unsilence, error_text, parse_any_event


class PartitionSilences(BaseModel):
    """An events partition's silence book, as the escalations table stores it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    book: SilenceBook = NO_SILENCES
    offset: int = -1
    """The events-partition offset of the last silence copy that changed the book: a copy at or
    before it is one read again after a crash, and is skipped."""


EMPTY = PartitionSilences()


def load_book(raw: bytes | None) -> PartitionSilences:
    return PartitionSilences.model_validate_json(raw) if raw else EMPTY


def dump_book(book: PartitionSilences) -> bytes:
    return book.model_dump_json().encode()


@dataclass
class SilenceRecord:
    """What one silence copy does to its partition's book."""

    before: PartitionSilences
    after: PartitionSilences
    """`before` itself when nothing changed (a repeat, an unsilence of an unknown silence, ...)."""
    application: str = ""
    at_us: int = 0
    outputs: list[Output] = field(default_factory=list)
    """A dead letter, when the event cannot be applied (only partition 0's copy says so)."""

    @property
    def changed(self) -> bool:
        return self.after is not self.before


def on_silence_record(
    engine: Engine, current: PartitionSilences, value: bytes | None, partition: int, offset: int
) -> SilenceRecord:
    """A silence copy read by stage 2 on `partition` at `offset`. Stage 1 checked it; a config
    reloaded in between (SIGHUP) may reject it still, and then partition 0's copy is the dead letter."""
    if offset <= current.offset:
        return SilenceRecord(current, current)
    try:
        event = parse_any_event(value or b"")
        if not isinstance(event, Silence | Unsilence) or event.at is None:
            raise ValueError(f"type: {getattr(event, 'type', '?')} with a silence copy's header, or no at")
    except (ValidationError, ValueError) as exc:
        invalid = error_text(exc) if isinstance(exc, ValidationError) else str(exc)
        letters = [dead_letter(invalid, "not-from-stage-1", topics.EVENTS, partition, offset, None, value, 0)]
        return SilenceRecord(current, current, outputs=letters if partition == 0 else [])
    at = to_us(event.at)
    reason = engine.check_silence(event, at)
    if reason is not None:
        letters = [
            dead_letter(reason, rejection_kind(reason), topics.EVENTS, partition, offset, event.key.encode(), value, at)
        ]
        return SilenceRecord(current, current, event.application, at, letters if partition == 0 else [])
    book = current.book.apply(event, at)
    if book is current.book:
        return SilenceRecord(current, current, event.application, at)
    return SilenceRecord(current, PartitionSilences(book=book, offset=offset), event.application, at)


def on_silence_change(
    engine: Engine,
    state: IncidentState,
    change: SilenceRecord,
    flood: FloodControl | None = None,
    partitions: int = topics.DEFAULT_PARTITIONS,
) -> Processed:
    """One watching state after its partition's book changed (`Engine.silences_changed`): what was
    due before the change under the old book, then its start E under the new one."""
    result = engine.silences_changed(state, change.before.book, change.after.book, change.at_us)
    return Processed(
        outputs_of(result, flood, partitions),
        result.state,
        result.state is not state,
        expiries(result.audits) if result.audits else 0,
    )


def on_silence_copy(
    engine: Engine,
    index: SilenceIndex,
    value: bytes | None,
    partition: int,
    offset: int,
    state_of: Callable[[bytes], IncidentState | None],
    flood: FloodControl | None = None,
    partitions: int = topics.DEFAULT_PARTITIONS,
) -> tuple[SilenceRecord, list[tuple[bytes, Processed]]]:
    """Stage 2's whole handling of a silence copy: the partition's book in `index` changes, and each
    state of the partition that watches the application (`state_of`: its latest state) moves. The
    caller writes every output, then the states, then the book (`dump_book(index.entry(partition))`)."""
    change = on_silence_record(engine, index.entry(partition), value, partition, offset)
    if not change.changed:
        return change, []
    index.books[partition] = change.after
    moved: list[tuple[bytes, Processed]] = []
    for watcher in index.watchers(partition, change.application):
        state = state_of(watcher)
        if state is None:
            continue
        processed = on_silence_change(engine, state, change, flood, partitions)
        index.track(engine, watcher, partition, processed.state)
        moved.append((watcher, processed))
    return change, moved


@dataclass
class SilenceIndex:
    """A worker's books of its active events partitions, and which of their states watch which
    application's silences (or wait for a heartbeat). Derived from the table, like the wake
    schedule: rebuilt on every rebalance, updated as the agent writes states."""

    books: dict[int, PartitionSilences] = field(default_factory=dict)
    watch: dict[int, dict[str, set[bytes]]] = field(default_factory=dict)
    """partition -> application -> keys of the states that watch its silences."""
    watching: dict[bytes, tuple[int, tuple[str, ...]]] = field(default_factory=dict)
    monitors: dict[bytes, int] = field(default_factory=dict)
    """Keys (-> partition) of states whose monitor waits for a heartbeat: re-woken on a config reload."""

    def book(self, partition: int) -> SilenceBook:
        entry = self.books.get(partition)
        return entry.book if entry is not None else NO_SILENCES

    def entry(self, partition: int) -> PartitionSilences:
        return self.books.get(partition, EMPTY)

    def track(self, engine: Engine, key: bytes, partition: int, state: IncidentState | None) -> None:
        """The state of `key` now (None: it has none)."""
        if state is None or (state.status != "silenced" and state.monitor_due is None):
            if key in self.watching:
                self._unwatch(key)
            self.monitors.pop(key, None)
            return
        apps = engine.watches_silences(state)
        was = self.watching.get(key)
        if was != (partition, apps):
            if was is not None:
                self._unwatch(key)
            if apps:
                by_app = self.watch.setdefault(partition, {})
                for app in apps:
                    by_app.setdefault(app, set()).add(key)
                self.watching[key] = (partition, apps)
        if state.monitor_due is not None:
            self.monitors[key] = partition
        else:
            self.monitors.pop(key, None)

    def _unwatch(self, key: bytes) -> None:
        partition, apps = self.watching.pop(key)
        by_app = self.watch.get(partition, {})
        for app in apps:
            keys = by_app.get(app)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del by_app[app]

    def watchers(self, partition: int, application: str) -> list[bytes]:
        """The keys to call `silences_changed` for, in a fixed order."""
        return sorted(self.watch.get(partition, {}).get(application, ()))

    def load(self, key: bytes, raw: bytes | None, actives: set[int]) -> bool:
        """A table entry read while rebuilding: True when it was a book (of an active partition or not)."""
        partition = book_partition(key)
        if partition is None:
            return False
        if partition in actives:
            self.books[partition] = load_book(raw)
        return True

    def clear(self) -> None:
        self.books.clear()
        self.watch.clear()
        self.watching.clear()
        self.monitors.clear()

    def drop_partitions(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        for partition in gone:
            self.books.pop(partition, None)
            self.watch.pop(partition, None)
        self.watching = {k: v for k, v in self.watching.items() if v[0] not in gone}
        self.monitors = {k: p for k, p in self.monitors.items() if p not in gone}

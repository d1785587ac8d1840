"""Two record-losing races in faust-streaming 0.15.x, and their fixes
(docs/decisions/faust-takeover-fixes.md).

1. Fetched, never delivered. aiokafka prefetches every assigned partition in the background, and
Faust's fetch loop asks it for the records of the partitions active *now* (a set that rebalances
and back-pressure change in place). aiokafka hands them over and moves its position past them;
Faust then drops, without a word, those of a partition that stopped being active meanwhile, and
everything after a generation change or a flow stop. Only a later seek would read them again.
`Consumer.getmany` below delivers what it may and seeks every other partition back to its first
record not delivered (and delivers nothing more of that partition from the batch, keeping order).

2. Faust ends every rebalance (`Recovery.on_recovery_completed`) by resuming the
stream partitions, then seeking them to their committed offsets, then resuming flow control,
which empties the stream queues. Its fetcher is already running at that point (it read the
changelogs), so records of a newly assigned partition can be fetched and queued in between. The
seek then rewinds the fetch position while the fetch loop's read offset moves on past the queued
records, resuming flow control throws the queued records away, and the records fetched again
after the seek are dropped as "already read". They are never processed, and the next commit
goes past them. Whole incidents were lost this way: every trigger that arrived on a
dead worker's partitions before the group noticed its death.

Here the order is: seek (the stream partitions are still paused, so nothing of theirs is
queued), forget acknowledgements recorded before the seek (those records are read again from
the committed offset; an acknowledgement left over from a skipped stale record could otherwise
let a commit pass a record not yet processed again), empty the queues, and only then resume the
stream partitions. Everything else is what Faust does.

Besides the races, one delay: while no partition is active (between the changelogs' recovery and
the resumption of the stream partitions at the end of every rebalance), Faust's fetch loop sleeps
1 s at a time, so every rebalance stalled every partition of the worker for up to 1 s after it
was ready. `Consumer` wakes that loop when partitions are resumed.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Any

from aiokafka.consumer.fetcher import Fetcher
from faust.streams import _current_event
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers import aiokafka as driver
from faust.types import TP, Message
from mode.utils.aiter import aiter
from mode.utils.futures import notify

FETCH_MIN_BYTES = 64 * 1024
FETCH_MAX_WAIT_MS = 10
IDLE_FETCH_MAX_WAIT_MS = 100
IDLE_AFTER_EMPTY_FETCHES = 10


class AdaptiveFetcher(Fetcher):  # type: ignore[misc]
    """aiokafka's fetcher, asking each broker in one of two ways.

    - Busy (records came in the last `IDLE_AFTER_EMPTY_FETCHES` fetches): hold the fetch until
      64 KiB or 10 ms have gathered. At Kafka's default (answer at the first byte) a worker taking
      100 incidents a second sent hundreds of fetches a second over a few dozen partitions, each
      answer decoded in Python: about three quarters of a core. 10 ms is the most this adds to a
      record's way through.
    - Idle (nothing in the last ten, i.e. about 100 ms): answer at the first byte, or after 100 ms.
      The 10 ms fetches cost an idle worker 15% of a core, a hundred empty answers a second; this
      costs 3%, and the first record after a quiet spell comes back at once instead of after up to
      10 ms. A partition resumed or sought while an idle fetch is out waits for it (100 ms at most).
    """

    _empty_fetches: dict[int, int]
    """Broker (node id) -> empty answers in a row."""

    @classmethod
    def adopt(cls, fetcher: Fetcher) -> AdaptiveFetcher:
        """Make a running aiokafka `Fetcher` this one. AIOKafkaConsumer.start() makes its fetcher
        itself; its fetch loop looks the methods up on every round, so this takes over from the
        next fetch on."""
        fetcher.__class__ = cls
        adopted: AdaptiveFetcher = fetcher
        adopted._empty_fetches = {}
        return adopted

    def _get_actions_per_node(self, assignment: Any) -> Any:
        actions = super()._get_actions_per_node(assignment)
        for node_id, request in actions[0]:
            # aiokafka 0.14's `FetchRequest` keeps both as attributes until it is sent; an older
            # request object without them is left as it is (busy), which is only the old cost.
            if self._empty_fetches.get(node_id, 0) >= IDLE_AFTER_EMPTY_FETCHES and hasattr(request, "_min_bytes"):
                request._min_bytes = 1
                request._max_wait_ms = IDLE_FETCH_MAX_WAIT_MS
        return actions

    async def _proc_fetch_request(self, assignment: Any, node_id: int, request: Any) -> bool:
        got = bool(await super()._proc_fetch_request(assignment, node_id, request))
        self._empty_fetches[node_id] = 0 if got else self._empty_fetches.get(node_id, 0) + 1
        return got


class ConsumerThread(driver.AIOKafkaConsumerThread):  # type: ignore[misc]
    """Faust's aiokafka consumer, with `AdaptiveFetcher`'s fetches."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_min_bytes = FETCH_MIN_BYTES  # read by AIOKafkaConsumer.start() for its Fetcher
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    async def on_start(self) -> None:
        await super().on_start()
        fetcher = getattr(self._consumer, "_fetcher", None)
        if type(fetcher) is Fetcher:
            AdaptiveFetcher.adopt(fetcher)


class Consumer(driver.Consumer):  # type: ignore[misc]
    _resumed: asyncio.Event | None = None

    def _new_consumer_thread(self) -> Any:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def resume_partitions(self, tps: Any) -> None:
        super().resume_partitions(tps)
        if self._resumed is not None:
            self._resumed.set()

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        """Faust's, except that with no active partition it waits for some to be resumed (at most
        1 s, as Faust's sleep) instead of sleeping 1 s whatever happens."""
        if self.flow_active and not self.app.client_only and not self._get_active_partitions():
            if self._resumed is None:
                self._resumed = asyncio.Event()
            self._resumed.clear()
            self.not_waiting_next_records.set()
            # Returns early when the service stops (mode takes anything with an awaitable `.wait()`).
            await self.wait_first(self._resumed, timeout=1.0)  # type: ignore[arg-type]
            return {}, set()
        return await super()._wait_next_records(timeout)

    async def wait_empty(self) -> None:
        """Also wait for the worker's own wake-ups under way (`Runtime.quiesce`, set on the app as
        `streamproc_quiesce`): Faust calls this when a rebalance or a stop begins, before it
        flushes its producer (the changelogs) and gives the partitions up."""
        quiesce = getattr(self.app, "streamproc_quiesce", None)
        if quiesce is not None:
            await quiesce()
        await super().wait_empty()

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        records, active = await self._wait_next_records(timeout)
        if records is None or self.should_stop:
            return
        generation = self.app.consumer_generation_id
        undelivered: dict[TP, int] = {}
        for tp, record in self.scheduler.iterate(records):
            if tp in undelivered:
                continue
            if (
                not self.flow_active
                or self.app.consumer_generation_id != generation
                or not (active is None or tp in active or tp in self._buffered_partitions)
            ):
                undelivered[tp] = record.offset
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            yield tp, self._to_message(tp, record)
        assigned = self.assignment()
        for tp, offset in undelivered.items():
            if tp in assigned:
                await self.seek(tp, offset)


class Transport(driver.Transport):  # type: ignore[misc]
    """The aiokafka transport with `Consumer` above (set as `app.transport` before first use)."""

    Consumer = Consumer


class SeekFirstRecovery(Recovery):  # type: ignore[misc]
    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        app: Any = self.app
        consumer = app.consumer
        self.log.info("Restore complete!")
        await app.on_rebalance_complete.send()
        self._set_recovery_ended()
        tables = list(self.tables.values())
        if tables:
            await asyncio.wait(
                [
                    asyncio.ensure_future(
                        table.on_recovery_completed(self.actives_for_table[table], self.standbys_for_table[table])
                    )
                    for table in tables
                ]
            )
        if app.consumer_generation_id != generation_id:
            self.log.warning(
                "Recovery rebalancing again: generation %s, recovered %s", app.consumer_generation_id, generation_id
            )
            return
        streams = {tp for tp in consumer.assignment() if not self._is_changelog_tp(tp)}
        if streams:
            self.log.info("Seek stream partitions to committed offsets (before resuming them).")
            await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
            forget_acks(consumer, streams)
        self.completed.set()
        app.flow_control.resume()  # empties the stream queues: nothing of `streams` is in them
        consumer.resume_partitions(streams)
        consumer.resume_flow()
        await app._fetcher.maybe_start()
        self.tables.on_actives_ready()
        if not app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        app.on_rebalance_end()
        self.log.info("Worker ready")


def forget_acks(consumer: Any, tps: set[Any]) -> None:
    """Drop the consumer's acknowledgement bookkeeping of `tps` (they are read again from the commit)."""
    for tp in tps:
        consumer._acked.pop(tp, None)
        consumer._acked_index.pop(tp, None)
        consumer._gap.pop(tp, None)


class SeekFirstTableManager(TableManager):  # type: ignore[misc]
    """`App(TableManager=...)`: the table manager whose recovery is `SeekFirstRecovery`."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


def make_current(event: Any) -> None:
    """Make `event` Faust's current event in this task. Tables find a key's partition (and its
    RocksDB store) through the current event; an agent that takes records in batches
    (`Stream.take_events`) handles each one after Faust has moved on, so it says which."""
    _current_event.set(weakref.ref(event))


def take_batches(stream: Any, max_: int, within: float) -> AsyncIterator[list[Any]]:
    """`Stream.take_events` that sleeps while nothing arrives. Faust's version wakes every `within`
    seconds whether or not there is anything (a worker with three agents and 2 ms used a fifth of a
    core doing nothing); this one waits for the first record, then up to `within` for more (or
    until `max_`), yields them as a list, and acknowledges them only after the caller is done with
    the batch, as Faust's does."""
    agen = _take_batches(stream, max_, within)
    stream._active_agens.add(agen)  # closed by Stream.on_stop like Faust's own buffering generators
    return agen


async def _take_batches(stream: Any, max_: int, within: float) -> AsyncIterator[list[Any]]:
    events: list[Any] = []
    arrived = asyncio.Event()
    full = asyncio.Event()
    consumed = asyncio.Event()
    consuming: asyncio.Future[None] | None = None

    async def add_to_buffer(value: Any) -> Any:
        nonlocal consuming
        if consuming is not None:  # the caller is handling a batch: this record waits for the next
            try:
                await consuming
            finally:
                consuming = None
        event = stream.current_event
        if event is None:
            raise RuntimeError("take_batches: no current event")
        events.append(event)
        arrived.set()
        if len(events) >= max_:
            full.set()
            consumed.clear()
            await stream.wait(consumed)  # never more than `max_` in a batch
        return value

    enable_acks = stream.enable_acks
    stream.enable_acks = False  # acknowledged below, once the batch is handled
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))
    try:
        while not stream.should_stop:
            await stream.wait_for_stopped(arrived)
            if not full.is_set():
                await stream.wait_for_stopped(full, timeout=within)
            if not events:
                continue
            consuming = stream.loop.create_future()
            try:
                yield list(events)
            finally:
                for event in events:
                    await stream.ack(event)
                events.clear()
                arrived.clear()
                full.clear()
                notify(consuming)
                consumed.set()
    finally:
        stream.enable_acks = enable_acks
        stream._processors.remove(add_to_buffer)


class LocalMessage:
    __slots__ = ("offset", "partition", "timestamp", "topic")

    def __init__(self, topic: str, partition: int, timestamp: float) -> None:
        self.topic, self.partition, self.timestamp, self.offset = topic, partition, timestamp, -1


class LocalEvent:
    """Faust's current event for table reads and writes that no record caused: the worker's own
    wake-ups (`escalate.py`). A table finds a key's partition, its RocksDB store and its changelog
    partition through `current_event().message` (its `topic`, a source topic of the table, and
    its `partition`); nothing else of the event is read there."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, topic: str, partition: int, timestamp: float) -> None:
        self.message = LocalMessage(topic, partition, timestamp)

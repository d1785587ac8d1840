"""`streamproc worker`: the escalation engine live on Kafka, as a Faust app.

Two agents, each with concurrency=1 (faust-streaming #606 can commit past in-flight events
otherwise, and one incident's records must be handled in order):

- `rekey` reads `streamproc.incidents`, as written by any client with any partitioner and any key
  (or none), and re-produces every valid event to `streamproc.events`, keyed by incident id on the
  partition `topics.partition_for` gives; bad input goes to the dead-letter topic. It awaits the
  acknowledgements of a batch before Faust may commit its offsets, so a crash repeats an event
  (harmless: same `event_id`, same `at`) but never skips one, and the order of each source
  partition is kept (the producer has one request in flight per partition).
- `escalate` reads `streamproc.events` and `streamproc.ticks` (co-partitioned, placed by the same
  function) and owns the `escalations` table.

Spec §8: heartbeats are events of incident `heartbeat-<name>` (the monitor's state and its expiry
wake-up live with that incident's state). A silence or unsilence is copied by `rekey` to every
events partition; `escalate` keeps a silence book per events partition in the `escalations` table
and, when it changes, moves the start of that partition's silenced instances (`silences.py`).

Time arrives as records: a task watches the in-memory wake schedule of this worker's active
partitions and produces keyed ticks, which land on the partition that holds the incident's state.
Faust commits offsets only after its producer (outputs and changelog) is flushed; on top of that
the agent waits for its output records to be acknowledged before it writes the table, so a crash
can repeat a page (same message_id, the senders drop it) but never lose one.

Issue 22: `escalate` also writes the current summary of every instance it changed in a batch
(one record per instance per batch) to the compacted status topic, with the batch's outputs
and acknowledged before the state; a resolved one's tombstone follows on a wake-up
(`summaries.py`).

After every rebalance the wake-ups of a partition wait until both stages have read the backlog
that built up while it had no owner (`catchup.py`), so a claim that arrived meanwhile is applied
before the pages that fell due meanwhile (spec §3).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import faust

from streamproc.config import ConfigError, load_config
from streamproc.engine.core import Engine
from streamproc.engine.state import IncidentState
from streamproc.flood import FloodControl, UserFloodState
from streamproc.kafka import security, topics
from streamproc.kafka.admin import TopicLayoutError, ensure_topics
from streamproc.kafka.headers import BARRIER_HEADER, correlation_headers, correlation_of, new_correlation_id
from streamproc.localnet import free_port
from streamproc.logs import dict_config, level_of
from streamproc.processor import metrics
from streamproc.processor.catchup import CatchUp, barrier_token
from streamproc.processor.faustfix import SeekFirstTableManager, Transport, make_current, take_batches
from streamproc.processor.producer import Outputs, Record
from streamproc.processor.records import (
    SILENCE_HEADER,
    Output,
    Processed,
    book_key,
    dump_state,
    has_header,
    load_flood_state,
    load_state,
    on_event,
    on_flood_record,
    on_incident_record,
    on_tick,
    owned_entries,
    owned_states,
)
from streamproc.processor.schedule import WakeSchedule
from streamproc.processor.silences import SilenceIndex, dump_book, on_silence_copy
from streamproc.processor.status import worker_status
from streamproc.processor.summaries import status_update, worker_wake
from streamproc.wire.records import FloodTick, Tick

log = logging.getLogger("streamproc.worker")


def now_us() -> int:
    return int(time.time() * 1_000_000)


def log_rekeyed(output: Output, correlation_id: str, source_partition: int, offset: int) -> None:
    """Stage 1's line per record (info; a dead letter is a warning)."""
    if output.topic == topics.DEADLETTER:
        if log.isEnabledFor(logging.WARNING):
            reason = json.loads(output.value).get("reason")
            log.warning(
                "event dead-lettered: %s",
                reason,
                extra={"correlation_id": correlation_id, "source_partition": source_partition, "offset": offset},
            )
    elif log.isEnabledFor(logging.INFO):
        log.info(
            "event re-keyed",
            extra={
                "correlation_id": correlation_id,
                "incident_id": (output.key or b"").decode(errors="replace"),
                "partition": output.partition,
                "source_partition": source_partition,
                "offset": offset,
            },
        )


def log_processed(
    key: bytes,
    topic: str,
    partition: int,
    processed: Processed,
    correlation_id: str | None,
    event_correlation: str | None,
) -> None:
    """Stage 2's lines: one per event (and per wake-up that emitted something), one per output."""
    if not log.isEnabledFor(logging.INFO) or (topic == topics.TICKS and not processed.outputs):
        return
    state = processed.state
    fields: dict[str, Any] = {
        "correlation_id": correlation_id,
        "incident_id": key.decode(errors="replace"),
        "partition": partition,
    }
    if state is not None:
        fields.update(instance=state.instance, plan=state.plan_name, application=state.application, status=state.status)
    if event_correlation is not None and event_correlation != correlation_id:
        fields["event_correlation_id"] = event_correlation
    log.info(
        "wake-up" if topic == topics.TICKS else "event applied", extra={**fields, "outputs": len(processed.outputs)}
    )
    for output in processed.outputs:
        if output.message_id is not None:
            log.info("message rendered", extra={**fields, "message_id": output.message_id, "topic": output.topic})
        else:
            log.info("%s recorded", output.kind or "outcome", extra={**fields, "topic": output.topic})


@dataclass
class WorkerSettings:
    config_path: str
    bootstrap: str
    partitions: int = topics.DEFAULT_PARTITIONS
    store: str = "rocksdb"
    data_dir: str | None = None
    web_port: int | None = None
    tick_interval: float = 0.2
    instance_id: str | None = None
    session_timeout: float = 10.0
    standby_replicas: int = 0
    app_id: str = topics.NAMESPACE
    loglevel: str = "warning"
    batch_max: int = 1000
    """Records an agent takes at once (one round of acknowledgements per batch)."""
    batch_within: float = 0.002
    """Seconds an agent waits for more records before it handles what it has."""


@dataclass
class Runtime:
    """What the agent, the timer and the signal handlers share inside one worker."""

    engine: Engine
    config_path: str
    flood: FloodControl
    schedule: WakeSchedule = field(default_factory=WakeSchedule)
    flood_schedule: WakeSchedule = field(default_factory=WakeSchedule)
    """Users' next batch times (spec §7), on this worker's flood partitions."""
    flood_states: dict[bytes, UserFloodState | None] = field(default_factory=dict)
    """The flood table's states as last written, for this worker's flood partitions (emptied on
    every rebalance). In a storm a user's state holds every held message: reading it back from the
    table for each record parsed them all again."""
    ready: bool = False
    processed: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a wake-up earlier than the one the ticker sleeps towards was scheduled."""
    catchup: CatchUp = field(default_factory=CatchUp)
    silences: SilenceIndex = field(default_factory=SilenceIndex)
    """Spec §8: the silence books of the active events partitions, and which states watch them."""

    def set_wake(self, key: str, partition: int, wake_at: int | None, schedule: WakeSchedule | None = None) -> None:
        schedule = self.schedule if schedule is None else schedule
        earliest = schedule.next_due()
        schedule.set(key, partition, wake_at)
        if wake_at is not None and (earliest is None or wake_at < earliest):
            self.changed.set()

    def flood_for(self) -> FloodControl | None:
        """The flood-control rules when any are configured (else messages skip the stage)."""
        return self.flood if self.flood.active else None

    def reload(self) -> None:
        """SIGHUP: load the config again. Open instances keep their plan snapshot."""
        try:
            config = load_config(self.config_path)
            self.engine, self.flood = Engine(config), FloodControl(config)
            log.warning("config reloaded from %s", self.config_path)
            # Monitors' expiries follow the new intervals (spec §8): wake their states now, and
            # the engine computes the new expiry (or drops a removed monitor's).
            now = now_us()
            for key, partition in self.silences.monitors.items():
                self.set_wake(key.decode(), partition, now)
        except ConfigError as exc:
            log.error("config reload failed, keeping the old one:\n%s", exc)


def create_app(settings: WorkerSettings, engine: Engine) -> tuple[faust.App, Runtime]:
    runtime = Runtime(engine=engine, config_path=settings.config_path, flood=FloodControl(engine.config))
    data_dir = settings.data_dir or tempfile.mkdtemp(prefix="streamproc-worker-")
    extra: dict[str, Any] = {}
    if settings.instance_id:
        extra["canonical_url"] = f"http://{settings.instance_id}:6066"
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        store="rocksdb://" if settings.store == "rocksdb" else "memory://",
        datadir=data_dir,
        web_port=settings.web_port or free_port(),
        web_bind=os.environ.get("STREAMPROC_WEB_BIND", "127.0.0.1"),
        web_host="127.0.0.1",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        # Faust declares no topic (so its topic_replication_factor is never used): every topic, the
        # changelogs included, is made and checked by `kafka.admin.ensure_topics`.
        topic_allow_declare=False,
        table_standby_replicas=settings.standby_replicas,
        consumer_group_instance_id=settings.instance_id,
        # With static membership a restarted worker gets its old assignment back without a
        # rebalance, and Faust checks that the assignment's URL is its own: derive the URL from
        # the instance id, not from a web port that may differ from one start to the next.
        **extra,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=max(1.0, settings.session_timeout / 6),
        broker_commit_interval=1.0,
        producer_acks=-1,
        # Faust's producer only writes the table's changelog now, off the path to the vendor:
        # larger batches, fewer requests (offsets are committed only after it is flushed).
        producer_linger=0.005,
        stream_wait_empty=True,
        consumer_auto_offset_reset="earliest",
        TableManager=SeekFirstTableManager,
        **security.faust_settings(),  # TLS / SASL of the aiokafka consumers and producer
    )
    app.transport = Transport(app.conf.broker_consumer, app)  # see faustfix.py
    incidents = app.topic(topics.INCIDENTS, key_type=bytes, value_type=bytes)
    source = app.topic(topics.EVENTS, topics.TICKS, key_type=bytes, value_type=bytes, partitions=settings.partitions)
    table = app.Table(
        topics.ESCALATIONS_TABLE, default=None, partitions=settings.partitions, key_type=bytes, value_type=bytes
    )
    flood_source = app.topic(topics.FLOOD, key_type=bytes, value_type=bytes, partitions=settings.partitions)
    flood_table = app.Table(
        topics.FLOOD_TABLE, default=None, partitions=settings.partitions, key_type=bytes, value_type=bytes
    )
    partitions = settings.partitions

    Headers = list[tuple[str, bytes]] | None
    # Everything the agents and the ticker produce goes through one librdkafka producer
    # (`producer.py`); Faust's own aiokafka producer only writes the table's changelog. The agents
    # await their outputs' acknowledgements before a batch is done, and Faust commits a batch's
    # offsets only after that.
    outputs = Outputs(settings.bootstrap)

    def records(items: list[Output], headers: Headers = None) -> list[Record]:
        return [
            (o.topic, o.key, o.value, o.partition, [*(headers or ()), *o.headers] if o.headers else headers)
            for o in items
        ]

    def active_partitions(topic: str) -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}

    def barriers(topic: str, owned: set[int], token: bytes) -> list[Record]:
        return records([Output(topic, None, b"", p) for p in sorted(owned)], [(BARRIER_HEADER, token)])

    async def append_barriers(topic: str, owned: set[int], token: bytes) -> None:
        await outputs.send(barriers(topic, owned, token))

    # Both agents take the records that are there (up to `batch_max`, waiting at most
    # `batch_within` for more), enqueue all their outputs, await every acknowledgement once, and
    # only then write the table; Faust acks (and may commit) a batch's records only after the
    # agent has finished with the batch, so "acknowledged before the state is written, committed
    # after both" holds for the batch as it did for each record.

    async def whole(batch_done: Awaitable[None]) -> None:
        """Handle a batch to its end. Faust acknowledges a batch's records as the agent leaves it,
        handled or not, and then commits them: a stopping worker (the agent cancelled) first
        finishes the batch, and an error while handling one ends the process instead of letting
        its records be committed unhandled (they are read again after the restart)."""
        task = asyncio.ensure_future(batch_done)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                await asyncio.wait([task])  # the agent was cancelled: finish the batch first
            if task.cancelled() or task.exception() is not None:
                fatal(task)
            raise
        except BaseException:
            fatal(task)

    def fatal(task: asyncio.Future[None]) -> NoReturn:
        error = None if task.cancelled() else task.exception()
        log.critical("a batch failed (%r): exiting before Faust commits its records", error, exc_info=error)
        logging.shutdown()
        os._exit(70)

    @app.agent(incidents, concurrency=1, name="rekey")
    async def rekey(stream: Any) -> None:
        async for batch in take_batches(stream, settings.batch_max, settings.batch_within):
            await whole(rekey_batch(batch))

    async def rekey_batch(batch: list[Any]) -> None:
        pending: list[Record] = []
        done: list[tuple[list[Output], str, int, int]] = []
        for event in batch:
            message = event.message
            token = barrier_token(message.headers)
            if token is not None:
                if runtime.catchup.incidents_read(message.partition, token):
                    # Behind everything re-keyed before it.
                    pending.extend(barriers(topics.EVENTS, runtime.catchup.events, token))
                continue
            timestamp = round(message.timestamp * 1000) * 1000
            # The correlation id comes with the record (the API, or any client, sets the header)
            # or is made here; it goes on with the event.
            correlation_id = correlation_of(message.headers) or new_correlation_id()
            rekeyed = on_incident_record(
                runtime.engine, event.key, event.value, timestamp, message.partition, message.offset, partitions
            )
            pending.extend(records(rekeyed, correlation_headers(correlation_id)))
            done.append((rekeyed, correlation_id, message.partition, message.offset))
        await outputs.send(pending)
        now = now_us()
        for rekeyed, correlation_id, source_partition, offset in done:
            metrics.count(rekeyed, now)
            log_rekeyed(rekeyed[0], correlation_id, source_partition, offset)

    @app.agent(source, concurrency=1, name="escalate")
    async def escalate(stream: Any) -> None:
        async for batch in take_batches(stream, settings.batch_max, settings.batch_within):
            await whole(escalate_batch(batch))

    async def escalate_batch(batch: list[Any]) -> None:
        # key -> (its latest record, latest state, changed): later records of a key see it.
        states: dict[bytes, tuple[Any, IncidentState | None, bool]] = {}
        pending: list[Record] = []
        done: list[tuple[bytes, Any, Processed, str | None, str | None]] = []
        books: dict[int, Any] = {}
        """Events partitions whose silence book changed -> the record that changed it last."""
        barrier_read = False
        silences = runtime.silences

        def latest(key: bytes) -> IncidentState | None:
            """A state as this batch left it, else as the table has it (the current record's partition)."""
            return states[key][1] if key in states else load_state(table.get(key))

        for event in batch:
            message = event.message
            key: bytes | None = event.key
            token = barrier_token(message.headers)
            if token is not None:
                barrier_read |= runtime.catchup.events_read(message.partition, token)
                continue
            if key is None:
                continue  # nothing the processor writes; not an incident's
            make_current(event)  # the table reads and writes the record's partition
            partition = message.partition
            if has_header(message.headers, SILENCE_HEADER):
                # Spec §8: this partition's copy of a silence or unsilence.
                change, moved = on_silence_copy(
                    runtime.engine,
                    silences,
                    event.value,
                    partition,
                    message.offset,
                    latest,
                    runtime.flood_for(),
                    partitions,
                )
                pending.extend(records(change.outputs))
                if change.changed:
                    books[partition] = event
                for watcher, processed in moved:
                    states[watcher] = (
                        event,
                        processed.state,
                        (watcher in states and states[watcher][2]) or processed.changed,
                    )
                    pending.extend(records(processed.outputs, correlation_headers(processed.correlation_id)))
                    done.append((watcher, message, processed, processed.correlation_id, None))
                continue
            if key in states:
                _, state, changed = states[key]
            else:
                state, changed = load_state(table.get(key)), False
            event_correlation = correlation_of(message.headers)
            book = silences.book(partition)
            if message.topic == topics.TICKS:
                processed = on_tick(runtime.engine, state, event.value, now_us(), runtime.flood_for(), partitions, book)
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
                    partitions,
                    book,
                )
            states[key] = (event, processed.state, changed or processed.changed)
            silences.track(runtime.engine, key, partition, processed.state)
            # Records derived from an instance carry the id of the record that opened it.
            correlation_id = processed.correlation_id or event_correlation
            pending.extend(records(processed.outputs, correlation_headers(correlation_id)))
            done.append((key, message, processed, correlation_id, event_correlation))
        # Issue 22: one status record per changed instance (or a due tombstone), with the outputs.
        now = now_us()
        retention = runtime.engine.config.status.resolved_retention
        for key, (event, state, changed) in states.items():
            settled, status, now_changed = status_update(key, state, changed, now, retention)
            if status is not None:
                pending.append((status.topic, key, status.value or None, None, None))
                states[key] = (event, settled, now_changed)
        # Outputs first, acknowledged; then the state. A crash in between repeats outputs
        # (deduplicated downstream by message_id); it can never lose them.
        await outputs.send(pending)
        now = now_us()
        for key, message, processed, correlation_id, event_correlation in done:
            metrics.count(processed.outputs, now)
            if processed.expiries:
                metrics.expired(processed.expiries)
            log_processed(key, message.topic, message.partition, processed, correlation_id, event_correlation)
        for key, (event, state, changed) in states.items():
            partition = event.message.partition
            if changed and state is not None:
                make_current(event)
                table[key] = dump_state(state)
            runtime.set_wake(key.decode(), partition, worker_wake(state))
            metrics.open_escalations.set(key.decode(), partition, state.status if state is not None else None)
        # A partition's book after its states: a book in the changelog means the states it changed
        # are there too (a copy the book already holds is skipped when read again).
        for partition, event in books.items():
            make_current(event)
            table[book_key(partition)] = dump_book(silences.books[partition])
        runtime.processed += len(done)
        if barrier_read:
            runtime.changed.set()

    @app.agent(flood_source, concurrency=1, name="flood")
    async def flood(stream: Any) -> None:
        """Flood control (spec §7), keyed by user: downgrade, then batching; batch times come back
        as ticks on the same topic. Same rules as `escalate`: outputs acknowledged before the state."""
        async for batch in take_batches(stream, settings.batch_max, settings.batch_within):
            await whole(flood_batch(batch))

    async def flood_batch(batch: list[Any]) -> None:
        states: dict[bytes, tuple[Any, UserFloodState | None, bool]] = {}
        pending: list[Record] = []
        for event in batch:
            key: bytes | None = event.key
            if key is None:
                continue
            make_current(event)
            if key in states:
                _, state, changed = states[key]
            elif key in runtime.flood_states:
                state, changed = runtime.flood_states[key], False
            else:
                state, changed = load_flood_state(flood_table.get(key)), False
            message = event.message
            processed = on_flood_record(runtime.flood, state, event.value, now_us(), message.partition, message.offset)
            states[key] = (event, processed.state, changed or processed.changed)
            pending.extend(records(processed.outputs, correlation_headers(correlation_of(message.headers))))
        await outputs.send(pending)
        for key, (event, state, changed) in states.items():
            if changed and state is not None:
                make_current(event)
                flood_table[key] = state.model_dump_json().encode()
            runtime.flood_states[key] = state
            runtime.set_wake(
                key.decode(),
                event.message.partition,
                state.wake_at if state is not None else None,
                runtime.flood_schedule,
            )

    def rebuild(actives: set[int]) -> None:
        """Derive the wake schedule from the table for the partitions this worker owns."""
        runtime.schedule.clear()
        metrics.open_escalations.clear()
        runtime.silences.clear()
        items = list(table.items())
        for key, raw in items:
            if key is not None:
                runtime.silences.load(key, raw, actives)
        for key, partition, state in owned_states(items, partitions, actives):
            runtime.schedule.set(key.decode(), partition, worker_wake(state))
            metrics.open_escalations.set(key.decode(), partition, state.status)
            runtime.silences.track(runtime.engine, key, partition, state)
        runtime.flood_schedule.clear()
        runtime.flood_states.clear()
        for key, partition, flood_state in owned_entries(
            list(flood_table.items()), partitions, actives, load_flood_state
        ):
            runtime.flood_schedule.set(key.decode(), partition, flood_state.wake_at)
        log.info(
            "wake schedule rebuilt: %d incidents and %d users pending on partitions %s",
            len(runtime.schedule),
            len(runtime.flood_schedule),
            sorted(actives),
        )

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        runtime.ready = False
        runtime.schedule.drop_partitions({tp.partition for tp in revoked if tp.topic == topics.EVENTS})
        runtime.flood_schedule.drop_partitions({tp.partition for tp in revoked if tp.topic == topics.FLOOD})
        runtime.flood_states.clear()
        metrics.open_escalations.drop_partitions({tp.partition for tp in revoked if tp.topic == topics.EVENTS})
        runtime.silences.drop_partitions({tp.partition for tp in revoked if tp.topic == topics.EVENTS})

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def on_rebalanced(sender: Any, **kwargs: Any) -> None:
        metrics.rebalanced(getattr(app.tables, "recovery", None), time.monotonic())
        actives = active_partitions(topics.EVENTS)
        rebuild(actives)
        # Hold the wake-ups until the backlogs have been read: barriers behind the incidents
        # backlog first, then (when the first stage has read them) behind the events backlog.
        owned_incidents = active_partitions(topics.INCIDENTS)
        token = runtime.catchup.start(owned_incidents, actives)
        if owned_incidents:
            await append_barriers(topics.INCIDENTS, owned_incidents, token)
        else:
            await append_barriers(topics.EVENTS, actives, token)
        runtime.ready = True
        runtime.changed.set()

    @app.task
    async def ticker() -> None:
        """Produce a tick for each incident whose wake time has come, sleeping exactly until the
        next one (at most `tick_interval`), and woken early when an earlier one is scheduled.
        Partitions still reading their backlog after a rebalance keep their wake-ups for later."""
        while True:
            if runtime.ready:
                now = now_us()
                ticks: list[Record] = []
                for key, due in runtime.schedule.pop_due(now, held=runtime.catchup.events):
                    metrics.wakeup(due, now)
                    encoded = key.encode()
                    ticks.append(
                        (
                            topics.TICKS,
                            encoded,
                            Tick(incident_id=key, due=due, version=0).model_dump_json().encode(),
                            topics.partition_for(encoded, partitions),
                            None,
                        )
                    )
                # Batch times; held like the escalations' while claims may still be in a backlog.
                for key, due in runtime.flood_schedule.pop_due(now, held=runtime.catchup.events):
                    encoded = key.encode()
                    ticks.append(
                        (
                            topics.FLOOD,
                            encoded,
                            FloodTick(user=key, due=due).model_dump_json().encode(),
                            topics.partition_for(encoded, partitions),
                            None,
                        )
                    )
                if ticks:
                    outputs.send(ticks)  # not awaited, as ever: late or duplicate ticks are harmless
            nxt = (
                min(
                    (
                        t
                        for t in (
                            runtime.schedule.next_due(held=runtime.catchup.events),
                            runtime.flood_schedule.next_due(held=runtime.catchup.events),
                        )
                        if t is not None
                    ),
                    default=None,
                )
                if runtime.ready
                else None
            )
            delay = settings.tick_interval if nxt is None else (nxt - now_us()) / 1_000_000
            runtime.changed.clear()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(runtime.changed.wait(), min(delay, settings.tick_interval * 5))

    @app.task
    async def on_start() -> None:
        # Faust's start-up leaves loggers at INFO whatever --loglevel says: without this every
        # info line of the hot path is built and then thrown away.
        logging.getLogger("streamproc").setLevel(level_of(settings.loglevel))
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # non-Unix
            loop.add_signal_handler(signal.SIGHUP, runtime.reload)

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        body = {
            "ready": runtime.ready,
            "pending": len(runtime.schedule),
            "processed": runtime.processed,
            "partitions": sorted(active_partitions(topics.EVENTS)),
            "catching_up": sorted(runtime.catchup.events),
        }
        return web.json(body, status=200 if runtime.ready else 503)

    @app.page("/inspect")
    async def inspect(web: Any, request: Any) -> Any:
        """For `streamproc inspect workers` (processor/status.py)."""
        return web.json(
            worker_status(
                instance=settings.instance_id,
                url=str(app.conf.canonical_url),
                ready=runtime.ready,
                processed=runtime.processed,
                actives=active_partitions(topics.EVENTS),
                standbys={tp.partition for tp in app.assignor.assigned_standbys()},
                items=list(table.items()),
                partitions=partitions,
                schedule=runtime.schedule,
                catching_up=set(runtime.catchup.events),
            )
        )

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        return web.bytes(metrics.exposition(), headers={"Content-Type": metrics.CONTENT_TYPE})

    return app, runtime


def run_worker(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc)
        return 2
    settings = WorkerSettings(
        config_path=args.config,
        bootstrap=args.bootstrap,
        partitions=args.partitions,
        store=args.store,
        data_dir=args.data_dir,
        web_port=args.web_port,
        tick_interval=args.tick_interval,
        loglevel=args.loglevel,
        instance_id=os.environ.get("STREAMPROC_INSTANCE_ID") or os.environ.get("POD_NAME"),
        session_timeout=float(os.environ.get("STREAMPROC_SESSION_TIMEOUT", "10")),
    )
    if settings.data_dir:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    try:
        security.configure(config.kafka)
        ensure_topics(settings.bootstrap, settings.partitions)
    except (security.KafkaSecurityError, security.KafkaUnreachable, TopicLayoutError) as exc:
        print(f"streamproc worker: {exc}", file=sys.stderr, flush=True)
        return 2
    app, _ = create_app(settings, Engine(config))
    worker = faust.Worker(
        app, loglevel=args.loglevel, quiet=True, logging_config=dict_config(args.log_format, args.loglevel)
    )
    worker.spinner = None  # Faust draws it on stdout even with quiet=True (glyphs, cursor codes)
    from streamproc.lifecycle import arm_watchdog

    def armed(faust_handler: Any) -> Any:
        def on_signal() -> None:
            arm_watchdog("worker")  # a stop waiting on a broker that is gone ends in bounded time
            faust_handler()

        return on_signal

    worker._on_sigint = armed(worker._on_sigint)  # type: ignore[method-assign]
    worker._on_sigterm = armed(worker._on_sigterm)  # type: ignore[method-assign]
    if args.loglevel.lower() != "debug":
        # Faust and aiokafka log every produced record at debug level; the record is built
        # (and costs) even when nothing prints it.
        for name in ("faust", "aiokafka", "mode"):
            logging.getLogger(name).setLevel(max(logging.INFO, logging.getLevelName(args.loglevel.upper())))
    worker.execute_from_commandline()
    return 0

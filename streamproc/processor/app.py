"""`streamproc worker`: the escalation engine live on Kafka, as a Faust app.

Two agents, each with concurrency=1 (faust-streaming #606 can commit past in-flight events
otherwise, and one incident's records must be handled in order):

- `rekey` reads `streamproc.incidents`, as written by any client with any partitioner and any key
  (or none), and re-produces every valid event to `streamproc.events`, keyed by incident id on the
  partition `topics.partition_for` gives; bad input goes to the dead-letter topic. It awaits each
  acknowledgement before taking the next record, so a crash repeats an event (harmless: same
  `event_id`, same `at`) but never skips one, and the order of each source partition is kept.
- `escalate` reads `streamproc.events` and `streamproc.ticks` (co-partitioned, placed by the same
  function) and owns the `escalations` table.

Time arrives as records: a task watches the in-memory wake schedule of this worker's active
partitions and produces keyed ticks, which land on the partition that holds the incident's state.
Faust commits offsets only after its producer (outputs and changelog) is flushed; on top of that
the agent waits for its output records to be acknowledged before it writes the table, so a crash
can repeat a page (same message_id, the senders drop it) but never lose one.

After every rebalance the wake-ups of a partition wait until both stages have read the backlog
that built up while it had no owner (`catchup.py`), so a claim that arrived meanwhile is applied
before the pages that fell due meanwhile (spec §3).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust

from streamproc.config import ConfigError, load_config
from streamproc.engine.core import Engine
from streamproc.kafka import topics
from streamproc.kafka.admin import ensure_topics
from streamproc.localnet import free_port
from streamproc.processor.catchup import BARRIER_HEADER, CatchUp, barrier_token
from streamproc.processor.faustfix import SeekFirstTableManager, Transport
from streamproc.processor.records import (
    Output,
    Processed,
    load_state,
    on_event_record,
    on_incident_record,
    on_tick_record,
)
from streamproc.processor.schedule import WakeSchedule
from streamproc.wire.records import Tick

log = logging.getLogger("streamproc.worker")


def now_us() -> int:
    return int(time.time() * 1_000_000)


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


@dataclass
class Runtime:
    """What the agent, the timer and the signal handlers share inside one worker."""

    engine: Engine
    config_path: str
    schedule: WakeSchedule = field(default_factory=WakeSchedule)
    ready: bool = False
    processed: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a wake-up earlier than the one the ticker sleeps towards was scheduled."""
    catchup: CatchUp = field(default_factory=CatchUp)

    def set_wake(self, key: str, partition: int, wake_at: int | None) -> None:
        earliest = self.schedule.next_due()
        self.schedule.set(key, partition, wake_at)
        if wake_at is not None and (earliest is None or wake_at < earliest):
            self.changed.set()

    def reload(self) -> None:
        """SIGHUP: load the config again. Open instances keep their plan snapshot."""
        try:
            self.engine = Engine(load_config(self.config_path))
            log.warning("config reloaded from %s", self.config_path)
        except ConfigError as exc:
            log.error("config reload failed, keeping the old one:\n%s", exc)


def create_app(settings: WorkerSettings, engine: Engine) -> tuple[faust.App, Runtime]:
    runtime = Runtime(engine=engine, config_path=settings.config_path)
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
        topic_replication_factor=1,
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
        stream_wait_empty=True,
        consumer_auto_offset_reset="earliest",
        TableManager=SeekFirstTableManager,
    )
    app.transport = Transport(app.conf.broker_consumer, app)  # see faustfix.py
    incidents = app.topic(topics.INCIDENTS, key_type=bytes, value_type=bytes)
    source = app.topic(topics.EVENTS, topics.TICKS, key_type=bytes, value_type=bytes,
                       partitions=settings.partitions)
    table = app.Table("escalations", default=None, partitions=settings.partitions, key_type=bytes,
                      value_type=bytes)
    partitions = settings.partitions

    async def publish(outputs: list[Output], headers: list[tuple[str, bytes]] | None = None) -> None:
        # Straight to the app's producer (the one Faust flushes before committing offsets),
        # skipping Topic.send's per-record channel machinery. Every record of the event is
        # enqueued before the producer's sender task runs, then all acknowledgements awaited.
        producer = app.producer
        if outputs:
            futures = await asyncio.gather(*(producer.send(o.topic, o.key, o.value, o.partition, None, headers)
                                             for o in outputs))
            await asyncio.gather(*futures)

    def active_partitions(topic: str) -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}

    async def append_barriers(topic: str, owned: set[int], token: bytes) -> None:
        await publish([Output(topic, None, b"", p) for p in sorted(owned)], headers=[(BARRIER_HEADER, token)])

    @app.agent(incidents, concurrency=1, name="rekey")
    async def rekey(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            token = barrier_token(message.headers)
            if token is not None:
                if runtime.catchup.incidents_read(message.partition, token):
                    await append_barriers(topics.EVENTS, runtime.catchup.events, token)
                continue
            timestamp = round(message.timestamp * 1000) * 1000
            await publish([on_incident_record(runtime.engine, event.key, event.value, timestamp,
                                              message.partition, message.offset, partitions)])

    @app.agent(source, concurrency=1, name="escalate")
    async def escalate(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            key: bytes | None = event.key
            token = barrier_token(message.headers)
            if token is not None:
                if runtime.catchup.events_read(message.partition, token):
                    runtime.changed.set()
                continue
            if key is None:
                continue  # nothing the processor writes; not an incident's
            stored = table.get(key)
            if message.topic == topics.TICKS:
                processed: Processed = on_tick_record(runtime.engine, stored, event.value, now_us())
            else:
                processed = on_event_record(runtime.engine, stored, event.value, message.partition,
                                            message.offset, now_us())
            # Outputs first, acknowledged; then the state. A crash in between repeats outputs
            # (deduplicated downstream by message_id); it can never lose them.
            await publish(processed.outputs)
            if processed.changed and processed.state is not None:
                table[key] = processed.state.model_dump_json().encode()
            runtime.set_wake(key.decode(), message.partition, processed.wake_at)
            runtime.processed += 1

    def rebuild(actives: set[int]) -> None:
        """Derive the wake schedule from the table for the partitions this worker owns."""
        runtime.schedule.clear()
        for key, raw in list(table.items()):
            if key is None or raw is None:
                continue
            partition = topics.partition_for(key, partitions)
            if partition not in actives:
                continue
            state = load_state(raw)
            if state is not None:
                runtime.schedule.set(key.decode(), partition, state.wake_at)
        log.info("wake schedule rebuilt: %d incidents pending on partitions %s", len(runtime.schedule),
                 sorted(actives))

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        runtime.ready = False
        runtime.schedule.drop_partitions({tp.partition for tp in revoked if tp.topic == topics.EVENTS})

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def on_rebalanced(sender: Any, **kwargs: Any) -> None:
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
                for key, due in runtime.schedule.pop_due(now_us(), held=runtime.catchup.events):
                    tick = Tick(incident_id=key, due=due, version=0)
                    encoded = key.encode()
                    await app.producer.send(topics.TICKS, encoded, tick.model_dump_json().encode(),
                                            topics.partition_for(encoded, partitions), None, None)
            nxt = runtime.schedule.next_due(held=runtime.catchup.events) if runtime.ready else None
            delay = settings.tick_interval if nxt is None else (nxt - now_us()) / 1_000_000
            runtime.changed.clear()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(runtime.changed.wait(), min(delay, settings.tick_interval * 5))

    @app.task
    async def on_start() -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # non-Unix
            loop.add_signal_handler(signal.SIGHUP, runtime.reload)

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        body = {"ready": runtime.ready, "pending": len(runtime.schedule), "processed": runtime.processed,
                "partitions": sorted(active_partitions(topics.EVENTS)), "catching_up": sorted(runtime.catchup.events)}
        return web.json(body, status=200 if runtime.ready else 503)

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
        instance_id=os.environ.get("STREAMPROC_INSTANCE_ID") or os.environ.get("POD_NAME"),
        session_timeout=float(os.environ.get("STREAMPROC_SESSION_TIMEOUT", "10")),
    )
    if settings.data_dir:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    ensure_topics(settings.bootstrap, settings.partitions)
    app, _ = create_app(settings, Engine(config))
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    if args.loglevel.lower() != "debug":
        # Faust and aiokafka log every produced record at debug level; the record is built
        # (and costs) even when nothing prints it.
        for name in ("faust", "aiokafka", "mode"):
            logging.getLogger(name).setLevel(max(logging.INFO, logging.getLevelName(args.loglevel.upper())))
    worker.execute_from_commandline()
    return 0

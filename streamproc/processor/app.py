"""`streamproc worker`: the escalation engine live on Kafka, as a Faust app. This module is the
wiring; each stage of the data path has its own module:

- `rekey.py`, agent `rekey`: `streamproc.incidents`, as written by any client with any partitioner
  and any key (or none), re-keyed into `streamproc.events` by incident id;
- `escalate.py`, agent `escalate` and the worker's own wake-ups: the engine on the partitions that
  hold the incidents' states (the `escalations` table);
- `floodstage.py`, agent `flood`: flood control (spec §7), keyed by user (the `flood` table);
- `ticker.py`: time, from the in-memory wake schedules of the partitions this worker owns;
- `rebalance.py`: what changes hands on a rebalance, and the catch-up hold (`catchup.py`);
- `pages.py`: `/ready`, `/inspect`, `/metrics`.

Every agent has concurrency=1 (faust-streaming #606 can commit past in-flight events otherwise,
and one incident's records must be handled in order) and takes batches (`batches.py`): a batch's
outputs are acknowledged before its state is written, and Faust commits its offsets after both, so
a crash can repeat a page (same message_id, the senders drop it) but never lose one. Everything
the stages produce goes through one librdkafka producer (`producer.py`); Faust's own aiokafka
producer only writes the tables' changelogs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import faust
from faust.types import TP

from streamproc.config import ConfigError, environment, load_config
from streamproc.engine.core import Engine
from streamproc.flood import FloodControl
from streamproc.kafka import security, topics
from streamproc.kafka.admin import TopicLayoutError, ensure_topics
from streamproc.localnet import free_port
from streamproc.logs import dict_config, level_of
from streamproc.processor.batches import whole
from streamproc.processor.escalate import EscalateStage
from streamproc.processor.faustfix import SeekFirstTableManager, Transport, take_batches
from streamproc.processor.floodstage import FloodStage
from streamproc.processor.pages import add_pages
from streamproc.processor.producer import Outputs
from streamproc.processor.rebalance import Rebalance
from streamproc.processor.rekey import RekeyStage
from streamproc.processor.runtime import Runtime
from streamproc.processor.settings import WorkerSettings
from streamproc.processor.ticker import run_ticker

__all__ = ["Runtime", "WorkerSettings", "create_app", "run_worker"]


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
        web_bind=environment.web_bind(),
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
        # The survivors of a dead worker learn of the rebalance at their next heartbeat.
        broker_heartbeat_interval=settings.session_timeout / 10,
        broker_commit_interval=1.0,
        producer_acks=-1,
        # Faust's producer only writes the tables' changelogs, off the path to the vendor:
        # larger batches, fewer requests (offsets are committed only after it is flushed).
        producer_linger=0.005,
        stream_wait_empty=True,
        consumer_auto_offset_reset="earliest",
        TableManager=SeekFirstTableManager,
        **security.faust_settings(),  # TLS / SASL of the aiokafka consumers and producer
    )
    app.transport = Transport(app.conf.broker_consumer, app)  # see faustfix.py
    app.streamproc_quiesce = runtime.quiesce  # type: ignore[attr-defined]  # faustfix.Consumer.wait_empty
    partitions = settings.partitions
    incidents = app.topic(topics.INCIDENTS, key_type=bytes, value_type=bytes)
    # Tick records are no longer produced (the ticker applies wake-ups itself); the agent still
    # reads the topic, for ticks left by a worker of an earlier version.
    source = app.topic(topics.EVENTS, topics.TICKS, key_type=bytes, value_type=bytes, partitions=partitions)
    table = app.Table(topics.ESCALATIONS_TABLE, default=None, partitions=partitions, key_type=bytes, value_type=bytes)
    flood_source = app.topic(topics.FLOOD, key_type=bytes, value_type=bytes, partitions=partitions)
    flood_table = app.Table(topics.FLOOD_TABLE, default=None, partitions=partitions, key_type=bytes, value_type=bytes)

    outputs = Outputs(settings.bootstrap)
    rekey_stage = RekeyStage(runtime, outputs, partitions)
    escalate_stage = EscalateStage(runtime, table, outputs, partitions, settings.state_cache)
    flood_stage = FloodStage(runtime, flood_table, outputs)
    rebalance = Rebalance(app, runtime, table, flood_table, escalate_stage, rekey_stage, outputs, partitions)

    @app.agent(incidents, concurrency=1, name="rekey")
    async def rekey(stream: Any) -> None:
        async for batch in take_batches(stream, settings.batch_max, settings.batch_within):
            await whole(rekey_stage.on_batch(batch))

    @app.agent(source, concurrency=1, name="escalate")
    async def escalate(stream: Any) -> None:
        async for batch in take_batches(stream, settings.batch_max, settings.batch_within):
            await whole(escalate_stage.on_records(batch))

    @app.agent(flood_source, concurrency=1, name="flood")
    async def flood(stream: Any) -> None:
        async for batch in take_batches(stream, settings.batch_max, settings.batch_within):
            await whole(flood_stage.on_batch(batch))

    app.on_partitions_revoked.connect(rebalance.on_revoked)  # type: ignore[arg-type]
    app.on_rebalance_complete.connect(rebalance.on_rebalanced)  # type: ignore[arg-type]

    def highwater(topic: str, partition: int) -> int | None:
        try:
            end = app.consumer.highwater(TP(topic, partition))
        except Exception:  # not assigned (a rebalance under way), or not fetched yet
            return None
        return end if isinstance(end, int) else None

    @app.task
    async def ticker() -> None:
        await run_ticker(
            runtime,
            escalate_stage,
            outputs,
            partitions,
            settings.tick_interval,
            settings.batch_max,
            highwater,
            settings.wake_gather,
        )

    @app.task
    async def on_start() -> None:
        # Faust's start-up leaves loggers at INFO whatever --loglevel says: without this every
        # info line of the hot path is built and then thrown away.
        logging.getLogger("streamproc").setLevel(level_of(settings.loglevel))
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # non-Unix
            loop.add_signal_handler(signal.SIGHUP, runtime.reload)

    add_pages(app, runtime, rebalance, table, settings.instance_id)
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
        instance_id=environment.instance_id(),
        session_timeout=environment.session_timeout(),
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

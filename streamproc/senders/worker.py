"""The sender worker: drains `streamproc.messages.<mode>` topics into vendors.

One consumer group per mode (`streamproc-sender-<mode>`), so any number of workers can
run any mix of modes and each partition has one owner. Per mode, a thread owns the
confluent-kafka consumer (poll, commit, rebalance callbacks) and hands messages to the
mode's `ModePipeline` on the asyncio loop. Offsets are committed by hand, only up to
messages whose delivery record the broker has acknowledged.

On assign: re-read delivered ids of those partitions, then take a rate share.
On revoke: forget queued messages, wait for sends in flight to be recorded, commit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from pydantic import ValidationError

from streamproc.config import environment
from streamproc.config.kafka import KafkaSettings
from streamproc.config.senders import SendersSettings
from streamproc.kafka import security
from streamproc.kafka import topics as names
from streamproc.kafka.admin import TopicLayoutError, ensure_topics, sender_topics
from streamproc.kafka.clients import client_id, consumer_config
from streamproc.kafka.headers import correlation_of
from streamproc.kafka.topics import Topics
from streamproc.lifecycle import arm_watchdog
from streamproc.logs import add_format_argument, setup_logging
from streamproc.senders import metrics, status
from streamproc.senders.audit_follower import AuditFollower
from streamproc.senders.claims import Claims
from streamproc.senders.dedupe import DeliveredSet
from streamproc.senders.delivery_log import CLIENT_ROLE, KafkaSink, read_delivered, sender_producer
from streamproc.senders.offsets import OffsetTracker
from streamproc.senders.pending import Pending
from streamproc.senders.pipeline import EmailOf, ModePipeline
from streamproc.senders.ratelimit import RateLimits
from streamproc.senders.vendors import Vendor, build_vendors
from streamproc.wire.common import CONTACT_MODES, ContactMode
from streamproc.wire.outcomes import Message

log = logging.getLogger(__name__)

SENDER_MODES: tuple[ContactMode, ...] = CONTACT_MODES
COMMIT_EVERY = 0.2
CONSUME_BATCH = 500
"""Records taken from the consumer at a time (and handed to the loop together)."""
LOG_LEVELS = ("debug", "info", "warning", "error")
GC_THRESHOLD = 10_000
"""Allocations between young collections (Python's default: 700). Every page allocates some forty
short-lived containers; with the default a sender spent about 5% of its CPU in the collector."""


def group_id(mode: str, topics: Topics) -> str:
    """The consumer group of a mode's senders: `<namespace>-sender-<mode>`."""
    return f"{topics.namespace}-sender-{mode}"


class ModeConsumer(threading.Thread):
    """The consumer thread of one mode."""

    def __init__(
        self,
        mode: str,
        bootstrap: str,
        topics: Topics,
        pipeline: ModePipeline,
        tracker: OffsetTracker,
        limits: RateLimits,
        settings: SendersSettings,
        co_partitioned: bool,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(name=f"sender-{mode}", daemon=True)
        self.mode = mode
        self.topic = topics.messages(mode)
        self._servers = bootstrap
        self._topics = topics
        self._pipeline = pipeline
        self._tracker = tracker
        self._limits = limits
        self._settings = settings
        self._co_partitioned = co_partitioned
        self._loop = loop
        self._total = 0
        self._owned: set[int] = set()
        self._committed: dict[int, int] = {}
        self.stopping = threading.Event()
        self.assigned = threading.Event()
        """Set once an assignment (even an empty one) is taken and its delivery records re-read."""
        self.error: BaseException | None = None
        session_ms = int(settings.session_timeout * 1000)
        # auto.offset.reset is `earliest` (`consumer_config`): a new group misses nothing already queued.
        self._consumer = Consumer(
            consumer_config(
                bootstrap,
                group_id(mode, topics),
                **{
                    "client.id": client_id(CLIENT_ROLE),
                    "session.timeout.ms": session_ms,
                    "heartbeat.interval.ms": max(100, session_ms // 4),
                    "partition.assignment.strategy": "roundrobin",
                },
            )
        )

    # the loop side -----------------------------------------------------------------------
    def _on_loop(self, work: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout)

    async def _adopt(self, partitions: list[int], delivered: list[Any]) -> None:
        self._pipeline.adopt(partitions, delivered)
        self._limits.set_ownership(self.mode, len(self._owned), self._total)

    async def _release(self, partitions: list[int]) -> None:
        self._limits.set_ownership(self.mode, len(self._owned), self._total)
        await self._pipeline.release(partitions, timeout=self._settings.session_timeout)

    # rebalance callbacks (run inside poll/close, on this thread) ---------------------------
    def _on_assign(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        partitions = [tp.partition for tp in assigned]
        self._total = len(consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions)
        delivered = read_delivered(
            self._servers,
            self._topics.deliveries,
            partitions if self._co_partitioned else None,
            self._settings.dedupe_window,
        )
        self._owned.update(partitions)
        self._on_loop(self._adopt(partitions, delivered))
        self.assigned.set()
        log.info(
            "%s: assigned %s of %d partitions (%d delivery records re-read)",
            self.mode,
            sorted(partitions),
            self._total,
            len(delivered),
        )

    def _on_revoke(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        partitions = [tp.partition for tp in revoked]
        self._owned.difference_update(partitions)
        self._on_loop(self._release(partitions))
        self._commit(consumer, partitions)
        self._tracker.forget(partitions)
        for partition in partitions:
            self._committed.pop(partition, None)
        log.info("%s: revoked %s", self.mode, sorted(partitions))

    def _on_lost(self, consumer: Consumer, lost: list[TopicPartition]) -> None:
        partitions = [tp.partition for tp in lost]
        self._owned.difference_update(partitions)
        self._on_loop(self._release(partitions))
        self._tracker.forget(partitions)
        log.warning("%s: lost %s", self.mode, sorted(partitions))

    # commits ---------------------------------------------------------------------------------
    def _commit(self, consumer: Consumer, partitions: list[int] | None = None) -> None:
        offsets = [
            TopicPartition(self.topic, p, o)
            for p, o in self._tracker.committable(partitions).items()
            if self._committed.get(p) != o
        ]
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("%s: commit failed: %s", self.mode, exc)
            return
        for tp in offsets:
            self._committed[tp.partition] = tp.offset

    # the thread ------------------------------------------------------------------------------
    def run(self) -> None:
        consumer = self._consumer
        try:
            consumer.subscribe(
                [self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )
            paused = False
            last_commit = 0.0
            while not self.stopping.is_set():
                now = time.monotonic()
                if now - last_commit >= COMMIT_EVERY:
                    self._commit(consumer)
                    last_commit = now
                queued = len(self._pipeline.lanes)
                if not paused and queued >= self._settings.max_queued:
                    consumer.pause(consumer.assignment())
                    paused = True
                elif paused and queued < self._settings.max_queued // 2:
                    consumer.resume(consumer.assignment())
                    paused = False
                # `consume(n, timeout)` waits for n records or the whole timeout: wait in `poll`
                # for one, then take what is already fetched without waiting.
                first = consumer.poll(0.1)
                if first is not None:
                    self._take_all([first, *consumer.consume(CONSUME_BATCH - 1, 0)])
            self._commit(consumer)
        except BaseException as exc:
            log.exception("%s: consumer thread failed", self.mode)
            self.error = exc
        finally:
            with contextlib.suppress(Exception):
                consumer.close()  # revokes: sends in flight are recorded and committed first

    def _take_all(self, batch: list[Any]) -> None:
        """Parse a batch of records and hand them to the loop in one call (one wake-up of the
        loop per batch, not per record)."""
        items: list[Pending] = []
        for msg in batch:
            error = msg.error()
            if error is not None:
                log.warning("%s: consumer error: %s", self.mode, error)
                continue
            item = self._parse(msg)
            if item is not None:
                items.append(item)
        if items:
            self._loop.call_soon_threadsafe(self._pipeline.enqueue_all, items)

    def _parse(self, msg: Any) -> Pending | None:
        partition, offset = msg.partition(), msg.offset()
        self._tracker.track(partition, offset)
        try:
            message = Message.model_validate_json(msg.value() or b"")
        except ValidationError as exc:
            log.error(
                "%s: skipping unreadable message at %s[%s]@%s: %s",
                self.mode,
                self.topic,
                partition,
                offset,
                exc,
            )
            self._tracker.done(partition, offset)
            return None
        _kind, stamp = msg.timestamp()
        return Pending(
            message=message,
            partition=partition,
            offset=offset,
            appended_at=stamp / 1000 if stamp > 0 else None,
            correlation_id=correlation_of(msg.headers()),
        )


def _limits_for(modes: Sequence[str], vendors: dict[str, Vendor], settings: SendersSettings) -> RateLimits:
    limits = RateLimits()
    for mode in modes:
        rate = settings.rate_for(mode)
        limits.add_mode(mode, rate.rate, rate.burst)
    vendor_rates = {
        "twilio": settings.twilio.rate,
        "slack": settings.slack.rate,
        "smtp": settings.smtp.rate,
        "webhook": settings.webhook.rate,
    }
    accounts: dict[str, list[str]] = {}
    for mode, vendor in vendors.items():
        if vendor.account is not None:
            accounts.setdefault(vendor.account, []).append(mode)
    for account, account_modes in accounts.items():
        account_rate = vendor_rates.get(vendors[account_modes[0]].name)
        if account_rate is not None:
            limits.add_account(account, account_rate.rate, account_rate.burst, account_modes)
    return limits


async def run_sender(
    modes: list[str],
    bootstrap: str,
    settings: SendersSettings,
    email_of: EmailOf,
    *,
    stop: asyncio.Event | None = None,
    topics: Topics = names.CURRENT,
    status_address: tuple[str, int] | None = None,
) -> None:
    """Run sender pipelines for `modes` on `topics` until `stop` is set (or a fatal error)."""
    unknown = sorted(set(modes) - set(SENDER_MODES))
    if unknown or not modes:
        raise ValueError(f"sender modes must be among {', '.join(SENDER_MODES)} (got {modes!r})")
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    counts = await asyncio.to_thread(ensure_topics, bootstrap, timeout=30.0, wanted=sender_topics(modes, topics))
    deliveries_count = counts.get(topics.deliveries)
    email_count = counts.get(topics.messages("email"))

    claims = Claims(settings.dedupe_window)
    follower = AuditFollower(bootstrap, topics.outcomes, claims, loop, settings.dedupe_window)
    follower.start()
    await asyncio.to_thread(follower.caught_up.wait, 30.0)

    producer = sender_producer(bootstrap, loop)
    vendors = build_vendors(modes, settings)
    limits = _limits_for(modes, vendors, settings)
    delivered = DeliveredSet(settings.dedupe_window)
    pipelines: dict[str, ModePipeline] = {}
    consumers: list[ModeConsumer] = []
    for mode in modes:
        mode_count = counts.get(topics.messages(mode))
        co_partitioned = mode_count is not None and mode_count == deliveries_count
        if not co_partitioned:
            log.warning("%s: deliveries topic is not co-partitioned; rebuilds read all of it", mode)
        tracker = OffsetTracker()
        sink = KafkaSink(producer, tracker, topics, co_partitioned, email_count == mode_count)
        pipeline = ModePipeline(
            mode,
            vendors[mode],
            limits,
            delivered,
            claims,
            sink,
            email_of,
            settings.retry,
            settings.concurrency,
        )
        pipelines[mode] = pipeline
        consumers.append(
            ModeConsumer(mode, bootstrap, topics, pipeline, tracker, limits, settings, co_partitioned, loop)
        )
    dispatchers = [asyncio.create_task(p.run(), name=f"dispatch-{m}") for m, p in pipelines.items()]
    for consumer in consumers:
        consumer.start()
    log.info("sender running: modes %s, vendors %s", modes, {m: v.name for m, v in vendors.items()})
    status_runner = None
    try:
        if status_address is not None:
            status_runner = await status.serve(
                pipelines,
                limits,
                *status_address,
                readiness=lambda: {c.mode: c.assigned.is_set() and c.is_alive() for c in consumers},
            )
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            failed = [p for p in pipelines.values() if p.failed] + [c for c in consumers if c.error]
            if failed or not all(c.is_alive() for c in consumers):
                raise RuntimeError(f"sender stopping after a fatal error in {failed or 'a consumer thread'}")
            delivered.prune()
            claims.prune()
    finally:
        if status_runner is not None:
            await status_runner.cleanup()
        for task in dispatchers:
            task.cancel()
        await asyncio.gather(*dispatchers, return_exceptions=True)
        for consumer in consumers:
            consumer.stopping.set()
        for consumer in consumers:
            await asyncio.to_thread(consumer.join, settings.session_timeout + 30)
        follower.stopping.set()
        await asyncio.to_thread(producer.close)
        await asyncio.to_thread(follower.stop, 5)
        for vendor in vendors.values():
            await vendor.close()


def _config_parts(path: str | None) -> tuple[SendersSettings, EmailOf]:
    if path is None:
        _configure_kafka(None)
        return SendersSettings(), lambda user: None
    from streamproc.config import ConfigError, load_config  # imported here: it imports this package

    try:
        config = load_config(path)
    except (ConfigError, OSError) as exc:
        raise SystemExit(f"streamproc sender: cannot load {path}:\n{exc}") from exc
    _configure_kafka(config.kafka)
    return config.senders, config.email_of


def _configure_kafka(settings: KafkaSettings | None) -> None:
    """This process's Kafka TLS / SASL: the config's `kafka:` section, STREAMPROC_KAFKA_* over it."""
    try:
        security.configure(settings)
    except security.KafkaSecurityError as exc:
        raise SystemExit(f"streamproc sender: {exc}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """`streamproc sender`: run the sender worker until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="streamproc sender", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mode",
        action="append",
        choices=SENDER_MODES,
        help="a mode to send (repeatable); default: every mode but drop",
    )
    parser.add_argument("--bootstrap", default=environment.kafka_bootstrap())
    parser.add_argument("--config", help="configuration file or directory (senders: and users:)")
    parser.add_argument(
        "--loglevel",
        type=str.lower,
        choices=LOG_LEVELS,
        default="info",
        help="how much to log (default info: a line per delivery record and per failed vendor call)",
    )
    add_format_argument(parser)
    metrics.add_arguments(parser)
    status.add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(args.log_format, args.loglevel)
    settings, email_of = _config_parts(args.config)
    modes = list(dict.fromkeys(args.mode or SENDER_MODES))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def stopping() -> None:
            arm_watchdog("sender")  # a stop waiting on a broker that is gone ends in bounded time
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, stopping)
        await run_sender(
            modes,
            args.bootstrap,
            settings,
            email_of,
            stop=stop,
            topics=names.CURRENT,
            status_address=(args.status_host, args.status_port) if args.status_port else None,
        )

    stop_metrics = metrics.start(args)
    # What is loaded by now (modules, classes) lives as long as the process: out of the collector's
    # sight, so full collections no longer walk it; then fewer, larger young collections.
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD)
    try:
        asyncio.run(run())
    except (RuntimeError, security.KafkaSecurityError, security.KafkaUnreachable, TopicLayoutError) as exc:
        print(f"streamproc sender: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_metrics()
    return 0


__all__ = ["SENDER_MODES", "ModeConsumer", "main", "run_sender"]

if __name__ == "__main__":
    sys.exit(main())

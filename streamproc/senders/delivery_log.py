"""The delivery log (`streamproc.deliveries`): the senders' record of what they did with each
message, written by `KafkaSink` and read back by `read_delivered` when a partition is taken over.

At most once per message id rests on one ordering, per message:

    vendor call returns -> delivery record acknowledged by the broker -> offset committable

A worker killed after the record is acknowledged loses nothing: whoever takes the
partition over re-reads the same-numbered partition of `streamproc.deliveries` before
consuming and skips the ids found there. The one window left is between the vendor's
answer and the broker's acknowledgement of the record (a produce round trip, a few ms on
a healthy cluster; `linger.ms` is kept small for this reason). A kill inside it sends
that page again. Recording *before* the call would close it, but would turn a crash into
a page never sent, which is the worse failure for an on-call system.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import Iterable

from pydantic import ValidationError

from streamproc.config import environment
from streamproc.kafka.bridge import AsyncProducer
from streamproc.kafka.clients import client_id, producer_config
from streamproc.kafka.deliveries import delivery_bytes
from streamproc.kafka.headers import correlation_headers
from streamproc.kafka.readback import read_recent
from streamproc.kafka.topics import Topics
from streamproc.senders.offsets import OffsetTracker
from streamproc.senders.pending import Pending
from streamproc.wire.deliveries import Delivery, parse_delivery
from streamproc.wire.outcomes import Message, outcome_dict

log = logging.getLogger(__name__)

CRASH_ENV = environment.SENDER_CRASH_AFTER_RECORDS
"""Test hook (`environment.sender_crash_after_records`): SIGKILL this process right after the Nth
`sent` record is acknowledged, before its offset can be committed (the worst moment that must not
cause a second page)."""

CLIENT_ROLE = "sender"
"""The senders' clients are named `streamproc-sender-<pid>` (`kafka.clients.client_id`)."""


def sender_producer(bootstrap: str, loop: asyncio.AbstractEventLoop) -> AsyncProducer:
    """The senders' producer (`kafka.clients.producer_config`: idempotent, so acks=all and no
    duplicates from retries; a linger of 2 ms, as the crash window is one produce round trip;
    the Java-compatible partitioner, as other clients key by user)."""
    return AsyncProducer(
        producer_config(bootstrap, **{"client.id": client_id(CLIENT_ROLE), "message.timeout.ms": 60000}),
        loop,
        name="sender-producer",
    )


class KafkaSink:
    """The pipeline's `Sink` on Kafka, for one mode: delivery records, and fallback emails
    re-queued on the email topic."""

    def __init__(
        self,
        producer: AsyncProducer,
        tracker: OffsetTracker,
        topics: Topics,
        co_partitioned: bool,
        email_co_partitioned: bool,
    ) -> None:
        self._producer = producer
        self._tracker = tracker
        self._deliveries = topics.deliveries
        self._email = topics.messages("email")
        self._co_partitioned = co_partitioned
        self._email_co_partitioned = email_co_partitioned
        self._crash_after = environment.sender_crash_after_records()
        self._sent = 0

    async def record(self, delivery: Delivery, pending: Pending) -> None:
        partition = pending.partition if self._co_partitioned else None
        # `write`: the records of sends settled in the same turn of the loop go to the broker together.
        await self._producer.write(
            self._deliveries,
            pending.message.user,
            delivery_bytes(delivery),
            partition,
            correlation_headers(pending.correlation_id),
        )
        if delivery.status == "sent" and self._crash_after is not None:
            self._sent += 1
            if self._sent >= self._crash_after:
                log.warning("%s=%d: killing this worker before the commit", CRASH_ENV, self._crash_after)
                os.kill(os.getpid(), signal.SIGKILL)

    async def requeue(self, message: Message, pending: Pending) -> None:
        partition = pending.partition if self._email_co_partitioned else None
        body = json.dumps(outcome_dict(message), separators=(",", ":"), ensure_ascii=False).encode()
        await self._producer.write(
            self._email, message.user, body, partition, correlation_headers(pending.correlation_id)
        )

    def done(self, pending: Pending) -> None:
        self._tracker.done(pending.partition, pending.offset)


def read_delivered(
    bootstrap: str,
    topic: str,
    partitions: Iterable[int] | None,
    window: float,
    timeout: float = 30.0,
) -> list[Delivery]:
    """Delivery records of the last `window` seconds on the given partitions (all when
    None), up to the end as it is now. Blocking; runs in the consumer thread on assign."""
    records: list[Delivery] = []
    for partition, offset, value in read_recent(
        bootstrap,
        topic,
        partitions,
        time.time() - window,
        group=f"streamproc-{CLIENT_ROLE}-rebuild",
        client=client_id(CLIENT_ROLE),
        timeout=timeout,
    ):
        try:
            records.append(parse_delivery(value))
        except ValidationError:
            log.warning("skipping a bad record on %s[%s]@%s", topic, partition, offset)
    return records


__all__ = ["CRASH_ENV", "KafkaSink", "read_delivered", "sender_producer"]

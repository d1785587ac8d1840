"""Helpers for the senders' broker-backed tests: produce messages, read deliveries, run workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from confluent_kafka import Producer

from streamproc.config.senders import SendersSettings
from streamproc.kafka.topics import Topics
from streamproc.senders.worker import run_sender
from streamproc.wire.deliveries import Delivery, parse_delivery
from streamproc.wire.outcomes import Audit, Message, outcome_dict
from tests.harness import create_topic, group_assigned, read

PARTITIONS = 12


def new_topics(bootstrap: str, *modes: str) -> Topics:
    """A fresh set of topics (own namespace) with the deliveries topic co-partitioned."""
    topics = Topics(f"t{uuid.uuid4().hex[:8]}")
    for name in [*(topics.messages(m) for m in {*modes, "email"}), topics.deliveries, topics.outcomes]:
        create_topic(bootstrap, name, PARTITIONS)
    return topics


def produce(bootstrap: str, topics: Topics, messages: list[Message]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 1})
    for msg in messages:
        value = json.dumps(outcome_dict(msg)).encode()
        producer.produce(topics.messages(msg.mode), key=msg.user.encode(), value=value)
    assert producer.flush(10) == 0


def produce_audit(bootstrap: str, topics: Topics, audit: Audit) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topics.outcomes, key=audit.incident_id.encode(), value=audit.model_dump_json().encode())
    assert producer.flush(10) == 0


def read_all(bootstrap: str, topic: str, timeout: float = 10.0) -> list[bytes]:
    """The values of `topic` up to its end now."""
    return read(bootstrap, topic, convert=lambda r: r.value or b"", timeout=timeout)


def deliveries(bootstrap: str, topics: Topics) -> list[Delivery]:
    return [parse_delivery(v) for v in read_all(bootstrap, topics.deliveries)]


@contextlib.asynccontextmanager
async def sender(
    bootstrap: str,
    topics: Topics,
    modes: list[str],
    settings: SendersSettings,
    email_of: Callable[[str], str | None] = lambda user: None,
    status_address: tuple[str, int] | None = None,
) -> AsyncIterator[asyncio.Task[None]]:
    """An in-process worker, stopped (cleanly) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_sender(modes, bootstrap, settings, email_of, stop=stop, topics=topics, status_address=status_address)
    )
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


def sms_settings(fake: Any, **overrides: Any) -> SendersSettings:
    data: dict[str, Any] = {
        "twilio": {
            "account_sid": fake.account_sid,
            "auth_token": fake.auth_token,
            "from_number": "+15559990000",
            "base_url": fake.url,
        },
        "rates": {"sms": {"rate": 20, "burst": 4}},
        "retry": {"max_attempts": 3, "base_delay": 0.05, "max_delay": 0.2},
        "session_timeout": 6,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return SendersSettings.model_validate(data)


async def wait_for_members(bootstrap: str, group: str, count: int, timeout: float = 30.0) -> None:
    """Until the consumer group is stable with `count` members that all have partitions."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(group_assigned, bootstrap, group, count):
        if time.monotonic() > deadline:
            raise TimeoutError(f"group {group} did not settle with {count} members")
        await asyncio.sleep(0.1)


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)
    assert predicate(), what

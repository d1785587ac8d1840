"""Sender-stage benchmark: messages per second per mode, and the latency the stage adds.

Runs one worker for every mode on a real broker, with the vendors pointed at the local
fakes of `tests/fakes` (so it must run from a checkout). Two phases per mode:

- throughput: a burst of messages produced at once; rate = messages / (last arrival at
  the fake - produce start). Rate limits are set far above what is reached, so this is
  what the stage itself can do, not the configured limit.
- latency: messages produced one at a time at a modest pace; added latency = arrival at
  the fake - the record's timestamp (set at produce, so it includes the broker append).

It reports; it never asserts. `python -m streamproc.senders.bench [BOOTSTRAP]` prints JSON.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer

from streamproc.config.senders import SendersSettings
from streamproc.kafka.security import client_config
from streamproc.senders.kafka_io import Topics
from streamproc.senders.worker import run_sender
from streamproc.wire.outcomes import Message, outcome_dict

MODES = ("sms", "call", "slack", "email", "webhook")
_ID = re.compile(rb"bench-[0-9a-f]{8}-\d+")


def _message(mode: str, message_id: str, destination: str, n: int) -> Message:
    return Message(
        at=datetime.now(UTC),
        incident_id=f"bench-{n}",
        instance=1,
        plan="bench",
        application=f"app{n % 3}",
        step=1,
        notification=0,
        repeat=0,
        role="user",
        target=f"user{n % 50}",
        user=f"user{n % 50}",
        priority="high",
        mode=mode,  # type: ignore[arg-type]
        destination=destination,
        subject=f"bench {message_id}",
        body=f"bench page {message_id}",
        render_error=False,
        message_id=message_id,
    )


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Arrivals:
    """Arrival time (epoch seconds) per message id, read from what the fakes received."""

    def __init__(self, fakes: dict[str, Any], smtp: Any) -> None:
        self._fakes = fakes
        self._smtp = smtp

    def get(self, mode: str) -> dict[str, float]:
        found: dict[str, float] = {}
        if mode == "email":
            entries = [(m.data, m.at) for m in self._smtp.messages]
        else:
            entries = [(r.body, r.at) for r in self._fakes[mode].delivered]
        for body, at in entries:
            match = _ID.search(body)
            if match:
                found.setdefault(match.group().decode(), at)
        return found


async def bench(bootstrap: str, burst: int = 300, trickle: int = 40, trickle_rate: float = 20.0) -> dict[str, Any]:
    """Measure every mode through the local fakes on the broker at `bootstrap`."""
    fakes_mod: Any = importlib.import_module("tests.fakes")
    twilio, slack, hook = fakes_mod.FakeTwilio(), fakes_mod.FakeSlack(), fakes_mod.FakeWebhook()
    for fake in (twilio, slack, hook):
        await fake.start()
    smtp = fakes_mod.FakeSmtp().start()
    fast = {"rate": 100000, "burst": 10000}
    settings = SendersSettings.model_validate(
        {
            "twilio": {
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "from_number": "+15559990000",
                "base_url": twilio.url,
                "gather_url": "http://127.0.0.1:9/gather",
            },
            "slack": {"token": slack.token, "base_url": slack.api_url},
            "smtp": {"host": smtp.host, "port": smtp.port},
            "webhook": {"secret": "bench"},
            "rates": {mode: fast for mode in MODES},
            "concurrency": 16,
        }
    )
    destinations = {
        "sms": "+15550000001",
        "call": "+15550000001",
        "slack": "U01BENCH",
        "email": "bench@example.com",
        "webhook": hook.hook_url,
    }
    topics = Topics(prefix=f"bench{uuid.uuid4().hex[:6]}.")
    producer = Producer(client_config(bootstrap, **{"linger.ms": 5, "partitioner": "murmur2_random"}))
    arrivals = _Arrivals({"sms": twilio, "call": twilio, "slack": slack, "webhook": hook}, smtp)
    stamp = uuid.uuid4().hex[:8]
    sent_at: dict[str, float] = {}
    counter = 0

    def produce(mode: str, count: int) -> list[str]:
        nonlocal counter
        ids = []
        for _ in range(count):
            counter += 1
            message_id = f"bench-{stamp}-{counter}"
            msg = _message(mode, message_id, destinations[mode], counter)
            now = time.time()
            sent_at[message_id] = now
            producer.produce(
                topics.messages(mode),
                key=msg.user.encode(),
                value=json.dumps(outcome_dict(msg)).encode(),
                timestamp=int(now * 1000),
            )
            ids.append(message_id)
        producer.flush(30)
        return ids

    async def arrived(mode: str, ids: list[str], timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = arrivals.get(mode)
            if all(i in seen for i in ids):
                break
            await asyncio.sleep(0.05)
        seen = arrivals.get(mode)
        return {i: seen[i] for i in ids if i in seen}

    report: dict[str, Any] = {"bootstrap": bootstrap, "burst": burst, "trickle": trickle, "modes": {}}
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_sender(list(MODES), bootstrap, settings, lambda user: None, stop=stop, topic_prefix=topics.prefix)
    )
    try:
        # Warm-up: one message per mode, so the group has settled and clients are open.
        for mode in MODES:
            await arrived(mode, produce(mode, 1), 60)
        for mode in MODES:
            start = time.time()
            ids = produce(mode, burst)
            got = await arrived(mode, ids, 120)
            elapsed = max(got.values()) - start if got else float("nan")
            latencies: list[float] = []
            for _ in range(trickle):
                [one] = produce(mode, 1)
                found = await arrived(mode, [one], 10)
                if one in found:
                    latencies.append((found[one] - sent_at[one]) * 1000)
                await asyncio.sleep(1 / trickle_rate)
            report["modes"][mode] = {
                "vendor_fake": "smtp" if mode == "email" else mode,
                "delivered": len(got),
                "msgs_per_s": round(len(got) / elapsed, 1) if got and elapsed > 0 else None,
                "added_latency_ms": {
                    "p50": round(_percentile(latencies, 0.50), 1),
                    "p99": round(_percentile(latencies, 0.99), 1),
                    "mean": round(statistics.fmean(latencies), 1) if latencies else None,
                    "samples": len(latencies),
                },
            }
    finally:
        stop.set()
        await asyncio.wait_for(worker, 60)
        for fake in (twilio, slack, hook):
            await fake.close()
        smtp.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    bootstrap = args[0] if args else os.environ.get("STREAMPROC_KAFKA", "127.0.0.1:19092")
    print(json.dumps(asyncio.run(bench(bootstrap)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

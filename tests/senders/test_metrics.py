"""The sender's Prometheus metrics, without Kafka: what the pipeline stages count."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY

from streamproc.senders import metrics
from streamproc.senders.lanes import Lanes
from streamproc.senders.vendors.base import VendorResult
from tests.fakes import FakeTwilio
from tests.senders.helpers import ListSink, message, pending
from tests.senders.test_pipeline import make, running, settled, sms_vendor


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_queued_gauge_follows_push_pop_and_remove_by_priority() -> None:
    lanes = Lanes("metrics-test")

    def queued(priority: str) -> float:
        return sample("streamproc_sender_queued", mode="metrics-test", priority=priority)

    urgent, low, low2 = (pending(priority=p, partition=n) for n, p in enumerate(("urgent", "low", "low")))
    for item in (urgent, low, low2):
        lanes.push(item)
    assert (queued("urgent"), queued("low"), queued("high")) == (1, 2, 0)
    assert lanes.pop() is urgent
    assert (queued("urgent"), queued("low")) == (0, 2)
    lanes.remove_if(lambda p: p.partition == 1)
    assert queued("low") == 1
    lanes.pop()
    assert lanes.pop() is None and queued("low") == 0


def test_end_to_end_latency_is_vendor_accepted_minus_scheduled_at() -> None:
    msg = message(mode="webhook", at=datetime(2026, 3, 1, 10, 0, tzinfo=UTC))
    labels = {"mode": "webhook", "vendor": "metrics-test"}
    before = (
        sample("streamproc_sender_scheduled_to_accepted_seconds_count", **labels),
        sample("streamproc_sender_scheduled_to_accepted_seconds_sum", **labels),
    )
    metrics.vendor_called("webhook", "metrics-test", VendorResult.ok(), 0.2, msg, now=msg.at.timestamp() + 1.5)
    metrics.vendor_called("webhook", "metrics-test", VendorResult.temporary("503"), 0.1, msg, now=0)
    assert sample("streamproc_sender_scheduled_to_accepted_seconds_count", **labels) == before[0] + 1
    assert sample("streamproc_sender_scheduled_to_accepted_seconds_sum", **labels) == before[1] + 1.5
    assert sample("streamproc_sender_vendor_call_seconds_count", outcome="temporary", **labels) >= 1


async def test_pipeline_counts_retries_sends_fallbacks_and_vendor_calls(twilio: FakeTwilio) -> None:
    labels = {"mode": "sms", "vendor": "twilio"}
    names = {
        "retried": ("streamproc_sender_retries_total", labels),
        "sent": ("streamproc_sender_messages_total", {**labels, "status": "sent"}),
        "fallback": ("streamproc_sender_messages_total", {**labels, "status": "fallback"}),
        "ok": ("streamproc_sender_vendor_call_seconds_count", {**labels, "outcome": "ok"}),
        "temporary": ("streamproc_sender_vendor_call_seconds_count", {**labels, "outcome": "temporary"}),
        "permanent": ("streamproc_sender_vendor_call_seconds_count", {**labels, "outcome": "permanent"}),
        "e2e": ("streamproc_sender_scheduled_to_accepted_seconds_count", labels),
        "waited": ("streamproc_sender_ratelimit_wait_seconds_count", {"mode": "sms"}),
    }
    before = {k: sample(n, **ls) for k, (n, ls) in names.items()}
    sink = ListSink()
    pipeline = make("sms", sms_vendor(twilio), sink, email_of={"alice": "alice@example.com"}.get)
    twilio.fail_next(500, times=1)
    twilio.invalid_numbers.add("+1000")
    async with running(pipeline):
        pipeline.enqueue(pending(message(body="retried, then sent")))
        await settled(sink, 1)
        pipeline.enqueue(pending(message(destination="+1000")))
        await settled(sink, 2)
    moved = {k: sample(n, **ls) - before[k] for k, (n, ls) in names.items()}
    # Every vendor attempt (the retry too) waits for rate-limit tokens first.
    assert moved == {
        "retried": 1,
        "sent": 1,
        "fallback": 1,
        "ok": 1,
        "temporary": 1,
        "permanent": 1,
        "e2e": 1,
        "waited": 3,
    }

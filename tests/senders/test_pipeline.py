"""The composed pipeline of one mode, without Kafka: real vendors against the local fakes,
a list as the sink."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from streamproc.config.senders import RetrySettings, SlackSettings, TwilioSettings
from streamproc.senders.claims import Claims
from streamproc.senders.dedupe import DeliveredSet
from streamproc.senders.pipeline import ModePipeline
from streamproc.senders.ratelimit import RateLimits
from streamproc.senders.vendors.base import Vendor
from streamproc.senders.vendors.slack import SlackVendor
from streamproc.senders.vendors.twilio import TwilioVendor
from streamproc.wire.deliveries import Delivery
from streamproc.wire.outcomes import Audit
from tests.fakes import FakeSlack, FakeTwilio
from tests.senders.helpers import ListSink, message, pending

FAST_RETRY = RetrySettings(max_attempts=3, base_delay=0.01, max_delay=0.05, jitter=0.0)


def sms_vendor(fake: FakeTwilio) -> TwilioVendor:
    settings = TwilioSettings(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        from_number="+15559990000",
        base_url=fake.url,
    )
    return TwilioVendor(settings, voice=False)


def make(
    mode: str,
    vendor: Vendor,
    sink: ListSink,
    *,
    limits: RateLimits | None = None,
    rate: float = 1000,
    burst: int = 1000,
    email_of: Callable[[str], str | None] = lambda user: None,
    claims: Claims | None = None,
    concurrency: int = 4,
    retry: RetrySettings = FAST_RETRY,
) -> ModePipeline:
    limits = limits or RateLimits()
    limits.add_mode(mode, rate, burst)
    limits.set_ownership(mode, 1, 1)
    pipeline = ModePipeline(
        mode, vendor, limits, DeliveredSet(3600), claims or Claims(), sink, email_of, retry, concurrency
    )
    pipeline.adopt([0])
    return pipeline


@contextlib.asynccontextmanager
async def running(*pipelines: ModePipeline) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(p.run()) for p in pipelines]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for p in pipelines:
            await p.drain(5)
            await p.vendor.close()


async def settled(sink: ListSink, count: int, timeout: float = 10.0) -> list[Delivery]:
    async with asyncio.timeout(timeout):
        while len(sink.records) < count:
            await asyncio.sleep(0.01)
    return sink.records


async def test_temporary_failures_are_retried_until_sent(twilio: FakeTwilio) -> None:
    sink = ListSink()
    pipeline = make("sms", sms_vendor(twilio), sink)
    twilio.fail_next(500, times=2)
    item = pending(message(body="disk full"))
    async with running(pipeline):
        pipeline.enqueue(item)
        [record] = await settled(sink, 1)
    assert (record.status, record.attempts, record.vendor) == ("sent", 3, "twilio")
    assert record.vendor_id is not None and record.vendor_id.startswith("SM")
    assert [r.status for r in twilio.requests] == [500, 500, 201]
    assert [r.form["Body"] for r in twilio.delivered] == ["disk full"]
    assert sink.done_offsets == [(0, item.offset)]


async def test_an_accepted_call_is_told_on_the_delivery_line_and_a_failed_one_on_its_own(
    twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    """At info, one line for a page that goes out at once; a failed attempt adds its own."""
    caplog.set_level(logging.INFO, logger="streamproc.senders.pipeline")
    sink = ListSink()
    pipeline = make("sms", sms_vendor(twilio), sink)
    twilio.fail_next(500)
    item = pending(message(body="disk full"))
    async with running(pipeline):
        pipeline.enqueue(item)
        [record] = await settled(sink, 1)
    lines = [r for r in caplog.records if r.name == "streamproc.senders.pipeline" and hasattr(r, "message_id")]
    assert [(r.getMessage(), r.levelno) for r in lines] == [
        ("vendor call", logging.INFO),
        ("delivery sent", logging.INFO),
    ]
    failed, sent = lines
    assert (failed.result, failed.attempt, failed.vendor_id) == ("temporary", 1, None)  # type: ignore[attr-defined]
    assert (sent.result, sent.attempt, sent.status) == ("ok", 2, "sent")  # type: ignore[attr-defined]
    assert sent.vendor_id == record.vendor_id and sent.vendor_id is not None  # type: ignore[attr-defined]
    assert sent.message_id == item.message.message_id and isinstance(sent.seconds, float)  # type: ignore[attr-defined]


async def test_permanent_failure_falls_back_to_email_without_retrying(twilio: FakeTwilio) -> None:
    sink = ListSink()
    pipeline = make("sms", sms_vendor(twilio), sink, email_of={"alice": "alice@example.com"}.get)
    twilio.invalid_numbers.add("+1000")
    msg = message(destination="+1000", subject="", body="inc-9: disk full")
    async with running(pipeline):
        pipeline.enqueue(pending(msg))
        [record] = await settled(sink, 1)
    assert len(twilio.requests) == 1  # not retried
    assert record.status == "fallback" and record.attempts == 1 and "21211" in record.detail
    [email] = sink.requeued
    assert (email.mode, email.destination, email.message_id) == (
        "email",
        "alice@example.com",
        msg.message_id + "~email",
    )
    assert email.subject == "inc-9: disk full" and email.body.startswith("inc-9: disk full\n")
    assert "sms delivery failed" in email.body


async def test_exhausted_retries_without_email_record_failed(twilio: FakeTwilio) -> None:
    sink = ListSink()
    pipeline = make("sms", sms_vendor(twilio), sink)
    twilio.fail_next(503, times=5)
    async with running(pipeline):
        pipeline.enqueue(pending())
        [record] = await settled(sink, 1)
    assert record.status == "failed" and record.attempts == FAST_RETRY.max_attempts
    assert len(twilio.requests) == FAST_RETRY.max_attempts and sink.requeued == []


async def test_email_never_falls_back_to_email() -> None:
    from streamproc.config.senders import SmtpSettings
    from streamproc.senders.vendors.smtp import SmtpVendor
    from tests.fakes.smtp import FakeSmtp

    smtp = FakeSmtp().start()
    smtp.reject.add("alice@example.com")
    sink = ListSink()
    pipeline = make(
        "email",
        SmtpVendor(SmtpSettings(host=smtp.host, port=smtp.port)),
        sink,
        email_of={"alice": "alice@example.com"}.get,
    )
    try:
        async with running(pipeline):
            pipeline.enqueue(pending(mode="email", destination="alice@example.com"))
            [record] = await settled(sink, 1)
    finally:
        smtp.stop()
    assert record.status == "failed" and sink.requeued == []


def claim(kind: str, incident_id: str) -> Audit:
    return Audit(kind=kind, at=datetime.now(UTC), incident_id=incident_id, instance=1)  # type: ignore[arg-type]


async def test_claimed_and_resolved_incidents_are_dropped_at_the_front(twilio: FakeTwilio) -> None:
    claims = Claims()
    sink = ListSink()
    pipeline = make("sms", sms_vendor(twilio), sink, claims=claims)
    claimed, resolved, wanted = message(), message(), message()
    claims.apply(claim("claimed", claimed.incident_id))
    claims.apply(claim("resolved", resolved.incident_id))
    async with running(pipeline):
        for msg in (claimed, resolved, wanted):
            pipeline.enqueue(pending(msg))
        await settled(sink, 3)
    assert sink.status(claimed.message_id) == ["dropped-claimed"]
    assert sink.status(resolved.message_id) == ["dropped-resolved"]
    assert sink.status(wanted.message_id) == ["sent"]
    assert [r.form["Body"] for r in twilio.delivered] == [wanted.body]


async def test_claim_while_waiting_for_a_retry_drops_the_retry(twilio: FakeTwilio) -> None:
    claims = Claims()
    sink = ListSink()
    slow_retry = RetrySettings(max_attempts=3, base_delay=0.3, max_delay=0.3, jitter=0.0)
    pipeline = make("sms", sms_vendor(twilio), sink, claims=claims, retry=slow_retry)
    twilio.fail_next(500)
    msg = message()
    async with running(pipeline):
        pipeline.enqueue(pending(msg))
        async with asyncio.timeout(5):
            while not twilio.requests:
                await asyncio.sleep(0.01)
        claims.apply(claim("claimed", msg.incident_id))
        [record] = await settled(sink, 1)
    assert record.status == "dropped-claimed" and record.attempts == 1
    assert twilio.delivered == []


async def test_duplicates_reach_the_vendor_once(twilio: FakeTwilio) -> None:
    sink = ListSink()
    pipeline = make("sms", sms_vendor(twilio), sink)
    msg, earlier = message(), message()
    pipeline.delivered.add(earlier.message_id)  # as rebuilt from streamproc.deliveries
    async with running(pipeline):
        pipeline.enqueue(pending(msg, offset=1))
        pipeline.enqueue(pending(msg, offset=2))
        pipeline.enqueue(pending(earlier, offset=3))
        await settled(sink, 3)
    assert sorted(sink.status(msg.message_id)) == ["duplicate", "sent"]
    assert sink.status(earlier.message_id) == ["duplicate"]
    assert len(twilio.delivered) == 1
    assert sorted(sink.done_offsets) == [(0, 1), (0, 2), (0, 3)]


async def test_vendor_429_pauses_only_that_mode(twilio: FakeTwilio) -> None:
    slack = FakeSlack()
    await slack.start()
    sink = ListSink()
    limits = RateLimits()
    sms = make("sms", sms_vendor(twilio), sink, limits=limits, concurrency=1)
    chat = make("slack", SlackVendor(SlackSettings(token=slack.token, base_url=slack.api_url)), sink, limits=limits)
    twilio.fail_next(429, retry_after="1")
    first, second = message(body="first"), message(body="second")
    try:
        async with running(sms, chat):
            sms.enqueue(pending(first))
            async with asyncio.timeout(5):
                while not twilio.requests:
                    await asyncio.sleep(0.005)
            sms.enqueue(pending(second))
            chat.enqueue(pending(mode="slack", destination="U01ALICE"))
            await settled(sink, 3)
    finally:
        await slack.close()
    limited_at = twilio.requests[0].at
    assert slack.delivered[0].at < limited_at + 1.0  # slack was not held
    later = twilio.requests[1:]
    assert [r.form["Body"] for r in later] in (["first", "second"], ["second", "first"])
    assert min(r.at for r in later) >= limited_at + 0.95  # sms waited out Retry-After


async def test_urgent_page_overtakes_a_flood(twilio: FakeTwilio) -> None:
    sink = ListSink()
    pipeline = make("sms", sms_vendor(twilio), sink, rate=50, burst=1, concurrency=1)
    async with running(pipeline):
        for n in range(40):
            pipeline.enqueue(pending(application="noisy", priority="low", body=f"low {n}"))
        await twilio.wait_for(3)
        consumed_after = len(twilio.delivered)
        pipeline.enqueue(pending(application="pager", priority="urgent", body="URGENT"))
        await twilio.wait_for(consumed_after + 3)
    bodies = [r.form["Body"] for r in twilio.delivered]
    assert "URGENT" in bodies[consumed_after : consumed_after + 2], (consumed_after, bodies[:10])


async def test_revoke_forgets_queued_and_waits_for_in_flight(twilio: FakeTwilio) -> None:
    twilio.delay = 0.3
    sink = ListSink()
    pipeline = make("sms", sms_vendor(twilio), sink, concurrency=1)
    items = [pending(offset=n) for n in range(3)]
    task = asyncio.create_task(pipeline.run())
    try:
        for item in items:
            pipeline.enqueue(item)
        async with asyncio.timeout(5):
            while not pipeline.in_flight:
                await asyncio.sleep(0.005)
        await pipeline.release([0])
        # The send in flight finished and was recorded before release returned.
        assert [r.status for r in sink.records] == ["sent"]
        assert sink.done_offsets == [(0, 0)]
        await asyncio.sleep(0.5)
        assert len(twilio.requests) == 1  # the queued two were left for the next owner
        pipeline.adopt([0])
        pipeline.enqueue(items[1])  # read again under the new assignment
        await settled(sink, 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pipeline.vendor.close()
    assert [r.form["Body"] for r in twilio.delivered] == [items[0].message.body, items[1].message.body]

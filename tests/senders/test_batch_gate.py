"""Batch messages (spec §7) in the senders: at the claim gate of the pipeline (real Twilio client
against the fake, a list as the sink) a batch is dropped only when every incident in it is
settled, and its delivery records name the batch's incidents (the API's paged index reads them);
its Slack Claim button names them too."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from streamproc.config.senders import SlackSettings
from streamproc.senders.claims import Claims
from streamproc.senders.vendors.slack import SlackVendor
from streamproc.wire.deliveries import parse_delivery
from streamproc.wire.outcomes import Audit, BatchInfo, Message
from tests.fakes import FakeSlack, FakeTwilio
from tests.senders.helpers import ListSink, message, pending
from tests.senders.test_pipeline import make, running, settled, sms_vendor

B = datetime(2026, 3, 1, 10, 5, tzinfo=UTC)


def batch(*incidents: str, message_id: str) -> Message:
    return message(
        at=B,
        incident_id=incidents[0],
        instance=3,
        message_id=message_id,
        subject="[grafana] 3 messages from plan db-critical",
        body="\n".join(f"{i}: disk full" for i in incidents),
        batch=BatchInfo(count=len(incidents), incident_ids=list(incidents)),
    )


def audit(kind: str, incident_id: str, instance: int, seconds_after: float) -> Audit:
    return Audit(
        kind=kind,
        at=B + timedelta(seconds=seconds_after),
        incident_id=incident_id,  # type: ignore[arg-type]
        instance=instance,
        owner="alice" if kind == "claimed" else None,
    )


async def test_a_batch_goes_out_while_one_incident_is_open(twilio: FakeTwilio) -> None:
    claims, sink = Claims(), ListSink()
    pipeline = make("sms", sms_vendor(twilio), sink, claims=claims)
    settled_all = batch("a", "b", "c", message_id="batch-settled")
    one_open = batch("d", "e", "f", message_id="batch-open")
    resolved = batch("g", "h", message_id="batch-resolved")
    for kind, incident, instance in [
        ("claimed", "a", 3),
        ("resolved", "b", 1),
        ("claimed", "c", 1),
        ("claimed", "d", 3),
        ("resolved", "e", 1),  # f: no record, open
        ("resolved", "g", 3),
        ("resolved", "h", 2),
    ]:
        claims.apply(audit(kind, incident, instance, 1))
    # f had a claim before the batch and an unclaim: it was open at the batch time, and still is.
    claims.apply(audit("claimed", "f", 1, -20))
    claims.apply(audit("unclaimed", "f", 1, -10))
    async with running(pipeline):
        for msg in (settled_all, one_open, resolved):
            pipeline.enqueue(pending(msg))
        records = await settled(sink, 3)
    by_id = {r.message_id: r for r in records}
    assert by_id["batch-settled"].status == "dropped-claimed"
    assert by_id["batch-settled"].detail == "batch: every incident claimed or resolved (a, b, c)"
    assert by_id["batch-resolved"].status == "dropped-resolved"
    assert by_id["batch-open"].status == "sent"
    assert [r.form["Body"] for r in twilio.delivered] == [one_open.body]
    # Every record of a batch names its incidents, and reads back as written.
    for record, msg in [(by_id["batch-settled"], settled_all), (by_id["batch-open"], one_open)]:
        assert record.batch == msg.batch and (record.incident_id, record.instance) == (msg.incident_id, 3)
        assert parse_delivery(record.model_dump_json(exclude_none=True)) == record


async def test_an_ordinary_page_record_has_no_batch(twilio: FakeTwilio) -> None:
    sink = ListSink()
    pipeline = make("sms", sms_vendor(twilio), sink)
    async with running(pipeline):
        pipeline.enqueue(pending(message()))
        [record] = await settled(sink, 1)
    assert record.status == "sent" and record.batch is None
    assert "batch" not in record.model_dump(exclude_none=True)


async def test_the_slack_button_of_a_batch_lists_its_incidents(slack: FakeSlack) -> None:
    vendor = SlackVendor(SlackSettings(token=slack.token, base_url=slack.api_url))
    small = batch("a", "b", "c", message_id="batch-small").model_copy(
        update={"mode": "slack", "destination": "U01ALICE"}
    )
    many = [f"incident-with-a-long-name-{n:04d}" for n in range(80)]  # over the 2000 characters of a value
    large = batch(*many, message_id="batch-large").model_copy(update={"mode": "slack", "destination": "U01ALICE"})
    assert (await vendor.send(small)).outcome == "ok" and (await vendor.send(large)).outcome == "ok"
    await vendor.close()

    values = [json.loads(got.json["blocks"][1]["elements"][0]["value"]) for got in slack.delivered]
    assert values == [
        {"incident_id": "a", "instance": 3, "message_id": "batch-small", "incident_ids": ["a", "b", "c"]},
        # Too many to fit: the API finds them by message id in its index of delivery records.
        {"incident_id": many[0], "instance": 3, "message_id": "batch-large"},
    ]

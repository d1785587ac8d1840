"""Records on the deliveries topic written outside the senders' pipeline: the one serialisation of
a `Delivery`, and the vendor-status records of status callbacks (the API's Twilio door)."""

from __future__ import annotations

from datetime import UTC, datetime

from confluent_kafka import KafkaError, KafkaException, Producer

from streamproc.kafka import topics
from streamproc.wire.deliveries import Delivery


def delivery_bytes(record: Delivery) -> bytes:
    return record.model_dump_json(exclude_none=True).encode()


def record_vendor_status(
    producer: Producer,
    message_id: str,
    vendor: str,
    status: str,
    detail: str = "",
    *,
    vendor_id: str | None = None,
    user: str | None = None,
    incident_id: str | None = None,
    instance: int | None = None,
    topic: str = topics.DELIVERIES,
    timeout: float = 10.0,
) -> Delivery:
    """The seam for vendor status callbacks (Twilio's StatusCallback, Slack events, ...):
    puts a `vendor-status` record on the deliveries topic, keyed by user when known (else by
    message id), and waits until the broker has it. `status` is the vendor's own word
    (delivered, undelivered, failed, ...), kept at the start of `detail`. Blocking: call it
    through `asyncio.to_thread` from async code."""
    record = Delivery(
        message_id=message_id,
        incident_id=incident_id,
        instance=instance,
        vendor=vendor,
        status="vendor-status",
        at=datetime.now(UTC),
        detail=f"{status}: {detail}" if detail else status,
        vendor_id=vendor_id,
        user=user,
    )
    errors: list[KafkaError] = []
    producer.produce(
        topic,
        key=(user or message_id).encode(),
        value=delivery_bytes(record),
        on_delivery=lambda err, _msg: errors.append(err) if err is not None else None,
    )
    if producer.flush(timeout) > 0:
        raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "vendor-status record not acknowledged"))
    if errors:
        raise KafkaException(errors[0])
    return record

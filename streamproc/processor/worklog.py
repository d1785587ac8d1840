"""The worker's log lines on the hot path: built only when their level is enabled."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from streamproc.kafka import topics
from streamproc.processor.records import Output, Processed

log = logging.getLogger("streamproc.worker")


def now_us() -> int:
    return int(time.time() * 1_000_000)


def log_rekeyed(output: Output, correlation_id: str, source_partition: int, offset: int) -> None:
    """Stage 1's line per record (info; a dead letter is a warning)."""
    if output.topic == topics.DEADLETTER:
        if log.isEnabledFor(logging.WARNING):
            reason = json.loads(output.value).get("reason")
            log.warning(
                "event dead-lettered: %s",
                reason,
                extra={"correlation_id": correlation_id, "source_partition": source_partition, "offset": offset},
            )
    elif log.isEnabledFor(logging.INFO):
        log.info(
            "event re-keyed",
            extra={
                "correlation_id": correlation_id,
                "incident_id": (output.key or b"").decode(errors="replace"),
                "partition": output.partition,
                "source_partition": source_partition,
                "offset": offset,
            },
        )


def log_processed(
    key: bytes,
    wake_up: bool,
    partition: int,
    processed: Processed,
    correlation_id: str | None,
    event_correlation: str | None,
) -> None:
    """Stage 2's lines: one per event (and per wake-up that emitted something), one per output."""
    if not log.isEnabledFor(logging.INFO) or (wake_up and not processed.outputs):
        return
    state = processed.state
    fields: dict[str, Any] = {
        "correlation_id": correlation_id,
        "incident_id": key.decode(errors="replace"),
        "partition": partition,
    }
    if state is not None:
        fields.update(instance=state.instance, plan=state.plan_name, application=state.application, status=state.status)
    if event_correlation is not None and event_correlation != correlation_id:
        fields["event_correlation_id"] = event_correlation
    log.info("wake-up" if wake_up else "event applied", extra={**fields, "outputs": len(processed.outputs)})
    for output in processed.outputs:
        if output.message_id is not None:
            log.info("message rendered", extra={**fields, "message_id": output.message_id, "topic": output.topic})
        else:
            log.info("%s recorded", output.kind or "outcome", extra={**fields, "topic": output.topic})

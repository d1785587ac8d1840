"""Dedupe set rebuilt from delivery records; claimed/resolved state from audit records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from streamproc.senders.claims import Claims
from streamproc.senders.dedupe import DeliveredSet
from streamproc.timeutil import to_us
from streamproc.wire.deliveries import Delivery, parse_delivery
from streamproc.wire.outcomes import Audit

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def clock() -> float:
    return NOW.timestamp()


def record(message_id: str, status: str, age: float = 0.0) -> Delivery:
    return Delivery(
        message_id=message_id,
        incident_id="inc-1",
        instance=1,
        mode="sms",
        vendor="twilio",
        status=status,  # type: ignore[arg-type]
        at=NOW - timedelta(seconds=age),
    )


def test_rebuild_keeps_settled_ids_within_the_window() -> None:
    delivered = DeliveredSet(window=3600, clock=clock)
    loaded = delivered.load(
        [
            record("sent", "sent"),
            record("failed", "failed"),
            record("claimed", "dropped-claimed"),
            record("resolved", "dropped-resolved"),
            record("fellback", "fallback"),
            record("dup", "duplicate"),  # settles nothing: the copy it points at does
            record("old", "sent", age=7200),
        ]
    )
    assert loaded == 5
    present = {i for i in ["sent", "failed", "claimed", "resolved", "fellback", "dup", "old"] if i in delivered}
    assert present == {"sent", "failed", "claimed", "resolved", "fellback"}


def test_vendor_status_needs_no_incident_but_others_do() -> None:
    status = Delivery(message_id="m", vendor="twilio", status="vendor-status", at=NOW, detail="delivered")
    assert parse_delivery(status.model_dump_json()) == status
    with pytest.raises(ValidationError):
        Delivery(message_id="m", vendor="twilio", status="sent", at=NOW)


def test_ids_expire_after_the_window() -> None:
    now = [NOW.timestamp()]
    delivered = DeliveredSet(window=60, clock=lambda: now[0])
    delivered.add("a")
    now[0] += 61
    delivered.add("b")
    assert "a" not in delivered and "b" in delivered and len(delivered) == 1


def audit(kind: str, instance: int = 1) -> Audit:
    return Audit(kind=kind, at=NOW, incident_id="inc-1", instance=instance)  # type: ignore[arg-type]


def test_claim_unclaim_resolve() -> None:
    claims = Claims(clock=clock)
    before, after = to_us(NOW) - 60_000_000, to_us(NOW) + 60_000_000
    assert claims.verdict("inc-1", 1, before) is None
    claims.apply(audit("claimed"))
    assert claims.verdict("inc-1", 1, before) == "dropped-claimed"  # queued before the claim
    claims.apply(audit("unclaimed"))
    assert claims.verdict("inc-1", 1, before) == "dropped-claimed"  # still stale after an unclaim
    assert claims.verdict("inc-1", 1, after) is None  # the restarted step's page is wanted
    claims.apply(audit("resolved"))
    claims.apply(audit("unclaimed"))  # too late: resolved is final
    assert claims.verdict("inc-1", 1, after) == "dropped-resolved"
    assert claims.verdict("inc-1", 2, before) is None  # a new instance pages again
    claims.apply(audit("triggered", instance=2))
    assert claims.verdict("inc-1", 2, before) is None


def test_a_re_page_that_outruns_the_unclaim_record_is_still_sent() -> None:
    # claim at C, unclaim at U > C: the re-page (scheduled at U) reaches the sender before the
    # follower has read the `unclaimed` audit. It must not be taken for a stale page.
    claims = Claims(clock=clock)
    claims.apply(audit("claimed"))
    assert claims.verdict("inc-1", 1, to_us(NOW) + 1) is None
    assert claims.verdict("inc-1", 1, to_us(NOW)) is None  # scheduled at the claim: engine never sends it
    assert claims.verdict("inc-1", 1, to_us(NOW) - 1) == "dropped-claimed"

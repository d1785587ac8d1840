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


# ------------------------------------------------------------------------------ batch messages
B = to_us(NOW)
"""The batch time of the batch tests."""


def at(kind: str, incident_id: str, seconds: float, instance: int = 1) -> Audit:
    """An audit record `seconds` after the batch time (negative: before it)."""
    return Audit(
        kind=kind,
        at=NOW + timedelta(seconds=seconds),
        incident_id=incident_id,  # type: ignore[arg-type]
        instance=instance,
    )


def test_a_batch_is_dropped_only_when_every_incident_is_settled() -> None:
    claims = Claims(clock=clock)
    members, first = ["a", "b", "c"], ("a", 1)
    assert claims.batch_verdict(members, first, B) is None  # nothing known: all open
    claims.apply(at("claimed", "a", 5))
    claims.apply(at("resolved", "b", 6))
    assert claims.batch_verdict(members, first, B) is None  # c is still open
    claims.apply(at("claimed", "c", 7))
    assert claims.batch_verdict(members, first, B) == "dropped-claimed"
    # Each member alone decides nothing: a batch of the resolved one only is "resolved".
    assert claims.batch_verdict(["b"], ("b", 1), B) == "dropped-resolved"
    assert claims.batch_verdict(["a", "b"], first, B) == "dropped-claimed"
    # Ordinary pages of the same incidents keep their own rule.
    assert claims.verdict("a", 1, B) == "dropped-claimed" and claims.verdict("a", 1, B + 6_000_000) is None


def test_an_unclaim_before_the_batch_reopens_the_member() -> None:
    claims = Claims(clock=clock)
    claims.apply(at("claimed", "a", -30))
    claims.apply(at("claimed", "b", -30))
    claims.apply(at("unclaimed", "b", -10))  # b was open again at the batch time: a member
    assert claims.batch_verdict(["a", "b"], ("a", 1), B) is None
    # a claim read while the batch was formed without it still counts (its latest record is a claim)
    assert claims.batch_verdict(["a"], ("a", 1), B) == "dropped-claimed"
    claims.apply(at("claimed", "b", 3))  # claimed after the batch time
    assert claims.batch_verdict(["a", "b"], ("a", 1), B) == "dropped-claimed"
    # claimed after the batch time and then unclaimed: the restarted step pages anew, the batch is stale
    claims.apply(at("unclaimed", "b", 4))
    assert claims.batch_verdict(["a", "b"], ("a", 1), B) == "dropped-claimed"


def test_a_batch_member_is_the_instance_open_at_the_batch_time() -> None:
    claims = Claims(clock=clock)
    claims.apply(at("resolved", "x", -60, instance=1))  # an older instance, over before the batch
    assert claims.member_instance("x", B) is None  # instance 2 (the member) has no record yet
    assert claims.batch_verdict(["a", "x"], ("a", 1), B) is None
    claims.apply(at("claimed", "a", 1))
    assert claims.batch_verdict(["a", "x"], ("a", 1), B) is None  # x#2 is open
    claims.apply(at("claimed", "x", 2, instance=2))
    assert claims.member_instance("x", B) == 2
    assert claims.batch_verdict(["a", "x"], ("a", 1), B) == "dropped-claimed"

    # The member was resolved after the batch time, and a newer instance (open) started since:
    # the member, not the newer instance, decides.
    claims.apply(at("resolved", "y", 5, instance=4))
    claims.apply(at("claimed", "y", 8, instance=5))
    claims.apply(at("unclaimed", "y", 9, instance=5))
    assert claims.member_instance("y", B) == 4
    assert claims.batch_verdict(["a", "y"], ("a", 1), B) == "dropped-claimed"
    assert claims.batch_verdict(["y"], ("y", 4), B) == "dropped-resolved"
    # The first member's instance is the message's own, whatever else is known.
    claims.apply(at("claimed", "z", 3, instance=1))
    assert claims.batch_verdict(["z"], ("z", 1), B) == "dropped-claimed"
    assert claims.batch_verdict(["z"], ("z", 2), B) is None


def test_batch_state_is_pruned_with_the_window() -> None:
    now = [NOW.timestamp()]
    claims = Claims(window=60, clock=lambda: now[0])
    claims.apply(at("claimed", "a", 0))
    claims.apply(at("claimed", "b", 50))
    now[0] += 70
    claims.prune()
    assert claims.member_instance("a", B) is None and claims.member_instance("b", B) == 1
    assert claims.batch_verdict(["a", "b"], ("b", 1), B) is None  # a is forgotten: open

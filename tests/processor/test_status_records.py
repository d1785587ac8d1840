"""Issue 22: the status topic's records as stage 2 derives them from the states (no Kafka)."""

from __future__ import annotations

import json

from streamproc.engine.core import Engine
from streamproc.engine.state import IncidentState
from streamproc.kafka import topics
from streamproc.processor.records import on_event, on_tick
from streamproc.processor.summaries import status_update, worker_wake
from streamproc.timeutil import parse_time, to_us
from streamproc.wire.records import Tick
from streamproc.wire.status import IncidentSummary, context_summary
from tests.processor.scenario import event_bytes

T0 = to_us(parse_time("2026-03-01T10:00:00Z"))
S = 1_000_000


def summary_of(value: bytes) -> IncidentSummary:
    return IncidentSummary.model_validate_json(value)  # what the worker writes validates


def test_a_trigger_gives_one_summary_with_the_first_page(engine: Engine) -> None:
    processed = on_event(engine, None, event_bytes(), now_us=T0)
    _, record, changed = status_update(b"inc-1", processed.state, processed.changed, T0 + 5, 3600)
    assert record is not None and changed and record.topic == topics.STATUS and record.key == b"inc-1"
    summary = summary_of(record.value)
    assert (summary.status, summary.plan, summary.application, summary.step, summary.steps) == (
        "escalating",
        "quick",
        "app",
        1,
        2,
    )
    assert summary.summary == "disk full" and summary.instance == 1 and summary.absorbed == 0
    assert summary.last_paged == ["alice", "bob", "carol"]
    assert summary.last_paged_at is not None and to_us(summary.last_paged_at) == T0
    assert summary.next_page_at is not None and to_us(summary.next_page_at) == T0 + 2 * S
    assert summary.claimed_by is None and summary.resolved_at is None


def test_an_unchanged_state_writes_nothing(engine: Engine) -> None:
    state = on_event(engine, None, event_bytes(), now_us=T0).state
    assert status_update(b"inc-1", state, False, T0, 3600) == (state, None, False)
    assert status_update(b"inc-1", None, True, T0, 3600) == (None, None, True)


def test_claim_absorb_and_resolve_then_a_tombstone_when_the_retention_is_over(engine: Engine) -> None:
    state = on_event(engine, None, event_bytes(), now_us=T0).state
    absorbed = on_event(engine, state, event_bytes(at="2026-03-01T10:00:01Z", event_id="e2"), now_us=T0 + S)
    claim = event_bytes(
        type="claim", at="2026-03-01T10:00:01.500Z", owner="bob", plan=None, context=None, application="app"
    )
    claimed = on_event(engine, absorbed.state, claim, now_us=T0 + 2 * S)
    _, record, _ = status_update(b"inc-1", claimed.state, True, T0 + 2 * S, 3600)
    assert record is not None
    summary = summary_of(record.value)
    assert (summary.status, summary.claimed_by, summary.absorbed, summary.next_page_at) == ("claimed", "bob", 1, None)
    resolve = event_bytes(type="resolve", at="2026-03-01T10:00:03Z", plan=None, context=None, application="app")
    resolved = on_event(engine, claimed.state, resolve, now_us=T0 + 3 * S)
    now = T0 + 4 * S
    state2, record, changed = status_update(b"inc-1", resolved.state, True, now, 60)
    assert record is not None and state2 is not None and changed
    summary = summary_of(record.value)
    assert summary.status == "resolved" and summary.summary == "disk full"  # kept past the resolve
    assert summary.resolved_at is not None and to_us(summary.resolved_at) == T0 + 3 * S
    assert state2.status_expires == now + 60 * S and worker_wake(state2) == now + 60 * S
    # Not due yet: nothing; due: the tick writes a tombstone (empty value) and marks the state.
    early = on_tick(engine, state2, Tick(incident_id="inc-1", due=now, version=0).model_dump_json().encode(), now)
    assert status_update(b"inc-1", early.state, early.changed, now + S, 60)[1] is None
    due = now + 60 * S
    tick = on_tick(engine, state2, Tick(incident_id="inc-1", due=due, version=0).model_dump_json().encode(), due)
    state3, tombstone, changed = status_update(b"inc-1", tick.state, tick.changed, due, 60)
    assert tombstone is not None and tombstone.value == b"" and changed
    assert state3 is not None and state3.status_expires == 0 and worker_wake(state3) is None
    assert state2.status_expires == now + 60 * S  # a copy was marked
    assert status_update(b"inc-1", state3, True, due + S, 60)[1] is None  # never again
    # A new trigger opens instance 2: a fresh summary, no resolve, no deadline.
    again = on_event(engine, state3, event_bytes(at="2026-03-01T11:00:00Z", event_id="e3"), now_us=due + 2 * S)
    _, record, _ = status_update(b"inc-1", again.state, True, due + 2 * S, 60)
    assert record is not None
    summary = summary_of(record.value)
    assert (summary.instance, summary.status, summary.resolved_at, summary.expires_at) == (2, "escalating", None, None)


def test_the_state_keeps_what_the_summary_needs_through_the_table() -> None:
    state = IncidentState.new("x")
    state.summary, state.last_paged, state.status_expires = "s", ["alice"], 5
    again = IncidentState.model_validate_json(state.model_dump_json())
    assert (again.summary, again.last_paged, again.status_expires) == ("s", ["alice"], 5)


def test_context_summary() -> None:
    assert context_summary({"summary": "  disk\nfull "}) == "disk full"
    assert context_summary({"host": "db01", "n": 3, "tags": ["x"]}) == "host=db01 n=3"
    assert len(context_summary({"title": "x" * 500})) == 200
    assert json.dumps(context_summary({}))  # empty is fine

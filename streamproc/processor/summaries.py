"""The status topic's records (docs/decisions/status-topic.md), derived from the states stage 2 already holds.

`escalate_batch` calls `status_update` once per incident key of a batch, after the batch's
records are applied: a key whose state changed gets ONE summary (`IncidentSummary`) however many
of its records the batch held, and goes out with the batch's other outputs, acknowledged before
the state is written. No table read: the summary comes from the state the engine returned (the
few fields the engine does not keep, who was paged last and the trigger's summary, are kept on
the state by `records.outputs_of`).

Retention: a resolved instance's summary stays `status.resolved_retention` seconds after the
worker wrote it. Its state carries the deadline (`status_expires`); the wake schedule wakes the
incident then (`worker_wake`), and the tick writes the tombstone and marks the state (0). Both
the deadline and the mark are in the table, written after the records are acknowledged: a
SIGKILL or a rebalance at any point repeats a tombstone at worst, never forgets one.

The summary is built as a dict and dumped with `json.dumps` rather than through the pydantic
model: this runs for every changed instance of every batch (the hot path); tests check that the
model validates what it writes.
"""

from __future__ import annotations

import json

from streamproc.engine.state import IncidentState
from streamproc.kafka import topics
from streamproc.processor.records import Output
from streamproc.timeutil import format_us


def _time(us: int | None) -> str | None:
    return None if us is None else format_us(us)


def next_page_us(state: IncidentState) -> int | None:
    """When the next message is due (escalating), or step 1 starts (silenced)."""
    if state.status == "escalating":
        return state.pending[0].at if state.pending else None
    if state.status == "silenced":
        return state.silenced_until
    return None


def summary_value(state: IncidentState, now_us: int) -> bytes:
    """The `IncidentSummary` JSON of a state."""
    plan = state.plan
    summary = {
        "incident_id": state.incident_id,
        "instance": state.instance,
        "status": state.status,
        "plan": state.plan_name,
        "application": state.application,
        "step": 0 if state.unstarted and state.status == "silenced" else state.step + 1,
        "steps": len(plan.steps) if plan is not None else 0,
        "created": format_us(state.created),
        "updated": format_us(now_us),
        "last_paged": state.last_paged,
        "last_paged_at": _time(state.last_paged_at),
        "next_page_at": _time(next_page_us(state)),
        "claimed_by": state.owner if state.status == "claimed" else None,
        "claimed_at": _time(state.claimed_at) if state.status == "claimed" else None,
        "summary": state.summary,
        "absorbed": state.absorbed,
        "silence_id": state.silence_id,
        "resolved_at": _time(state.resolved_at) if state.status == "resolved" else None,
        "expires_at": _time(state.status_expires) if state.status == "resolved" else None,
    }
    return json.dumps(summary, ensure_ascii=False, separators=(",", ":")).encode()


def status_update(
    key: bytes, state: IncidentState | None, changed: bool, now_us: int, retention_s: int
) -> tuple[IncidentState | None, Output | None, bool]:
    """(state, the status record to write or None, changed) of one incident at the end of a batch.
    A tombstone is an `Output` with an empty value (written as a record without a value)."""
    if state is None or state.status == "none":
        return state, None, changed
    if state.status == "resolved":
        expires = state.status_expires
        if expires == 0:
            return state, None, changed  # its tombstone is written
        if expires is not None and expires <= now_us:
            tombstoned = state.clone()
            tombstoned.status_expires = 0
            return tombstoned, Output(topics.STATUS, key, b"", kind="status-tombstone"), True
        if not changed:
            return state, None, False
        if expires is None:
            state.status_expires = now_us + retention_s * 1_000_000  # a new state of this batch: its own
    elif not changed:
        return state, None, False
    elif state.status_expires is not None:  # an instance opened again without a trigger audit
        state.resolved_at = state.status_expires = None
    return state, Output(topics.STATUS, key, summary_value(state, now_us), kind="status"), True


def worker_wake(state: IncidentState | None) -> int | None:
    """When the worker must wake an incident: the engine's next time, or its status tombstone's."""
    if state is None:
        return None
    wake = state.wake_at
    expires = state.status_expires
    if expires:  # not None, not 0 (written)
        return expires if wake is None or expires < wake else wake
    return wake

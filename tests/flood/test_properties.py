"""Users are independent: driving `FloodControl` one call at a time, users interleaved in any
order, states stored as JSON in between (as the live stage keyed by user does), gives the outcomes
of the replay function `apply_flood` (hypothesis)."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.engine.core import Emitted
from streamproc.flood import FloodControl, UserFloodState, apply_flood, message_key
from streamproc.timeutil import from_us
from streamproc.wire.outcomes import Audit, Message, outcome_dict
from tests.flood.harness import Flood, us

DOC = """
users:
  alice:
    contacts: {call: "+1001", sms: "+1001", email: "alice@x", slack: "UALICE"}
    downgrade: [{from: call, to: sms, count: 2, window: 5m}, {from: sms, to: slack, count: 3, window: 10m}]
  bob:
    contacts: {sms: "+1002", email: "bob@x"}
    downgrade: [{from: sms, to: call, count: 1, window: 2m}]
plans:
  p:
    batching: {threshold: 2, window: 60s, every: 3m, quiet: 4m}
    steps: [[{role: user, target: alice, priority: urgent, template: t}]]
  q:
    batching: {threshold: 1, window: 2m, every: 5m, quiet: 0s}
    steps: [[{role: user, target: alice, priority: urgent, template: t}]]
  r:
    steps: [[{role: user, target: alice, priority: urgent, template: t}]]
"""
HARNESS = Flood(DOC)
CONTROL = FloodControl(HARNESS.config)
T0 = us("10:00")
MODES = {"alice": ["call", "sms", "email", "slack"], "bob": ["sms", "email"], "carol": ["sms", "email"]}

offsets = st.integers(0, 120).map(lambda x: x * 10)  # whole 10 s: many messages and claims share an instant
message_spec = st.tuples(
    offsets,
    st.sampled_from(sorted(MODES)),
    st.sampled_from(["p", "q", "r"]),
    st.integers(0, 4),
    st.sampled_from(["low", "medium", "high", "urgent"]),
    st.integers(0, 3),
)
status_spec = st.tuples(offsets, st.integers(0, 4), st.sampled_from(["claimed", "unclaimed", "resolved"]))


def build(specs: list[tuple[int, str, str, int, str, int]]) -> list[Message]:
    out = []
    for n, (offset, user, plan, incident, priority, mode_index) in enumerate(specs):
        mode = MODES[user][mode_index % len(MODES[user])]
        clock = from_us(T0 + offset * 1_000_000).isoformat()[11:19]
        out.append(
            HARNESS.message(
                clock, f"inc-{incident}", user=user, plan=plan, priority=priority, mode=mode, repeat=n, subject=f"s{n}"
            )
        )
    return out


def audits(specs: list[tuple[int, int, str]]) -> list[tuple[int, Audit]]:
    rows = sorted(((T0 + offset * 1_000_000, i, incident, kind) for i, (offset, incident, kind) in enumerate(specs)))
    return [
        (at, Audit(kind=kind, at=from_us(at), incident_id=f"inc-{incident}", instance=1))  # type: ignore[arg-type]
        for at, _, incident, kind in rows
    ]


def canonical(emitted: list[Emitted]) -> list[tuple[Any, ...]]:
    return sorted((e.sort_key, json.dumps(outcome_dict(e.outcome), sort_keys=True)) for e in emitted)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(message_spec, max_size=40),
    st.lists(status_spec, max_size=8),
    st.randoms(use_true_random=False),
    st.one_of(st.none(), st.integers(0, 1500)),
)
def test_any_interleaving_of_users_gives_the_replay_outcomes(
    message_specs: list[tuple[int, str, str, int, str, int]],
    status_specs: list[tuple[int, int, str]],
    rnd: random.Random,
    until_offset: int | None,
) -> None:
    until = None if until_offset is None else T0 + until_offset * 1_000_000
    messages = [m for m in build(message_specs) if until is None or message_key(m)[0] <= until]
    changes = [(at, a) for at, a in audits(status_specs) if until is None or at <= until]
    expected = canonical(apply_flood(CONTROL, [Emitted(m, message_key(m)) for m in messages], changes, until))

    # Each user's own inputs in time order (statuses first at an instant); every user gets every status.
    queues: dict[str, list[tuple[tuple[Any, ...], Message | Audit]]] = {}
    for m in messages:
        queues.setdefault(m.user, []).append(((message_key(m)[0], 1, message_key(m)), m))
    for user in queues:
        queues[user] += [((at, 0, i), a) for i, (at, a) in enumerate(changes)]
        queues[user].sort(key=lambda item: item[0])
    stored: dict[str, str] = {}
    got: list[Emitted] = []
    live = {u: q for u, q in queues.items() if q}
    while live:
        user = rnd.choice(sorted(live))
        _, item = live[user].pop(0)
        state = UserFloodState.model_validate_json(stored[user]) if user in stored else None
        if isinstance(item, Message):
            result = CONTROL.on_message(state, item)
        else:
            result = CONTROL.on_audit(state, item, user=user)
        got += result.emitted
        stored[user] = result.state.model_dump_json()
        if not live[user]:
            del live[user]
    for user in rnd.sample(sorted(stored), len(stored)):
        state = UserFloodState.model_validate_json(stored[user])
        final = CONTROL.flush(state) if until is None else CONTROL.advance(state, until)
        got += final.emitted
    assert canonical(got) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(message_spec, max_size=30))
def test_without_claims_every_message_is_sent_once_alone_or_in_a_batch(
    message_specs: list[tuple[int, str, str, int, str, int]],
) -> None:
    messages = build(message_specs)
    out = [e.outcome for e in apply_flood(CONTROL, [Emitted(m, message_key(m)) for m in messages], [])]
    undeliverable = sum(1 for o in out if o.kind == "undeliverable")
    pages = sum(o.batch.count if o.batch else 1 for o in out if isinstance(o, Message))
    assert pages + undeliverable == len(messages)
    assert all(o.batch_at >= o.at for o in out if o.kind == "batched")
    batch_times = {(o.user, o.at) for o in out if isinstance(o, Message)}
    assert all((o.user, o.batch_at) in batch_times for o in out if o.kind == "batched")

"""Invariants of the engine, checked over generated plans and event timings (hypothesis)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.engine.core import Engine
from streamproc.engine.state import IncidentState
from streamproc.replay import replay
from streamproc.timeutil import US_PER_S, parse_time, to_us
from streamproc.wire.events import parse_event_obj
from tests.engine.harness import BASE, make_config

T0 = to_us(parse_time("2026-03-01T10:00:00Z"))
TARGETS = [("user", "alice"), ("user", "bob"), ("team", "db"), ("manager", "db"), ("oncall", "db")]

notification = st.fixed_dictionaries(
    {
        "target": st.sampled_from(TARGETS),
        "repeat": st.integers(0, 3),
        "wait": st.integers(0, 900),
        "priority": st.sampled_from(["low", "medium", "high", "urgent"]),
    }
)
plans = st.lists(st.lists(notification, min_size=1, max_size=3), min_size=1, max_size=3)


def build(steps: list[list[dict[str, Any]]]) -> Engine:
    plan = {
        "steps": [
            [
                {
                    "role": n["target"][0],
                    "target": n["target"][1],
                    "priority": n["priority"],
                    "template": "t",
                    "repeat": n["repeat"],
                    "wait": n["wait"],
                }
                for n in step
            ]
            for step in steps
        ]
    }
    return Engine(make_config(BASE, {"plans": {"p": plan}}))


def iso(us: int) -> str:
    from streamproc.timeutil import format_us

    return format_us(us)


def trigger(at: int = T0, incident: str = "inc-1") -> dict[str, Any]:
    return {
        "type": "trigger",
        "at": iso(at),
        "incident_id": incident,
        "application": "app",
        "plan": "p",
        "context": {"summary": "x"},
    }


def run(engine: Engine, events: list[dict[str, Any]], until: int | None = None) -> list[dict[str, Any]]:
    report = replay(engine, [json.dumps(e) for e in events], until)
    return [json.loads(line) for line in report.lines()]


def users_of(engine: Engine, role: str, target: str) -> int:
    from streamproc.engine.targets import resolve_targets

    return len(resolve_targets(engine.config, role, target, T0))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans)
def test_unclaimed_each_user_gets_repeat_plus_one_sends_per_notification(steps: list[list[dict[str, Any]]]) -> None:
    engine = build(steps)
    out = run(engine, [trigger()])
    counts = Counter((o["step"], o["notification"], o["user"]) for o in out if o["kind"] == "message")
    for s, step in enumerate(steps, start=1):
        for j, note in enumerate(step):
            per_user = [c for (cs, cj, _), c in counts.items() if (cs, cj) == (s, j)]
            assert per_user, (s, j)
            assert all(c == note["repeat"] + 1 for c in per_user)
    assert sum(1 for o in out if o["kind"] == "exhausted") == 1


@settings(max_examples=60, deadline=None)
@given(plans)
def test_each_step_starts_when_the_previous_one_ends(steps: list[list[dict[str, Any]]]) -> None:
    out = run(build(steps), [trigger()])
    start = T0
    for s, step in enumerate(steps, start=1):
        firsts = [
            to_us(parse_time(o["at"])) for o in out if o["kind"] == "message" and o["step"] == s and o["repeat"] == 0
        ]
        assert firsts and set(firsts) == {start}
        start += max((n["repeat"] + 1) * n["wait"] for n in step) * US_PER_S
    exhausted = [o for o in out if o["kind"] == "exhausted"]
    assert to_us(parse_time(exhausted[0]["at"])) == start


@settings(max_examples=60, deadline=None)
@given(plans, st.integers(0, 3600), st.sampled_from(["claim", "resolve", "acknowledge"]))
def test_nothing_is_scheduled_at_or_after_a_claim_or_resolve(
    steps: list[list[dict[str, Any]]], after: int, kind: str
) -> None:
    stop = T0 + after * US_PER_S
    event = {"type": kind, "at": iso(stop), "incident_id": "inc-1", "application": "app"}
    out = run(build(steps), [trigger(), event])
    assert all(to_us(parse_time(o["at"])) < stop for o in out)
    # and the same plan unclaimed sends everything before `stop` exactly as without the event
    full = run(build(steps), [trigger()])
    assert out == [o for o in full if to_us(parse_time(o["at"])) < stop]


@settings(max_examples=40, deadline=None)
@given(plans, st.lists(st.integers(0, 7200), max_size=8), st.integers(0, 3600), st.integers(1, 3600))
def test_outcomes_do_not_depend_on_how_time_is_split_into_batches(
    steps: list[list[dict[str, Any]]], cuts: list[int], claim_after: int, unclaim_gap: int
) -> None:
    engine = build(steps)
    events = [
        trigger(),
        {"type": "claim", "at": iso(T0 + claim_after * US_PER_S), "incident_id": "inc-1"},
        {"type": "unclaim", "at": iso(T0 + (claim_after + unclaim_gap) * US_PER_S), "incident_id": "inc-1"},
    ]
    whole = run(engine, events)
    # The live processor's way: ticks at arbitrary moments between the events, then the events.
    timeline = sorted(
        [(T0 + c * US_PER_S, None) for c in cuts] + [(to_us(parse_time(e["at"])), e) for e in events],
        key=lambda p: (p[0], p[1] is None),
    )
    state: IncidentState | None = None
    emitted = []
    for at, event in timeline:
        if event is None:
            if state is not None:
                result = engine.advance(state, at)
                state = result.state
                emitted += result.emitted
            continue
        result = engine.handle(state, parse_event_obj(event), at)
        state = result.state
        emitted += result.emitted
        result = engine.advance(state, at, inclusive=False)
        state = result.state
        emitted += result.emitted
    assert state is not None
    final = engine.run_to_end(state)
    emitted += final.emitted
    from streamproc.wire.outcomes import outcome_dict

    pieces = [outcome_dict(e.outcome) for e in sorted(emitted, key=lambda e: e.sort_key)]
    assert pieces == whole
    # and replay itself is deterministic
    assert run(engine, events) == whole


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["trigger", "claim", "unclaim", "resolve"]),
            st.integers(0, 3600),
        ),
        max_size=12,
    )
)
def test_incidents_are_independent_of_each_other(rows: list[tuple[str, str, int]]) -> None:
    engine = build(
        [
            [{"target": ("team", "db"), "repeat": 2, "wait": 300, "priority": "high"}],
            [{"target": ("manager", "db"), "repeat": 0, "wait": 0, "priority": "urgent"}],
        ]
    )
    events = [
        {**trigger(T0 + at * US_PER_S, inc), "type": kind}
        if kind == "trigger"
        else {"type": kind, "at": iso(T0 + at * US_PER_S), "incident_id": inc}
        for inc, kind, at in rows
    ]
    together = run(engine, events)
    for inc in "abc":
        alone = run(engine, [e for e in events if e["incident_id"] == inc])
        assert alone == [o for o in together if o["incident_id"] == inc]

"""Spec §8 pieces below the timelines: the wire models, the `silenced` outcome, `SilenceBook` as a
value, and the engine calls the live processor will make (`handle` with a book, `silences_changed`,
`watches_silences`), which must never change what they were given and must survive JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from streamproc.engine.maintenance import NO_SILENCES, SilenceBook, clear_from
from streamproc.engine.state import IncidentState
from streamproc.timeutil import US_PER_S, parse_time, to_us
from streamproc.wire.events import (
    Heartbeat,
    Silence,
    Unsilence,
    error_text,
    parse_any_event,
    parse_event,
)
from streamproc.wire.outcomes import OUTCOME_ADAPTER, Silenced, new_silenced, outcome_dict, outcome_json
from tests.engine.harness import Timeline, t
from tests.engine.test_silences import SILENCES

SPEC_SILENCE = {
    "type": "silence",
    "at": "2026-03-01T09:50:00Z",
    "silence_id": "db-upgrade",
    "application": "grafana",
    "starts": "2026-03-01T10:00:00Z",
    "ends": "2026-03-01T12:00:00Z",
    "plans": ["db-critical"],
    "match": {"host": ["db01", "db02"], "severity": "critical"},
    "match_re": {"alertname": "Disk.*"},
    "created_by": "alice",
    "comment": "PostgreSQL 17 upgrade",
}
SPEC_UNSILENCE = {
    "type": "unsilence",
    "at": "2026-03-01T11:10:00Z",
    "silence_id": "db-upgrade",
    "application": "grafana",
}
SPEC_HEARTBEAT = {
    "type": "heartbeat",
    "at": "2026-03-01T02:00:00Z",
    "heartbeat": "nightly-backup",
    "application": "grafana",
}


def us(clock: str) -> int:
    return to_us(parse_time(t(clock)))


def test_the_spec_examples_parse_and_name_what_they_key_by() -> None:
    silence = parse_any_event(json.dumps(SPEC_SILENCE))
    assert isinstance(silence, Silence) and silence.match == {"host": ["db01", "db02"], "severity": "critical"}
    assert silence.key == "silence:grafana:db-upgrade"
    unsilence = parse_any_event(json.dumps(SPEC_UNSILENCE))
    assert isinstance(unsilence, Unsilence) and unsilence.key == silence.key
    heartbeat = parse_any_event(json.dumps(SPEC_HEARTBEAT))
    assert isinstance(heartbeat, Heartbeat) and heartbeat.key == "heartbeat-nightly-backup"
    # the §2 parser (the engine's per-incident events, the API's /v1/events) does not take them
    with pytest.raises(ValidationError):
        parse_event(json.dumps(SPEC_HEARTBEAT))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ends": "2026-03-01T10:00:00Z"}, "ends"),
        ({"ends": "2026-03-31T10:00:00.000001Z"}, "ends"),
        ({"starts": None, "ends": "2026-03-01T09:50:00Z"}, "ends"),
        ({"ends": None}, "ends"),
        ({"silence_id": ""}, "silence_id"),
        ({"application": None}, "application"),
        ({"match": {"host": 5}}, "match.host"),
        ({"match": {"host": []}}, "match.host"),
        ({"match_re": {"alertname": "(?=x)"}}, "match_re.alertname"),
        ({"plans": "db-critical"}, "plans"),
        ({"starts": "yesterday"}, "starts"),
    ],
)
def test_invalid_silences_name_the_field(change: dict[str, Any], field: str) -> None:
    data = {k: v for k, v in {**SPEC_SILENCE, **change}.items() if v is not None}
    with pytest.raises(ValidationError) as exc:
        parse_any_event(json.dumps(data))
    text = error_text(exc.value)
    assert text.split(":", 1)[0].startswith(field), text


def test_the_silenced_outcome_builder_equals_the_validated_model_and_serialises_alike() -> None:
    at = parse_time("2026-03-01T10:30:00.5Z")
    built = new_silenced(at, "inc-1", 2, "s1")
    validated = Silenced(at=at, incident_id="inc-1", instance=2, silence_id="s1")
    assert built == validated and list(built.__dict__) == list(validated.__dict__)
    assert built.model_dump_json() == validated.model_dump_json()
    assert outcome_json(built) == json.dumps(outcome_dict(validated))
    assert json.loads(outcome_json(built)) == {
        "kind": "silenced",
        "at": "2026-03-01T10:30:00.500Z",
        "incident_id": "inc-1",
        "instance": 2,
        "silence_id": "s1",
    }
    assert OUTCOME_ADAPTER.validate_json(outcome_json(built)) == validated


def silence(silence_id: str, starts: str, ends: str, at: str = "09:00", **fields: Any) -> Silence:
    event = parse_any_event(
        json.dumps(
            {
                "type": "silence",
                "at": t(at),
                "silence_id": silence_id,
                "application": "app",
                "starts": t(starts),
                "ends": t(ends),
                **fields,
            }
        )
    )
    assert isinstance(event, Silence)
    return event


def unsilence(silence_id: str, at: str, application: str = "app") -> Unsilence:
    event = parse_any_event(
        json.dumps({"type": "unsilence", "at": t(at), "silence_id": silence_id, "application": application})
    )
    assert isinstance(event, Unsilence)
    return event


def test_a_silence_book_is_a_value_that_round_trips_through_json() -> None:
    book = NO_SILENCES.apply(silence("s1", "10:00", "11:00", match={"host": "db01"}), us("09:00"))
    again = book.apply(silence("s2", "10:30", "12:00", match_re={"a": "x.*"}), us("09:10"))
    assert NO_SILENCES.by_app == {} and [s.silence_id for s in book.by_app["app"]] == ["s1"]
    assert [s.silence_id for s in again.by_app["app"]] == ["s1", "s2"]
    assert SilenceBook.model_validate_json(again.model_dump_json()) == again
    # an unsilence of an unknown id changes nothing: the same book back
    assert again.apply(unsilence("nope", "09:20"), us("09:20")) is again
    # an unsilence ends s2 now (it covers nothing from now on, so it leaves the book); s1 ends by itself
    shorter = again.apply(unsilence("s2", "10:45"), us("10:45"))
    assert [s.silence_id for s in shorter.by_app["app"]] == ["s1"]
    assert shorter.apply(silence("s3", "11:30", "12:00", at="11:00"), us("11:00")).by_app["app"][0].silence_id == "s3"
    # a pending silence replaced by one with the same id
    replaced = again.apply(silence("s2", "12:00", "13:00", at="09:20"), us("09:20"))
    assert [(s.silence_id, s.starts) for s in replaced.by_app["app"]] == [("s1", us("10:00")), ("s2", us("12:00"))]


def test_hold_and_clear_from() -> None:
    book = NO_SILENCES
    for event in (
        silence("b", "10:00", "11:00"),
        silence("a", "10:00", "11:00"),
        silence("c", "10:50", "11:30"),
        silence("other", "09:00", "13:00", plans=["q"]),
    ):
        book = book.apply(event, us("09:00"))
    assert book.hold("app", "p", {}, us("10:15")) == ("a", us("11:30"))
    assert book.hold("app", "p", {}, us("09:59")) is None
    assert book.hold("nope", "p", {}, us("10:15")) is None
    assert book.clear_from("app", "p", {}, us("11:30")) == us("11:30")
    assert book.hold("app", "q", {}, us("10:15")) == ("other", us("13:00"))


def test_the_engine_never_changes_the_state_or_book_it_was_given() -> None:
    tl = Timeline(SILENCES)
    engine = tl.engine
    book = NO_SILENCES.apply(silence("s1", "10:00", "11:00"), us("09:00"))
    trigger = parse_event(
        json.dumps(
            {
                "type": "trigger",
                "at": t("10:15"),
                "incident_id": "inc-1",
                "application": "app",
                "plan": "p",
                "context": {"summary": "x"},
            }
        )
    )
    held = engine.handle(None, trigger, us("10:15"), book)
    state = held.state
    assert state.status == "silenced" and state.silenced_until == us("11:00") and state.wake_at == us("11:00")
    assert engine.watches_silences(state) == ("app",)
    dumped, book_dumped = state.model_dump_json(), book.model_dump_json()
    longer = book.apply(silence("s1", "10:00", "12:00", at="10:30"), us("10:30"))
    changed = engine.silences_changed(state, book, longer, us("10:30"))
    assert changed.state.silenced_until == us("12:00") and changed.emitted == []
    assert state.model_dump_json() == dumped and book.model_dump_json() == book_dumped
    # the state survives JSON (the live table) and gives the same outcomes after it
    restored = IncidentState.model_validate_json(changed.state.model_dump_json())
    a = engine.advance(changed.state, us("12:30")).outcomes
    b = engine.advance(restored, us("12:30")).outcomes
    assert a == b and a[0].at == parse_time(t("12:00"))
    assert engine.watches_silences(engine.advance(restored, us("12:00")).state) == ()
    # a change of silences that does not cover it any more: E is the change's time
    gone = longer.apply(unsilence("s1", "10:40"), us("10:40"))
    assert engine.silences_changed(changed.state, longer, gone, us("10:40")).state.silenced_until == us("10:40")


# ---- property: E against a minute-by-minute scan ----------------------------------------------

windows = st.lists(st.tuples(st.integers(0, 180), st.integers(1, 120), st.booleans()), min_size=0, max_size=5)


@settings(max_examples=150, deadline=None)
@given(windows=windows, trigger=st.integers(0, 240))
def test_step_1_starts_at_the_first_minute_no_matching_silence_covers(
    windows: list[tuple[int, int, bool]], trigger: int
) -> None:
    """Silences made ahead (at 09:00), each matching plan p or not; a trigger at 10:00 + `trigger`
    minutes. The first message is at the first minute >= the trigger that no matching window covers,
    and the instance was `silenced` exactly when one covered the trigger."""
    t0 = us("10:00")
    tl = Timeline(SILENCES)
    covering: list[tuple[int, int]] = []
    for i, (start, length, matches) in enumerate(windows):
        starts, ends = t0 + start * 60 * US_PER_S, t0 + (start + length) * 60 * US_PER_S
        fields = {} if matches else {"plans": ["q"]}
        tl.silence("09:00", f"s{i}", starts=_iso(starts), ends=_iso(ends), **fields)
        if matches:
            covering.append((start, start + length))
    tl.trigger(_iso(t0 + trigger * 60 * US_PER_S))
    out = tl.run()
    minute = trigger
    while any(a <= minute < b for a, b in covering):
        minute += 1
    expected = t0 + minute * 60 * US_PER_S
    assert clear_from([], expected) == expected
    messages = [o for o in out if o["kind"] == "message"]
    assert to_us(parse_time(messages[0]["at"])) == expected
    assert bool([o for o in out if o["kind"] == "silenced"]) is (minute != trigger)


def _iso(value: int) -> str:
    from streamproc.timeutil import format_us

    return format_us(value)


# ---- property: the live processor's way of calling the engine gives replay's outcomes ------------

MONITORED = (
    SILENCES
    + """
heartbeats:
  backup: {application: app, plan: p, interval: 10m}
"""
)
minute = st.integers(0, 180)
maintenance_rows = st.lists(
    st.one_of(
        st.tuples(st.just("silence"), minute, minute, st.integers(1, 90), st.sampled_from(["s1", "s2"]), st.booleans()),
        st.tuples(st.just("unsilence"), minute, st.sampled_from(["s1", "s2"])),
        st.tuples(st.sampled_from(["trigger", "claim", "unclaim", "resolve"]), minute),
        st.tuples(st.just("heartbeat"), minute),
    ),
    max_size=10,
)


def _event(row: tuple[Any, ...], t0: int) -> dict[str, Any]:
    at = _iso(t0 + row[1] * 60 * US_PER_S)
    kind = row[0]
    if kind == "silence":
        _, _, starts, length, sid, matches = row
        start = t0 + starts * 60 * US_PER_S
        return {
            "type": "silence",
            "at": at,
            "silence_id": sid,
            "application": "app",
            "starts": _iso(start),
            "ends": _iso(start + length * 60 * US_PER_S),
            **({} if matches else {"plans": ["q"]}),
        }
    if kind == "unsilence":
        return {"type": "unsilence", "at": at, "silence_id": row[2], "application": "app"}
    if kind == "heartbeat":
        return {"type": "heartbeat", "at": at, "heartbeat": "backup", "application": "app"}
    base: dict[str, Any] = {"type": kind, "at": at, "incident_id": "inc-1"}
    if kind == "trigger":
        base.update(application="app", plan="p", context={"summary": "x"})
    return base


@settings(max_examples=80, deadline=None)
@given(rows=maintenance_rows, cuts=st.lists(st.integers(0, 400), max_size=8))
def test_ticks_and_silence_changes_fed_one_by_one_give_replays_outcomes(
    rows: list[tuple[Any, ...]], cuts: list[int]
) -> None:
    """What the live processor will do (`docs/maintenance.md`): keep a `SilenceBook`, hand it to
    `handle` and `advance`, call `silences_changed` for the states that `watches_silences` names, and
    tick states at arbitrary moments in between. The outcomes equal replay's."""
    t0 = us("10:00")
    tl = Timeline(MONITORED)
    engine = tl.engine
    events = [_event(row, t0) for row in rows]
    tl.events = list(events)
    whole = tl.run()
    timeline = sorted(
        [(t0 + c * 60 * US_PER_S, n, None) for n, c in enumerate(cuts)]
        + [(to_us(parse_time(e["at"])), n, e) for n, e in enumerate(events)],
        key=lambda p: (p[0], p[2] is None, p[1]),
    )
    states: dict[str, IncidentState] = {}
    book = NO_SILENCES
    emitted = []
    for at, _, event in timeline:
        if event is None:
            for key, state in states.items():
                result = engine.advance(state, at, silences=book)
                states[key] = result.state
                emitted += result.emitted
            continue
        parsed = parse_any_event(json.dumps(event))
        if isinstance(parsed, Silence | Unsilence):
            if engine.check_silence(parsed, at) is not None:
                continue
            after = book.apply(parsed, at)
            for key, state in states.items():
                if parsed.application in engine.watches_silences(state):
                    result = engine.silences_changed(state, book, after, at)
                    states[key] = result.state
                    emitted += result.emitted
            book = after
            continue
        result = engine.handle(states.get(parsed.key), parsed, at, book)
        if result.rejected is not None:
            continue
        advanced = engine.advance(result.state, at, inclusive=False, silences=book)
        states[parsed.key] = advanced.state
        emitted += result.emitted + advanced.emitted
    for state in states.values():
        emitted += engine.run_to_end(state, book).emitted
    assert [json.loads(outcome_json(e.outcome)) for e in sorted(emitted, key=lambda e: e.sort_key)] == whole

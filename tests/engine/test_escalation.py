"""Spec §3 Escalation, as timelines: every rule has a test that fails if the rule is broken."""

from __future__ import annotations

from tests.engine.harness import Timeline, clocks, sends

TWO_STEPS = """
plans:
  p:
    owner: dave
    steps:
      - - {role: user, target: alice, priority: high, template: t, repeat: 2, wait: 300}
        - {role: user, target: bob, priority: high, template: t, wait: 600}
      - - {role: user, target: carol, priority: high, template: t}
"""


def test_repeats_send_at_start_plus_k_wait_and_step_ends_at_longest_notification() -> None:
    out = Timeline(TWO_STEPS).trigger("10:00").run()
    # alice: 10:00, 10:05, 10:10 (done 10:15); bob: 10:00 (done 10:10); step 2 at max = 10:15.
    assert sends(out) == [
        ("10:00:00", "alice", "sms"),
        ("10:00:00", "bob", "sms"),
        ("10:05:00", "alice", "sms"),
        ("10:10:00", "alice", "sms"),
        ("10:15:00", "carol", "sms"),
    ]
    assert clocks(out, "exhausted") == ["10:15:00"]
    assert [o["repeat"] for o in out if o["kind"] == "message" and o["user"] == "alice"] == [0, 1, 2]
    assert [o["step"] for o in out if o["kind"] == "message"] == [1, 1, 1, 1, 2]


def test_exhausted_once_and_nothing_after() -> None:
    out = Timeline(TWO_STEPS).trigger("10:00").run()
    assert [o["kind"] for o in out][-1] == "exhausted"
    assert out[-1] == {"kind": "exhausted", "at": "2026-03-01T10:15:00Z", "incident_id": "inc-1", "instance": 1}


def test_zero_wait_steps_all_start_at_the_trigger() -> None:
    out = (
        Timeline("""
    plans:
      p:
        steps:
          - - {role: user, target: alice, priority: high, template: t, repeat: 1}
          - - {role: user, target: bob, priority: high, template: t}
    """)
        .trigger("10:00")
        .run()
    )
    assert sends(out) == [("10:00:00", "alice", "sms"), ("10:00:00", "alice", "sms"), ("10:00:00", "bob", "sms")]
    assert clocks(out, "exhausted") == ["10:00:00"]


def test_claim_stops_messages_scheduled_at_or_after_it() -> None:
    out = Timeline(TWO_STEPS).trigger("10:00").claim("10:07").run()
    assert sends(out) == [("10:00:00", "alice", "sms"), ("10:00:00", "bob", "sms"), ("10:05:00", "alice", "sms")]
    assert clocks(out, "exhausted") == []


def test_claim_at_the_same_instant_as_a_send_wins() -> None:
    out = Timeline(TWO_STEPS).trigger("10:00").claim("10:05").run()
    assert ("10:05:00", "alice", "sms") not in sends(out)
    assert len(sends(out)) == 2


def test_claim_at_the_trigger_instant_suppresses_the_first_page() -> None:
    out = Timeline(TWO_STEPS).trigger("10:00").claim("10:00").run()
    assert out == []


def test_unclaim_restarts_the_claimed_step_from_the_unclaim_time() -> None:
    out = Timeline(TWO_STEPS).trigger("10:00").claim("10:07").unclaim("10:20").run()
    assert sends(out)[3:] == [
        ("10:20:00", "alice", "sms"),
        ("10:20:00", "bob", "sms"),
        ("10:25:00", "alice", "sms"),
        ("10:30:00", "alice", "sms"),
        ("10:35:00", "carol", "sms"),
    ]
    restarted = [o for o in out if o["at"] == "2026-03-01T10:20:00Z"]
    assert {o["step"] for o in restarted} == {1} and {o["repeat"] for o in restarted} == {0}
    assert clocks(out, "exhausted") == ["10:35:00"]


def test_unclaim_restarts_the_step_the_claim_was_in_not_step_one() -> None:
    out = Timeline(TWO_STEPS).trigger("10:00").claim("10:16").unclaim("10:30").run()
    # claimed in step 2 (started 10:15): the unclaim re-runs step 2 only.
    assert sends(out)[-1] == ("10:30:00", "carol", "sms")
    later = [o for o in out if o["at"] >= "2026-03-01T10:30:00Z"]
    assert [(o["kind"], o.get("step")) for o in later] == [("message", 2), ("exhausted", None)]


def test_claim_at_a_step_boundary_lands_in_the_step_that_starts_then() -> None:
    # Step 2 starts at 10:15; a claim at 10:15 stops it, and an unclaim re-runs step 2.
    out = Timeline(TWO_STEPS).trigger("10:00").claim("10:15").unclaim("10:40").run()
    assert ("10:15:00", "carol", "sms") not in sends(out)
    assert sends(out)[-1] == ("10:40:00", "carol", "sms")
    assert [o["step"] for o in out if o["kind"] == "message" and o["at"] >= "2026-03-01T10:40"] == [2]


def test_unclaim_resolves_targets_again() -> None:
    # primary rotates daily at midnight: alice on Mar 1, bob on Mar 2.
    tl = Timeline("""
    plans:
      p:
        steps:
          - - {role: oncall, target: db, priority: high, template: t}
    """)
    tl.trigger("23:50").claim("23:55").unclaim("2026-03-02T00:10:00Z")
    assert [u for _, u, _ in sends(tl.run())] == ["alice", "bob"]


def test_claim_after_exhaustion_then_unclaim_reruns_the_last_step() -> None:
    out = Timeline(TWO_STEPS).trigger("10:00").claim("11:00").unclaim("11:30").run()
    assert sends(out)[-1] == ("11:30:00", "carol", "sms")
    assert clocks(out, "exhausted") == ["10:15:00", "11:30:00"]


def test_second_claim_changes_nothing_and_unclaim_of_unclaimed_is_ignored() -> None:
    base = Timeline(TWO_STEPS).trigger("10:00").claim("10:07").unclaim("10:20").run()
    noisy = (
        Timeline(TWO_STEPS)
        .trigger("10:00")
        .unclaim("10:01")
        .claim("10:07")
        .claim("10:08", owner="bob")
        .unclaim("10:20")
        .unclaim("10:21")
        .run()
    )
    assert noisy == base


def test_events_for_unknown_incidents_are_ignored() -> None:
    out = (
        Timeline(TWO_STEPS)
        .claim("10:00", incident="nope")
        .unclaim("10:01", incident="nope")
        .resolve("10:02", incident="nope")
        .run()
    )
    assert out == []


def test_resolve_stops_everything_and_later_claims_are_ignored() -> None:
    out = Timeline(TWO_STEPS).trigger("10:00").resolve("10:05").claim("10:06").unclaim("10:07").run()
    assert sends(out) == [("10:00:00", "alice", "sms"), ("10:00:00", "bob", "sms")]
    assert clocks(out, "exhausted") == []


def test_resolve_of_a_claimed_instance_blocks_unclaim() -> None:
    out = Timeline(TWO_STEPS).trigger("10:00").claim("10:01").resolve("10:02").unclaim("10:03").run()
    assert len(sends(out)) == 2


def test_trigger_after_resolve_starts_a_new_instance_at_step_one() -> None:
    out = Timeline(TWO_STEPS).trigger("10:00").resolve("10:01").trigger("11:00").claim("11:01").run()
    assert [(o["instance"], o["at"][11:16], o["step"]) for o in out] == [
        (1, "10:00", 1),
        (1, "10:00", 1),
        (2, "11:00", 1),
        (2, "11:00", 1),
    ]
    ids = {o["message_id"] for o in out}
    assert len(ids) == 4


def test_trigger_for_an_open_instance_is_absorbed() -> None:
    for second in ("10:01", "10:20", "11:00"):  # escalating, exhausted
        tl = Timeline(TWO_STEPS).trigger("10:00").trigger(second)
        out = tl.run()
        assert sends(out) == sends(Timeline(TWO_STEPS).trigger("10:00").run())
        assert tl.engine is not None
    tl = Timeline(TWO_STEPS).trigger("10:00").claim("10:01").trigger("10:02")
    assert len(sends(tl.run())) == 2
    # ...and counted on the instance
    from streamproc.replay import replay

    report = replay(tl.engine, tl.lines())
    assert report.states["inc-1"].absorbed == 1


def test_events_at_the_same_instant_apply_in_input_order() -> None:
    # claim then unclaim at 10:05: the unclaim restarts step 1 at 10:05 (alice paged at 10:05 again).
    a = sends(Timeline(TWO_STEPS).trigger("10:00").claim("10:05").unclaim("10:05").run())
    # unclaim then claim at 10:05: unclaim is ignored, claim stops everything.
    b = sends(Timeline(TWO_STEPS).trigger("10:00").unclaim("10:05").claim("10:05").run())
    assert a[:3] == [("10:00:00", "alice", "sms"), ("10:00:00", "bob", "sms"), ("10:05:00", "alice", "sms")]
    assert b == [("10:00:00", "alice", "sms"), ("10:00:00", "bob", "sms")]


def test_replay_input_out_of_time_order_is_applied_in_time_order() -> None:
    tl = Timeline(TWO_STEPS)
    tl.claim("10:07").trigger("10:00")
    assert len(sends(tl.run())) == 3


def test_acknowledge_is_a_claim_by_the_application() -> None:
    tl = Timeline(TWO_STEPS).trigger("10:00").event("acknowledge", "10:07", application="app")
    assert len(sends(tl.run())) == 3
    from streamproc.replay import replay

    assert replay(tl.engine, tl.lines()).states["inc-1"].status == "claimed"
    assert replay(tl.engine, tl.lines()).states["inc-1"].owner == "app"


def test_event_id_makes_a_redelivered_event_a_no_op() -> None:
    tl = (
        Timeline(TWO_STEPS)
        .trigger("10:00", event_id="e1")
        .event("resolve", "10:01", event_id="e2")
        .trigger("10:02", event_id="e1")
    )
    assert len(sends(tl.run())) == 2  # the re-sent trigger did not start instance 2
    tl2 = (
        Timeline(TWO_STEPS)
        .trigger("10:00", event_id="e1")
        .claim("10:01")
        .unclaim("10:02")
        .event("unclaim", "10:03", event_id="u")
        .claim("10:04")
        .event("unclaim", "10:05", event_id="u")
    )
    # the second unclaim with the same event_id is ignored: nothing after the 10:04 claim
    assert max(o["at"] for o in tl2.run()) < "2026-03-01T10:04:00Z"


def test_until_prints_only_outcomes_at_or_before_it() -> None:
    out = Timeline(TWO_STEPS).trigger("10:00").run(until="10:05")
    assert sends(out) == [("10:00:00", "alice", "sms"), ("10:00:00", "bob", "sms"), ("10:05:00", "alice", "sms")]
    # events after --until are not applied
    out2 = Timeline(TWO_STEPS).trigger("10:00").claim("10:06").run(until="10:05")
    assert out2 == out


def test_plan_is_snapshotted_when_the_instance_starts() -> None:
    from streamproc.engine.core import Engine
    from streamproc.timeutil import parse_time, to_us
    from streamproc.wire.events import parse_event
    from tests.engine.harness import BASE, make_config

    old = make_config(BASE, TWO_STEPS)
    new = make_config(
        BASE,
        """
    plans:
      p:
        steps:
          - - {role: user, target: dave, priority: high, template: t}
    """,
    )
    trig = parse_event(
        '{"type":"trigger","at":"2026-03-01T10:00:00Z","incident_id":"i","application":"app","plan":"p"}'
    )
    state = Engine(old).handle(None, trig, to_us(parse_time("2026-03-01T10:00:00Z"))).state
    # The plan changes (a config reload) while the instance is open: the open instance keeps its plan.
    result = Engine(new).advance(state, to_us(parse_time("2026-03-01T11:00:00Z")))
    users = [o.user for o in result.outcomes if o.kind == "message"]  # type: ignore[union-attr]
    assert users == ["alice", "bob", "alice", "alice", "carol"]


def test_a_resolved_instance_keeps_only_what_the_next_trigger_needs() -> None:
    from streamproc.replay import replay

    tl = Timeline(TWO_STEPS).trigger("10:00", event_id="e1").resolve("10:01")
    state = replay(tl.engine, tl.lines()).states["inc-1"]
    assert (state.status, state.instance, state.plan, state.context, state.pending) == ("resolved", 1, None, {}, [])
    assert state.seen_events == ["e1"]

"""Spec §8 heartbeat monitors, as timelines through replay: every rule has a test that fails if it
is broken.

Monitor `backup` (application app, plan hb, interval 1h) pages alice at X and X+10m, then bob at
X+20m. The template shows the context the expiry gives the incident.
"""

from __future__ import annotations

from typing import Any

from tests.engine.harness import Timeline, clocks, sends, silenced

HEARTBEATS = """
applications:
  other: {}
plans:
  hb:
    steps:
      - - {role: user, target: alice, priority: high, template: hb, repeat: 1, wait: 10m}
      - - {role: user, target: bob, priority: high, template: hb}
heartbeats:
  backup: {application: app, plan: hb, interval: 1h, context: {summary: "backup did not report", interval: 7}}
  other-mon: {application: other, plan: hb, interval: 30m}
templates:
  hb:
    default:
      default: {subject: "{{ summary }}", body: "{{ heartbeat }} {{ last_heartbeat }} {{ interval }} {{ incident.id }}"}
"""


def tl(*docs: str) -> Timeline:
    return Timeline(HEARTBEATS, *docs)


def incident(out: list[dict[str, Any]], name: str = "heartbeat-backup") -> list[dict[str, Any]]:
    return [o for o in out if o["incident_id"] == name]


def test_a_monitor_is_inactive_until_its_first_heartbeat() -> None:
    assert tl().trigger("10:00", plan="hb").run() != []
    assert incident(tl().trigger("10:00", plan="hb").run()) == []


def test_a_late_heartbeat_expires_the_monitor_at_l_plus_interval_with_the_monitors_incident() -> None:
    out = tl().heartbeat("10:00").heartbeat("10:30").run()
    assert sends(out) == [("11:30:00", "alice", "sms"), ("11:40:00", "alice", "sms"), ("11:50:00", "bob", "sms")]
    message = out[0]
    assert (message["incident_id"], message["instance"], message["application"], message["plan"]) == (
        "heartbeat-backup",
        1,
        "app",
        "hb",
    )
    # context: the monitor's, plus heartbeat, last_heartbeat (L) and interval (seconds), which win
    assert message["subject"] == "backup did not report"
    assert message["body"] == "backup 2026-03-01T10:30:00Z 3600 heartbeat-backup"


def test_a_heartbeat_within_the_interval_or_exactly_at_x_keeps_the_monitor_quiet() -> None:
    assert sends(tl().heartbeat("10:00").heartbeat("10:59:59").heartbeat("11:59").run(until="12:58")) == []
    # exactly at X = L + interval: input events first, so the heartbeat is in (L, L + interval]
    assert sends(tl().heartbeat("10:00").heartbeat("11:00").run(until="11:59:59")) == []
    assert sends(tl().heartbeat("10:00").heartbeat("11:00:01").run(until="11:59:59"))[0][0] == "11:00:00"


def test_it_expires_once_until_the_next_heartbeat() -> None:
    out = tl().heartbeat("10:00").run()
    assert [o["at"][11:16] for o in out if o["kind"] == "message" and o["repeat"] == 0 and o["step"] == 1] == ["11:00"]
    assert {o["instance"] for o in out} == {1}


def test_the_next_heartbeat_resolves_the_instance_the_monitor_opened_before_its_sends_at_h() -> None:
    out = tl().heartbeat("10:00").heartbeat("11:10").run(until="12:00")
    # alice's repeat at 11:10 is not sent: the resolve at h comes before anything scheduled at h
    assert sends(out) == [("11:00:00", "alice", "sms")]
    # the monitor waits again: a late heartbeat opens instance 2 at 12:10
    out = tl().heartbeat("10:00").heartbeat("11:10").run()
    assert [
        (o["instance"], o["at"][11:16]) for o in out if o["kind"] == "message" and o["repeat"] == 0 and o["step"] == 1
    ] == [(1, "11:00"), (2, "12:10")]


def test_an_open_instance_absorbs_the_expiry_and_a_heartbeat_does_not_resolve_what_it_did_not_open() -> None:
    t = tl().trigger("10:30", "heartbeat-backup", plan="hb").heartbeat("10:40").heartbeat("11:00")
    out = t.run(until="13:00")
    # opened by a trigger event: the heartbeats leave it open; the expiry at 12:00 is absorbed
    assert {o["instance"] for o in out} == {1}
    assert sends(out) == [("10:30:00", "alice", "sms"), ("10:40:00", "alice", "sms"), ("10:50:00", "bob", "sms")]
    assert t.report.states["heartbeat-backup"].absorbed == 1


def test_unknown_monitor_or_another_application_is_a_dead_letter() -> None:
    t = tl().heartbeat("10:00", "nope").heartbeat("10:01", application="other").heartbeat("10:02", "other-mon", "other")
    out = t.run()
    assert t.rejected == [
        (1, "heartbeat: unknown monitor 'nope'"),
        (2, "application: monitor 'backup' belongs to application 'app', not 'other'"),
    ]
    assert incident(out) == [] and incident(out, "heartbeat-other-mon") != []


def test_replay_without_until_runs_expiries_after_the_last_event_to_their_end() -> None:
    out = tl().heartbeat("10:00").trigger("10:05", plan="hb").run()
    assert clocks(incident(out), "exhausted") == ["11:20:00"]
    # with --until, only what is due by then
    assert incident(tl().heartbeat("10:00").run(until="10:59:59")) == []
    assert sends(tl().heartbeat("10:00").run(until="11:00")) == [("11:00:00", "alice", "sms")]


def test_an_expiry_is_a_trigger_so_a_matching_silence_holds_it() -> None:
    out = tl().heartbeat("10:00").silence("10:30", starts="10:45", ends="11:30", plans=["hb"]).run()
    assert silenced(out) == [("11:00:00", "heartbeat-backup", "s1")]
    assert sends(out)[0] == ("11:30:00", "alice", "sms")
    # the silences it sees are those known at X: one made after X does not hold it
    out = tl().heartbeat("10:00").silence("11:05", starts="10:45", ends="11:30").run()
    assert silenced(out) == [] and sends(out)[0] == ("11:00:00", "alice", "sms")
    # a silence of another application does not either
    out = tl().heartbeat("10:00").silence("10:30", ends="11:30", application="other").run()
    assert silenced(out) == [] and sends(out)[0] == ("11:00:00", "alice", "sms")


def test_at_x_input_events_apply_before_the_expiry() -> None:
    # a trigger of the monitor's incident at X opens it first: the expiry is absorbed
    out = (
        tl()
        .heartbeat("10:00")
        .trigger("11:00", "heartbeat-backup", plan="hb", context={"summary": "manual"})
        .run(until="11:00")
    )
    assert [o["subject"] for o in out if o["kind"] == "message"] == ["manual"]


def test_monitors_and_intervals_come_from_the_current_config() -> None:
    t = tl().heartbeat("10:00")
    t.run(until="10:10")
    state = t.report.states["heartbeat-backup"]
    shorter = tl("heartbeats:\n  backup: {application: app, plan: hb, interval: 20m}\n").engine
    result = shorter.run_to_end(state)
    assert [o.at.strftime("%H:%M") for o in result.outcomes][:1] == ["10:20"]
    gone = Timeline(HEARTBEATS.replace("  backup: {application: app", "  unused: {application: app")).engine
    assert gone.run_to_end(state).outcomes == [] and gone.run_to_end(state).state.wake_at is None

"""Spec §8 silences, as timelines through replay: every rule has a test that fails if it is broken.

Plan `p` pages alice at s and s+10m, then bob at s+20m (exhausted then): the first send of an
instance is when its step 1 started.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.harness import Timeline, clocks, sends, silenced

SILENCES = """
applications:
  other: {}
users:
  erin: {contacts: {sms: "+1005"}, active: false}
plans:
  p:
    owner: dave
    steps:
      - - {role: user, target: alice, priority: high, template: t, repeat: 1, wait: 10m}
      - - {role: user, target: bob, priority: high, template: t}
  q:
    steps:
      - - {role: user, target: carol, priority: high, template: t}
  r:
    owner: dave
    steps:
      - - {role: oncall-primary, target: db, priority: high, template: t}
        - {role: user, target: erin, priority: high, template: t}
"""


def tl() -> Timeline:
    return Timeline(SILENCES)


def first(out: list[dict[str, Any]], incident: str = "inc-1") -> str | None:
    """When the instance's step 1 started: the clock of its first message (None: never)."""
    found = [o["at"][11:19] for o in out if o["kind"] == "message" and o["incident_id"] == incident]
    return found[0] if found else None


def test_a_trigger_inside_a_silence_is_held_and_step_1_starts_when_it_ends() -> None:
    out = tl().silence("09:50", starts="10:00", ends="11:00").trigger("10:30").run()
    assert out[0] == {
        "kind": "silenced",
        "at": "2026-03-01T10:30:00Z",
        "incident_id": "inc-1",
        "instance": 1,
        "silence_id": "s1",
    }
    assert sends(out) == [("11:00:00", "alice", "sms"), ("11:10:00", "alice", "sms"), ("11:20:00", "bob", "sms")]
    assert clocks(out, "exhausted") == ["11:20:00"]
    assert [o["kind"] for o in out].count("silenced") == 1


def test_a_silence_covers_from_starts_up_to_but_not_including_ends() -> None:
    out = (
        tl()
        .silence("09:00", starts="10:00", ends="11:00")
        .trigger("09:59:59", "before")
        .trigger("10:00", "at-starts")
        .trigger("11:00", "at-ends")
        .run()
    )
    assert silenced(out) == [("10:00:00", "at-starts", "s1")]
    assert (first(out, "before"), first(out, "at-starts"), first(out, "at-ends")) == (
        "09:59:59",
        "11:00:00",
        "11:00:00",
    )


def test_starts_defaults_to_the_event_time_and_a_silence_is_known_only_from_it() -> None:
    out = tl().trigger("09:59", "early").silence("10:00", ends="11:00").trigger("10:00", "same-instant").run()
    assert silenced(out) == [("10:00:00", "same-instant", "s1")]
    assert first(out, "early") == "09:59:00"  # started before: untouched
    # made at 10:30 for a window from 10:00: a trigger at 10:15 did not know it
    out = (
        tl()
        .trigger("10:15", "before-known")
        .silence("10:30", starts="10:00", ends="11:00")
        .trigger("10:31", "after-known")
        .run()
    )
    assert silenced(out) == [("10:31:00", "after-known", "s1")]
    assert first(out, "before-known") == "10:15:00"


def test_events_at_one_instant_apply_in_input_order() -> None:
    out = tl().trigger("10:00", "first").silence("10:00", ends="11:00").trigger("10:00", "second").run()
    assert silenced(out) == [("10:00:00", "second", "s1")]
    assert first(out, "first") == "10:00:00"


@pytest.mark.parametrize(
    ("starts", "ends", "problem"),
    [
        ("10:00", "10:00", "ends: must be after starts"),
        ("10:00", "09:00", "ends: must be after starts"),
        ("2026-03-01T10:00:00Z", "2026-03-31T10:00:01Z", "ends: must be at most 30 days after starts"),
        (None, "09:00", "ends: must be after starts"),  # starts = the event's at (09:30)
    ],
)
def test_ends_after_starts_and_at_most_30_days_or_dead_letter(starts: str | None, ends: str, problem: str) -> None:
    t = tl().silence("09:30", starts=starts, ends=ends).trigger("10:30")
    out = t.run()
    [(line, reason)] = t.rejected
    field, text = problem.split(": ", 1)
    assert line == 1 and reason.startswith(f"{field}:") and text in reason, reason
    assert silenced(out) == [] and first(out) == "10:30:00"  # nothing else is affected


def test_thirty_days_exactly_is_allowed() -> None:
    t = tl().silence("09:30", starts="2026-03-01T10:00:00Z", ends="2026-03-31T10:00:00Z").trigger("10:30")
    out = t.run()
    assert t.rejected == [] and silenced(out) == [("10:30:00", "inc-1", "s1")]
    assert first(out) is not None and out[1]["at"].startswith("2026-03-31T10:00:00")


def test_a_silence_for_an_unknown_application_is_a_dead_letter() -> None:
    t = tl().silence("09:30", ends="11:00", application="nope").unsilence("09:40", application="nope").trigger("10:00")
    out = t.run()
    assert t.rejected == [
        (1, "application: unknown application 'nope'"),
        (2, "application: unknown application 'nope'"),
    ]
    assert silenced(out) == []


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("(a)\\1", "backreferences"),
        ("(?P<n>a)(?P=n)", "backreferences"),
        ("Disk(?=Full)", "lookahead"),
        ("(?<!x)Disk", "lookbehind"),
        ("(?>Disk)", "atomic groups"),
        ("Disk.*+", "possessive"),
        ("(?x) Disk", "flag x"),
        ("a{1001}", "above 1000"),
        ("Disk\\Z", "\\Z"),
        ("x{,3}", "{,n}"),
        ("[unclosed", "not a valid regular expression"),
    ],
)
def test_match_re_must_compile_and_be_re2_compatible_or_dead_letter(pattern: str, problem: str) -> None:
    t = tl().silence("09:30", ends="11:00", match_re={"alertname": pattern}).trigger("10:00")
    out = t.run()
    [(_, reason)] = t.rejected
    assert reason.startswith("match_re.alertname:") and problem in reason, reason
    assert silenced(out) == []


SPEC_SILENCE: dict[str, Any] = {
    "plans": ["p"],
    "match": {"host": ["db01", "db02"], "severity": "critical"},
    "match_re": {"alertname": "Disk.*"},
}
MATCHING = {"host": "db02", "severity": "critical", "alertname": "DiskFull", "summary": "x"}


@pytest.mark.parametrize(
    ("application", "plan", "context", "held"),
    [
        ("app", "p", MATCHING, True),
        ("other", "p", MATCHING, False),  # another application
        ("app", "q", MATCHING, False),  # plan not in plans
        ("app", "p", {**MATCHING, "host": "db03"}, False),  # not one of the listed values
        ("app", "p", {**MATCHING, "severity": "warning"}, False),  # not the given string
        ("app", "p", {k: v for k, v in MATCHING.items() if k != "severity"}, False),  # key missing
        ("app", "p", {**MATCHING, "alertname": "MyDiskFull"}, False),  # the regex must match it all
        ("app", "p", {k: v for k, v in MATCHING.items() if k != "alertname"}, False),
    ],
)
def test_a_silence_matches_by_application_plans_match_and_match_re(
    application: str, plan: str, context: dict[str, Any], held: bool
) -> None:
    out = (
        tl()
        .silence("09:30", ends="11:00", **SPEC_SILENCE)
        .trigger("10:00", plan=plan, application=application, context=context)
        .run()
    )
    assert bool(silenced(out)) is held
    assert first(out) == ("11:00:00" if held else "10:00:00")


@pytest.mark.parametrize(("value", "held"), [(5, True), ("5", True), (5.0, False), (True, False), ([5], False)])
def test_context_values_compare_as_their_json_text(value: Any, held: bool) -> None:
    out = tl().silence("09:30", ends="11:00", match={"code": "5"}).trigger("10:00", context={"code": value}).run()
    assert bool(silenced(out)) is held
    out = (
        tl()
        .silence("09:30", ends="11:00", match={"flag": "true", "doc": '{"a":[1,"é"]}'})
        .trigger("10:00", context={"flag": True, "doc": {"a": [1, "é"]}})
        .run()
    )
    assert silenced(out)
    out = tl().silence("09:30", ends="11:00", match_re={"code": "5\\d"}).trigger("10:00", context={"code": 50}).run()
    assert silenced(out)


def test_a_silence_without_criteria_matches_every_instance_of_its_application() -> None:
    out = (
        tl()
        .silence("09:30", ends="11:00")
        .trigger("10:00", "a", plan="p", context={})
        .trigger("10:00", "b", plan="q", context={"x": 1})
        .trigger("10:00", "c", plan="q", application="other")
        .run()
    )
    assert [i for _, i, _ in silenced(out)] == ["a", "b"] and first(out, "c") == "10:00:00"


def test_the_silenced_outcome_names_the_latest_ending_covering_silence_then_the_smallest_id() -> None:
    out = (
        tl()
        .silence("09:00", "b", starts="10:00", ends="11:00")
        .silence("09:00", "a", starts="10:00", ends="11:00")
        .silence("09:00", "c", starts="10:00", ends="10:30")
        .silence("09:00", "d", starts="10:45", ends="12:00")
        .trigger("10:15")
        .run()
    )
    assert silenced(out) == [("10:15:00", "inc-1", "a")]  # d does not cover 10:15; a and b end last
    assert first(out) == "12:00:00"  # d covers 11:00: E moves on to 12:00


def test_e_is_the_first_time_no_known_matching_silence_covers_the_instance() -> None:
    out = (
        tl()
        .silence("09:00", "s1", starts="10:00", ends="11:00")
        .silence("09:00", "s2", starts="11:30", ends="12:00")
        .silence("09:00", "s3", starts="10:30", ends="13:00", plans=["q"])
        .trigger("10:15")
        .run()
    )
    assert first(out) == "11:00:00"  # a gap before s2; s3 does not match plan p


def test_targets_and_owner_messages_are_resolved_at_e_as_if_triggered_then() -> None:
    # primary rotates daily from 03-01 00:00: alice on 03-01, bob on 03-02. erin is inactive: the
    # owner (dave) is told, at E.
    out = tl().silence("22:00", ends="2026-03-02T01:00:00Z").trigger("23:00", plan="r").run()
    messages = [(o["at"], o["user"], o["role"]) for o in out if o["kind"] == "message"]
    assert messages == [("2026-03-02T01:00:00Z", "bob", "oncall-primary"), ("2026-03-02T01:00:00Z", "dave", "owner")]
    unresolved = [o for o in out if o.get("role") == "owner"]
    assert unresolved[0]["unresolved"] == "user:erin"


def test_extending_a_silence_postpones_e() -> None:
    out = (
        tl()
        .silence("09:00", starts="10:00", ends="11:00")
        .trigger("10:15")
        .silence("10:45", starts="10:00", ends="12:00")
        .run()
    )
    assert first(out) == "12:00:00"
    # a change at exactly E applies before the instance starts (input events first)
    out = (
        tl()
        .silence("09:00", starts="10:00", ends="11:00")
        .trigger("10:15")
        .silence("11:00", starts="10:00", ends="12:00")
        .run()
    )
    assert first(out) == "12:00:00"
    # a second later, it had started: silences do not touch started instances
    out = (
        tl()
        .silence("09:00", starts="10:00", ends="11:00")
        .trigger("10:15")
        .silence("11:00:01", starts="10:00", ends="12:00")
        .run()
    )
    assert first(out) == "11:00:00"


def test_unsilence_brings_e_to_u_unless_another_silence_covers_the_instance_then() -> None:
    out = tl().silence("09:00", starts="10:00", ends="12:00").trigger("10:15").unsilence("10:40").run()
    assert first(out) == "10:40:00"
    assert sends(out)[:2] == [("10:40:00", "alice", "sms"), ("10:50:00", "alice", "sms")]
    out = (
        tl()
        .silence("09:00", starts="10:00", ends="12:00")
        .silence("09:00", "s2", starts="10:30", ends="11:00")
        .trigger("10:15")
        .unsilence("10:40")
        .run()
    )
    assert first(out) == "11:00:00"


def test_unsilence_only_shortens_and_before_starts_leaves_a_silence_that_covers_nothing() -> None:
    out = tl().silence("09:00", starts="11:00", ends="12:00").unsilence("10:30").trigger("11:15").run()
    assert silenced(out) == [] and first(out) == "11:15:00"
    # after its end: nothing to shorten; an unknown id is ignored (not a dead letter)
    t = tl().silence("09:00", starts="10:00", ends="11:00").trigger("10:15").unsilence("10:20", "nope")
    out = t.run()
    assert t.rejected == [] and first(out) == "11:00:00"


def test_a_silence_with_a_known_id_replaces_it() -> None:
    # narrower match: the held instance no longer matches and starts at the change
    out = (
        tl()
        .silence("09:00", starts="10:00", ends="12:00")
        .trigger("10:15", context={"host": "db01"})
        .silence("10:30", starts="10:00", ends="12:00", match={"host": "db02"})
        .run()
    )
    assert first(out) == "10:30:00"
    # the same id in another application is another silence
    out = (
        tl()
        .silence("09:00", starts="10:00", ends="12:00")
        .silence("09:00", ends="10:05", application="other")
        .unsilence("10:01", application="other")
        .trigger("10:15")
        .run()
    )
    assert first(out) == "12:00:00"


def test_a_new_matching_silence_postpones_held_instances_and_others_do_not() -> None:
    base = tl().silence("09:00", starts="10:00", ends="11:00").trigger("10:15")
    assert first(base.silence("10:30", "s2", starts="10:50", ends="11:30").run()) == "11:30:00"
    for other in ({"application": "other"}, {"plans": ["q"]}, {"match": {"host": "x"}}):
        out = (
            tl()
            .silence("09:00", starts="10:00", ends="11:00")
            .trigger("10:15")
            .silence("10:30", "s2", starts="10:50", ends="11:30", **other)
            .run()
        )
        assert first(out) == "11:00:00", other


def test_a_silenced_instance_absorbs_triggers_and_a_resolve_ends_it_with_nothing_sent() -> None:
    out = tl().silence("09:00", ends="12:00").trigger("10:00").trigger("10:05").resolve("10:30").run()
    assert silenced(out) == [("10:00:00", "inc-1", "s1")] and sends(out) == [] and clocks(out, "exhausted") == []
    # a new instance after the resolve, still inside the silence
    out = tl().silence("09:00", ends="12:00").trigger("10:00").resolve("10:30").trigger("10:40").run()
    assert [(o["instance"], o["at"][11:16]) for o in out if o["kind"] == "silenced"] == [(1, "10:00"), (2, "10:40")]
    assert {o["instance"] for o in out if o["kind"] == "message"} == {2} and first(out) == "12:00:00"


def test_a_claim_while_silenced_stops_the_escalation_before_it_starts() -> None:
    out = tl().silence("09:00", ends="11:00").trigger("10:00").claim("10:30").run()
    assert sends(out) == [] and clocks(out, "exhausted") == []


def test_an_unclaim_of_an_instance_claimed_before_step_1_waits_for_the_silences_again() -> None:
    base = tl().silence("09:00", ends="11:00").trigger("10:00").claim("10:30")
    assert first(base.unclaim("10:45").run()) == "11:00:00"
    out = tl().silence("09:00", ends="11:00").trigger("10:00").claim("10:30").unclaim("11:30").run()
    assert first(out) == "11:30:00"
    # after the unclaim, E follows silence changes again
    out = (
        tl()
        .silence("09:00", ends="11:00")
        .trigger("10:00")
        .claim("10:30")
        .unclaim("10:45")
        .silence("10:50", ends="12:00")
        .run()
    )
    assert first(out) == "12:00:00"


def test_silences_do_not_touch_instances_that_started_before_they_covered_them() -> None:
    out = tl().trigger("09:55").silence("10:00", ends="11:00").run()
    assert sends(out) == [("09:55:00", "alice", "sms"), ("10:05:00", "alice", "sms"), ("10:15:00", "bob", "sms")]
    # an unclaim of such an instance restarts its step at once, silence or not
    out = tl().trigger("09:55").silence("10:00", ends="11:00").claim("10:01").unclaim("10:30").run()
    assert sends(out)[1:] == [("10:30:00", "alice", "sms"), ("10:40:00", "alice", "sms"), ("10:50:00", "bob", "sms")]


def test_at_one_instant_input_events_apply_before_the_held_instance_starts() -> None:
    out = tl().silence("09:00", ends="11:00").trigger("10:00").claim("11:00").run()
    assert sends(out) == []
    t = tl().silence("09:00", ends="11:00").trigger("10:00").trigger("11:00")
    out = t.run()
    assert len({o["instance"] for o in out}) == 1 and first(out) == "11:00:00"
    # the unsilence and a claim at the same instant: the claim still lands before the start
    out = tl().silence("09:00", ends="12:00").trigger("10:00").unsilence("10:40").claim("10:40").run()
    assert sends(out) == []


def test_replay_until_prints_what_is_scheduled_by_then() -> None:
    t = tl().silence("09:00", ends="11:00").trigger("10:00")
    assert [o["kind"] for o in t.run(until="10:59:59")] == ["silenced"]
    assert sends(t.run(until="11:00")) == [("11:00:00", "alice", "sms")]

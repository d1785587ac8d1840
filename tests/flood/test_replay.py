"""Flood control in replay (spec §5, §7): the engine's outcomes, in time order with the claims and
resolves, through each user's flood control; `--until` cuts batches at b <= until.

The storm: plan `storm` pages alice by call (urgent) at s, s+2m, s+4m; incidents inc-1..4 start at
10:00:00, :10, :20, :30. Batching: more than 2 messages within 60 s, a batch every 5 minutes, idle
after 10 quiet minutes. So inc-1 and inc-2 page at once at 10:00:00 and 10:00:10; from inc-3 at
10:00:20 (t0) everything is held for 10:05:20, then 10:10:20 (empty), then idle at 10:15:20.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamproc.cli import main
from streamproc.flood import batch_message_id
from tests.engine.harness import BASE, Timeline
from tests.flood.harness import us

STORM = """
users:
  alice:
    contacts: {call: "+1001", sms: "+1001", email: "alice@x", slack: "UALICE"}
plans:
  storm:
    owner: dave
    batching: {threshold: 2, window: 60s, every: 5m, quiet: 10m}
    steps:
      - - {role: user, target: alice, priority: urgent, template: t, repeat: 2, wait: 2m}
  calm:
    steps:
      - - {role: user, target: bob, priority: high, template: t}
"""


def storm_timeline(*docs: str) -> Timeline:
    tl = Timeline(STORM, *docs)
    for i, clock in enumerate(("10:00:00", "10:00:10", "10:00:20", "10:00:30"), start=1):
        tl.trigger(clock, f"inc-{i}", plan="storm")
    return tl


def brief(outcomes: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(clock, kind, what) per outcome, exhausted ones left out."""
    rows = []
    for o in outcomes:
        if o["kind"] == "exhausted":
            continue
        what = o.get("mode", "")
        if o["kind"] == "batched":
            what = o["batch_at"][11:19]
        elif "batch" in o:
            what = ",".join(o["batch"]["incident_ids"]) + f" x{o['batch']['count']}"
        rows.append((o["at"][11:19], o["kind"] if o["kind"] != "message" else o["incident_id"], what))
    return rows


def test_storm_is_batched_and_claims_leave_the_batch() -> None:
    tl = storm_timeline().claim("10:03", "inc-2")
    out = tl.run()
    assert brief(out) == [
        ("10:00:00", "inc-1", "call"),
        ("10:00:10", "inc-2", "call"),
        ("10:00:20", "batched", "10:05:20"),
        ("10:00:30", "batched", "10:05:20"),
        ("10:02:00", "batched", "10:05:20"),
        ("10:02:10", "batched", "10:05:20"),
        ("10:02:20", "batched", "10:05:20"),
        ("10:02:30", "batched", "10:05:20"),
        ("10:04:00", "batched", "10:05:20"),
        ("10:04:20", "batched", "10:05:20"),
        ("10:04:30", "batched", "10:05:20"),
        ("10:05:20", "inc-3", "inc-3,inc-4,inc-1 x8"),  # inc-2 claimed at 10:03: its 10:02:10 page left out
    ]
    [batch] = [o for o in out if "batch" in o]
    assert batch["message_id"] == batch_message_id("storm", "alice", us("10:05:20"))
    assert batch["subject"] == "[app] 8 messages from plan storm"
    assert (batch["step"], batch["repeat"], batch["notification"]) == (1, 0, 0)  # first member: inc-3 at 10:00:20


def test_a_claim_at_the_batch_instant_counts() -> None:
    out = storm_timeline().claim("10:05:20", "inc-1").claim("10:05:20", "inc-2").claim("10:05:20", "inc-3").run()
    assert brief(out)[-1] == ("10:05:20", "inc-4", "inc-4 x3")


def test_an_unclaim_reopens_and_the_restarted_step_is_held_too() -> None:
    claimed = brief(storm_timeline().claim("10:03", "inc-3").run())
    assert claimed[-1] == ("10:05:20", "inc-4", "inc-4,inc-1,inc-2 x7")  # inc-3's held pages left out
    rows = brief(storm_timeline().claim("10:03", "inc-3").unclaim("10:05", "inc-3").run())
    assert ("10:05:00", "batched", "10:05:20") in rows  # the restarted step's first page: b's batch
    assert [r for r in rows if r[0] == "10:05:20"] == [("10:05:20", "inc-3", "inc-3,inc-4,inc-1,inc-2 x10")]
    assert rows[-1] == ("10:10:20", "inc-3", "inc-3 x2")  # its repeats at 10:07 and 10:09


def test_resolving_everything_leaves_nothing_to_send() -> None:
    tl = storm_timeline()
    for i in (1, 2, 3, 4):
        tl.resolve("10:05", f"inc-{i}")
    rows = brief(tl.run())
    assert [r for r in rows if r[1] not in ("batched",)] == [
        ("10:00:00", "inc-1", "call"),
        ("10:00:10", "inc-2", "call"),
    ]


def test_until_prints_batches_due_at_or_before_it() -> None:
    tl = storm_timeline()
    assert brief(tl.run(until="10:05:19"))[-1] == ("10:04:30", "batched", "10:05:20")
    assert brief(tl.run(until="10:05:20"))[-1] == ("10:05:20", "inc-3", "inc-3,inc-4,inc-1,inc-2 x10")


def test_downgrade_first_then_batches_take_the_final_modes() -> None:
    tl = storm_timeline("""
users:
  alice:
    contacts: {call: "+1001", sms: "+1001", email: "alice@x", slack: "UALICE"}
    downgrade: [{from: call, to: slack, count: 2, window: 10m}]
""")
    messages = [o for o in tl.run() if o["kind"] == "message"]
    assert [m["mode"] for m in messages] == ["call", "call", "slack"]
    batch = messages[-1]
    # all urgent: the first member's (inc-3 at 10:00:20, after two calls) final mode and destination
    assert (batch["batch"]["count"], batch["destination"]) == (10, "UALICE")
    assert "downgraded_from" not in batch


def test_other_outcomes_and_other_plans_are_untouched() -> None:
    tl = Timeline(STORM)
    tl.trigger("10:00", "c-1", plan="calm").trigger("10:00", "c-2", plan="calm").trigger("10:00", "c-3", plan="calm")
    plain = Timeline(
        BASE + "\nplans:\n  calm:\n    steps: [[{role: user, target: bob, priority: high, template: t}]]\n"
    )
    plain.events = list(tl.events)
    assert tl.run() == plain.run()


def test_replay_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        BASE.replace(
            "alice: {contacts: {", "alice: {downgrade: [{from: sms, to: email, count: 1, window: 1h}], contacts: {"
        )
        + """
plans:
  p:
    batching: {threshold: 1, window: 5m, every: 10m, quiet: 0s}
    steps: [[{role: user, target: alice, priority: high, template: t}]]
"""
    )
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(
            json.dumps(e)
            for e in [
                {
                    "type": "trigger",
                    "at": "2026-03-01T10:00:00Z",
                    "incident_id": "a",
                    "application": "app",
                    "plan": "p",
                    "context": {"summary": "one"},
                },
                {
                    "type": "trigger",
                    "at": "2026-03-01T10:01:00Z",
                    "incident_id": "b",
                    "application": "app",
                    "plan": "p",
                    "context": {"summary": "two"},
                },
                {
                    "type": "trigger",
                    "at": "2026-03-01T10:02:00Z",
                    "incident_id": "c",
                    "application": "app",
                    "plan": "p",
                    "context": {"summary": "three"},
                },
            ]
        )
        + "\n"
    )
    assert main(["replay", "--config", str(config), "--input", str(events)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    messages = [o for o in lines if o["kind"] in ("message", "batched")]
    assert [(o["kind"], o["at"][11:19], o.get("mode"), o.get("downgraded_from")) for o in messages] == [
        ("message", "10:00:00", "sms", None),
        ("batched", "10:01:00", None, None),
        ("batched", "10:02:00", None, None),
        ("message", "10:11:00", "email", None),
    ]
    batch = messages[-1]
    assert batch["body"] == "b: S two\nc: S three" and batch["batch"] == {"count": 2, "incident_ids": ["b", "c"]}
    assert main(["replay", "--config", str(config), "--input", str(events), "--until", "2026-03-01T10:10:59Z"]) == 0
    kinds = [json.loads(line)["kind"] for line in capsys.readouterr().out.splitlines()]
    assert kinds.count("batched") == 2 and kinds.count("message") == 1


def test_a_batch_line_for_an_owner_message_shows_the_owner_messages_text() -> None:
    # Spec §7 (2026-12-06): erin is inactive, so each incident tells the plan's owner (alice, by
    # email at priority low); from the second one on, those messages are held and batched.
    tl = Timeline("""
    users:
      erin: {contacts: {sms: "+1005"}, active: false}
    plans:
      orphan:
        owner: alice
        batching: {threshold: 1, window: 60s, every: 5m, quiet: 0s}
        steps:
          - - {role: user, target: erin, priority: high, template: t}
    """)
    for i, clock in enumerate(("10:00:00", "10:00:10", "10:00:20"), start=1):
        tl.trigger(clock, f"inc-{i}", plan="orphan")
    out = tl.run()
    owner = [o for o in out if o["kind"] == "message" and o["role"] == "owner"]
    assert [o["at"][11:19] for o in owner] == ["10:00:00", "10:05:10"]
    single, batch = owner
    assert single["subject"] == "[streamproc] inc-1: user:erin resolved to nobody"
    assert batch["batch"] == {"count": 2, "incident_ids": ["inc-2", "inc-3"]}
    assert batch["body"] == (
        "inc-2: [streamproc] inc-2: user:erin resolved to nobody\n"
        "inc-3: [streamproc] inc-3: user:erin resolved to nobody"
    )

"""Spec §7 batching, rule by rule, on one user's timeline: threshold 2 within 60 s, a batch every 5
minutes, idle again after 10 quiet minutes (unless a test says otherwise)."""

from __future__ import annotations

import hashlib
from typing import Any

from streamproc.flood import UserFloodState, batch_message_id
from tests.flood.harness import Flood, clock, modes, us

BATCHING = """
plans:
  p:
    batching: {threshold: 2, window: 60s, every: 5m, quiet: 10m}
    steps: [[{role: user, target: alice, priority: urgent, template: t}]]
"""


def storm(*clocks: str, doc: str = BATCHING) -> tuple[Flood, list[dict[str, Any]]]:
    """Messages of plan p to alice, one incident each (inc-1, inc-2, ...)."""
    f = Flood(doc)
    out: list[dict[str, Any]] = []
    for i, at in enumerate(clocks, start=1):
        out += f.send(at, f"inc-{i}")
    return f, out


def test_exactly_threshold_messages_in_the_window_are_sent_one_more_starts_batching() -> None:
    f, out = storm("10:00", "10:00:30")
    assert modes(out) == [("message", "call"), ("message", "call")]
    assert f.wake() is None
    [held] = f.send("10:00:59", "inc-3")
    assert held == {
        "kind": "batched",
        "at": "2026-03-01T10:00:59Z",
        "incident_id": "inc-3",
        "instance": 1,
        "step": 1,
        "user": "alice",
        "batch_at": "2026-03-01T10:05:59Z",
    }
    assert f.wake() == "10:05:59"  # t0 + every
    assert modes(f.send("10:01:10", "inc-4")) == [("batched", "10:05:59")]  # every later message is held


def test_the_window_is_open_at_its_start() -> None:
    _, out = storm("10:00", "10:00:30", "10:01")  # 10:00 is not in (10:00, 10:01]
    assert modes(out) == [("message", "call")] * 3
    _, out = storm("10:00:01", "10:00:30", "10:01")
    assert modes(out)[-1] == ("batched", "10:06:00")


def test_batches_fall_due_every_period_and_a_message_at_b_joins_b() -> None:
    f, _ = storm("10:00", "10:00:10", "10:00:20")  # t0 = 10:00:20
    assert modes(f.send("10:05:20", "inc-4")) == [("batched", "10:05:20")]  # exactly b: b's batch
    out = f.send("10:05:21", "inc-5")  # the batch at 10:05:20 fires first, then this one is held
    batch, held = out
    assert batch["at"] == "2026-03-01T10:05:20Z" and batch["batch"]["incident_ids"] == ["inc-3", "inc-4"]
    assert held["batch_at"] == "2026-03-01T10:10:20Z"
    assert f.advance("10:10:19") == []
    [single] = f.advance("10:10:20")
    assert single["incident_id"] == "inc-5"


def test_batch_message_fields() -> None:
    f = Flood(BATCHING)
    f.send("10:00", "inc-1")
    f.send("10:00", "inc-2")
    f.send("10:00", "inc-3", priority="high", mode="sms", subject="", body="disk\nfull")  # held, first
    f.send("10:01", "inc-4", priority="urgent", mode="call", subject="cpu")  # highest priority
    f.send("10:02", "inc-3", step=2, priority="urgent", mode="sms", subject="again")  # same incident
    f.send("10:03", "inc-5", priority="urgent", mode="email", subject="later")
    [batch] = f.advance("10:05")
    first = f.message("10:00", "inc-3", priority="high", mode="sms", subject="", body="disk\nfull")
    assert batch == {
        **first.model_dump(mode="json", exclude_none=True),
        "kind": "message",
        "at": "2026-03-01T10:05:00Z",
        "priority": "urgent",
        "mode": "call",
        "destination": "+1001",
        "subject": "[app] 4 messages from plan p",
        "body": "inc-3: disk full\ninc-4: cpu\ninc-3: again\ninc-5: later",
        "render_error": False,
        "batch": {"count": 4, "incident_ids": ["inc-3", "inc-4", "inc-5"]},
        "message_id": batch_message_id("p", "alice", us("10:05")),
    }
    raw = "batch\x1fp\x1falice\x1f" + str(us("10:05"))
    assert batch["message_id"] == hashlib.sha256(raw.encode()).hexdigest()[:32]


def test_batch_has_no_downgraded_from_or_html_of_its_first_member() -> None:
    f = Flood(BATCHING)
    f.send("10:00", "inc-1")
    f.send("10:00", "inc-2")
    f.feed(f.message("10:00", "inc-3", mode="sms", downgraded_from="call", email_html="<p>x</p>"))
    f.send("10:01", "inc-4", mode="sms")
    [batch] = f.advance("10:05")
    assert "downgraded_from" not in batch and "email_html" not in batch and batch["batch"]["count"] == 2


def test_one_member_is_sent_at_b_otherwise_unchanged() -> None:
    f, _ = storm("10:00", "10:00:10", "10:00:20")
    [single] = f.advance("10:05:20")
    original = f.message("10:00:20", "inc-3").model_dump(mode="json", exclude_none=True)
    assert single == {**original, "kind": "message", "at": "2026-03-01T10:05:20Z"}


def test_claims_during_a_batch() -> None:
    def batch_after(*events: tuple[str, str, str]) -> list[str]:
        f, _ = storm("10:00", "10:00:10", "10:00:20", "10:01", "10:02", "10:03")  # inc-3..6 held for 10:05:20
        out: list[dict[str, Any]] = []
        for kind, at, incident in events:
            out += f.status(kind, at, incident)
        out += f.advance("10:05:20")
        return [i for o in out for i in (o["batch"]["incident_ids"] if "batch" in o else [o["incident_id"]])]

    assert batch_after() == ["inc-3", "inc-4", "inc-5", "inc-6"]
    assert batch_after(("claimed", "10:04", "inc-4")) == ["inc-3", "inc-5", "inc-6"]  # before b
    assert batch_after(("claimed", "10:05:20", "inc-4")) == ["inc-3", "inc-5", "inc-6"]  # at b
    assert batch_after(("resolved", "10:05:20", "inc-5")) == ["inc-3", "inc-4", "inc-6"]
    assert batch_after(("claimed", "10:05:21", "inc-4")) == ["inc-3", "inc-4", "inc-5", "inc-6"]  # after b
    assert batch_after(("claimed", "10:04", "inc-4"), ("unclaimed", "10:05", "inc-4")) == [
        "inc-3",
        "inc-4",
        "inc-5",
        "inc-6",
    ]  # reopened
    # an unclaim at b applies before b's batch, as events before messages at an instant (§3)
    assert batch_after(("claimed", "10:04", "inc-4"), ("unclaimed", "10:05:20", "inc-4")) == [
        "inc-3",
        "inc-4",
        "inc-5",
        "inc-6",
    ]
    assert batch_after(
        ("claimed", "10:04", "inc-4"), ("unclaimed", "10:05", "inc-4"), ("claimed", "10:05:10", "inc-4")
    ) == ["inc-3", "inc-5", "inc-6"]
    assert batch_after(*(("claimed", "10:04", f"inc-{i}") for i in (3, 4, 5))) == ["inc-6"]  # one left


def test_a_claim_of_another_instance_does_not_count() -> None:
    f, _ = storm("10:00", "10:00:10", "10:00:20", "10:01")
    f.status("claimed", "10:02", "inc-4", instance=2)
    [batch] = f.advance("10:05:20")
    assert batch["batch"]["incident_ids"] == ["inc-3", "inc-4"]


def test_empty_batch_sends_nothing_and_the_key_goes_on_or_idles_by_quiet() -> None:
    f, _ = storm("10:00", "10:00:10", "10:00:20")
    f.claim("10:01", "inc-3")
    assert f.advance("10:05:20") == []
    assert f.wake() == "10:10:20"  # 10:00:20 is within (10:05:20 - 10m, 10:05:20]
    assert f.advance("10:10:20") == []
    assert f.wake() is None  # nothing in (10:00:20, 10:10:20]
    assert f.state().instances == {}  # nothing held: no statuses kept


def test_quiet_period_idle_again_vs_continue() -> None:
    doc = BATCHING.replace("quiet: 10m", "quiet: 3m")
    f, _ = storm("10:00", "10:00:10", "10:00:20", doc=doc)  # batch at 10:05:20
    f.advance("10:05:20")  # 10:00:20 is not in (10:02:20, 10:05:20]
    assert f.wake() is None
    assert modes(f.send("10:06", "inc-4")) == [("message", "call")]  # idle: sent at once

    f, _ = storm("10:00", "10:00:10", "10:00:20", "10:02:20", doc=doc)  # exactly b - quiet: not in the range
    f.advance("10:05:20")
    assert f.wake() is None

    f, _ = storm("10:00", "10:00:10", "10:00:20", "10:02:21", doc=doc)
    f.advance("10:05:20")
    assert f.wake() == "10:10:20"  # continue: the next batch at b + every
    assert modes(f.send("10:06", "inc-5")) == [("batched", "10:10:20")]


def test_idle_again_then_threshold_counts_recent_messages_again() -> None:
    doc = BATCHING.replace("quiet: 10m", "quiet: 0s")
    f, _ = storm("10:00", "10:00:10", "10:00:20", doc=doc)
    [single] = f.advance("10:05:20")
    assert single["incident_id"] == "inc-3" and f.wake() is None
    assert modes(f.send("10:06", "a") + f.send("10:06:10", "b")) == [("message", "call")] * 2
    assert modes(f.send("10:06:20", "c")) == [("batched", "10:11:20")]  # a new t0


def test_keys_are_per_plan_and_user() -> None:
    doc = (
        BATCHING
        + """
  q:
    batching: {threshold: 2, window: 60s, every: 5m, quiet: 10m}
    steps: [[{role: user, target: alice, priority: urgent, template: t}]]
"""
    )
    f = Flood(doc)
    out = f.send("10:00", "a", plan="p") + f.send("10:00", "b", plan="q") + f.send("10:00", "c", plan="p")
    out += f.send("10:00", "d", user="bob", plan="p", mode="sms") + f.send("10:00", "e", plan="q")
    assert modes(out) == [("message", "call")] * 3 + [("message", "sms"), ("message", "call")]
    assert modes(f.send("10:00", "f", plan="p")) == [("batched", "10:05:00")]
    assert modes(f.send("10:00", "g", plan="q")) == [("batched", "10:05:00")]
    assert f.wake("bob") is None


def test_plans_without_batching_are_untouched() -> None:
    f, _ = storm("10:00", "10:00:10", "10:00:20")
    m = f.message("10:00:30", "x", plan="q")
    assert not f.control.applies(m)
    assert [e.outcome for e in f.control.on_message(f.state(), m).emitted] == [m]


def test_owner_messages_count() -> None:
    f = Flood(BATCHING)
    f.send("10:00", "inc-1")
    f.send("10:00", "inc-2", role="owner", unresolved="team:gone", priority="low", mode="sms")
    assert modes(f.send("10:00", "inc-3")) == [("batched", "10:05:00")]


def test_a_redelivered_message_is_a_no_op() -> None:
    f = Flood(BATCHING)
    m = f.message("10:00", "inc-1")
    f.feed(m)
    before = f.state().model_dump()
    result = f.control.on_message(f.state(), m)
    assert result.duplicate and result.emitted == [] and result.state.model_dump() == before
    f.send("10:00", "inc-2")
    assert modes(f.send("10:00", "inc-3")) == [("batched", "10:05:00")]  # m counted once: 3 > 2


def test_state_is_not_changed_in_place_and_round_trips_through_json() -> None:
    f, _ = storm("10:00", "10:00:10", "10:00:20", "10:01")
    f.claim("10:02", "inc-4")
    state = f.state()
    dumped = state.model_dump_json()
    f.control.advance(state, us("10:05:20"))
    f.control.on_message(state, f.message("10:01:30", "inc-9"))
    f.control.on_status(state, "inc-3", 1, "claimed", us("10:01:40"))
    assert state.model_dump_json() == dumped
    again = UserFloodState.model_validate_json(dumped)
    a = [e.outcome for e in f.control.advance(state, us("10:05:20")).emitted]
    b = [e.outcome for e in f.control.advance(again, us("10:05:20")).emitted]
    assert a == b and [o.incident_id for o in a] == ["inc-3"]


def test_message_ids_are_deterministic() -> None:
    def run() -> list[str]:
        f, out = storm("10:00", "10:00:10", "10:00:20", "10:01")
        return [o["message_id"] for o in out + f.flush() if o["kind"] == "message"]

    ids = run()
    assert ids == run() and len(set(ids)) == len(ids)
    assert ids[-1] == batch_message_id("p", "alice", us("10:05:20"))
    assert clock({"at": "2026-03-01T10:05:20Z"}) == "10:05:20"


def test_downgrade_counts_held_messages_once_at_their_own_time() -> None:
    def fourth_mode(count: int) -> str:
        doc = (
            BATCHING.replace("quiet: 10m", "quiet: 0s")
            + f"""
users:
  alice:
    contacts: {{call: "+1001", sms: "+1001", email: "alice@x"}}
    downgrade: [{{from: call, to: sms, count: {count}, window: 10m}}]
"""
        )
        f, out = storm("10:00", "10:00:10", "10:00:20", doc=doc)  # the third is held (a call)
        assert modes(out)[-1] == ("batched", "10:05:20")
        assert modes(f.advance("10:05:20")) == [("message", "call")]  # sent at b: not a second call
        [fourth] = f.send("10:05:30", "inc-4")  # idle again (quiet 0): sent now
        return str(fourth["mode"])

    assert fourth_mode(3) == "sms"  # 10:00, 10:00:10 and the held 10:00:20
    assert fourth_mode(4) == "call"


def test_state_keeps_only_what_later_decisions_can_look_at() -> None:
    doc = (
        BATCHING
        + """
users:
  alice:
    contacts: {call: "+1001", sms: "+1001", email: "alice@x"}
    downgrade: [{from: call, to: sms, count: 5, window: 10m}]
"""
    )
    f, _ = storm(*(f"10:0{i}:{s}0" for i in range(5) for s in range(6)), doc=doc)
    f.flush()
    assert f.state().keys["p"].next_at is None and f.state().instances == {}
    f.send("11:00", "late", plan="q")  # an hour later, another plan
    state = f.state()
    assert state.recent == {"call": [us("11:00")]} and state.keys == {}
    assert len(state.model_dump_json()) < 2000

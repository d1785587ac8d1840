"""Spec §7 downgrade, rule by rule, on one user's timeline of messages."""

from __future__ import annotations

from streamproc.engine.core import message_id
from tests.flood.harness import Flood, modes, us


def rules(user: str, contacts: str, *rule: str) -> str:
    return f"users:\n  {user}: {{contacts: {contacts}, downgrade: [{', '.join(rule)}]}}\n"


ALICE = '{call: "+1001", sms: "+1001", email: "alice@x", slack: "UALICE"}'


def test_count_earlier_messages_then_downgrade_with_new_destination_and_id() -> None:
    f = Flood(rules("alice", ALICE, "{from: call, to: slack, count: 2, window: 10m}"))
    assert modes(f.send("10:00", "inc-1")) == [("message", "call")]
    assert modes(f.send("10:01", "inc-2")) == [("message", "call")]
    [third] = f.send("10:02", "inc-3")
    assert (third["mode"], third["destination"], third["downgraded_from"]) == ("slack", "UALICE", "call")
    assert third["message_id"] == message_id("inc-3", 1, 1, 0, 0, "alice", "slack", us("10:02"))
    # The third message's final mode is slack: it does not count as a call; two calls still do.
    assert modes(f.send("10:03", "inc-4")) == [("message", "slack")]


def test_count_is_any_incident_and_plan_and_only_earlier_messages_of_the_mode() -> None:
    f = Flood(rules("alice", ALICE, "{from: call, to: sms, count: 2, window: 10m}"))
    f.send("10:00", "inc-1", plan="p")
    f.send("10:00", "inc-2", plan="q", mode="sms")  # another mode: not counted
    assert modes(f.send("10:01", "inc-3", plan="q")) == [("message", "call")]
    assert modes(f.send("10:01", "inc-4", plan="p")) == [("message", "sms")]


def test_window_is_open_at_its_start_and_closed_at_the_message() -> None:
    f = Flood(rules("alice", ALICE, "{from: call, to: sms, count: 1, window: 10m}"))
    f.send("10:00", "inc-1")
    # 10:10 - 10m = 10:00 is outside (at - window, at]
    assert modes(f.send("10:10", "inc-2")) == [("message", "call")]
    # an earlier message at the same instant (before in §4 order) is inside
    assert modes(f.send("10:10", "inc-3")) == [("message", "sms")]
    f2 = Flood(rules("alice", ALICE, "{from: call, to: sms, count: 1, window: 10m}"))
    f2.send("10:00", "inc-1")
    assert modes(f2.send("10:09:59", "inc-2")) == [("message", "sms")]


def test_exactly_count_earlier_messages_is_enough_one_fewer_is_not() -> None:
    f = Flood(rules("alice", ALICE, "{from: call, to: sms, count: 3, window: 1h}"))
    assert modes(f.send("10:00", "a") + f.send("10:01", "b") + f.send("10:02", "c")) == [("message", "call")] * 3
    assert modes(f.send("10:03", "d")) == [("message", "sms")]


def test_first_listed_rule_that_holds_wins() -> None:
    f = Flood(
        rules(
            "alice",
            ALICE,
            "{from: call, to: slack, count: 2, window: 1h}",
            "{from: call, to: sms, count: 1, window: 1h}",
        )
    )
    f.send("10:00", "a")
    assert modes(f.send("10:01", "b")) == [("message", "sms")]  # one call before: only the second rule holds
    both = Flood(
        rules(
            "alice",
            ALICE,
            "{from: call, to: slack, count: 2, window: 1h}",
            "{from: call, to: sms, count: 2, window: 1h}",
        )
    )
    both.send("10:00", "a")
    both.send("10:01", "b")
    assert modes(both.send("10:02", "c")) == [("message", "slack")]  # two calls before: both hold


def test_rules_apply_again_to_the_new_mode() -> None:
    f = Flood(
        rules(
            "alice",
            ALICE,
            "{from: call, to: sms, count: 1, window: 1h}",
            "{from: sms, to: email, count: 1, window: 1h}",
        )
    )
    assert modes(f.send("10:00", "a")) == [("message", "call")]
    assert modes(f.send("10:01", "b")) == [("message", "sms")]  # one call before; no sms before yet
    [third] = f.send("10:02", "c")  # call -> sms -> email
    assert (third["mode"], third["destination"], third["downgraded_from"]) == ("email", "alice@x", "call")
    assert third["message_id"] == message_id("c", 1, 1, 0, 0, "alice", "email", us("10:02"))


def test_a_mode_the_message_already_had_is_never_taken_again() -> None:
    f = Flood(
        rules(
            "alice",
            ALICE,
            "{from: call, to: sms, count: 1, window: 1h}",
            "{from: sms, to: call, count: 1, window: 1h}",
            "{from: sms, to: slack, count: 1, window: 1h}",
        )
    )
    f.send("10:00", "a", mode="sms")
    f.send("10:00", "b")
    # call -> sms (one call before); sms -> call is skipped (it was call), sms -> slack holds
    [out] = f.send("10:01", "c")
    assert (out["mode"], out["downgraded_from"]) == ("slack", "call")


def test_no_contact_for_the_new_mode_falls_back_to_email_which_is_the_final_mode() -> None:
    bob = '{call: "+1002", email: "bob@x"}'
    f = Flood(
        rules(
            "bob", bob, "{from: call, to: slack, count: 1, window: 1h}", "{from: email, to: sms, count: 5, window: 1h}"
        )
    )
    f.send("10:00", "a", user="bob")
    [out] = f.send("10:01", "b", user="bob")
    assert (out["mode"], out["destination"], out["downgraded_from"]) == ("email", "bob@x", "call")
    assert out["message_id"] == message_id("b", 1, 1, 0, 0, "bob", "email", us("10:01"))
    # counted as an email afterwards: an email rule with count 1 would see it
    f2 = Flood(
        rules(
            "bob", bob, "{from: call, to: slack, count: 1, window: 1h}", "{from: email, to: call, count: 1, window: 1h}"
        )
    )
    f2.send("10:00", "a", user="bob")
    assert modes(f2.send("10:01", "b", user="bob")) == [("message", "email")]  # email -> call: call was had
    assert modes(f2.send("10:02", "c", user="bob", mode="email")) == [("message", "call")]


def test_no_contact_and_no_email_is_undeliverable_no_contact() -> None:
    erin = '{call: "+1005", sms: "+1005"}'
    f = Flood(rules("erin", erin, "{from: call, to: slack, count: 1, window: 1h}"))
    f.send("10:00", "a", user="erin")
    [out] = f.send("10:01", "b", user="erin")
    assert out == {
        "kind": "undeliverable",
        "at": "2026-03-01T10:01:00Z",
        "incident_id": "b",
        "instance": 1,
        "step": 1,
        "user": "erin",
        "reason": "no-contact",
    }
    # not a message: it does not count as a call (or anything) later
    f2 = Flood(rules("erin", erin, "{from: call, to: slack, count: 2, window: 1h}"))
    f2.send("10:00", "a", user="erin")
    f2.send("10:01", "b", user="erin")
    assert modes(f2.send("10:02", "c", user="erin")) == [("undeliverable", "no-contact")]
    assert modes(f2.send("10:03", "d", user="erin")) == [("undeliverable", "no-contact")]


def test_users_without_rules_are_passed_by_untouched() -> None:
    f = Flood(rules("alice", ALICE, "{from: call, to: sms, count: 1, window: 1h}"))
    m = f.message("10:00", "a", user="erin")
    assert not f.control.applies(m)
    for _ in range(3):
        [out] = f.control.on_message(None, m).emitted
        assert out.outcome is m


def test_a_rule_is_skipped_when_its_result_is_a_mode_the_message_had_not_when_only_its_to_was() -> None:
    # Spec §7 (2026-12-06): the rule's *result* decides: its `to`, or email without that contact.
    # bob has no slack contact (any more: his message still went by slack). slack -> call, then
    # call -> slack: its result is email (no slack contact), which the message never had, so it
    # holds although slack itself was the message's first mode.
    bob = '{call: "+1002", email: "bob@x"}'
    f = Flood(
        rules(
            "bob", bob, "{from: slack, to: call, count: 1, window: 1h}", "{from: call, to: slack, count: 1, window: 1h}"
        )
    )
    f.send("10:00", "a", user="bob", mode="call")
    stale = f.message("10:00", "b", user="bob", mode="call").model_copy(update={"mode": "slack", "destination": "UBOB"})
    f.feed(stale)  # one slack: the next slack -> call holds
    later = f.message("10:01", "c", user="bob", mode="call").model_copy(update={"mode": "slack", "destination": "UBOB"})
    [out] = f.feed(later)
    assert (out["mode"], out["destination"], out["downgraded_from"]) == ("email", "bob@x", "slack")
    # and a rule whose result is a mode the message had is skipped: call -> email after email
    f2 = Flood(
        rules(
            "bob",
            bob,
            "{from: call, to: slack, count: 1, window: 1h}",
            "{from: email, to: call, count: 1, window: 1h}",
            "{from: email, to: sms, count: 1, window: 1h}",
        )
    )
    f2.send("10:00", "a", user="bob")
    f2.send("10:00", "b", user="bob", mode="email")
    # call -> slack goes by email; email -> call is skipped (call was had); email -> sms: email again, skipped
    [out] = f2.send("10:01", "c", user="bob")
    assert (out["mode"], out["downgraded_from"]) == ("email", "call")

"""Spec §3 Templates and §4 Outcomes (fields, order, message ids), §2 dedup keys."""

from __future__ import annotations

import hashlib
import json

from streamproc.wire.events import parse_event
from tests.engine.harness import Timeline


def render(
    templates: str, mode_user: str = "alice", priority: str = "high", context: dict | None = None, app: str = "app"
) -> dict:
    tl = Timeline(f"""
    applications:
      app: {{}}
      other: {{}}
    plans:
      p:
        steps:
          - - {{role: user, target: {mode_user}, priority: {priority}, template: tt}}
    templates:
      tt:
{templates}
    """)
    tl.trigger(
        "10:00", application=app, context=context if context is not None else {"summary": "disk full", "host": "db01"}
    )
    return tl.run()[0]


def test_lookup_order_app_mode_then_app_default_then_default_mode_then_default_default() -> None:
    t = """
        app: {sms: {body: "app-sms"}, default: {body: "app-default"}}
        default: {sms: {body: "default-sms"}, default: {body: "default-default"}}
    """
    assert render(t)["body"] == "app-sms"
    assert render(t, priority="medium")["body"] == "app-default"  # email
    assert render(t, app="other")["body"] == "default-sms"
    assert render(t, app="other", priority="medium")["body"] == "default-default"


def test_entry_fields_do_not_fall_through_to_another_entry() -> None:
    t = """
        default: {default: {subject: "S", body: "B"}, sms: {body: "only body"}}
    """
    out = render(t)
    assert (out["subject"], out["body"]) == ("", "only body")


def test_variables_context_incident_and_iris_alias() -> None:
    fields = ["id", "instance", "step", "priority", "role", "target", "user", "mode", "created"]
    body = "|".join(["{{ summary }}"] + ["{{ incident." + f + " }}" for f in fields])
    t = f"""
        default: {{default: {{subject: "{{{{ iris.plan }}}}/{{{{ incident.application }}}}", body: "{body}"}}}}
    """
    out = render(t)
    assert out["subject"] == "p/app"
    assert out["body"] == "disk full|inc-1|1|1|high|user|alice|alice|sms|2026-03-01T10:00:00Z"
    assert out["render_error"] is False


def test_undefined_variables_render_empty() -> None:
    out = render('        default: {default: {body: "[{{ nope }}][{{ nope.deeper }}]"}}\n')
    assert (out["body"], out["render_error"]) == ("[][]", False)


def test_missing_template_entry_still_pages_with_render_error() -> None:
    out = render('        app: {call: {body: "x"}}\n')
    assert out["kind"] == "message" and out["render_error"] is True
    assert "tt" in out["subject"]
    assert "disk full" in out["body"] and "db01" in out["body"]


def test_template_that_does_not_compile_still_pages() -> None:
    out = render('        default: {default: {body: "{{ summary "}}\n')
    assert out["render_error"] is True and "tt" in out["subject"] and '"host": "db01"' in out["body"]


def test_template_that_raises_still_pages() -> None:
    out = render('        default: {default: {body: "{{ 1 / 0 }}"}}\n')
    assert out["render_error"] is True and "ZeroDivisionError" in out["body"]


def test_templates_run_in_a_sandbox() -> None:
    # Unsafe attributes are not reachable: they render as undefined (empty), never Python internals.
    out = render('        default: {default: {body: "[{{ summary.__class__.__mro__ }}]"}}\n')
    assert (out["body"], out["render_error"]) == ("[]", False)
    # What the sandbox refuses outright still pages, flagged as a render error.
    out = render('        default: {default: {body: "{{ range(10**9) | list }}"}}\n')
    assert out["render_error"] is True and "OverflowError" in out["body"]


def test_message_has_exactly_the_spec_fields() -> None:
    out = render('        default: {default: {subject: "s", body: "b"}}\n')
    assert list(out) == [
        "kind",
        "at",
        "incident_id",
        "instance",
        "plan",
        "application",
        "step",
        "notification",
        "repeat",
        "role",
        "target",
        "user",
        "priority",
        "mode",
        "destination",
        "subject",
        "body",
        "render_error",
        "message_id",
    ]


def test_message_id_is_deterministic_and_distinct_per_send() -> None:
    plan = """
    plans:
      p:
        steps:
          - - {role: team, target: db, priority: high, template: t, repeat: 2, wait: 60}
    """
    a = Timeline(plan).trigger("10:00").run()
    b = Timeline(plan).trigger("10:00").run()
    ids = [o["message_id"] for o in a if o["kind"] == "message"]
    assert ids == [o["message_id"] for o in b if o["kind"] == "message"]
    assert len(set(ids)) == len(ids) == 9
    # an unclaim re-page is a new message, not a duplicate of the first run
    c = Timeline(plan).trigger("10:00").claim("10:00:30").unclaim("10:10").run()
    c_ids = [o["message_id"] for o in c if o["kind"] == "message"]
    assert len(set(c_ids)) == len(c_ids)


def test_outcomes_are_ordered_by_at_incident_step_notification_repeat_user_mode() -> None:
    plan = """
    plans:
      p:
        steps:
          - - {role: user, target: carol, priority: high, template: t, repeat: 1, wait: 60}
            - {role: team, target: db, priority: medium, template: t}
          - - {role: user, target: alice, priority: high, template: t}
    """
    tl = Timeline(plan).trigger("10:00", incident="b").trigger("10:00", incident="a")
    keys = [
        (
            o["at"],
            o["incident_id"],
            o.get("step", 99),
            o.get("notification", 99),
            o.get("repeat", 99),
            o.get("user", ""),
            o.get("mode", ""),
        )
        for o in tl.run()
    ]
    assert keys == sorted(keys)
    assert [(k[1], k[2], k[3], k[5]) for k in keys[:5]] == [
        ("a", 1, 0, "carol"),
        ("a", 1, 1, "alice"),
        ("a", 1, 1, "bob"),
        ("a", 1, 1, "carol"),
        ("b", 1, 0, "carol"),
    ]


def test_dedup_key_names_the_incident() -> None:
    event = parse_event(
        json.dumps(
            {
                "type": "trigger",
                "at": "2026-03-01T10:00:00Z",
                "application": "app",
                "plan": "p",
                "dedup_key": "disk/db01",
            }
        )
    )
    assert event.incident_id == "app-" + hashlib.sha256(b"disk/db01").hexdigest()[:12]


def test_triggers_with_the_same_dedup_key_are_one_incident() -> None:
    plan = "plans:\n  p:\n    steps:\n      - - {role: user, target: bob, priority: high, template: t}\n"
    tl = Timeline(plan)
    tl.events = [
        {"type": "trigger", "at": "2026-03-01T10:00:00Z", "application": "app", "plan": "p", "dedup_key": "k"},
        {"type": "trigger", "at": "2026-03-01T10:01:00Z", "application": "app", "plan": "p", "dedup_key": "k"},
    ]
    out = tl.run()
    assert [o["kind"] for o in out] == ["message", "exhausted"]
    assert out[0]["incident_id"] == "app-" + hashlib.sha256(b"k").hexdigest()[:12]


def test_invalid_events_are_rejected_with_the_field_named() -> None:
    plan = "plans:\n  p:\n    steps:\n      - - {role: user, target: bob, priority: high, template: t}\n"
    tl = Timeline(plan)
    tl.events = [
        {"type": "trigger", "application": "app", "plan": "p", "incident_id": "x"},
        {"type": "explode", "at": "2026-03-01T10:00:00Z", "incident_id": "x"},
        {"type": "trigger", "at": "not a time", "incident_id": "x", "application": "app", "plan": "p"},
    ]
    assert tl.run() == []
    reasons = [r for _, r in tl.rejected]
    assert reasons[0].startswith("at:") and "type" in reasons[1] and reasons[2].startswith("at")

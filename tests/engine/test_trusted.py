"""The engine builds outcomes, audits and states without pydantic validation and serialises
outcomes from their fields (issue #10): these tests hold that shortcut to what the validated
models give, so a field added to a model without updating the builders fails here."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from streamproc.engine.core import Engine
from streamproc.engine.state import IncidentState, Pending
from streamproc.replay import replay
from streamproc.wire.outcomes import (
    OUTCOME_ADAPTER,
    Audit,
    Batched,
    BatchInfo,
    Dropped,
    Exhausted,
    Message,
    Undeliverable,
    new_audit,
    new_dropped,
    new_exhausted,
    new_message,
    new_undeliverable,
    outcome_dict,
    outcome_json,
)
from tests.engine.harness import BASE, make_config

AT = datetime(2026, 3, 1, 10, 5, 0, 250_000, tzinfo=UTC)

MESSAGE_ARGS = dict(
    at=AT,
    incident_id="inc-1",
    instance=2,
    plan="p",
    application="app",
    step=1,
    notification=0,
    repeat=1,
    role="team",
    target="db",
    user="alice",
    priority="high",
    mode="sms",
    destination="+1001",
    subject="",
    body='caf\u00e9 \u2603 "q"\n',
    render_error=False,
    message_id="0" * 32,
    unresolved=None,
    email_html=None,
)


def _same(built: object, validated: object) -> None:
    assert built == validated
    assert type(built) is type(validated)
    assert list(built.__dict__) == list(validated.__dict__)  # field order: the JSON key order
    assert built.__pydantic_fields_set__ == validated.__pydantic_fields_set__  # type: ignore[attr-defined]
    assert built.model_dump_json() == validated.model_dump_json()  # type: ignore[attr-defined]


def test_builders_equal_validated_models() -> None:
    _same(new_message(**MESSAGE_ARGS), Message(**MESSAGE_ARGS))  # type: ignore[arg-type]
    args = dict(at=AT, incident_id="inc-1", instance=1, step=2, user=None, reason="unresolved")
    _same(new_undeliverable(**args), Undeliverable(**args))  # type: ignore[arg-type]
    _same(new_dropped(AT, "inc-1", 1, 2, "bob"), Dropped(at=AT, incident_id="inc-1", instance=1, step=2, user="bob"))
    _same(new_exhausted(AT, "inc-1", 3), Exhausted(at=AT, incident_id="inc-1", instance=3))
    _same(
        new_audit("claimed", AT, "inc-1", 1, "alice", 2),
        Audit.model_validate(
            {"kind": "claimed", "at": AT, "incident_id": "inc-1", "instance": 1, "owner": "alice", "step": 2}
        ),
    )


def test_built_models_copy_with_update_like_validated_ones() -> None:
    built = new_message(**MESSAGE_ARGS)  # type: ignore[arg-type]
    copied = built.model_copy(update={"mode": "email", "downgraded_from": "sms"})
    assert copied.mode == "email" and copied.downgraded_from == "sms" and built.mode == "sms"
    assert "downgraded_from" in copied.model_fields_set and "downgraded_from" not in built.model_fields_set


def _slow_dict(outcome: object) -> dict[str, object]:
    data = outcome.model_dump(mode="json")  # type: ignore[attr-defined]
    for name in ("unresolved", "email_html", "downgraded_from", "batch"):
        if name in data and data[name] is None:
            del data[name]
    return {"kind": data.pop("kind"), **data}


def test_outcome_dict_and_json_match_pydantic_serialisation() -> None:
    paris = timezone(timedelta(hours=1))
    outcomes = [
        new_message(**MESSAGE_ARGS),  # type: ignore[arg-type]
        Message(
            **{
                **MESSAGE_ARGS,
                "unresolved": "team:x",
                "email_html": "<p>\u00e9</p>",
                "at": AT.astimezone(paris),
                "downgraded_from": "call",
            }
        ),  # type: ignore[arg-type]
        Message(**{**MESSAGE_ARGS, "batch": BatchInfo(count=2, incident_ids=["a", "b"])}),  # type: ignore[arg-type]
        new_message(**{**MESSAGE_ARGS, "unresolved": "team:x", "email_html": "<p>\u00e9</p>"}),  # type: ignore[arg-type]
        new_message(**MESSAGE_ARGS).model_copy(update={"mode": "email", "downgraded_from": "sms"}),  # type: ignore[arg-type]
        new_undeliverable(AT, "inc-1", 1, 2, None, "no-mode"),
        new_undeliverable(AT, "inc-\u00e9", 1, 2, "bob", "no-contact"),
        new_dropped(AT, "inc-1", 1, 2, "bob"),
        new_exhausted(datetime(2026, 3, 1, tzinfo=UTC), "inc-1", 3),
        Batched(at=AT, incident_id="inc-1", instance=1, step=1, user="bob", batch_at=AT + timedelta(minutes=5)),
    ]
    for outcome in outcomes:
        expected = _slow_dict(outcome)
        assert list(outcome_dict(outcome).items()) == list(expected.items())  # type: ignore[arg-type]
        assert outcome_json(outcome) == json.dumps(expected)  # type: ignore[arg-type]


def test_replayed_outcomes_and_states_survive_validation_round_trips() -> None:
    """Everything the engine built without validation validates back to itself."""
    config = make_config(
        BASE,
        """
plans:
  p:
    owner: dave
    steps:
      - - {role: oncall, target: db, priority: high, template: t, repeat: 2, wait: 60}
        - {role: oncall-tertiary, target: db, priority: low, template: t}
      - - {role: manager, target: db, priority: urgent, template: t}
""",
    )
    lines = [
        json.dumps(
            {
                "type": "trigger",
                "at": "2026-03-01T10:00:00Z",
                "incident_id": "a",
                "application": "app",
                "plan": "p",
                "context": {"summary": "disk"},
            }
        ),
        json.dumps(
            {
                "type": "trigger",
                "at": "2026-03-01T10:00:30Z",
                "incident_id": "b",
                "application": "app",
                "plan": "p",
                "context": {"summary": "cpu"},
            }
        ),
        json.dumps({"type": "claim", "at": "2026-03-01T10:01:30Z", "incident_id": "b", "owner": "bob"}),
    ]
    report = replay(Engine(config), lines)
    outcomes = [e.outcome for e in report.emitted]
    assert {o.kind for o in outcomes} >= {"message", "exhausted"}
    for outcome in outcomes:
        assert OUTCOME_ADAPTER.validate_json(outcome.model_dump_json()) == outcome
    for state in report.states.values():
        again = IncidentState.model_validate_json(state.model_dump_json())
        assert again == state
        assert all(isinstance(p, Pending) for p in again.pending)
    clone = report.states["a"].clone()
    assert clone == report.states["a"] and clone is not report.states["a"]


def test_texts_rendered_once_per_instance_still_differ_where_the_template_reads_the_send() -> None:
    """The engine renders once for sends of an instance that agree on what the template reads:
    a text that reads the user (simply or through Jinja logic) still differs per user."""
    from tests.engine.harness import Timeline

    tl = Timeline("""
plans:
  p:
    steps:
      - - {role: team, target: db, priority: high, template: t2, repeat: 1, wait: 60}
        - {role: team, target: db, priority: high, template: t3}
templates:
  t2:
    default:
      default: {subject: "{{ summary }}", body: "to {{ incident.user }} as {{ iris.role }} step {{ incident.step }}"}
  t3:
    default:
      default:
        subject: "{{ summary }}"
        body: "{% if incident.user == 'bob' %}bob!{% else %}{{ incident.user|upper }}{% endif %}"
""")
    out = [o for o in tl.trigger("10:00").run() if o["kind"] == "message"]
    bodies = {(o["notification"], o["repeat"], o["user"]): o["body"] for o in out}
    for user in ("alice", "bob", "carol"):
        assert bodies[(0, 0, user)] == bodies[(0, 1, user)] == f"to {user} as team step 1"
    assert [bodies[(1, 0, u)] for u in ("alice", "bob", "carol")] == ["ALICE", "bob!", "CAROL"]
    assert {o["subject"] for o in out} == {"disk full"}


def test_new_state_equals_a_validated_one_and_owns_its_lists() -> None:
    built, validated = IncidentState.new("inc-1"), IncidentState(incident_id="inc-1")
    assert built == validated and list(built.__dict__) == list(validated.__dict__)
    assert built.model_fields_set == validated.model_fields_set
    assert built.model_dump_json() == validated.model_dump_json()
    other = IncidentState.new("inc-2")
    mutable = [name for name, value in validated.__dict__.items() if isinstance(value, list | dict)]
    assert {"context", "pending", "seen_events"} <= set(mutable)
    for name in mutable:
        assert getattr(built, name) is not getattr(other, name)


def test_cached_targets_resolve_as_resolve_targets_at_every_time() -> None:
    from streamproc.engine.targets import Targets, resolve_targets
    from streamproc.timeutil import parse_time, to_us

    config = make_config(
        BASE,
        """
users:
  erin: {contacts: {email: "erin@x"}, active: false}
teams:
  db:
    members: [alice, bob, erin, alice]
    manager: dave
    rotations:
      primary: {users: [alice, bob, carol, erin], start: "2026-03-01T00:00:00Z", shift: 5h}
      secondary: {users: [carol, alice], start: "2026-03-01T03:00:00Z", shift: 1d}
    overrides:
      - {role: primary, user: dave, start: "2026-03-01T10:00:00Z", end: "2026-03-01T12:00:00Z"}
      - {role: oncall-primary, user: erin, start: "2026-03-01T11:00:00Z", end: "2026-03-01T11:30:00Z"}
      - {role: secondary, user: bob, start: "2026-02-27T00:00:00Z", end: "2026-02-28T00:00:00Z"}
""",
    )
    targets = Targets(config)
    roles = [
        ("user", "bob"),
        ("user", "erin"),
        ("user", "nobody"),
        ("team", "db"),
        ("team", "nope"),
        ("manager", "db"),
        ("oncall", "db"),
        ("oncall-primary", "db"),
        ("oncall-secondary", "db"),
        ("oncall-tertiary", "db"),
        ("oncall", "nope"),
    ]
    t0 = to_us(parse_time("2026-02-25T00:00:00Z"))
    seen = set()
    for minute in range(0, 10 * 24 * 60, 7):
        at = t0 + minute * 60_000_000
        for role, target in roles:
            users = targets.resolve(role, target, at)
            assert list(users) == resolve_targets(config, role, target, at), (role, target, at)
            seen.add((role, users))
    assert ("oncall", ("dave",)) in seen and ("oncall", ()) in seen and ("oncall-secondary", ("bob",)) in seen


def test_a_state_loads_its_plan_snapshot_as_the_configured_plan_only_when_equal() -> None:
    config = make_config(
        BASE,
        """
plans:
  p:
    steps:
      - - {role: team, target: db, priority: high, template: t, repeat: 1, wait: 60}
""",
    )
    engine = Engine(config)
    report = replay(
        engine,
        [
            json.dumps(
                {"type": "trigger", "at": "2026-03-01T10:00:00Z", "incident_id": "a", "application": "app", "plan": "p"}
            )
        ],
        until_us=1_772_359_200_000_000,
    )  # 2026-03-01T10:00:00Z: the instance is escalating
    raw = report.states["a"].model_dump_json()
    loaded = IncidentState.model_validate_json(raw)
    assert loaded == report.states["a"] and loaded.plan is config.plans["p"]
    edited = json.loads(raw)
    edited["plan"]["steps"][0][0]["repeat"] = 3  # a snapshot of an older version of the plan
    other = IncidentState.model_validate_json(json.dumps(edited))
    assert other.plan is not None and other.plan.steps[0][0].repeat == 3

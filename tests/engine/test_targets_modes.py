"""Spec §3 Targets, Mode and destination, and §4 owner messages."""

from __future__ import annotations

import pytest

from streamproc.config.models import Team
from streamproc.engine.targets import rotation_holder
from streamproc.timeutil import parse_time, to_us
from tests.engine.harness import Timeline, make_config, sends


def plan(*notes: str, owner: str | None = "dave") -> str:
    lines = "\n".join(f"          - - {n}" for n in notes)
    own = f"\n        owner: {owner}" if owner else ""
    return f"""
    plans:
      p:{own}
        steps:
{lines}
"""


def one(note: str, owner: str | None = "dave", **extra: str) -> list[dict]:
    return Timeline(plan(note, owner=owner), *extra.values()).trigger("10:00").run()


def test_user_team_manager_roles() -> None:
    assert [u for _, u, _ in sends(one("{role: user, target: bob, priority: high, template: t}"))] == ["bob"]
    assert [u for _, u, _ in sends(one("{role: team, target: db, priority: high, template: t}"))] == [
        "alice",
        "bob",
        "carol",
    ]
    assert [u for _, u, _ in sends(one("{role: manager, target: db, priority: high, template: t}"))] == ["dave"]


ROT = {"users": ["alice", "bob", "carol"], "start": "2026-03-01T00:00:00Z", "shift": 86400}


@pytest.mark.parametrize(
    ("when", "holder"),
    [
        ("2026-03-01T00:00:00Z", "alice"),
        ("2026-03-01T23:59:59Z", "alice"),
        ("2026-03-02T00:00:00Z", "bob"),
        ("2026-03-03T12:00:00Z", "carol"),
        ("2026-03-04T00:00:00Z", "alice"),
        # before the start: cyclic in the other direction
        ("2026-02-28T23:59:59Z", "carol"),
        ("2026-02-27T00:00:00Z", "bob"),
        ("2026-02-26T00:00:00Z", "alice"),
    ],
)
def test_rotation_holder_is_cyclic_both_ways(when: str, holder: str) -> None:
    team = Team.model_validate({"rotations": {"primary": ROT}})
    assert rotation_holder(team, "primary", to_us(parse_time(when))) == holder


def test_override_last_matching_entry_wins_and_end_is_exclusive() -> None:
    team = Team.model_validate(
        {
            "rotations": {"primary": ROT, "secondary": ROT},
            "overrides": [
                {"role": "primary", "user": "dave", "start": "2026-03-01T10:00:00Z", "end": "2026-03-01T12:00:00Z"},
                {
                    "role": "oncall-primary",
                    "user": "erin",
                    "start": "2026-03-01T11:00:00Z",
                    "end": "2026-03-01T12:00:00Z",
                },
                {"role": "secondary", "user": "zed", "start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"},
            ],
        }
    )
    at = lambda s: to_us(parse_time(s))  # noqa: E731
    assert rotation_holder(team, "primary", at("2026-03-01T09:59:59Z")) == "alice"
    assert rotation_holder(team, "primary", at("2026-03-01T10:00:00Z")) == "dave"
    assert rotation_holder(team, "primary", at("2026-03-01T11:30:00Z")) == "erin"
    assert rotation_holder(team, "primary", at("2026-03-01T12:00:00Z")) == "alice"


def test_oncall_named_rotation_and_oncall_alias() -> None:
    extra = """
    teams:
      db:
        members: [alice]
        rotations:
          primary: {users: [alice], start: "2026-01-01T00:00:00Z", shift: 7d}
          secondary: {users: [carol, bob], start: "2026-03-01T00:00:00Z", shift: 5h}
    """
    tl = Timeline(
        plan(
            "{role: oncall, target: db, priority: high, template: t}",
            "{role: oncall-secondary, target: db, priority: high, template: t}",
        ),
        extra,
    )
    assert [u for _, u, _ in sends(tl.trigger("10:00").run())] == ["alice", "carol"]


def test_targets_resolve_when_the_step_starts_and_repeats_keep_the_same_users() -> None:
    extra = """
    teams:
      db:
        members: [alice]
        rotations:
          primary: {users: [alice, bob], start: "2026-03-01T00:00:00Z", shift: 10h}
    """
    tl = Timeline(
        plan(
            "{role: oncall, target: db, priority: high, template: t, repeat: 3, wait: 1h}",
            "{role: oncall, target: db, priority: high, template: t}",
        ),
        extra,
    )
    # step 1 starts 09:00 (alice holds until 10:00); repeats at 10:00, 11:00, 12:00 stay alice;
    # step 2 starts 13:00 and resolves again: bob.
    assert sends(tl.trigger("09:00").run()) == [
        ("09:00:00", "alice", "sms"),
        ("10:00:00", "alice", "sms"),
        ("11:00:00", "alice", "sms"),
        ("12:00:00", "alice", "sms"),
        ("13:00:00", "bob", "sms"),
    ]


def test_dynamic_targets_come_from_the_trigger() -> None:
    tl = Timeline(plan("{dynamic: 1, priority: high, template: t}"))
    tl.trigger("10:00", dynamic_targets=[{"role": "user", "target": "alice"}, {"role": "manager", "target": "db"}])
    assert [u for _, u, _ in sends(tl.run())] == ["dave"]
    msg = next(o for o in tl.run() if o["kind"] == "message")
    assert (msg["role"], msg["target"]) == ("manager", "db")


def test_trigger_whose_dynamic_targets_do_not_cover_the_plan_is_rejected() -> None:
    tl = Timeline(plan("{dynamic: 1, priority: high, template: t}"))
    tl.trigger("10:00", dynamic_targets=[{"role": "user", "target": "alice"}])
    assert tl.run() == []
    assert "dynamic_targets" in tl.rejected[0][1]


@pytest.mark.parametrize("field,value", [("application", "nope"), ("plan", "nope")])
def test_trigger_with_unknown_application_or_plan_is_rejected_and_nothing_else_affected(field: str, value: str) -> None:
    tl = Timeline(plan("{role: user, target: bob, priority: high, template: t}"))
    tl.trigger("10:00", incident="good").trigger("10:00", incident="bad", **{field: value})
    out = tl.run()
    assert {o["incident_id"] for o in out} == {"good"}
    assert tl.rejected and field in tl.rejected[0][1]


def test_unknown_users_or_teams_in_dynamic_targets_resolve_to_nobody() -> None:
    tl = Timeline(plan("{dynamic: 0, priority: high, template: t}"))
    tl.trigger("10:00", dynamic_targets=[{"role": "team", "target": "nosuch"}])
    out = tl.run()
    owner = [o for o in out if o["kind"] == "message"]
    assert len(owner) == 1 and owner[0]["user"] == "dave" and owner[0]["unresolved"] == "team:nosuch"


def test_inactive_users_are_left_out_and_a_user_appears_once_per_notification() -> None:
    extra = """
    users:
      bob: {contacts: {sms: "+1002"}, active: false}
    teams:
      db: {members: [alice, bob, alice, carol, carol], manager: dave}
    """
    out = Timeline(plan("{role: team, target: db, priority: high, template: t}"), extra).trigger("10:00").run()
    assert [u for _, u, _ in sends(out)] == ["alice", "carol"]


def test_optional_notification_resolving_to_nobody_is_skipped() -> None:
    extra = "teams:\n  db: {members: []}\n"
    out = (
        Timeline(plan("{role: team, target: db, priority: high, template: t, optional: true}"), extra)
        .trigger("10:00")
        .run()
    )
    assert [o["kind"] for o in out] == ["exhausted"]


def test_unresolved_notification_tells_the_owner_once_at_low_priority() -> None:
    extra = "teams:\n  db: {members: []}\n"
    out = (
        Timeline(
            plan(
                "{role: team, target: db, priority: urgent, template: t, repeat: 3, wait: 60}",
                "{role: user, target: alice, priority: high, template: t}",
            ),
            extra,
        )
        .trigger("10:00")
        .run()
    )
    owner = [o for o in out if o["kind"] == "message" and o["role"] == "owner"]
    assert len(owner) == 1
    m = owner[0]
    assert (m["at"], m["user"], m["priority"], m["repeat"], m["notification"], m["unresolved"], m["mode"]) == (
        "2026-03-01T10:00:00Z",
        "dave",
        "low",
        0,
        0,
        "team:db",
        "email",
    )
    assert "team:db" in m["body"]
    # the unresolved notification's wait still shapes the schedule: step 2 at 10:04
    assert sends(out)[-1] == ("10:04:00", "alice", "sms")


@pytest.mark.parametrize("owner_cfg,owner", [("", None), ("users:\n  dave: {active: false}\n", "dave")])
def test_owner_who_cannot_be_told_gives_undeliverable_unresolved(owner_cfg: str, owner: str | None) -> None:
    extra = "teams:\n  db: {members: []}\n" + owner_cfg
    out = (
        Timeline(plan("{role: team, target: db, priority: high, template: t}", owner=owner), extra)
        .trigger("10:00")
        .run()
    )
    assert out[0] == {
        "kind": "undeliverable",
        "at": "2026-03-01T10:00:00Z",
        "incident_id": "inc-1",
        "instance": 1,
        "step": 1,
        "user": owner,
        "reason": "unresolved",
    }


# ---- modes ------------------------------------------------------------------------------------
MODES = """
applications:
  app: {allowed_modes: [call, sms, email, slack, drop], default_modes: {high: slack}}
users:
  erin:
    contacts: {call: "+2", sms: "+2", email: "erin@x", slack: "UERIN"}
    modes: {high: call, low: sms}
    app_modes: {app: {high: sms}}
"""


def mode_for(users_yaml: str, priority: str = "high", app_yaml: str = "") -> dict:
    docs = [MODES, users_yaml] + ([app_yaml] if app_yaml else [])
    tl = Timeline(plan(f"{{role: user, target: erin, priority: {priority}, template: t}}"), *docs)
    return tl.trigger("10:00").run()[0]


def test_mode_precedence_app_modes_then_app_default_then_user_modes_then_global() -> None:
    assert mode_for("")["mode"] == "sms"  # user app_modes
    assert (
        mode_for("users:\n  erin: {contacts: {call: '+2', slack: 'UE', sms: '+2'}, modes: {high: call}}\n")["mode"]
        == "slack"
    )  # application default_modes
    assert (
        mode_for(
            "users:\n  erin: {contacts: {call: '+2', sms: '+2'}, modes: {high: call}}\n",
            app_yaml="applications:\n  app: {}\n",
        )["mode"]
        == "call"
    )  # user modes
    assert (
        mode_for("users:\n  erin: {contacts: {call: '+2', sms: '+2'}}\n", app_yaml="applications:\n  app: {}\n")["mode"]
        == "sms"
    )  # global priorities
    assert (
        mode_for(
            "users:\n  erin: {contacts: {call: '+2', sms: '+2'}}\n",
            priority="urgent",
            app_yaml="applications:\n  app: {}\npriorities: {urgent: sms}\n",
        )["mode"]
        == "sms"
    )


def test_modes_not_allowed_by_the_application_are_skipped() -> None:
    app = "applications:\n  app: {allowed_modes: [email, call], default_modes: {high: slack}}\n"
    assert mode_for("", app_yaml=app)["mode"] == "call"  # app_modes sms, default slack not allowed; user modes call


def test_no_allowed_mode_is_undeliverable_no_mode() -> None:
    app = "applications:\n  app: {allowed_modes: [webhook]}\n"
    out = mode_for("", app_yaml=app)
    assert out == {
        "kind": "undeliverable",
        "at": "2026-03-01T10:00:00Z",
        "incident_id": "inc-1",
        "instance": 1,
        "step": 1,
        "user": "erin",
        "reason": "no-mode",
    }


def test_drop_mode_sends_nothing() -> None:
    out = mode_for("users:\n  erin: {app_modes: {app: {high: drop}}}\n")
    assert out == {
        "kind": "dropped",
        "at": "2026-03-01T10:00:00Z",
        "incident_id": "inc-1",
        "instance": 1,
        "step": 1,
        "user": "erin",
    }


def test_missing_contact_falls_back_to_email_even_if_not_allowed() -> None:
    app = "applications:\n  app: {allowed_modes: [sms]}\n"
    out = mode_for("users:\n  erin: {contacts: {email: 'erin@x'}, app_modes: {}, modes: {}}\n", app_yaml=app)
    assert (out["mode"], out["destination"]) == ("email", "erin@x")


def test_no_contact_and_no_email_is_undeliverable_no_contact() -> None:
    out = mode_for("users:\n  erin: {contacts: {call: '+2'}}\n")
    assert (out["kind"], out["reason"]) == ("undeliverable", "no-contact")


def test_every_scheduled_send_gets_an_outcome() -> None:
    # repeat 2 to a user with no contact: three undeliverable outcomes at the three send times.
    tl = Timeline(
        plan("{role: user, target: erin, priority: high, template: t, repeat: 2, wait: 60}"),
        MODES,
        "users:\n  erin: {contacts: {}}\n",
    )
    out = tl.trigger("10:00").run()
    assert [(o["kind"], o["at"][11:16]) for o in out] == [
        ("undeliverable", "10:00"),
        ("undeliverable", "10:01"),
        ("undeliverable", "10:02"),
        ("exhausted", "10:03"),
    ]


def test_config_defaults_fill_missing_priorities() -> None:
    cfg = make_config("priorities: {urgent: sms}\n")
    assert cfg.priorities == {"urgent": "sms", "high": "sms", "medium": "email", "low": "email"}

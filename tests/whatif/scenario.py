"""A small plan change whose what-if difference is worked out by hand in test_diff.py."""

from __future__ import annotations

import json
from pathlib import Path

COMMON = """
applications:
  mon: {}
users:
  alice: {contacts: {sms: "+1001", email: "alice@x"}}
  bob: {contacts: {sms: "+1002", email: "bob@x"}}
  carol: {contacts: {email: "carol@x"}}
  erin: {contacts: {}}
teams:
  ops:
    members: [alice, bob]
    manager: carol
    rotations:
      primary: {users: [alice, bob], start: "2026-03-02T00:00:00Z", shift: 1d}
templates:
  t: {default: {default: {subject: "{{ summary }}", body: "{{ summary }} ({{ incident.id }})"}}}
  t2: {default: {default: {subject: "{{ summary }}", body: "{{ summary | nosuchfilter }}"}}}
"""

BASELINE = (
    COMMON
    + """
plans:
  web:
    owner: carol
    steps:
      - - {role: oncall, target: ops, priority: high, template: t, repeat: 2, wait: 5m}
      - - {role: manager, target: ops, priority: urgent, template: t}
  db:
    steps:
      - - {role: user, target: bob, priority: high, template: t}
  api:
    steps:
      - - {role: team, target: ops, priority: medium, template: t}
"""
)

NEW = (
    COMMON
    + """
plans:
  web:
    owner: carol
    steps:
      - - {role: oncall, target: ops, priority: high, template: t, repeat: 1, wait: 10m}
      - - {role: manager, target: ops, priority: urgent, template: t2}
  db:
    steps:
      - - {role: user, target: erin, priority: high, template: t}
  api:
    steps:
      - - {role: user, target: erin, priority: high, template: t, wait: 10m}
      - - {role: team, target: ops, priority: medium, template: t}
"""
)


def trigger(incident: str, at: str, plan: str) -> dict[str, object]:
    return {
        "type": "trigger",
        "at": at,
        "incident_id": incident,
        "application": "mon",
        "plan": plan,
        "context": {"summary": f"{plan} down"},
    }


EVENTS = [
    trigger("inc-a", "2026-03-02T10:00:00Z", "web"),  # alice on call (Monday)
    {"type": "claim", "at": "2026-03-02T10:07:00Z", "incident_id": "inc-a", "owner": "alice"},
    trigger("inc-d", "2026-03-02T12:00:00Z", "api"),
    {"type": "resolve", "at": "2026-03-02T12:30:00Z", "incident_id": "inc-d"},
    trigger("inc-c", "2026-03-03T02:00:00Z", "db"),
    trigger("inc-b", "2026-03-03T23:30:00Z", "web"),  # bob on call (Tuesday), never claimed
]


def write(tmp: Path) -> tuple[Path, Path, Path]:
    base, new, events = tmp / "baseline.yaml", tmp / "new.yaml", tmp / "events.jsonl"
    base.write_text(BASELINE)
    new.write_text(NEW)
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return base, new, events

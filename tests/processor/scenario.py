"""The configuration and events the live processor tests share."""

from __future__ import annotations

import json
from typing import Any

from tests.harness import iso_ms

CONFIG = """
applications:
  app: {}
users:
  alice: {contacts: {sms: "+1001", email: "alice@x"}}
  bob: {contacts: {sms: "+1002", email: "bob@x"}}
  carol: {contacts: {email: "carol@x"}}
  dave: {contacts: {call: "+1004", email: "dave@x"}}
teams:
  db: {members: [alice, bob, carol], manager: dave}
plans:
  quick:
    owner: dave
    steps:
      - - {role: user, target: alice, priority: high, template: t, repeat: 2, wait: 2}
        - {role: team, target: db, priority: medium, template: t, wait: 3}
      - - {role: manager, target: db, priority: urgent, template: t}
  slow:
    steps:
      - - {role: user, target: bob, priority: high, template: t, repeat: 6, wait: 2}
  once:
    steps:
      - - {role: user, target: alice, priority: high, template: t}
templates:
  t:
    default:
      default: {subject: "{{ summary }}", body: "{{ summary }} #{{ incident.id }}"}
"""


def canonical(outcomes: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(o, sort_keys=True) for o in outcomes)


def trigger(incident: str, at: float, plan: str = "quick") -> dict[str, Any]:
    return {
        "type": "trigger",
        "at": iso_ms(at),
        "incident_id": incident,
        "application": "app",
        "plan": plan,
        "context": {"summary": f"disk full {incident}"},
    }


def event_bytes(**fields: object) -> bytes:
    """A record value: a trigger of `quick` for inc-1 at 10:00, with `fields` changed (None drops one)."""
    event = {
        "type": "trigger",
        "at": "2026-03-01T10:00:00Z",
        "incident_id": "inc-1",
        "application": "app",
        "plan": "quick",
        "context": {"summary": "disk full"},
        **fields,
    }
    return json.dumps({k: v for k, v in event.items() if v is not None}).encode()


MAINTENANCE_CONFIG = (
    CONFIG
    + """
heartbeats:
  backup: {application: app, plan: once, interval: 10s, context: {summary: "backup is late"}}
"""
)
"""The scenario's config with a heartbeat monitor (spec §8)."""


def silence(silence_id: str, at: float, starts: float, ends: float, **fields: Any) -> dict[str, Any]:
    return {
        "type": "silence",
        "at": iso_ms(at),
        "silence_id": silence_id,
        "application": "app",
        "starts": iso_ms(starts),
        "ends": iso_ms(ends),
        **fields,
    }


def unsilence(silence_id: str, at: float) -> dict[str, Any]:
    return {"type": "unsilence", "at": iso_ms(at), "silence_id": silence_id, "application": "app"}


def heartbeat(at: float, name: str = "backup") -> dict[str, Any]:
    return {"type": "heartbeat", "at": iso_ms(at), "heartbeat": name, "application": "app"}

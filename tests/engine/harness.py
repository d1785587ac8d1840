"""A timeline harness for the engine, in the spirit of GoAlert's smoke tests: a config, events at
clock times, and the outcomes the spec implies, read back in spec order.

    tl = Timeline(CONFIG)
    tl.trigger("10:00", "inc-1")
    tl.claim("10:03", "inc-1")
    out = tl.run()
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import yaml

from streamproc.config.loader import read_documents, validate_structure
from streamproc.config.models import Config
from streamproc.engine.core import Engine
from streamproc.replay import replay
from streamproc.timeutil import parse_time, to_us

DAY = "2026-03-01"

BASE = """
applications:
  app: {}
users:
  alice: {contacts: {sms: "+1001", email: "alice@x", call: "+1001", slack: "UALICE"}}
  bob: {contacts: {sms: "+1002", email: "bob@x"}}
  carol: {contacts: {sms: "+1003", email: "carol@x"}}
  dave: {contacts: {sms: "+1004", email: "dave@x"}}
teams:
  db:
    members: [alice, bob, carol]
    manager: dave
    rotations:
      primary: {users: [alice, bob, carol], start: "2026-03-01T00:00:00Z", shift: 1d}
templates:
  t:
    default:
      default: {subject: "S {{ summary }}", body: "B {{ summary }}"}
"""


def t(clock: str) -> str:
    """'10:05' or '10:05:30' on the test day, or a full RFC 3339 time."""
    if "T" in clock:
        return clock
    if clock.count(":") == 1:
        clock += ":00"
    return f"{DAY}T{clock}Z"


def make_config(*docs: str | dict[str, Any]) -> Config:
    """Merge YAML snippets (later top-level keys replace earlier ones per entry) into a Config."""
    merged: dict[str, Any] = {}
    for doc in docs:
        data = yaml.safe_load(textwrap.dedent(doc)) if isinstance(doc, str) else doc
        for key, value in (data or {}).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    config, issues = validate_structure(merged, read_documents("/nonexistent")[1])
    assert config is not None, [str(i) for i in issues]
    return config


class Timeline:
    def __init__(self, *docs: str | dict[str, Any], base: bool = True):
        self.config = make_config(BASE, *docs) if base else make_config(*docs)
        self.engine = Engine(self.config)
        self.events: list[dict[str, Any]] = []

    def event(self, kind: str, clock: str, incident: str = "inc-1", **fields: Any) -> Timeline:
        self.events.append({"type": kind, "at": t(clock), "incident_id": incident, **fields})
        return self

    def trigger(self, clock: str, incident: str = "inc-1", plan: str = "p", **fields: Any) -> Timeline:
        fields.setdefault("application", "app")
        fields.setdefault("context", {"summary": "disk full"})
        return self.event("trigger", clock, incident, plan=plan, **fields)

    def claim(self, clock: str, incident: str = "inc-1", owner: str = "alice") -> Timeline:
        return self.event("claim", clock, incident, owner=owner)

    def unclaim(self, clock: str, incident: str = "inc-1") -> Timeline:
        return self.event("unclaim", clock, incident)

    def resolve(self, clock: str, incident: str = "inc-1") -> Timeline:
        return self.event("resolve", clock, incident)

    def silence(
        self,
        clock: str,
        silence_id: str = "s1",
        *,
        ends: str,
        starts: str | None = None,
        application: str = "app",
        **fields: Any,
    ) -> Timeline:
        """Spec §8: a silence event at `clock` (`starts` defaults to it)."""
        event: dict[str, Any] = {
            "type": "silence",
            "at": t(clock),
            "silence_id": silence_id,
            "application": application,
            "ends": t(ends),
            **fields,
        }
        if starts is not None:
            event["starts"] = t(starts)
        self.events.append(event)
        return self

    def unsilence(self, clock: str, silence_id: str = "s1", application: str = "app") -> Timeline:
        self.events.append({"type": "unsilence", "at": t(clock), "silence_id": silence_id, "application": application})
        return self

    def heartbeat(self, clock: str, name: str = "backup", application: str = "app") -> Timeline:
        self.events.append({"type": "heartbeat", "at": t(clock), "heartbeat": name, "application": application})
        return self

    def lines(self) -> list[str]:
        return [json.dumps(e) for e in self.events]

    def run(self, until: str | None = None) -> list[dict[str, Any]]:
        report = replay(self.engine, self.lines(), to_us(parse_time(t(until))) if until else None)
        self.rejected = report.rejected
        self.report = report
        return [json.loads(line) for line in report.lines()]


def sends(outcomes: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(clock, user, mode) of each message, for compact assertions."""
    return [(o["at"][11:19], o["user"], o["mode"]) for o in outcomes if o["kind"] == "message"]


def silenced(outcomes: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(clock, incident, silence id) of each `silenced` outcome (spec §8)."""
    return [(o["at"][11:19], o["incident_id"], o["silence_id"]) for o in outcomes if o["kind"] == "silenced"]


def clocks(outcomes: list[dict[str, Any]], kind: str = "message") -> list[str]:
    return [o["at"][11:19] for o in outcomes if o["kind"] == kind]


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path

"""A timeline harness for flood control (spec §7): messages to one user at clock times, fed to
`FloodControl` as the engine would emit them, with the outcomes read back in §4 order.

    f = Flood(RULES)
    f.send("10:00", "inc-1")            # -> the outcomes of that call, as JSON objects
    f.claim("10:02", "inc-1")
    f.advance("10:05")
"""

from __future__ import annotations

from typing import Any

from streamproc.engine.core import Emitted, message_id
from streamproc.flood import FloodControl, UserFloodState
from streamproc.timeutil import from_us, parse_time, to_us
from streamproc.wire.outcomes import Message, outcome_dict
from tests.engine.harness import BASE, make_config, t

FLOOD_BASE = (
    BASE
    + """
users:
  alice: {contacts: {call: "+1001", sms: "+1001", email: "alice@x", slack: "UALICE"}}
  bob: {contacts: {sms: "+1002", email: "bob@x"}}
  carol: {contacts: {sms: "+1003", email: "carol@x"}}
  dave: {contacts: {sms: "+1004", email: "dave@x"}}
  erin: {contacts: {call: "+1005", sms: "+1005"}}
plans:
  p:
    steps: [[{role: user, target: alice, priority: urgent, template: t}]]
  q:
    steps: [[{role: user, target: alice, priority: urgent, template: t}]]
"""
)


def us(clock: str) -> int:
    return to_us(parse_time(t(clock)))


def clock(o: dict[str, Any], name: str = "at") -> str:
    return str(o[name])[11:19]


class Flood:
    """One user's flood-control state, driven call by call."""

    def __init__(self, *docs: str | dict[str, Any]):
        self.config = make_config(FLOOD_BASE, *docs)
        self.control = FloodControl(self.config)
        self.states: dict[str, UserFloodState] = {}
        self.emitted: list[Emitted] = []

    def message(
        self,
        at: str,
        incident: str = "inc-1",
        *,
        user: str = "alice",
        plan: str = "p",
        mode: str = "call",
        priority: str = "urgent",
        step: int = 1,
        notification: int = 0,
        repeat: int = 0,
        instance: int = 1,
        subject: str = "S",
        body: str = "B",
        role: str = "user",
        **extra: Any,
    ) -> Message:
        """A message as the engine emits it (destination from the user's contacts, the engine's id)."""
        at_us = us(at)
        return Message.model_validate(
            {
                "at": from_us(at_us),
                "incident_id": incident,
                "instance": instance,
                "plan": plan,
                "application": "app",
                "step": step,
                "notification": notification,
                "repeat": repeat,
                "role": role,
                "target": user,
                "user": user,
                "priority": priority,
                "mode": mode,
                "destination": self.config.users[user].contacts[mode],  # type: ignore[index]
                "subject": subject,
                "body": body,
                "render_error": False,
                "message_id": message_id(incident, instance, step, notification, repeat, user, mode, at_us),
                **extra,
            }
        )

    def _take(self, user: str, result: Any) -> list[dict[str, Any]]:
        self.states[user] = result.state
        self.emitted.extend(result.emitted)
        return [outcome_dict(e.outcome) for e in sorted(result.emitted, key=lambda e: e.sort_key)]

    def feed(self, m: Message) -> list[dict[str, Any]]:
        return self._take(m.user, self.control.on_message(self.states.get(m.user), m))

    def send(self, at: str, incident: str = "inc-1", **fields: Any) -> list[dict[str, Any]]:
        return self.feed(self.message(at, incident, **fields))

    def status(
        self, kind: str, at: str, incident: str = "inc-1", *, user: str = "alice", instance: int = 1
    ) -> list[dict[str, Any]]:
        return self._take(
            user, self.control.on_status(self.states.get(user), incident, instance, kind, us(at), user=user)
        )

    def claim(self, at: str, incident: str = "inc-1", **kw: Any) -> list[dict[str, Any]]:
        return self.status("claimed", at, incident, **kw)

    def unclaim(self, at: str, incident: str = "inc-1", **kw: Any) -> list[dict[str, Any]]:
        return self.status("unclaimed", at, incident, **kw)

    def resolve(self, at: str, incident: str = "inc-1", **kw: Any) -> list[dict[str, Any]]:
        return self.status("resolved", at, incident, **kw)

    def advance(self, at: str, user: str = "alice") -> list[dict[str, Any]]:
        return self._take(user, self.control.advance(self.state(user), us(at)))

    def flush(self, user: str = "alice") -> list[dict[str, Any]]:
        return self._take(user, self.control.flush(self.state(user)))

    def state(self, user: str = "alice") -> UserFloodState:
        return self.states.get(user) or UserFloodState(user=user)

    def wake(self, user: str = "alice") -> str | None:
        at = self.control.wake_at(self.state(user))
        return None if at is None else from_us(at).isoformat()[11:19]


def modes(outcomes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(kind, mode or reason) of each outcome, for compact assertions."""
    return [(o["kind"], o.get("mode") or o.get("reason") or o.get("batch_at", "")[11:19]) for o in outcomes]

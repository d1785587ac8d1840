"""Sends: what one scheduled send of a plan notification becomes (spec §3, §4).

The route to a user (mode and destination, from the configuration alone), the rendered text
(cached per instance when the template reads nothing that differs between sends), and the
message with its deterministic `message_id`; or an `undeliverable` / `dropped` outcome. Part of
the pure engine (`Engine` inherits `Sends`), kept apart so `core.py` holds the rules of time.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from streamproc.config.models import Config
from streamproc.engine.render import Rendered, Renderer
from streamproc.engine.state import IncidentState, Pending
from streamproc.timeutil import format_us, from_us
from streamproc.wire.common import Priority
from streamproc.wire.outcomes import SpecOutcome, new_dropped, new_message, new_undeliverable


class Emitted(NamedTuple):
    """An outcome and its position in the spec's order:
    (at, incident_id, step, notification, repeat, user, mode). A named tuple: immutable, and
    made for every outcome, which a frozen dataclass costs twice as much for."""

    outcome: SpecOutcome
    sort_key: tuple[Any, ...]


def message_id(
    incident_id: str, instance: int, step: int, notification: int, repeat: int, user: str, mode: str, at_us: int
) -> str:
    """Deterministic id. The scheduled time is part of it so a step restarted by an unclaim
    pages again instead of being taken for a duplicate."""
    raw = f"{incident_id}\x1f{instance}\x1f{step}\x1f{notification}\x1f{repeat}\x1f{user}\x1f{mode}\x1f{at_us}"
    return _sha256(raw.encode()).hexdigest()[:32]


_sha256 = hashlib.sha256
_tuple_new = tuple.__new__
"""`_tuple_new(Emitted, (outcome, sort_key))` is `Emitted(outcome, sort_key)` without the named
tuple's Python-level `__new__` (one per outcome)."""


class Sends:
    """The send half of `Engine`: needs its configuration, renderer and caches."""

    config: Config
    renderer: Renderer
    _rendered: dict[tuple[Any, ...], Rendered]
    _routes: dict[tuple[str, str, str], tuple[str, str, str | None]]
    _varying: dict[tuple[str, str, str], tuple[bool, ...]]

    def _key(self, s: IncidentState, p: Pending, step_no: int, user: str | None, mode: str) -> tuple[Any, ...]:
        return (p.at, s.incident_id, step_no, p.notification, p.repeat, user or "", mode)

    def choose_mode(self, application: str, user: str, priority: Priority) -> str | None:
        """First of: user app_modes, application default_modes, user modes, global priorities —
        that is set and allowed by the application."""
        app = self.config.applications.get(application)
        allowed = app.allowed_modes if app is not None else None
        u = self.config.users[user]
        for candidate in (
            u.app_modes.get(application, {}).get(priority),
            app.default_modes.get(priority) if app is not None else None,
            u.modes.get(priority),
            self.config.priorities.get(priority),
        ):
            if candidate is not None and (allowed is None or candidate in allowed):
                return candidate
        return None

    def _route(self, application: str, user: str, priority: Priority) -> tuple[str, str, str | None]:
        """(what a send to `user` gives: `no-mode`, `drop`, `no-contact` or `send`; the final mode;
        the destination). A pure function of the configuration, so computed once per key."""
        key = (application, user, priority)
        route = self._routes.get(key)
        if route is None:
            mode = self.choose_mode(application, user, priority)
            if mode is None:
                route = ("no-mode", "", None)
            elif mode == "drop":
                route = ("drop", "drop", None)
            else:
                contacts = self.config.users[user].contacts
                destination = contacts.get(mode)  # type: ignore[call-overload]
                if destination is None:
                    mode, destination = "email", contacts.get("email")
                route = ("no-contact", "", None) if destination is None else ("send", mode, destination)
            self._routes[key] = route
        return route

    def _send(
        self,
        s: IncidentState,
        p: Pending,
        step_no: int,
        user: str,
        priority: Priority,
        role: str,
        target: str,
        template: str | None,
        unresolved: str | None = None,
    ) -> Emitted:
        # The state's fields straight from its `__dict__`: a model's attributes are slower to read.
        fields = s.__dict__
        incident_id: str = fields["incident_id"]
        instance: int = fields["instance"]
        application: str = fields["application"]
        p_at, notification, repeat = p.at, p.notification, p.repeat
        at = from_us(p_at)
        what, mode, destination = self._routes.get((application, user, priority)) or self._route(
            application, user, priority
        )
        sort_key = (p_at, incident_id, step_no, notification, repeat, user, mode)
        if destination is None:
            if what == "drop":
                return Emitted(new_dropped(at, incident_id, instance, step_no, user), sort_key)
            return Emitted(
                new_undeliverable(
                    at, incident_id, instance, step_no, user, "no-mode" if what == "no-mode" else "no-contact"
                ),
                sort_key,
            )
        if template is None:
            subject, body, html, error = self._unresolved_text(s, step_no, notification, unresolved or "")
        else:
            # Sends of one instance render the same text when they agree on what the template
            # reads (repeats always do; often the whole team does): render once for them.
            v = self._varying.get((template, application, mode))
            if v is None:
                v = self._varying[(template, application, mode)] = self.renderer.varying(template, application, mode)
            cache_key = (
                incident_id,
                instance,
                fields["created"],
                template,
                mode,
                step_no if v[0] else None,
                priority if v[1] else None,
                role if v[2] else None,
                target if v[3] else None,
                user if v[4] else None,
            )
            rendered = self._rendered.get(cache_key)
            if rendered is None:
                rendered = self.renderer.render(
                    template, s.application, mode, self._variables(s, step_no, priority, role, target, user, mode)
                )
                if len(self._rendered) >= 4096:
                    self._rendered.clear()
                self._rendered[cache_key] = rendered
            subject, body, html, error = (rendered.subject, rendered.body, rendered.email_html, rendered.render_error)
        message = new_message(
            at,
            incident_id,
            instance,
            fields["plan_name"],
            application,
            step_no,
            notification,
            repeat,
            role,
            target,
            user,
            priority,
            mode,  # type: ignore[arg-type]
            destination,
            subject,
            body,
            error,
            # message_id(), inline: once per send
            _sha256(
                f"{incident_id}\x1f{instance}\x1f{step_no}\x1f{notification}\x1f{repeat}\x1f{user}\x1f{mode}\x1f{p_at}".encode()
            ).hexdigest()[:32],
            unresolved,
            html,
        )
        return _tuple_new(Emitted, (message, sort_key))  # type: ignore[no-any-return]

    def _owner_message(self, s: IncidentState, p: Pending, step_no: int) -> Emitted:
        owner = p.user
        owner_user = self.config.users.get(owner) if owner else None
        if owner is None or owner_user is None or not owner_user.active:
            return Emitted(
                new_undeliverable(from_us(p.at), s.incident_id, s.instance, step_no, owner, "unresolved"),
                self._key(s, p, step_no, owner, ""),
            )
        return self._send(s, p, step_no, owner, "low", "owner", owner, None, unresolved=p.unresolved)

    def _unresolved_text(
        self, s: IncidentState, step_no: int, notification: int, unresolved: str
    ) -> tuple[str, str, str | None, bool]:
        subject = f"[streamproc] {s.incident_id}: {unresolved} resolved to nobody"
        body = (
            f"Incident {s.incident_id} (plan {s.plan_name}, application {s.application}), step {step_no}, "
            f"notification {notification}: {unresolved} resolved to nobody, so nobody was paged for it. "
            f"You own plan {s.plan_name}."
        )
        return subject, body, None, False

    def _variables(
        self, s: IncidentState, step_no: int, priority: str, role: str, target: str, user: str, mode: str
    ) -> dict[str, Any]:
        incident = {
            "id": s.incident_id,
            "instance": s.instance,
            "plan": s.plan_name,
            "application": s.application,
            "step": step_no,
            "priority": priority,
            "role": role,
            "target": target,
            "user": user,
            "mode": mode,
            "created": format_us(s.created),
        }
        return {**s.context, "incident": incident, "iris": incident}

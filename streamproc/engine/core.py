"""The escalation engine (spec §3): a pure function of (state, event or time) -> (state, outcomes).

No I/O and no wall clock: the live processor feeds it events and the wall clock, replay feeds
it events and a virtual clock, and both get the same outcomes.

Two calls drive it:
- `handle(state, event, at)`: first emits everything scheduled strictly before `at`, then applies
  the event (events at an instant apply before any message scheduled at that instant);
- `advance(state, until, inclusive=True)`: emits everything scheduled up to `until`.

Spec §8 adds application-wide state, the known silences (`SilenceBook`, in `maintenance.py`): the
caller keeps it, passes it to `handle` and `advance`, and when a silence event changes it, calls
`silences_changed` for the states `watches_silences` names. Heartbeats are events of incident
`heartbeat-<name>`, whose state also holds the monitor's (last heartbeat, expiry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamproc.config.models import Config, Notification, Plan
from streamproc.engine.maintenance import NO_SILENCES, SilenceBook
from streamproc.engine.render import Rendered, Renderer
from streamproc.engine.sends import Emitted, Sends, message_id
from streamproc.engine.state import IncidentState, Pending, remember_plans
from streamproc.engine.targets import Targets
from streamproc.timeutil import US_PER_S, format_us, from_us
from streamproc.wire.events import (
    Acknowledge,
    Claim,
    DynamicTarget,
    Event,
    Heartbeat,
    Resolve,
    Silence,
    Trigger,
    Unclaim,
    Unsilence,
    silence_span_problem,
)
from streamproc.wire.outcomes import (
    Audit,
    AuditKind,
    SpecOutcome,
    new_audit,
    new_exhausted,
    new_silenced,
)

__all__ = ["Emitted", "Engine", "Result", "message_id"]

SEEN_EVENTS_KEPT = 512
"""How many event ids each incident remembers for idempotency."""


@dataclass
class Result:
    state: IncidentState
    emitted: list[Emitted] = field(default_factory=list)
    audits: list[Audit] = field(default_factory=list)
    rejected: str | None = None
    """Why an event was not processed (it belongs on the dead-letter topic)."""
    duplicate: bool = False
    """The event's event_id had been seen: nothing was done."""

    @property
    def outcomes(self) -> list[SpecOutcome]:
        return [e.outcome for e in self.emitted]

    @property
    def wake_at(self) -> int | None:
        return self.state.wake_at


def _update(s: IncidentState, **fields: Any) -> None:
    """Set fields of the engine's working copy at once: what pydantic's `__setattr__` does for a
    model without assignment validation, without its per-attribute dispatch."""
    s.__dict__.update(fields)
    s.__pydantic_fields_set__.update(fields)


def _dynamic_indices(plan: Plan) -> list[int]:
    return [n.dynamic for step in plan.steps for n in step if n.dynamic is not None]


class Engine(Sends):
    """The escalation rules for one configuration. Holds compiled templates; no other state."""

    def __init__(self, config: Config):
        self.config = config
        self.renderer = Renderer(config)
        self.targets = Targets(config)
        remember_plans(config.plans)
        self._rendered: dict[tuple[Any, ...], Rendered] = {}
        # Pure functions of the configuration, looked up per send: computed once.
        self._routes: dict[tuple[str, str, str], tuple[str, str, str | None]] = {}
        self._needed: dict[str, int] = {}
        self._varying: dict[tuple[str, str, str], tuple[bool, ...]] = {}

    # ---- input checks --------------------------------------------------------------------
    def check_trigger(self, trigger: Trigger) -> str | None:
        """Why a trigger cannot be processed (spec §2), or None."""
        if trigger.application not in self.config.applications:
            return f"application: unknown application {trigger.application!r}"
        plan = self.config.plans.get(trigger.plan)
        if plan is None:
            return f"plan: unknown plan {trigger.plan!r}"
        needed = self._needed.get(trigger.plan)
        if needed is None:
            needed = self._needed[trigger.plan] = max(_dynamic_indices(plan), default=-1)
        if needed >= len(trigger.dynamic_targets):
            return (
                f"dynamic_targets: plan {trigger.plan!r} uses dynamic index {needed} but the "
                f"trigger has {len(trigger.dynamic_targets)} dynamic target(s)"
            )
        return None

    # ---- driving -------------------------------------------------------------------------
    def check_heartbeat(self, event: Heartbeat) -> str | None:
        """Why a heartbeat cannot be processed (spec §8), or None."""
        monitor = self.config.heartbeats.get(event.heartbeat)
        if monitor is None:
            return f"heartbeat: unknown monitor {event.heartbeat!r}"
        if event.application != monitor.application:
            return (
                f"application: monitor {event.heartbeat!r} belongs to application {monitor.application!r}, "
                f"not {event.application!r}"
            )
        return None

    def check_silence(self, event: Silence | Unsilence, at_us: int | None = None) -> str | None:
        """Why a silence or unsilence cannot be applied (spec §8), or None. `at_us`: the event's time,
        when the event has no `at` (then `starts` defaults to it)."""
        if event.application not in self.config.applications:
            return f"application: unknown application {event.application!r}"
        if isinstance(event, Silence) and event.starts is None:
            starts = event.at if event.at is not None else (from_us(at_us) if at_us is not None else None)
            problem = silence_span_problem(starts, event.ends) if starts is not None else None
            if problem is not None:
                return f"ends: {problem} (starts is the event's at)"
        return None

    # ---- driving -------------------------------------------------------------------------
    def handle(
        self, state: IncidentState | None, event: Event | Heartbeat, at_us: int, silences: SilenceBook = NO_SILENCES
    ) -> Result:
        """Apply one event that happened at `at_us` (its `at`, or its record's timestamp).
        `silences`: the silences known at `at_us` (spec §8), for a trigger that starts an instance,
        an unclaim of one claimed before it started, and monitor expiries due before `at_us`.
        A heartbeat (§8) goes to the state of incident `heartbeat-<name>` (`event.key`)."""
        fresh = state is None
        if state is None:
            state = IncidentState.new(event.key)
        if event.event_id is not None and event.event_id in state.seen_events:
            return Result(state, duplicate=True)
        if isinstance(event, Trigger):
            reason = self.check_trigger(event)
            if reason is not None:
                return Result(state, rejected=reason)
        elif isinstance(event, Heartbeat):
            reason = self.check_heartbeat(event)
            if reason is not None:
                return Result(state, rejected=reason)
        result = self.advance(state, at_us, inclusive=False, silences=silences)
        # advance() returns a fresh state when it changed anything: no need to copy that one again.
        s = result.state.clone() if result.state is state and not fresh else result.state
        if event.event_id is not None:
            s.seen_events = [*s.seen_events[-(SEEN_EVENTS_KEPT - 1) :], event.event_id]
        audit = self._apply(s, event, at_us, silences, result.emitted)
        if audit is not None:
            _update(s, version=s.version + 1)
            result.audits.append(audit)
        result.state = s
        return result

    def silences_changed(self, state: IncidentState, before: SilenceBook, after: SilenceBook, at_us: int) -> Result:
        """Spec §8: the known silences changed at `at_us` (from `before` to `after`). First runs what
        was due before `at_us` under `before` (silenced instances that started, monitor expiries,
        sends), then moves a still silenced instance's start E to the first time `>= at_us` at which
        no silence of `after` that matches it covers it. Call it for every state that is silenced
        or whose monitor waits (`watches_silences`) of the changed application."""
        result = self.advance(state, at_us, inclusive=False, silences=before)
        s = result.state
        if s.status == "silenced":
            e = after.clear_from(s.application, s.plan_name, s.context, at_us)
            if e != s.silenced_until:
                if s is state:
                    s = s.clone()
                _update(s, silenced_until=e, version=s.version + 1)
                result.state = s
        return result

    def watches_silences(self, state: IncidentState) -> tuple[str, ...]:
        """The applications whose silence changes `state` must see (`silences_changed`): its own
        when it is silenced, its monitor's while the monitor waits for a heartbeat."""
        apps: tuple[str, ...] = ()
        if state.status == "silenced":
            apps = (state.application,)
        if state.monitor_due is not None and state.monitor is not None:
            monitor = self.config.heartbeats.get(state.monitor)
            if monitor is not None and monitor.application not in apps:
                apps = (*apps, monitor.application)
        return apps

    def advance(
        self, state: IncidentState, until_us: int, inclusive: bool = True, silences: SilenceBook = NO_SILENCES
    ) -> Result:
        """Emit everything scheduled before `until_us` (or at it, when inclusive). `silences`: the
        known silences (spec §8), which a monitor expiry due by then needs."""
        if state.monitor_due is not None or state.status == "silenced":
            return self._advance_maintenance(state, until_us, inclusive, silences)
        if state.status != "escalating" or state.plan is None:
            return Result(state)
        last = until_us if inclusive else until_us - 1  # times are integers: t < u is t <= u - 1
        wake = state.pending[0].at if state.pending else state.step_end
        if wake > last:  # nothing due (pending is in time order and ends by step_end)
            return Result(state)
        s = state.clone()
        out: list[Emitted] = []
        self._run(s, last, out)
        return Result(s, out)

    def _run(self, s: IncidentState, last: int, out: list[Emitted]) -> None:
        """Emit the working copy `s`'s sends due at or before `last`, in place."""
        plan = s.plan
        if s.status != "escalating" or plan is None:
            return
        pending = s.pending
        i = 0
        while True:
            if i < len(pending):
                j = i
                while j < len(pending) and pending[j].at <= last:
                    j += 1
                if j == i:
                    break
                self._emit_due(s, pending, i, j, out)
                i = j
                continue
            if s.step_end > last:
                break
            if s.step + 1 < len(plan.steps):
                self._start_step(s, s.step + 1, s.step_end)
                pending, i = s.pending, 0
                continue
            _update(s, status="exhausted")
            out.append(
                Emitted(
                    new_exhausted(from_us(s.step_end), s.incident_id, s.instance),
                    (s.step_end, s.incident_id, len(plan.steps) + 1, 0, 0, "", ""),
                )
            )
            pending, i = [], 0
            break
        if out or i:
            _update(s, pending=pending[i:], version=s.version + 1)

    def _advance_maintenance(
        self, state: IncidentState, until_us: int, inclusive: bool, silences: SilenceBook
    ) -> Result:
        """`advance` for a silenced instance or a waiting monitor (spec §8). At one instant, a
        silenced instance starts and a monitor expires before that instant's sends."""
        last = until_us if inclusive else until_us - 1
        s = state.clone()
        result = Result(s)
        out = result.emitted
        changed = False
        due = self._monitor_due(s)
        if due != s.monitor_due:  # the monitor left the config, or its interval changed
            _update(s, monitor_due=due)
            changed = True
        while True:
            start = s.silenced_until if s.status == "silenced" else None
            t = start if due is None or (start is not None and start <= due) else due
            if t is None or t > last:
                break
            self._run(s, t - 1, out)
            if s.status == "silenced" and s.silenced_until == t:
                _update(s, status="escalating", silenced_until=None, unstarted=False)
                self._start_step(s, 0, t)
            if due == t:
                audit = self._expire(s, t, silences, out)
                if audit is not None:
                    result.audits.append(audit)
                due = None
            _update(s, version=s.version + 1)
            changed = True
        before = len(out)
        self._run(s, last, out)
        if changed or len(out) > before:
            return result
        return Result(state)

    def _monitor_due(self, s: IncidentState) -> int | None:
        """X = L + interval from the current config, while the monitor waits."""
        if s.monitor_due is None or s.monitor is None or s.monitor_last is None:
            return None
        monitor = self.config.heartbeats.get(s.monitor)
        if monitor is None:
            return None
        return s.monitor_last + monitor.interval * US_PER_S

    def _expire(self, s: IncidentState, at: int, silences: SilenceBook, out: list[Emitted]) -> Audit | None:
        """Spec §8: the monitor expires at X = `at`: a trigger of its incident, after the input events
        at X. An open instance absorbs it."""
        _update(s, monitor_due=None)
        assert s.monitor is not None and s.monitor_last is not None
        monitor = self.config.heartbeats.get(s.monitor)
        if (
            monitor is None
            or monitor.plan not in self.config.plans
            or monitor.application not in self.config.applications
        ):
            return None
        if s.is_open:
            s.absorbed += 1
            return self._audit(s, "absorbed", at)
        context = {
            **monitor.context,
            "heartbeat": s.monitor,
            "last_heartbeat": format_us(s.monitor_last),
            "interval": monitor.interval,
        }
        self._open(s, monitor.plan, monitor.application, context, [], at, silences, out)
        _update(s, monitor_opened=True)
        return self._audit(s, "triggered", at)

    def run_to_end(self, state: IncidentState, silences: SilenceBook = NO_SILENCES) -> Result:
        """Advance until the instance is claimed, resolved or exhausted and its monitor (if any) has
        expired (replay without --until)."""
        result = Result(state)
        while (wake := result.state.wake_at) is not None:
            step = self.advance(result.state, wake, silences=silences)
            result.state = step.state
            result.emitted.extend(step.emitted)
            result.audits.extend(step.audits)
        return result

    # ---- events --------------------------------------------------------------------------
    def _apply(
        self, s: IncidentState, event: Event | Heartbeat, at: int, silences: SilenceBook, out: list[Emitted]
    ) -> Audit | None:
        """Mutates the working copy `s`; returns the audit record when something changed."""
        if isinstance(event, Trigger):
            if s.is_open:
                s.absorbed += 1
                return self._audit(s, "absorbed", at)
            self._open(
                s, event.plan, event.application, dict(event.context), list(event.dynamic_targets), at, silences, out
            )
            return self._audit(s, "triggered", at)
        if isinstance(event, Heartbeat):
            audit = None
            if s.monitor_opened and s.is_open:  # the monitor's incident: a normal resolve at h
                audit = self._resolve(s, at)
            monitor = self.config.heartbeats[event.heartbeat]
            _update(
                s,
                monitor=event.heartbeat,
                monitor_last=at,
                monitor_due=at + monitor.interval * US_PER_S,
                version=s.version + 1,
            )
            return audit
        if isinstance(event, Claim | Acknowledge):
            if s.status not in ("escalating", "exhausted", "silenced") or s.plan is None:
                return None
            owner = event.owner if isinstance(event, Claim) else (event.application or s.application)
            _update(
                s,
                claimed_step=self._step_started_by(s, at),
                claimed_at=at,
                owner=owner,
                status="claimed",
                pending=[],
                silenced_until=None,
            )
            return self._audit(s, "claimed", at, owner=owner)
        if isinstance(event, Unclaim):
            if s.status != "claimed" or s.claimed_step is None:
                return None
            step = s.claimed_step
            _update(s, status="escalating", claimed_at=None, claimed_step=None, owner=None)
            if s.unstarted:  # claimed before step 1 started (spec §8): wait for the silences again
                start = silences.clear_from(s.application, s.plan_name, s.context, at)
                if start > at:
                    _update(s, status="silenced", silenced_until=start, step=0, pending=[])
                    return self._audit(s, "unclaimed", at)
                _update(s, unstarted=False)
            self._start_step(s, step, at)
            return self._audit(s, "unclaimed", at)
        if isinstance(event, Resolve):
            if not s.is_open:
                return None
            return self._resolve(s, at)
        return None

    def _resolve(self, s: IncidentState, at: int) -> Audit:
        _update(s, status="resolved", pending=[], silenced_until=None, unstarted=False, monitor_opened=False)
        audit = self._audit(s, "resolved", at)
        # A resolved instance never runs again: keep only what the next trigger needs
        # (the instance counter, seen event ids), not the plan snapshot and context.
        _update(s, plan=None, context={}, dynamic_targets=[])
        return audit

    def _open(
        self,
        s: IncidentState,
        plan: str,
        application: str,
        context: dict[str, Any],
        dynamic_targets: list[DynamicTarget],
        at: int,
        silences: SilenceBook,
        out: list[Emitted],
    ) -> None:
        """Start a new instance at `at`: step 1 now, or silenced until E (spec §8)."""
        _update(
            s,
            instance=s.instance + 1,
            status="escalating",
            plan_name=plan,
            plan=self.config.plans[plan],
            application=application,
            context=context,
            dynamic_targets=dynamic_targets,
            created=at,
            absorbed=0,
            claimed_at=None,
            claimed_step=None,
            owner=None,
            monitor_opened=False,
        )
        held = silences.hold(application, plan, context, at) if silences.by_app else None
        if held is None:
            if s.silence_id is not None or s.unstarted:
                _update(s, silence_id=None, unstarted=False)
            self._start_step(s, 0, at)
            return
        silence_id, start = held
        _update(
            s,
            status="silenced",
            silenced_until=start,
            silence_id=silence_id,
            unstarted=True,
            step=0,
            step_start=start,
            step_end=start,
            pending=[],
        )
        out.append(
            Emitted(
                new_silenced(from_us(at), s.incident_id, s.instance, silence_id), (at, s.incident_id, 0, 0, 0, "", "")
            )
        )

    @staticmethod
    def _audit(s: IncidentState, kind: AuditKind, at: int, owner: str | None = None) -> Audit:
        return new_audit(kind, from_us(at), s.incident_id, s.instance, owner, s.step + 1)

    @staticmethod
    def _step_started_by(s: IncidentState, at: int) -> int:
        """The latest step that had started at or before `at` (the step a claim lands in)."""
        assert s.plan is not None
        steps = s.plan.steps
        if s.status == "silenced":
            return 0
        if s.status == "exhausted":
            return len(steps) - 1
        index, end = s.step, s.step_end
        while end <= at and index + 1 < len(steps):
            index += 1
            end += max(n.duration for n in steps[index]) * US_PER_S
        return index

    # ---- schedule ------------------------------------------------------------------------
    def _start_step(self, s: IncidentState, index: int, start: int) -> None:
        """Resolve the step's targets at `start` and schedule all its sends."""
        assert s.plan is not None
        notes = s.plan.steps[index]
        # Rows sort as the sends must go: (at, notification, repeat, user); the running number
        # settles nothing (those four are unique) but keeps the comparison on plain values.
        rows: list[tuple[int, int, int, str, int, str | None, str | None]] = []
        for j, note in enumerate(notes):
            role, target = self._role_target(s, note)
            users = self.targets.resolve(role, target, start) if role and target else ()
            if users:
                wait = note.wait * US_PER_S
                for k in range(note.repeat + 1):
                    at = start + k * wait
                    for user in users:
                        rows.append((at, j, k, user, len(rows), user, None))
            elif not note.optional:
                owner = s.plan.owner
                rows.append((start, j, 0, owner or "", len(rows), owner, f"{role}:{target}"))
        rows.sort()
        _update(
            s,
            step=index,
            step_start=start,
            step_end=start + max(n.duration for n in notes) * US_PER_S,
            pending=[Pending(row[0], row[1], row[2], row[5], row[6]) for row in rows],
        )

    @staticmethod
    def _role_target(s: IncidentState, note: Notification) -> tuple[str, str]:
        if note.dynamic is not None:
            if note.dynamic < len(s.dynamic_targets):
                dyn = s.dynamic_targets[note.dynamic]
                return dyn.role, dyn.target
            return "", ""
        assert note.role is not None and note.target is not None
        return note.role, note.target

    # ---- sends ---------------------------------------------------------------------------
    def _emit_due(self, s: IncidentState, pending: list[Pending], i: int, j: int, out: list[Emitted]) -> None:
        """Emit `pending[i:j]`, sends of the current step, in order."""
        assert s.plan is not None
        step = s.step
        notes = s.plan.steps[step]
        step_no = step + 1
        for k in range(i, j):
            p = pending[k]
            if p.unresolved is not None:
                out.append(self._owner_message(s, p, step_no))
                continue
            assert p.user is not None
            note = notes[p.notification]
            if note.dynamic is None:
                role, target = note.role, note.target
                assert role is not None and target is not None
            else:
                role, target = self._role_target(s, note)
            out.append(self._send(s, p, step_no, p.user, note.priority, role, target, note.template))

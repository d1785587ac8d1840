"""Flood control (spec §7): downgrade and batching, a pure function over one user's messages.

No I/O and no wall clock, like the engine: replay feeds it the engine's messages in §4 order with
the claim/unclaim/resolve audits, and the live stage (keyed by user) feeds it what it reads and
wakes it at `wake_at`. Both get the same outcomes for the same order of inputs.

Per user, in the order of the inputs:
- `on_message`: fire the batches due strictly before the message's `at` (a message at exactly `b`
  belongs to `b`'s batch), then downgrade the message, then send it now or hold it;
- `on_status`: fire the batches due strictly before the change, then record it (events at an instant
  apply before messages at it, §3, so a claim at `b` excludes its instance from `b`'s batch);
- `advance(until)`: fire every batch due at or before `until`.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right, insort
from dataclasses import dataclass, field
from typing import Any

from streamproc.config.models import Batching, Config, DowngradeRule
from streamproc.engine.core import Emitted, message_id
from streamproc.flood.state import SEEN_MESSAGES_KEPT, KeyState, UserFloodState, instance_key
from streamproc.timeutil import US_PER_S, from_us, to_us
from streamproc.wire.common import PRIORITY_RANK
from streamproc.wire.outcomes import Audit, Batched, BatchInfo, Message, Undeliverable

STATUS_KINDS = frozenset({"claimed", "unclaimed", "resolved"})
CLOSED_KINDS = frozenset({"claimed", "resolved"})


def message_key(m: Message) -> tuple[Any, ...]:
    """The §4 order of a message: (at, incident_id, step, notification, repeat, user, mode), as the
    engine's `Emitted.sort_key`."""
    return (to_us(m.at), m.incident_id, m.step, m.notification, m.repeat, m.user, m.mode)


def _count(times: list[int], since: int, until: int) -> int:
    """How many of the ascending `times` are in (since, until]."""
    return bisect_right(times, until) - bisect_right(times, since)


def _prune(times: list[int], cutoff: int) -> None:
    """Drop the ascending `times` at or before `cutoff`."""
    if times and times[0] <= cutoff:
        del times[: bisect_right(times, cutoff)]


def batch_message_id(plan: str, user: str, at_us: int) -> str:
    """First 32 hex digits of sha256 over "batch", plan, user and the batch time in µs, joined by
    "\\x1f" like the engine's message ids."""
    raw = "\x1f".join(("batch", plan, user, str(at_us)))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass
class FloodResult:
    state: UserFloodState
    emitted: list[Emitted] = field(default_factory=list)
    duplicate: bool = False
    """The message's id had been seen: nothing was done."""

    @property
    def wake_at(self) -> int | None:
        return self.state.wake_at


class FloodControl:
    """Spec §7 for one configuration. Holds the rules; no other state."""

    def __init__(self, config: Config):
        self.config = config
        self.rules: dict[str, list[DowngradeRule]] = {
            u: list(user.downgrade) for u, user in config.users.items() if user.downgrade
        }
        self.batching: dict[str, Batching] = {
            p: plan.batching for p, plan in config.plans.items() if plan.batching is not None
        }
        self._rule_span = {u: max(r.window for r in rules) * US_PER_S for u, rules in self.rules.items()}

    @property
    def active(self) -> bool:
        """Whether any user has downgrade rules or any plan batches: else replay skips the stage."""
        return bool(self.rules or self.batching)

    def applies(self, message: Message) -> bool:
        """Whether the stage can change this message or needs to see it. When False, passing the
        message by (not calling `on_message`) is exactly what `on_message` would do."""
        return message.user in self.rules or message.plan in self.batching

    # ---- inputs --------------------------------------------------------------------------------
    def on_message(
        self,
        state: UserFloodState | None,
        message: Message,
        sort_key: tuple[Any, ...] | None = None,
        *,
        in_place: bool = False,
    ) -> FloodResult:
        """One message outcome of the engine, for `state`'s user. `sort_key` defaults to the
        message's §4 key (the engine's). With `in_place`, `state` itself is updated (replay)."""
        if state is None:
            state = UserFloodState(user=message.user)
        if not self.applies(message):
            return FloodResult(state, [Emitted(message, sort_key or message_key(message))])
        if message.message_id in state.seen:
            return FloodResult(state, duplicate=True)
        s = state if in_place else state.clone()
        at = to_us(message.at)
        out: list[Emitted] = []
        self._fire(s, at, inclusive=False, out=out)
        s.seen.append(message.message_id)
        if len(s.seen) > SEEN_MESSAGES_KEPT:
            del s.seen[: len(s.seen) - SEEN_MESSAGES_KEPT]
        s.latest = max(s.latest, at)
        final = self._downgrade(s, message, at)
        if isinstance(final, Undeliverable):
            out.append(
                Emitted(
                    final,
                    (at, message.incident_id, message.step, message.notification, message.repeat, message.user, ""),
                )
            )
            return FloodResult(s, out)
        self._batch(s, final, at, out)
        return FloodResult(s, out)

    def on_status(
        self,
        state: UserFloodState | None,
        incident_id: str,
        instance: int,
        kind: str,
        at_us: int,
        *,
        user: str = "",
        in_place: bool = False,
    ) -> FloodResult:
        """A claim, unclaim or resolve of an instance (the engine's audits). Only instances with held
        messages are remembered, so the live stage may send a user statuses it does not need."""
        if kind not in STATUS_KINDS:
            raise ValueError(f"not a status change: {kind!r}")
        if state is None:
            state = UserFloodState(user=user)
        key = instance_key(incident_id, instance)
        due = state.wake_at
        if key not in state.instances and (due is None or due >= at_us):
            return FloodResult(state)
        s = state if in_place else state.clone()
        out: list[Emitted] = []
        self._fire(s, at_us, inclusive=False, out=out)
        changes = s.instances.get(key)
        if changes is not None:
            changes.append((at_us, kind))
        return FloodResult(s, out)

    def on_audit(
        self, state: UserFloodState | None, audit: Audit, *, user: str = "", in_place: bool = False
    ) -> FloodResult:
        """`on_status` for an engine audit; other audit kinds change nothing."""
        if audit.kind not in STATUS_KINDS:
            return FloodResult(state if state is not None else UserFloodState(user=user))
        return self.on_status(
            state, audit.incident_id, audit.instance, audit.kind, to_us(audit.at), user=user, in_place=in_place
        )

    def advance(self, state: UserFloodState, until_us: int, *, in_place: bool = False) -> FloodResult:
        """Fire every batch due at or before `until_us`."""
        due = state.wake_at
        if due is None or due > until_us:
            return FloodResult(state)
        s = state if in_place else state.clone()
        out: list[Emitted] = []
        self._fire(s, until_us, inclusive=True, out=out)
        return FloodResult(s, out)

    def flush(self, state: UserFloodState, *, in_place: bool = False) -> FloodResult:
        """Fire batches until every key is idle (replay without --until)."""
        result = FloodResult(state)
        while (due := result.state.wake_at) is not None:
            step = self.advance(result.state, due, in_place=in_place)
            result.state = step.state
            result.emitted.extend(step.emitted)
        return result

    @staticmethod
    def wake_at(state: UserFloodState) -> int | None:
        """When the next batch is due (µs): the live stage schedules a wake-up for it."""
        return state.wake_at

    # ---- downgrade -----------------------------------------------------------------------------
    def _downgrade(self, s: UserFloodState, m: Message, at: int) -> Message | Undeliverable:
        rules = self.rules.get(m.user)
        if not rules:
            return m
        cutoff = s.latest - self._rule_span[m.user]
        for mode_, times in list(s.recent.items()):
            _prune(times, cutoff)
            if not times:
                del s.recent[mode_]
        user = self.config.users.get(m.user)
        contacts: dict[str, str] = {str(k): v for k, v in user.contacts.items()} if user is not None else {}
        mode: str = m.mode
        destination = m.destination
        had = {mode}  # the modes this message has had
        while (goes_by := self._rule_step(rules, s.recent, mode, had, contacts, at)) is not None:
            if goes_by not in contacts:  # no contact for `to`, and no email either
                return Undeliverable(
                    at=m.at,
                    incident_id=m.incident_id,
                    instance=m.instance,
                    step=m.step,
                    user=m.user,
                    reason="no-contact",
                )
            had.add(goes_by)
            mode, destination = goes_by, contacts[goes_by]
        insort(s.recent.setdefault(mode, []), at)
        if mode == m.mode:
            return m
        return m.model_copy(
            update={
                "mode": mode,
                "destination": destination,
                "downgraded_from": m.mode,
                "message_id": message_id(m.incident_id, m.instance, m.step, m.notification, m.repeat, m.user, mode, at),
            }
        )

    @staticmethod
    def _rule_step(
        rules: list[DowngradeRule],
        recent: dict[str, list[int]],
        mode: str,
        had: set[str],
        contacts: dict[str, str],
        at: int,
    ) -> str | None:
        """The first rule from `mode` that holds and is not skipped: the mode the message then goes
        by (its `to`, or email when the user has no contact for `to`; the caller finds no email
        contact either). None when no rule holds.

        Spec §7 (2026-12-06): a mode this message already had is never taken again: a rule whose
        result is such a mode is skipped (its `to` alone does not matter when it goes by email)."""
        for rule in rules:
            if rule.from_ != mode:
                continue
            goes_by = rule.to if rule.to in contacts else "email"  # spec §3's fallback
            if goes_by in had:
                continue
            if _count(recent.get(mode, []), at - rule.window * US_PER_S, at) >= rule.count:
                return goes_by
        return None

    # ---- batching ------------------------------------------------------------------------------
    def _batch(self, s: UserFloodState, m: Message, at: int, out: list[Emitted]) -> None:
        self._prune_keys(s)
        settings = self.batching.get(m.plan)
        if settings is None:
            out.append(Emitted(m, message_key(m)))
            return
        key = s.keys.get(m.plan)
        if key is None:
            key = s.keys[m.plan] = KeyState()
        insort(key.times, at)
        if key.next_at is None and _count(key.times, at - settings.window * US_PER_S, at) > settings.threshold:
            key.t0 = at
            key.next_at = at + settings.every * US_PER_S
        if key.next_at is None:
            out.append(Emitted(m, message_key(m)))
            return
        # Batches due before `at` have fired, so the first batch due at or after `at` is next_at.
        key.held.append(m)
        s.instances.setdefault(instance_key(m.incident_id, m.instance), [])
        out.append(
            Emitted(
                Batched(
                    at=m.at,
                    incident_id=m.incident_id,
                    instance=m.instance,
                    step=m.step,
                    user=m.user,
                    batch_at=from_us(key.next_at),
                ),
                message_key(m),
            )
        )

    def _prune_keys(self, s: UserFloodState) -> None:
        """Drop message times no threshold or quiet check can look at again, and idle keys left empty."""
        for plan in list(s.keys):
            key = s.keys[plan]
            settings = self.batching.get(plan)
            span = max(settings.window, settings.quiet) * US_PER_S if settings else 0
            _prune(key.times, s.latest - span)
            if key.next_at is None and not key.times:
                del s.keys[plan]

    def _fire(self, s: UserFloodState, until: int, *, inclusive: bool, out: list[Emitted]) -> None:
        """Fire batches due before `until` (or at it), earliest first."""
        fired = False
        while True:
            due = [(k.next_at, plan) for plan, k in s.keys.items() if k.next_at is not None]
            if not due:
                break
            b, plan = min(due)
            if b > until or (b == until and not inclusive):
                break
            self._fire_one(s, plan, s.keys[plan], b, out)
            fired = True
        if fired:
            held = {instance_key(m.incident_id, m.instance) for k in s.keys.values() for m in k.held}
            s.instances = {k: v for k, v in s.instances.items() if k in held}

    def _fire_one(self, s: UserFloodState, plan: str, key: KeyState, b: int, out: list[Emitted]) -> None:
        members = [m for m in sorted(key.held, key=message_key) if self._open_at(s, m, b)]
        key.held = []
        if len(members) == 1:
            single = members[0].model_copy(update={"at": from_us(b)})
            out.append(Emitted(single, message_key(single)))
        elif members:
            batch = self._batch_message(plan, s.user or members[0].user, members, b)
            out.append(Emitted(batch, message_key(batch)))
        settings = self.batching.get(plan)
        if settings is None:  # batching taken out of the config while the key was batching
            key.t0 = key.next_at = None
            return
        if _count(key.times, b - settings.quiet * US_PER_S, b):
            key.next_at = b + settings.every * US_PER_S
        else:
            key.t0 = key.next_at = None

    @staticmethod
    def _open_at(s: UserFloodState, m: Message, b: int) -> bool:
        """Neither claimed nor resolved at `b`: the last status change at or before `b` decides."""
        last = None
        for at, kind in s.instances.get(instance_key(m.incident_id, m.instance), ()):
            if at <= b:
                last = kind
        return last not in CLOSED_KINDS

    @staticmethod
    def _batch_message(plan: str, user: str, members: list[Message], b: int) -> Message:
        first = members[0]
        top = max(members, key=lambda m: PRIORITY_RANK[m.priority])  # max keeps the first of equals
        lines = []
        for m in members:
            text = m.subject or m.body
            lines.append(f"{m.incident_id}: {' '.join(text.splitlines())}")
        incidents = list(dict.fromkeys(m.incident_id for m in members))
        return first.model_copy(
            update={
                "at": from_us(b),
                "priority": top.priority,
                "mode": top.mode,
                "destination": top.destination,
                "subject": f"[{first.application}] {len(members)} messages from plan {plan}",
                "body": "\n".join(lines),
                "render_error": False,
                "downgraded_from": None,
                "email_html": None,
                "batch": BatchInfo(count=len(members), incident_ids=incidents),
                "message_id": batch_message_id(plan, user, b),
            }
        )

"""Run one list of events under two configs (the replay simulator, so the same engine) and compare.

Outcomes are tallied as they come (`replay_events(on_emit=...)`), not kept, so memory is the
events and the incident states, not the outcomes. Every tally is order-independent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from streamproc.engine.core import Emitted, Engine
from streamproc.replay.simulator import ReplayReport, replay_events
from streamproc.timeutil import from_us, to_us
from streamproc.whatif.model import (
    FirstPage,
    IncidentDiff,
    Pair,
    RenderErrors,
    Totals,
    UndeliverableDiff,
    WhatifReport,
)
from streamproc.wire.events import AnyEvent
from streamproc.wire.outcomes import Batched, Dropped, Message, Silenced, Undeliverable

NIGHT_START, NIGHT_END = 22, 7  # local hours: [22:00, 07:00)
_BUCKET_US = 900 * 1_000_000  # every UTC offset in use is a multiple of 15 minutes

IncidentKey = tuple[str, int]


@dataclass
class Tally:
    """What one config did with the events."""

    tz: ZoneInfo
    pages_by_user: Counter[str] = field(default_factory=Counter)
    pages_by_mode: Counter[str] = field(default_factory=Counter)
    pages_by_hour: Counter[int] = field(default_factory=Counter)
    night_by_user: Counter[str] = field(default_factory=Counter)
    by_user_day: Counter[tuple[str, str]] = field(default_factory=Counter)
    pages_by_incident: Counter[IncidentKey] = field(default_factory=Counter)
    first: dict[IncidentKey, tuple[tuple[object, ...], int, str, str]] = field(default_factory=dict)
    render_errors: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    undeliverable: Counter[tuple[str, str]] = field(default_factory=Counter)
    dropped: int = 0
    silenced: int = 0
    """Instances that started silenced (spec §8): one `silenced` outcome each."""
    report: ReplayReport | None = None
    held: dict[tuple[str, int, str], int] = field(default_factory=dict)
    """(user, batch time, incident id) -> instance, from `batched` outcomes (spec §7)."""
    batches: list[tuple[Message, tuple[object, ...], int]] = field(default_factory=list)
    """Batch messages, credited to each incident in them by `settle()` once all outcomes are in."""
    _local: dict[int, tuple[int, str]] = field(default_factory=dict)

    def local(self, at_us: int) -> tuple[int, str]:
        """(local hour, local date) of a time."""
        bucket = at_us // _BUCKET_US
        found = self._local.get(bucket)
        if found is None:
            moment = datetime.fromtimestamp(bucket * _BUCKET_US / 1e6, tz=self.tz)
            found = self._local[bucket] = (moment.hour, moment.date().isoformat())
        return found

    def add(self, emitted: Emitted) -> None:
        o = emitted.outcome
        if isinstance(o, Message):
            at = to_us(o.at)
            hour, day = self.local(at)
            self.pages_by_user[o.user] += 1
            self.pages_by_mode[o.mode] += 1
            self.pages_by_hour[hour] += 1
            self.by_user_day[(o.user, day)] += 1
            if hour >= NIGHT_START or hour < NIGHT_END:
                self.night_by_user[o.user] += 1
            if o.batch is not None:
                self.batches.append((o, emitted.sort_key, at))
            else:
                self._paged((o.incident_id, o.instance), emitted.sort_key, at, o.user, o.mode)
            if o.render_error:
                first_line = o.body.splitlines()[0] if o.body else ""
                self.render_errors[(o.plan, o.subject, first_line[:200])] += 1
        elif isinstance(o, Undeliverable):
            self.undeliverable[(o.user or "", o.reason)] += 1
        elif isinstance(o, Dropped):
            self.dropped += 1
        elif isinstance(o, Batched):
            self.held[(o.user, to_us(o.batch_at), o.incident_id)] = o.instance
        elif isinstance(o, Silenced):
            self.silenced += 1

    def _paged(self, key: IncidentKey, sort_key: tuple[object, ...], at: int, user: str, mode: str) -> None:
        self.pages_by_incident[key] += 1
        known = self.first.get(key)
        if known is None or sort_key < known[0]:
            self.first[key] = (sort_key, at, user, mode)

    def settle(self) -> None:
        """A batch message is one page (in the totals), and it pages every incident in it."""
        for o, sort_key, at in self.batches:
            assert o.batch is not None
            for incident_id in o.batch.incident_ids:
                instance = self.held.get((o.user, at, incident_id))
                if instance is None and incident_id == o.incident_id:
                    instance = o.instance
                if instance is not None:
                    self._paged((incident_id, instance), sort_key, at, o.user, o.mode)
        self.batches, self.held = [], {}

    def totals(self, incidents: Sequence[IncidentKey]) -> Totals:
        paged = sum(1 for k in incidents if k in self.first)
        return Totals(
            pages=sum(self.pages_by_user.values()),
            night_pages=sum(self.night_by_user.values()),
            render_errors=sum(self.render_errors.values()),
            undeliverable=sum(self.undeliverable.values()),
            dropped=self.dropped,
            paged_incidents=paged,
            unpaged_incidents=len(incidents) - paged,
            silenced_incidents=self.silenced,
        )


def run(engine: Engine, events: Sequence[tuple[int, AnyEvent | str]], tz: ZoneInfo) -> Tally:
    tally = Tally(tz)
    tally.report = replay_events(engine, events, on_emit=tally.add)
    tally.settle()
    return tally


def _pairs(base: Counter[str], new: Counter[str]) -> dict[str, Pair]:
    return {k: Pair(baseline=base[k], new=new[k]) for k in sorted(set(base) | set(new))}


def _first(tally: Tally, key: IncidentKey, triggered_us: int) -> FirstPage | None:
    found = tally.first.get(key)
    if found is None:
        return None
    _, at, user, mode = found
    return FirstPage(at=from_us(at), seconds=(at - triggered_us) / 1e6, user=user, mode=mode)


def compare(
    base: Tally, new: Tally, *, baseline_config: str, new_config: str, source: str, timezone: str
) -> WhatifReport:
    assert base.report is not None and new.report is not None
    triggered = {**base.report.triggered, **new.report.triggered}
    order = sorted(triggered, key=lambda k: (triggered[k][0], k))
    incidents = [
        IncidentDiff(
            incident=k[0] if k[1] == 1 else f"{k[0]}#{k[1]}",
            plan=triggered[k][1],
            triggered_at=from_us(triggered[k][0]),
            baseline=_first(base, k, triggered[k][0]),
            new=_first(new, k, triggered[k][0]),
            pages=Pair(baseline=base.pages_by_incident[k], new=new.pages_by_incident[k]),
        )
        for k in order
    ]
    base_keys = [k for k in order if k in base.report.triggered]
    new_keys = [k for k in order if k in new.report.triggered]
    days: dict[str, dict[str, Pair]] = {}
    for user, day in sorted(set(base.by_user_day) | set(new.by_user_day)):
        days.setdefault(user, {})[day] = Pair(baseline=base.by_user_day[(user, day)], new=new.by_user_day[(user, day)])
    errors = [
        RenderErrors(
            plan=p, subject=s, error=e, baseline=base.render_errors[(p, s, e)], new=new.render_errors[(p, s, e)]
        )
        for p, s, e in sorted(set(base.render_errors) | set(new.render_errors))
    ]
    undeliverable = [
        UndeliverableDiff(user=u, reason=r, baseline=base.undeliverable[(u, r)], new=new.undeliverable[(u, r)])
        for u, r in sorted(set(base.undeliverable) | set(new.undeliverable))
    ]
    times = [t for t, _ in triggered.values()]
    return WhatifReport(
        baseline_config=baseline_config,
        new_config=new_config,
        source=source,
        timezone=timezone,
        night=f"{NIGHT_START:02d}:00-{NIGHT_END:02d}:00",
        events=max(base.report.events, new.report.events),
        rejected=Pair(baseline=len(base.report.rejected), new=len(new.report.rejected)),
        first_trigger=from_us(min(times)) if times else None,
        last_trigger=from_us(max(times)) if times else None,
        totals={"baseline": base.totals(base_keys), "new": new.totals(new_keys)},
        pages_by_user=_pairs(base.pages_by_user, new.pages_by_user),
        pages_by_mode=_pairs(base.pages_by_mode, new.pages_by_mode),
        pages_by_hour=[Pair(baseline=base.pages_by_hour[h], new=new.pages_by_hour[h]) for h in range(24)],
        night_pages_by_user=_pairs(base.night_by_user, new.night_by_user),
        pages_by_user_day=days,
        incidents=incidents,
        render_errors=errors,
        undeliverable=undeliverable,
    )


_JOB: tuple[list[Engine], Sequence[tuple[int, AnyEvent | str]], ZoneInfo] | None = None


def _run_job(index: int) -> Tally:
    assert _JOB is not None
    engines, events, tz = _JOB
    tally = run(engines[index], events, tz)
    assert tally.report is not None
    tally.report.states = {}  # not needed by compare(), and large to send back
    return tally


def run_both(
    engines: list[Engine], events: Sequence[tuple[int, AnyEvent | str]], tz: ZoneInfo, parallel: bool = True
) -> tuple[Tally, Tally]:
    """The baseline and the new config, in two processes (forked: the events are shared, not
    copied) where the platform forks and there is more than one CPU; else one after the other."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    global _JOB
    if not parallel or (os.cpu_count() or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return run(engines[0], events, tz), run(engines[1], events, tz)
    _JOB = (engines, events, tz)
    try:
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
            base, new = pool.map(_run_job, (0, 1))
    finally:
        _JOB = None
    return base, new

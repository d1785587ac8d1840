"""The `streamproc whatif --json` report (schema: schemas/whatif-report.schema.json).

A *page* is a `message` outcome (spec §4), owner messages included. Times of day are in the
report's `timezone` (the `--timezone` flag, default UTC). An incident is one instance of an
incident id: `inc-1`, then `inc-1#2` for its second instance.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from streamproc.timeutil import UtcDatetime


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Pair(_Model):
    baseline: int = 0
    new: int = 0


class Totals(_Model):
    pages: int
    night_pages: int = Field(description="Pages between the night's start and end, in `timezone`")
    render_errors: int = Field(description="Messages with render_error: true")
    undeliverable: int
    dropped: int
    paged_incidents: int
    unpaged_incidents: int = Field(description="Incidents that page nobody")
    silenced_incidents: int = Field(default=0, description="Incidents that started silenced (spec §8)")


class FirstPage(_Model):
    at: UtcDatetime
    seconds: float = Field(description="Time to first page: first message's `at` minus the trigger's")
    user: str
    mode: str


class IncidentDiff(_Model):
    incident: str = Field(description="Incident id, with `#<instance>` from the second instance on")
    plan: str
    triggered_at: UtcDatetime
    baseline: FirstPage | None = Field(description="None: this incident pages nobody under the baseline")
    new: FirstPage | None
    pages: Pair


class RenderErrors(_Model):
    plan: str
    subject: str = Field(description="The render-error message's subject, which names the template")
    error: str = Field(description="First line of the error message")
    baseline: int
    new: int


class UndeliverableDiff(_Model):
    user: str
    reason: str
    baseline: int
    new: int


class WhatifReport(_Model):
    baseline_config: str
    new_config: str
    source: str
    timezone: str = Field(description="IANA name used for hours of day and night")
    night: str = Field(description="Night-time window, local time: `22:00-07:00`")
    events: int = Field(description="Events replayed")
    rejected: Pair = Field(description="Events not processed (invalid, or unknown plan/application)")
    first_trigger: UtcDatetime | None
    last_trigger: UtcDatetime | None
    totals: dict[str, Totals] = Field(description="`baseline` and `new`")
    pages_by_user: dict[str, Pair]
    pages_by_mode: dict[str, Pair]
    pages_by_hour: list[Pair] = Field(description="24 entries: local hour of day 0..23")
    night_pages_by_user: dict[str, Pair]
    pages_by_user_day: dict[str, dict[str, Pair]] = Field(description="user -> local date -> pages")
    incidents: list[IncidentDiff] = Field(description="Every incident, in trigger order")
    render_errors: list[RenderErrors]
    undeliverable: list[UndeliverableDiff]
    failed_rules: list[str] = Field(default_factory=list, description="`--fail-on` rules that hold")

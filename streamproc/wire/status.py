"""The status topic's records, `<namespace>.status` (compacted, keyed by incident id; why:
docs/decisions/status-topic.md).

Stage 2 of the worker writes one `IncidentSummary` per incident instance it changed in a batch,
with the batch's other outputs and acknowledged before the state is written, so the topic never
says less than what was sent. A resolved instance's summary stays for `status.resolved_retention`
seconds; then the worker writes a tombstone (the key with no value) and compaction forgets it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from streamproc.timeutil import UtcDatetime

SummaryStatus = Literal["silenced", "escalating", "claimed", "exhausted", "resolved"]
OPEN_STATUSES: frozenset[str] = frozenset({"silenced", "escalating", "claimed", "exhausted"})
"""Everything but `resolved`: the instances `--status open` and `status=open` list."""
CONTEXT_SUMMARY_MAX = 200


class IncidentSummary(BaseModel):
    """The current summary of one incident instance: what the status topic holds per incident id."""

    model_config = ConfigDict(extra="forbid")

    incident_id: str
    instance: int = Field(description="The instance number (a trigger after a resolve opens the next)")
    status: SummaryStatus
    plan: str
    application: str
    step: int = Field(description="1-based current (or claimed) step; 0 while silenced before step 1")
    steps: int = Field(description="Steps of the plan snapshot (0 once resolved: the resolve drops it)")
    created: UtcDatetime = Field(description="When the instance was triggered (the trigger's `at`)")
    updated: UtcDatetime = Field(description="The worker's clock when it wrote this summary")
    last_paged: list[str] = Field(
        default_factory=list, description="The users of the instance's latest messages (due at last_paged_at)"
    )
    last_paged_at: UtcDatetime | None = Field(default=None, description="When those messages were due")
    next_page_at: UtcDatetime | None = Field(
        default=None, description="When the next message is due (escalating), or step 1 starts (silenced)"
    )
    claimed_by: str | None = None
    claimed_at: UtcDatetime | None = None
    summary: str = Field(
        default="",
        description=f"The trigger's context summary (at most {CONTEXT_SUMMARY_MAX} "
        "characters): its `summary`, `title` or `description`, else "
        "its keys and values",
    )
    absorbed: int = Field(default=0, description="Triggers absorbed by the open instance")
    silence_id: str | None = Field(default=None, description="The silence that held the instance (spec §8)")
    resolved_at: UtcDatetime | None = None
    expires_at: UtcDatetime | None = Field(
        default=None, description="Resolved: when the worker writes the tombstone that removes it"
    )


SUMMARY_KEYS = ("summary", "title", "description", "message", "alertname")


def context_summary(context: dict[str, Any]) -> str:
    """A trigger context's one-line summary: its first text among `SUMMARY_KEYS`, else `key=value`
    pairs of its scalar values; at most `CONTEXT_SUMMARY_MAX` characters."""
    for key in SUMMARY_KEYS:
        value = context.get(key)
        if isinstance(value, str) and value.strip():
            text = " ".join(value.split())
            break
    else:
        text = " ".join(f"{k}={v}" for k, v in context.items() if isinstance(v, str | int | float | bool))
    return text if len(text) <= CONTEXT_SUMMARY_MAX else text[: CONTEXT_SUMMARY_MAX - 1] + "…"


class IncidentList(BaseModel):
    """`GET /v1/incidents`: one page of the caller's application's incidents, newest first."""

    model_config = ConfigDict(extra="forbid")

    incidents: list[IncidentSummary]
    total: int = Field(description="Incidents matching the filters, on every page")
    limit: int
    offset: int
    next: str | None = Field(default=None, description="Path and query of the next page, if there is one")

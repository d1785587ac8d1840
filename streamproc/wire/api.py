"""Bodies of the HTTP API (`streamproc api`): what callers send and what they get back.

The native API's request is the event of spec §2 (`streamproc.wire.events`); integrations
(Iris, PagerDuty Events v2, Alertmanager) are translated into such events.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from streamproc.wire.events import DynamicTarget


class Accepted(BaseModel):
    """202: every event is on the incidents topic (acknowledged by the broker)."""

    accepted: int = Field(description="How many events were written")
    incident_ids: list[str] = Field(description="The incident id of each event, in request order")


class ErrorBody(BaseModel):
    error: str = Field(description="What is wrong; names the field (`[2].plan: Field required`)")


class IrisIncident(BaseModel):
    """`POST /v0/incidents` as irisclient sends it."""

    model_config = ConfigDict(extra="ignore")

    plan: str = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)
    dynamic_targets: list[DynamicTarget] = Field(default_factory=list)


class IrisClaim(BaseModel):
    """`POST /v0/incidents/{id}`: `owner` claims, `null` unclaims."""

    model_config = ConfigDict(extra="ignore")

    owner: str | None = Field(description="The user claiming the incident; null unclaims it")


PagerDutySeverity = Literal["critical", "error", "warning", "info"]


class PagerDutyPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    summary: str = Field(min_length=1, max_length=1024)
    source: str = Field(min_length=1)
    severity: PagerDutySeverity
    timestamp: str | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(default=None, alias="class")
    custom_details: Any = None


class PagerDutyEvent(BaseModel):
    """An event of PagerDuty's Events API v2 (`POST /v2/enqueue`)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    routing_key: str = Field(min_length=1)
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str | None = Field(default=None, min_length=1, max_length=255)
    payload: PagerDutyPayload | None = None
    client: str | None = None
    client_url: str | None = None
    links: list[Any] = Field(default_factory=list)
    images: list[Any] = Field(default_factory=list)


class PagerDutyAnswer(BaseModel):
    """PagerDuty's answer: 202 `success` with the dedup key, 400 `invalid event` with errors."""

    status: str
    message: str
    dedup_key: str | None = None
    errors: list[str] | None = None

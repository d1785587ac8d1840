"""Bodies of the HTTP API (`streamproc api`): what callers send and what they get back.

The native API's request is the event of spec §2 (`streamproc.wire.events`); integrations
(Iris, PagerDuty Events v2, Alertmanager) are translated into such events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from streamproc.timeutil import UtcDatetime
from streamproc.wire.events import AT_YEARS, DynamicTarget, Re2Pattern


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


AlertStatus = Literal["firing", "resolved"]


class AlertmanagerAlert(BaseModel):
    """One alert of an Alertmanager webhook notification."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    status: AlertStatus
    labels: dict[str, str] = Field(description="The alert's label set (`alertname`, `severity`, ...)")
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime | None = Field(default=None, alias="startsAt")
    ends_at: datetime | None = Field(
        default=None,
        alias="endsAt",
        description="0001-01-01T00:00:00Z (Go's zero time) while firing with no end known",
    )
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = Field(
        min_length=1, max_length=1024, description="Hash of the label set: the alert's incident's `dedup_key`"
    )


class AlertmanagerWebhook(BaseModel):
    """`POST /v1/integrations/alertmanager`: the body of Alertmanager's webhook receiver (version 4)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    version: str = Field(default="4", description="4 for every Alertmanager release so far")
    receiver: str = ""
    status: AlertStatus = Field(description="`firing` while any alert of the group fires")
    alerts: list[AlertmanagerAlert] = Field(min_length=1)
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    group_key: str = Field(
        default="", alias="groupKey", description="The group's key: the incident's `dedup_key` with `?group=true`"
    )
    truncated_alerts: int = Field(
        default=0,
        ge=0,
        alias="truncatedAlerts",
        description="Alerts left out of `alerts` by the receiver's `max_alerts`",
    )


# ---- spec §8 doors: silences and heartbeats (`streamproc.api.silences`, `streamproc.api.amsilences`) --------

SilenceState = Literal["active", "pending", "expired"]


class SilenceRequest(BaseModel):
    """`POST /v1/silences`: a `silence` event of spec §8 without `type` and `at` (the server sets `at`
    to the time of receipt). Unknown fields are refused: a misspelt `match` would silence everything."""

    model_config = ConfigDict(extra="forbid")

    silence_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="A new UUID when left out; the id of a known silence replaces it",
    )
    application: str | None = Field(
        default=None, min_length=1, description="The key's application when left out; any other is refused (403)"
    )
    starts: UtcDatetime | None = Field(
        default=None, description="Default: now", json_schema_extra={"pattern": AT_YEARS}
    )
    ends: UtcDatetime = Field(
        description="After `starts`, at most 30 days after it", json_schema_extra={"pattern": AT_YEARS}
    )
    plans: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, description="Only instances of these plans (default: every plan)"
    )
    match: dict[str, str | Annotated[list[str], Field(min_length=1)]] = Field(
        default_factory=dict, description="Context key -> the value, or one of the values, it must have"
    )
    match_re: dict[str, Re2Pattern] = Field(
        default_factory=dict,
        description="Context key -> a regular expression its value's text must fully match (RE2-compatible)",
    )
    created_by: str | None = Field(default=None, max_length=255)
    comment: str | None = Field(default=None, max_length=4096)


class SilenceView(BaseModel):
    """A silence as the native API shows it: its latest `silence` event, `ends` moved by an `unsilence`."""

    silence_id: str
    application: str
    state: SilenceState = Field(description="pending before `starts`, active until `ends`, then expired")
    starts: UtcDatetime
    ends: UtcDatetime
    plans: list[str] | None = None
    match: dict[str, str | list[str]] = Field(default_factory=dict)
    match_re: dict[str, str] = Field(default_factory=dict)
    created_by: str | None = None
    comment: str | None = None
    updated_at: UtcDatetime = Field(description="The time of the latest event of this silence")


class SilenceList(BaseModel):
    """`GET /v1/silences`: the application's active and pending silences, active first, by `ends`."""

    silences: list[SilenceView]


# Alertmanager's API v2 (api/v2/openapi.yaml of Alertmanager 0.25): the silence models amtool uses.


class AmMatcher(BaseModel):
    """Alertmanager's `matcher`: `name="value"` (isRegex false), `name=~"re"` (isRegex true); isEqual
    false is the negative form (`!=`, `!~`), which streamproc refuses."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str = Field(min_length=1, description="A label name: a context key of the trigger")
    value: str
    is_regex: bool = Field(alias="isRegex")
    is_equal: bool = Field(default=True, alias="isEqual")


class AmPostableSilence(BaseModel):
    """`POST /api/v2/silences` (Alertmanager's `postableSilence`); `id` replaces that silence."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str | None = Field(default=None, max_length=255)
    matchers: list[AmMatcher]
    starts_at: UtcDatetime = Field(alias="startsAt", json_schema_extra={"pattern": AT_YEARS})
    ends_at: UtcDatetime = Field(alias="endsAt", json_schema_extra={"pattern": AT_YEARS})
    created_by: str = Field(alias="createdBy", max_length=255)
    comment: str = Field(max_length=4096)


class AmPostSilenceAnswer(BaseModel):
    """200 of `POST /api/v2/silences`."""

    model_config = ConfigDict(populate_by_name=True)

    silence_id: str = Field(alias="silenceID")


class AmSilenceStatus(BaseModel):
    state: SilenceState


class AmGettableSilence(BaseModel):
    """An element of `GET /api/v2/silences` (Alertmanager's `gettableSilence`)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    status: AmSilenceStatus
    updated_at: UtcDatetime = Field(alias="updatedAt")
    matchers: list[AmMatcher]
    starts_at: UtcDatetime = Field(alias="startsAt")
    ends_at: UtcDatetime = Field(alias="endsAt")
    created_by: str = Field(alias="createdBy")
    comment: str


AM_GETTABLE_SILENCES: TypeAdapter[list[AmGettableSilence]] = TypeAdapter(list[AmGettableSilence])

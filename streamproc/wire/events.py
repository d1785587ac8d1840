"""Events (spec §2): what monitoring pipelines, people and the API put on `streamproc.incidents`.

Unknown extra fields on an event are ignored (integrations add their own); every field the
spec names is validated, and a failure names the field.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from streamproc.timeutil import UtcDatetime
from streamproc.wire.common import ROLE_RE


class DynamicTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str
    target: str

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        if not ROLE_RE.match(value):
            raise ValueError("role must be user, team, manager, oncall or oncall-<rotation>")
        return value


def derive_incident_id(application: str, dedup_key: str) -> str:
    """Spec §2: `<application>-<first 12 hex digits of sha256(dedup_key)>`."""
    return f"{application}-{hashlib.sha256(dedup_key.encode()).hexdigest()[:12]}"


_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)
AT_YEARS = r"^(19[89]\d|[2-7]\d{3}|8[0-8]\d{2}|89[0-8]\d)-"
"""For JSON Schema readers: years 1980-8998, inside the accepted range whatever the UTC offset."""


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="ignore")

    at: UtcDatetime | None = Field(
        default=None,
        description="Event time. Required in replay input; on Kafka a missing `at` takes the record timestamp.",
        json_schema_extra={"pattern": AT_YEARS},
    )
    incident_id: str | None = Field(default=None, min_length=1, max_length=255)
    event_id: str | None = Field(
        default=None, min_length=1, max_length=255, description="Makes a re-delivered event a no-op."
    )
    application: str | None = None
    dedup_key: str | None = Field(default=None, min_length=1, max_length=1024)

    @field_validator("at")
    @classmethod
    def _plausible(cls, value: datetime | None) -> datetime | None:
        # Schedules reach up to ~4 years past `at` (20 repeats of 12 h per step); a time near
        # year 9999 would overflow them and stop the partition that holds it.
        if value is not None and not (_EARLIEST <= value < _LATEST):
            raise ValueError("must be between 1970-01-01 and 9000-01-01")
        return value

    @model_validator(mode="after")
    def _identify(self) -> _EventBase:
        if self.incident_id is None:
            if self.dedup_key is None:
                raise ValueError("incident_id is required (or dedup_key with application)")
            if not self.application:
                raise ValueError("application is required when the incident is named by dedup_key")
            self.incident_id = derive_incident_id(self.application, self.dedup_key)
        return self

    @property
    def key(self) -> str:
        """The incident id; also the Kafka record key of the event."""
        assert self.incident_id is not None
        return self.incident_id


class Trigger(_EventBase):
    type: Literal["trigger"]
    application: str = Field(min_length=1)
    plan: str = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)
    dynamic_targets: list[DynamicTarget] = Field(default_factory=list)


class Claim(_EventBase):
    type: Literal["claim"]
    owner: str | None = None


class Acknowledge(_EventBase):
    """A claim by an integration: the application is the owner."""

    type: Literal["acknowledge"]


class Unclaim(_EventBase):
    type: Literal["unclaim"]


class Resolve(_EventBase):
    type: Literal["resolve"]


Event = Annotated[Trigger | Claim | Acknowledge | Unclaim | Resolve, Field(discriminator="type")]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: bytes | str) -> Event:
    """Validate one JSON event; raises pydantic.ValidationError naming the field."""
    return EVENT_ADAPTER.validate_json(data)


def parse_event_obj(data: Any) -> Event:
    return EVENT_ADAPTER.validate_python(data)


_EVENT_TYPES = {"trigger", "claim", "acknowledge", "unclaim", "resolve"}


def error_text(exc: ValidationError) -> str:
    """One line naming each invalid field: `plan: Field required; at: Input should be ...`."""
    parts = []
    for error in exc.errors():
        path = list(error["loc"])
        if path and path[0] in _EVENT_TYPES:  # the discriminated union's tag
            path = path[1:]
        loc = ".".join(str(p) for p in path if not str(p).startswith(("function-", "tagged-union")))
        if not loc and error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = "type"  # the discriminator itself is wrong or missing
        parts.append(f"{loc or 'event'}: {error['msg']}")
    return "; ".join(parts)

"""The configuration model (spec §1). One model, validated once at load.

Structural rules live here (types, ranges, unknown keys); cross-references (unknown users,
teams, rotations, templates) are checked in `checks.py`, which knows the whole document.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamproc.config.api import ApiSettings
from streamproc.config.durations import Duration
from streamproc.config.heartbeats import HeartbeatMonitor
from streamproc.config.kafka import KafkaSettings
from streamproc.config.senders import RateSettings, SendersSettings
from streamproc.config.status import StatusSettings
from streamproc.timeutil import UtcDatetime
from streamproc.wire.common import ROLE_RE, ContactMode, Mode, Priority

DEFAULT_PRIORITIES: dict[Priority, Mode] = {"urgent": "call", "high": "sms", "medium": "email", "low": "email"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Application(_Strict):
    key: str | None = Field(default=None, description="HMAC secret for the API")
    secondary_key: str | None = Field(default=None, description="Second secret, for key rotation")
    allowed_modes: list[Mode] | None = Field(default=None, description="Default: all modes")
    default_modes: dict[Priority, Mode] = Field(default_factory=dict)
    routing_keys: dict[str, str] = Field(
        default_factory=dict,
        description="streamproc extension: PagerDuty Events v2 routing key -> plan (`POST /v2/enqueue`)",
    )
    rate: RateSettings | None = Field(
        default=None, description="streamproc extension: API requests per second for this application (per replica)"
    )

    def secrets(self) -> list[str]:
        """The secrets that authenticate this application (primary first)."""
        return [k for k in (self.key, self.secondary_key) if k]


class DowngradeRule(_Strict):
    """Spec §7: a message by mode `from` goes by `to` once `count` earlier messages to the user by
    `from` fall within `window`."""

    from_: ContactMode = Field(alias="from")
    to: ContactMode
    count: int = Field(ge=1, le=10_000)
    window: Duration = Field(gt=0, le=86400, description="Seconds (or 90s / 5m / 1d)")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _different(self) -> DowngradeRule:
        if self.from_ == self.to:
            raise ValueError(f"from and to are the same mode ({self.to!r})")
        return self


class User(_Strict):
    contacts: dict[ContactMode, str] = Field(default_factory=dict)
    modes: dict[Priority, Mode] = Field(default_factory=dict)
    app_modes: dict[str, dict[Priority, Mode]] = Field(default_factory=dict)
    active: bool = True
    downgrade: list[DowngradeRule] = Field(default_factory=list, description="Spec §7, in order")


class Rotation(_Strict):
    users: list[str] = Field(min_length=1)
    start: UtcDatetime
    shift: Duration = Field(gt=0, description="Seconds (or 90s / 5m / 7d)")


class Override(_Strict):
    role: str = Field(description="Rotation name (`primary`) or role (`oncall-primary`)")
    user: str
    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    @property
    def rotation(self) -> str:
        if self.role == "oncall":
            return "primary"
        return self.role[len("oncall-") :] if self.role.startswith("oncall-") else self.role


class Team(_Strict):
    members: list[str] = Field(default_factory=list)
    manager: str | None = None
    rotations: dict[str, Rotation] = Field(default_factory=dict)
    overrides: list[Override] = Field(default_factory=list)


class Notification(_Strict):
    role: str | None = None
    target: str | None = None
    dynamic: int | None = Field(default=None, ge=0)
    priority: Priority
    template: str
    repeat: int = Field(default=0, ge=0, le=20, description="Extra sends")
    wait: Duration = Field(default=0, ge=0, le=43200, description="Seconds between sends")
    optional: bool = False

    @model_validator(mode="after")
    def _target(self) -> Notification:
        if self.dynamic is not None:
            if self.role is not None or self.target is not None:
                raise ValueError("give either role and target, or dynamic, not both")
        else:
            if self.role is None or self.target is None:
                raise ValueError("role and target are required (or dynamic)")
            if not ROLE_RE.match(self.role):
                raise ValueError(f"role must be user, team, manager, oncall or oncall-<rotation> (got {self.role!r})")
        return self

    @property
    def duration(self) -> int:
        """Seconds from the step's start until this notification is done: (repeat + 1) * wait."""
        return (self.repeat + 1) * self.wait


class Batching(_Strict):
    """Spec §7: per (plan, user), more than `threshold` messages within `window` start a batch;
    batches go out every `every` until `quiet` passes without a message."""

    threshold: int = Field(ge=1, le=10_000)
    window: Duration = Field(gt=0, le=86400)
    every: Duration = Field(gt=0, le=86400)
    quiet: Duration = Field(ge=0, le=7 * 86400)


class Plan(_Strict):
    owner: str | None = None
    batching: Batching | None = Field(default=None, description="Spec §7 automatic batching")
    steps: list[Annotated[list[Notification], Field(min_length=1)]] = Field(min_length=1)


class TemplateEntry(_Strict):
    subject: str | None = None
    body: str | None = None
    email_html: str | None = None


# templates[name][application or "default"][mode or "default"]
Templates = dict[str, dict[str, dict[str, TemplateEntry]]]


class Config(_Strict):
    priorities: dict[Priority, Mode] = Field(default_factory=lambda: dict(DEFAULT_PRIORITIES))
    applications: dict[str, Application] = Field(default_factory=dict)
    users: dict[str, User] = Field(default_factory=dict)
    teams: dict[str, Team] = Field(default_factory=dict)
    plans: dict[str, Plan] = Field(default_factory=dict)
    templates: Templates = Field(default_factory=dict)
    heartbeats: dict[str, HeartbeatMonitor] = Field(
        default_factory=dict, description="Spec §8: heartbeat monitors (dead man's switches), by name"
    )
    senders: SendersSettings = Field(
        default_factory=SendersSettings, description="streamproc extension: vendor settings for the senders"
    )
    api: ApiSettings = Field(default_factory=ApiSettings, description="streamproc extension: the HTTP API")
    status: StatusSettings = Field(
        default_factory=StatusSettings, description="streamproc extension: the status topic (docs/status-page.md)"
    )
    kafka: KafkaSettings = Field(
        default_factory=KafkaSettings,
        description="streamproc extension: TLS and SASL towards the brokers (STREAMPROC_KAFKA_* override)",
    )

    @model_validator(mode="after")
    def _default_priorities(self) -> Config:
        # Priorities not listed keep the global defaults.
        merged = dict(DEFAULT_PRIORITIES)
        merged.update(self.priorities)
        object.__setattr__(self, "priorities", merged)
        return self

    def email_of(self, user: str) -> str | None:
        found = self.users.get(user)
        return found.contacts.get("email") if found else None

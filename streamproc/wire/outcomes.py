"""Outcomes (spec §4): what the engine decides. Messages go to `streamproc.messages.<mode>`;
the other kinds, and audit records, go to `streamproc.outcomes`.

Serialised with `to_json`, which leaves out `None` fields that the spec does not show
(for example `unresolved` on ordinary messages).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from streamproc.timeutil import UtcDatetime
from streamproc.wire.common import Mode, Priority


class _OutcomeBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: UtcDatetime
    incident_id: str
    instance: int


class Message(_OutcomeBase):
    kind: Literal["message"] = "message"
    plan: str
    application: str
    step: int = Field(description="1-based step number")
    notification: int = Field(description="0-based index of the notification in its step")
    repeat: int = Field(description="0 for the first send, 1.. for repeats")
    role: str
    target: str
    user: str
    priority: Priority
    mode: Mode
    destination: str
    subject: str
    body: str
    render_error: bool
    message_id: str
    unresolved: str | None = Field(
        default=None, description="On a message to a plan owner: the `role:target` that resolved to nobody."
    )
    email_html: str | None = Field(default=None, description="HTML body, when the template has one.")
    downgraded_from: Mode | None = Field(
        default=None, description="Spec §7: the mode the message started with, when a downgrade rule changed it."
    )
    batch: BatchInfo | None = Field(default=None, description="Spec §7: on a batch message, what it stands for.")


class BatchInfo(BaseModel):
    """Spec §7: a batch message's members."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=2, description="Messages in the batch")
    incident_ids: list[str] = Field(min_length=1, description="Unique, in member order")


UndeliverableReason = Literal["no-mode", "no-contact", "unresolved"]


class Undeliverable(_OutcomeBase):
    kind: Literal["undeliverable"] = "undeliverable"
    step: int
    user: str | None
    reason: UndeliverableReason


class Dropped(_OutcomeBase):
    kind: Literal["dropped"] = "dropped"
    step: int
    user: str


class Exhausted(_OutcomeBase):
    kind: Literal["exhausted"] = "exhausted"


class Batched(_OutcomeBase):
    """Spec §7: a message held for the batch due at `batch_at` (given at the message's own `at`)."""

    kind: Literal["batched"] = "batched"
    step: int
    user: str
    batch_at: UtcDatetime


SpecOutcome = Message | Undeliverable | Dropped | Exhausted | Batched
Outcome = Annotated[SpecOutcome, Field(discriminator="kind")]
OUTCOME_ADAPTER: TypeAdapter[Outcome] = TypeAdapter(Outcome)

_OPTIONAL_FIELDS = frozenset({"unresolved", "email_html", "downgraded_from", "batch"})


def outcome_dict(outcome: SpecOutcome) -> dict[str, object]:
    """The JSON object of an outcome, `kind` first, optional fields only when set."""
    data = outcome.model_dump(mode="json")
    for name in _OPTIONAL_FIELDS:
        if name in data and data[name] is None:
            del data[name]
    return {"kind": data.pop("kind"), **data}


def parse_outcome(data: bytes | str) -> SpecOutcome:
    return OUTCOME_ADAPTER.validate_json(data)


class Audit(BaseModel):
    """What happened to an instance (claim, unclaim, resolve, absorbed trigger), for
    `streamproc.outcomes`. Senders read these to drop queued pages of claimed incidents.
    Not a spec outcome: replay does not print them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["triggered", "claimed", "unclaimed", "resolved", "absorbed"]
    at: UtcDatetime
    incident_id: str
    instance: int
    owner: str | None = None
    step: int | None = None

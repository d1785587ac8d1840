"""Delivery records: what the senders did with each message, on `streamproc.deliveries`.

Keyed by user and written to the partition number of the message they answer, so the
deliveries topic is co-partitioned with every `streamproc.messages.<mode>` topic. A worker
taking over partition p of a message topic re-reads partition p of this topic to learn which
message ids were already handled: that is how a page is sent at most once across restarts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamproc.timeutil import UtcDatetime
from streamproc.wire.common import Mode
from streamproc.wire.outcomes import BatchInfo

DeliveryStatus = Literal[
    "sent", "failed", "dropped-claimed", "dropped-resolved", "duplicate", "fallback", "vendor-status"
]

HANDLED: frozenset[str] = frozenset({"sent", "failed", "dropped-claimed", "dropped-resolved", "fallback"})
"""Statuses that settle a message id: a later copy of that id must not reach a vendor.
`duplicate` is not one: it points at another copy, whose own record settles the id."""


class Delivery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: str
    incident_id: str | None = Field(default=None, description="Unknown only on vendor-status records")
    instance: int | None = None
    mode: Mode | None = None
    vendor: str
    status: DeliveryStatus
    at: UtcDatetime
    attempts: int = Field(default=0, ge=0, description="Vendor calls made for this message")
    detail: str = ""
    vendor_id: str | None = Field(default=None, description="The vendor's id (Twilio SID, Slack ts, ...)")
    user: str | None = None
    batch: BatchInfo | None = Field(
        default=None,
        description="On the record of a batch message (spec §7): the batch's incidents, as the message "
        "carries them; `incident_id` and `instance` are its first member's",
    )

    @model_validator(mode="after")
    def _identified(self) -> Delivery:
        if self.status != "vendor-status" and (self.incident_id is None or self.instance is None or self.mode is None):
            raise ValueError("incident_id, instance and mode are required except on vendor-status records")
        return self


def parse_delivery(data: bytes | str) -> Delivery:
    return Delivery.model_validate_json(data)

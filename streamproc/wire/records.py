"""Internal records: wake-up ticks, flood-control inputs and dead letters."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from streamproc.timeutil import UtcDatetime
from streamproc.wire.outcomes import Message


class Tick(BaseModel):
    """A wake-up for one incident, produced to `streamproc.ticks` (co-partitioned with incidents).
    Duplicate or late ticks are harmless: the engine only emits what is due."""

    model_config = ConfigDict(extra="forbid")

    incident_id: str
    due: int = Field(description="µs since the epoch: the wake time that was due")
    version: int = Field(description="State version the tick was scheduled for (diagnostics)")


class DeadLetter(BaseModel):
    """Input that could not be processed, and why. Nothing is dropped silently."""

    model_config = ConfigDict(extra="forbid")

    reason: str
    source_topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    value: str = Field(description="The raw record value (UTF-8, undecodable bytes replaced)")
    at: UtcDatetime


class FloodMessage(BaseModel):
    """A message on its way through flood control (spec §7), keyed by its user."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["message"] = "message"
    message: Message


class FloodStatus(BaseModel):
    """A claim, unclaim or resolve of an instance, for a user who was sent messages of it through
    flood control: a batch leaves out instances claimed or resolved by its time."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["status"] = "status"
    user: str
    incident_id: str
    instance: int
    status: Literal["claimed", "unclaimed", "resolved"]
    at: UtcDatetime


class FloodTick(BaseModel):
    """A wake-up for one user's batches (like `Tick`; late or duplicate ones are harmless)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["tick"] = "tick"
    user: str
    due: int = Field(description="µs since the epoch: the batch time that was due")


FloodRecord = Annotated[FloodMessage | FloodStatus | FloodTick, Field(discriminator="kind")]
FLOOD_ADAPTER: TypeAdapter[FloodMessage | FloodStatus | FloodTick] = TypeAdapter(FloodRecord)

"""Internal records: wake-up ticks and dead letters."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from streamproc.timeutil import UtcDatetime


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

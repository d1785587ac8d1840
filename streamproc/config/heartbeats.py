"""Spec §8 heartbeat monitors (dead man's switches): the `heartbeats:` section of the config.

A monitor of application `application` expects a `heartbeat` event at least every `interval`; when
one is late it triggers incident `heartbeat-<name>` with plan `plan` (see `streamproc.engine.maintenance`).
Cross-references (the application, the plan) are checked in `checks.py`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from streamproc.config.durations import Duration

INTERVAL_MIN = 10
INTERVAL_MAX = 30 * 86400
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
"""Monitor names: they become incident ids (`heartbeat-<name>`) and URL path segments."""
RESERVED_CONTEXT = ("heartbeat", "last_heartbeat", "interval")
"""Context keys an expiry sets itself (they win over the monitor's `context`)."""


class HeartbeatMonitor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    application: str = Field(min_length=1, description="The application whose heartbeats feed it")
    plan: str = Field(min_length=1, description="The plan of the incident it triggers when a heartbeat is late")
    interval: Duration = Field(
        ge=INTERVAL_MIN, le=INTERVAL_MAX, description="Seconds (or 90s / 5m / 26h / 7d), 10s .. 30d"
    )
    context: dict[str, Any] = Field(
        default_factory=dict,
        description="Context of the incident it triggers (plus heartbeat, last_heartbeat and interval)",
    )

"""The optional top-level `status:` key, settings of the status topic (`<namespace>.status`, see
`streamproc.wire.status`, docs/status-page.md and docs/decisions/status-topic.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from streamproc.config.durations import Duration


class StatusSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    resolved_retention: Duration = Field(
        default=3600,
        ge=0,
        le=30 * 86400,
        description=(
            "How long a resolved instance stays on the status topic (and in `streamproc incidents`, "
            "the API and /ui) before the worker writes its tombstone; seconds or 90s / 5m / 1h / 7d, "
            "default 1h"
        ),
    )

"""Vocabulary shared by config, events and outcomes."""

from __future__ import annotations

import re
from typing import Literal

Mode = Literal["call", "sms", "email", "slack", "webhook", "drop"]
MODES: tuple[Mode, ...] = ("call", "sms", "email", "slack", "webhook", "drop")
ContactMode = Literal["call", "sms", "email", "slack", "webhook"]

Priority = Literal["low", "medium", "high", "urgent"]
PRIORITIES: tuple[Priority, ...] = ("low", "medium", "high", "urgent")
PRIORITY_RANK: dict[str, int] = {p: i for i, p in enumerate(PRIORITIES)}

ROLE_RE = re.compile(r"^(user|team|manager|oncall(-[A-Za-z0-9_.-]+)?)$")
"""Roles a notification may name: user, team, manager, oncall, oncall-<rotation>."""


def rotation_of(role: str) -> str | None:
    """`oncall` -> `primary`, `oncall-secondary` -> `secondary`, other roles -> None."""
    if role == "oncall":
        return "primary"
    if role.startswith("oncall-"):
        return role[len("oncall-") :]
    return None

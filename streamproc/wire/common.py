"""Vocabulary shared by config, events and outcomes."""

from __future__ import annotations

import re
from typing import Literal, get_args

ContactMode = Literal["call", "sms", "email", "slack", "webhook"]
"""A way to reach a person: each has a message topic and a sender."""
CONTACT_MODES: tuple[ContactMode, ...] = get_args(ContactMode)
Mode = Literal[ContactMode, "drop"]
MODES: tuple[Mode, ...] = (*CONTACT_MODES, "drop")

Priority = Literal["low", "medium", "high", "urgent"]
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
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

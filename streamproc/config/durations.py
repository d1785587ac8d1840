"""Durations in the configuration: integer seconds, or a string with unit s, m, h or d."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> int:
    """Integer seconds, or a string with unit s, m, h or d (`90s`, `5m`, `7d`)."""
    if isinstance(value, bool):
        raise ValueError("a duration is integer seconds or a string like '90s', '5m', '7d'")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            return int(match.group(1)) * _UNIT_S[match.group(2)]
    raise ValueError(f"a duration is integer seconds or a string like '90s', '5m', '7d' (got {value!r})")


Duration = Annotated[int, BeforeValidator(parse_duration)]

__all__ = ["Duration", "parse_duration"]

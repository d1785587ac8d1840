"""Flood control (spec §7): downgrade and batching of one user's messages, pure like the engine."""

from streamproc.flood.control import (
    FloodControl,
    FloodResult,
    batch_message_id,
    message_key,
)
from streamproc.flood.replay import apply_flood
from streamproc.flood.state import KeyState, UserFloodState

__all__ = [
    "FloodControl",
    "FloodResult",
    "KeyState",
    "UserFloodState",
    "apply_flood",
    "batch_message_id",
    "message_key",
]

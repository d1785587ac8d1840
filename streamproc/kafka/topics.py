"""Topic names and record keys: the one place that says what goes where."""

from __future__ import annotations

INCIDENTS = "streamproc.incidents"
"""Events (spec §2), keyed by incident id."""
TICKS = "streamproc.ticks"
"""Wake-ups, co-partitioned with INCIDENTS and keyed by incident id."""
OUTCOMES = "streamproc.outcomes"
"""undeliverable / dropped / exhausted outcomes and claim/resolve audit records, keyed by incident id."""
DEADLETTER = "streamproc.deadletter"
"""Input that could not be processed, with the reason."""
DELIVERIES = "streamproc.deliveries"
"""What the senders did with each message, keyed like the message topics."""
MESSAGES_PREFIX = "streamproc.messages."

DEFAULT_PARTITIONS = 12


def messages_topic(mode: str) -> str:
    """`streamproc.messages.<mode>`: rendered messages for one contact mode."""
    return MESSAGES_PREFIX + mode


def message_key(user: str) -> bytes:
    """Messages are keyed by user so one person's pages stay in order on one partition."""
    return user.encode()

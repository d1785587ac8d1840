"""Deprecated: the one name `bench/senders.py` still imports from here.

This module held the senders' Kafka plumbing; it now lives in rooms of its own:
`senders/delivery_log.py` (the producer, the sink, the read-back of delivered ids and the
at-most-once argument), `senders/offsets.py`, `senders/audit_follower.py`, and in the Kafka layer
(`kafka.topics.Topics`, `kafka.admin.sender_topics`, `kafka.clients`, `kafka.readback`).
Nothing in `streamproc/` imports it. Delete it once `bench/senders.py` names its topics with
`kafka.topics.Topics(namespace)` and passes `topics=` to `run_sender` (and `STREAMPROC_NAMESPACE`
instead of `--topic-prefix` to a sender process).
"""

from __future__ import annotations

from types import SimpleNamespace

from streamproc.senders.worker import prefixed


def Topics(prefix: str = "") -> SimpleNamespace:
    """The old prefixed topic names, all taken from `kafka.topics.Topics` (`worker.prefixed`)."""
    topics = prefixed(prefix)
    return SimpleNamespace(
        prefix=prefix, messages=topics.messages, deliveries=topics.deliveries, outcomes=topics.outcomes
    )

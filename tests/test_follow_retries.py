"""`TopicFollower`'s retries, without a broker: a fresh broker answers "not leader" for a moment
after it made the topics, which `make run` showed as warnings on the terminal at every start."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError, KafkaException

from streamproc.kafka.follow import TopicFollower


class Failing(TopicFollower):
    """Its reads fail with `errors`, one each, then it stops (no client is made)."""

    name = "failing"

    def __init__(self, errors: list[Exception]) -> None:
        super().__init__("127.0.0.1:1", ("t",))
        self.errors = errors
        self.stopping.wait = lambda timeout=None: self.stopping.is_set()  # type: ignore[method-assign]

    def _follow(self) -> None:
        if not self.errors:
            self.stopping.set()
            return
        raise self.errors.pop(0)


def not_leader() -> KafkaException:
    return KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION, "Failed to get offsets"))


def levels(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [r.levelno for r in caplog.records if r.name == "streamproc.kafka.follow"]


def test_the_first_kafka_error_before_any_read_is_quiet_and_the_next_ones_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="streamproc.kafka.follow")
    Failing([not_leader(), not_leader(), not_leader()])._run()
    assert levels(caplog) == [logging.INFO, logging.WARNING, logging.WARNING]


def test_a_kafka_error_after_the_topics_were_read_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="streamproc.kafka.follow")
    follower = Failing([not_leader()])
    follower.caught_up.set()
    follower._run()
    assert levels(caplog) == [logging.WARNING]


def test_any_other_error_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="streamproc.kafka.follow")
    Failing([ValueError("a bug")])._run()
    assert levels(caplog) == [logging.WARNING]

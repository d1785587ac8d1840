"""Issue 19: one place creates and checks every topic (`streamproc/kafka/admin.py`), and the start-up
check refuses a layout that would misroute or lose pages, naming the topic, what it found and what
it expected."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # type: ignore[attr-defined]

from streamproc.kafka import admin, security
from streamproc.kafka.topics import Topics
from tests.harness import REPO

NAMES = Topics("layout")


def counts_of(wanted: dict[str, admin.TopicSpec], **changed: int) -> dict[str, int]:
    counts = {name: spec.partitions for name, spec in wanted.items()}
    counts.update({getattr(NAMES, attr): n for attr, n in changed.items()})
    return counts


def test_the_layout_the_processor_makes_passes() -> None:
    wanted = admin.processor_topics(6, NAMES)
    assert admin.check_layout(wanted, counts_of(wanted), dict.fromkeys(wanted, 3), 3) == []


def test_a_ticks_topic_with_another_count_than_events_is_refused_naming_both() -> None:
    wanted = admin.processor_topics(6, NAMES)
    with pytest.raises(admin.TopicLayoutError) as err:
        admin.check_layout(wanted, counts_of(wanted, ticks=4), dict.fromkeys(wanted, 3), 3)
    assert "layout.ticks has 4 partitions but layout.events has 6" in str(err.value)


def test_the_api_does_not_insist_on_its_own_count_but_still_on_equal_groups() -> None:
    wanted = admin.processor_topics(12, NAMES, exact=False)
    six = {name: 6 for name in wanted}
    assert admin.check_layout(wanted, six, dict.fromkeys(wanted, 1), 1) == []
    with pytest.raises(admin.TopicLayoutError, match=r"layout.messages.sms has 3 partitions but"):
        admin.check_layout(wanted, {**six, NAMES.messages("sms"): 3}, dict.fromkeys(wanted, 1), 1)


def test_a_message_topic_not_co_partitioned_with_deliveries_is_refused() -> None:
    wanted = admin.message_topics(["sms", "email"], NAMES.messages, NAMES.deliveries, 12)
    counts = {name: 12 for name in wanted} | {NAMES.deliveries: 6}
    with pytest.raises(admin.TopicLayoutError, match=r"layout.deliveries has 6 partitions but layout.messages.sms"):
        admin.check_layout(wanted, counts, dict.fromkeys(wanted, 3), 3)


def test_replication_below_the_configured_factor_is_refused_and_one_on_three_brokers_warned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wanted = admin.processor_topics(6, NAMES)
    replicas = dict.fromkeys(wanted, 3) | {NAMES.outcomes: 1}
    warnings = admin.check_layout(wanted, counts_of(wanted), replicas, 3)
    assert warnings == [
        f"topic {NAMES.outcomes} has replication factor 1 on a cluster of 3 brokers: "
        "losing one broker stops the partitions it holds"
    ]
    assert admin.check_layout(wanted, counts_of(wanted), replicas, 1) == []  # one broker: nothing better exists
    monkeypatch.setenv("STREAMPROC_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setattr(security, "_active", None)
    with pytest.raises(admin.TopicLayoutError, match=r"layout.outcomes has replication factor 1, expected at least 3"):
        admin.check_layout(wanted, counts_of(wanted), replicas, 3)


def test_min_insync_replicas_above_the_replication_factor_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMPROC_KAFKA_REPLICATION_FACTOR", "2")
    monkeypatch.setenv("STREAMPROC_KAFKA_MIN_INSYNC_REPLICAS", "3")
    with pytest.raises(security.KafkaSecurityError, match=r"min_insync_replicas .3. cannot exceed replication_factor"):
        security.resolve(None)


# ---- on a broker -----------------------------------------------------------------------------------


@pytest.mark.kafka
def test_the_worker_refuses_to_start_on_a_ticks_topic_partitioned_unlike_events(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    namespace = f"l{uuid.uuid4().hex[:8]}"
    names = Topics(namespace)
    client = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in client.create_topics([NewTopic(names.ticks, 4, 1)]).values():
        future.result(15)
    config = tmp_path / "config.yaml"
    config.write_text((REPO / "examples" / "config.yaml").read_text())
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamproc.cli",
            "worker",
            "--config",
            str(config),
            "--bootstrap",
            kafka_bootstrap,
            "--partitions",
            "6",
            "--data-dir",
            str(tmp_path / "w"),
        ],
        env={**os.environ, "STREAMPROC_NAMESPACE": namespace},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"topic {names.ticks} has 4 partitions, expected 6" in proc.stderr
    assert f"topic {names.ticks} has 4 partitions but {names.events} has 6" in proc.stderr


@pytest.mark.kafka
def test_topics_are_made_with_the_configured_replication_and_min_insync_replicas(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = Topics(f"l{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("STREAMPROC_KAFKA_REPLICATION_FACTOR", "1")
    monkeypatch.setenv("STREAMPROC_KAFKA_MIN_INSYNC_REPLICAS", "1")
    monkeypatch.setattr(security, "_active", None)
    counts = admin.ensure_topics(kafka_bootstrap, 3, names=names)
    assert counts[names.events] == 3 and counts[names.deadletter] == 1
    client = AdminClient({"bootstrap.servers": kafka_bootstrap})
    changelog = ConfigResource(ConfigResource.Type.TOPIC, names.changelog("escalations"))
    events = ConfigResource(ConfigResource.Type.TOPIC, names.events)
    described = {
        r.name: configs
        for r, configs in ((r, f.result(15)) for r, f in client.describe_configs([changelog, events]).items())
    }
    assert described[changelog.name]["cleanup.policy"].value == "compact"
    assert described[events.name]["cleanup.policy"].value == "delete"
    assert described[events.name]["min.insync.replicas"].value == "1"
    # Above what one broker has: refused by Kafka, and said so with the topic's name.
    monkeypatch.setenv("STREAMPROC_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.delenv("STREAMPROC_KAFKA_MIN_INSYNC_REPLICAS")
    other = Topics(f"l{uuid.uuid4().hex[:8]}")
    with pytest.raises(
        admin.TopicLayoutError,
        match=rf"could not create topic {other.namespace}\S+: .*replication factor of 3 cannot be "
        r"reached because only 1 broker",
    ):
        admin.ensure_topics(kafka_bootstrap, 3, names=other)

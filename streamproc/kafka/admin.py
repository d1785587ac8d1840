"""Topic set-up and the start-up check: the one place that creates and checks streamproc's topics.

Every process (worker, sender, API, `streamproc produce`, the benchmarks) calls `ensure_topics`
with the topics it uses: missing ones are created, then the layout is checked, and a layout that
would misroute or lose pages is refused with `TopicLayoutError`, naming the topic, what was found
and what was expected.

Replication: `kafka.replication_factor` and `kafka.min_insync_replicas` (or
`STREAMPROC_KAFKA_REPLICATION_FACTOR` / `STREAMPROC_KAFKA_MIN_INSYNC_REPLICAS`); unset, a new
topic gets the cluster's own defaults (`default.replication.factor`, `min.insync.replicas`),
never a hard-coded 1.

Co-partitioning (checked at every start):
- `events`, `ticks`, `flood` and both table changelogs: one partition count, the worker's
  `--partitions` (the processor places their records itself with `topics.partition_for`, and a
  table's partition N is the changelog's partition N). These may never change once written.
- each message topic and `deliveries`: one count (a sender rebuilds a partition's delivered ids
  from the same-numbered deliveries partition). Grow them together, with the senders stopped.
- `incidents` and `outcomes` may have any count, and may grow: the re-key stage absorbs it.
- `status` (docs/decisions/status-topic.md; compacted like the changelogs) may have any count: the worker's producer
  places its records by key and its readers read every partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec  # type: ignore[attr-defined]

from streamproc.kafka import security, topics
from streamproc.wire.common import MODES

log = logging.getLogger("streamproc.kafka")

EVENTS_GROUP = "the processor's keyed topics (events, ticks, flood, table changelogs)"
MESSAGES_GROUP = "the message topics and deliveries"
COMPACTED = {"cleanup.policy": "compact"}
"""The changelogs keep the latest state of each key, as Faust makes them."""


class TopicLayoutError(Exception):
    """Topics that exist with a layout that would misroute or lose pages; the message says which."""


@dataclass(frozen=True)
class TopicSpec:
    partitions: int
    """The count a missing topic is created with."""
    config: Mapping[str, str] = field(default_factory=dict)
    group: str | None = None
    """Topics of one group must have equal partition counts."""
    exact: bool = False
    """The count must be exactly `partitions` (the processor places records by it)."""


def processor_topics(
    partitions: int, names: topics.Topics = topics.CURRENT, exact: bool = True
) -> dict[str, TopicSpec]:
    """Every topic of a stack: what the worker and the API make. `exact`: the keyed topics must
    have `partitions` (the worker's check; the API only creates them)."""
    keyed = TopicSpec(partitions, group=EVENTS_GROUP, exact=exact)
    wanted = {
        names.incidents: TopicSpec(partitions),
        names.events: keyed,
        names.ticks: keyed,
        names.flood: keyed,
        names.outcomes: TopicSpec(partitions),
        names.deadletter: TopicSpec(1),
        names.status: TopicSpec(partitions, COMPACTED),  # any count; readers read them all
        **message_topics([m for m in MODES if m != "drop"], names.messages, names.deliveries, partitions),
    }
    # Faust's own topics, made here rather than by each worker at start: Faust asks the broker for
    # each one in turn, twice, and a restarted worker spent seconds on it, longer than the session
    # timeout that lets a quick restart keep its partitions (the app sets topic_allow_declare=False).
    for table in topics.TABLES:
        wanted[names.changelog(table)] = TopicSpec(partitions, COMPACTED, EVENTS_GROUP, exact=exact)
    wanted[names.assignor_leader] = TopicSpec(1)
    return wanted


def sender_topics(modes: Iterable[str], names: topics.Topics = topics.CURRENT) -> dict[str, TopicSpec]:
    """What a sender of `modes` makes: their message topics (and email's, for fallbacks)
    co-partitioned with the deliveries topic, and the outcomes topic (claims come from it)."""
    return {
        **message_topics([*modes, "email"], names.messages, names.deliveries, topics.DEFAULT_PARTITIONS),
        names.outcomes: TopicSpec(topics.DEFAULT_PARTITIONS),
    }


def message_topics(
    modes: Iterable[str], messages_of: topics.MessagesOf, deliveries: str, partitions: int
) -> dict[str, TopicSpec]:
    """Message topics of `modes` with the deliveries topic, co-partitioned."""
    spec = TopicSpec(partitions, group=MESSAGES_GROUP)
    return {**{messages_of(mode): spec for mode in modes}, deliveries: spec}


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient(security.client_config(bootstrap))


def _create(admin: AdminClient, wanted: Mapping[str, TopicSpec], missing: list[str], timeout: float) -> None:
    settings = security.current().settings
    replication = settings.replication_factor or -1  # -1: the cluster's default.replication.factor
    extra = {} if settings.min_insync_replicas is None else {"min.insync.replicas": str(settings.min_insync_replicas)}
    futures = admin.create_topics(
        [
            NewTopic(name, wanted[name].partitions, replication, config={**wanted[name].config, **extra})
            for name in missing
        ],
        operation_timeout=timeout,
    )
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            log.info(
                "created topic %s (%d partitions, replication %s)",
                name,
                wanted[name].partitions,
                settings.replication_factor or "the cluster's default",
            )
        except KafkaException as exc:  # one made by another process meanwhile is fine
            error = exc.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise TopicLayoutError(f"could not create topic {name}: {error.str()}") from None


def _with_group_counts(wanted: Mapping[str, TopicSpec], existing: Mapping[str, object]) -> dict[str, TopicSpec]:
    """A missing member of a group that is not `exact` is made with the count its existing members
    have (e.g. a deliveries topic beside message topics made elsewhere), so the group stays equal."""
    counts: dict[str, int] = {}
    for name, spec in wanted.items():
        if spec.group is not None and not spec.exact and name in existing:
            counts.setdefault(spec.group, len(existing[name].partitions))  # type: ignore[attr-defined]
    return {
        name: spec if spec.group not in counts or spec.exact else TopicSpec(counts[spec.group], spec.config, spec.group)
        for name, spec in wanted.items()
    }


def ensure_topics(
    bootstrap: str,
    partitions: int = topics.DEFAULT_PARTITIONS,
    timeout: float = 30.0,
    names: topics.Topics = topics.CURRENT,
    wanted: Mapping[str, TopicSpec] | None = None,
) -> dict[str, int]:
    """Create what is missing of `wanted` (default: every topic of a stack with `partitions`),
    wait until every partition has a leader, and check the layout (`check_layout`).
    Returns the partition count of each wanted topic."""
    security.check_access(bootstrap)  # a refused password or certificate is named now, not after `timeout`
    wanted = processor_topics(partitions, names) if wanted is None else wanted
    admin = _admin(bootstrap)
    deadline = time.monotonic() + timeout
    created = False
    while True:
        meta = admin.list_topics(timeout=min(10.0, timeout))
        missing = [name for name in wanted if name not in meta.topics]
        if missing and not created:
            _create(admin, _with_group_counts(wanted, meta.topics), missing, timeout)
            created = True
            continue
        leaderless = [
            f"{name}[{p.id}]"
            for name in wanted
            if name in meta.topics
            for p in meta.topics[name].partitions.values()
            if p.leader < 0
        ]
        if (
            not missing
            and not leaderless
            and (
                not created
                or _answering(admin, [TopicPartition(name, p) for name in wanted for p in meta.topics[name].partitions])
            )
        ):
            found = {name: meta.topics[name] for name in wanted}
            counts = {name: len(t.partitions) for name, t in found.items()}
            replicas = {name: min(len(p.replicas) for p in t.partitions.values()) for name, t in found.items()}
            for warning in check_layout(wanted, counts, replicas, len(meta.brokers)):
                log.warning("%s", warning)
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"topics not ready in {timeout:.0f} s: missing {missing}, without a leader {leaderless[:10]}"
            )
        time.sleep(0.2)


def _answering(admin: AdminClient, partitions: list[TopicPartition]) -> bool:
    """Whether every partition's leader answers for it: a topic just created is in the metadata a
    moment before its leader serves it (a reader's first request would fail NOT_LEADER)."""
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    futures = admin.list_offsets(dict.fromkeys(partitions, latest), request_timeout=5)
    try:
        for future in futures.values():
            future.result(timeout=10)
    except KafkaException:
        return False
    return True


def check_layout(
    wanted: Mapping[str, TopicSpec], counts: Mapping[str, int], replicas: Mapping[str, int], brokers: int
) -> list[str]:
    """Raises TopicLayoutError for partition counts that would misroute records or a replication
    factor below the configured one; returns warnings (replication 1 on a cluster of three or more)."""
    problems: list[str] = []
    groups: dict[str, list[str]] = {}
    for name, spec in wanted.items():
        if spec.exact and counts[name] != spec.partitions:
            problems.append(
                f"topic {name} has {counts[name]} partitions, expected {spec.partitions} "
                f"(the configured partition count, --partitions / STREAMPROC_PARTITIONS)"
            )
        if spec.group is not None:
            groups.setdefault(spec.group, []).append(name)
    for group, members in groups.items():
        first = members[0]
        for name in members[1:]:
            if counts[name] != counts[first]:
                problems.append(
                    f"topic {name} has {counts[name]} partitions but {first} has {counts[first]}: "
                    f"{group} must have equal partition counts"
                )
    configured = security.current().settings.replication_factor
    warnings = []
    for name in wanted:
        if configured is not None and replicas[name] < configured:
            problems.append(
                f"topic {name} has replication factor {replicas[name]}, expected at least {configured} "
                f"(kafka.replication_factor)"
            )
        elif replicas[name] == 1 and brokers >= 3:
            warnings.append(
                f"topic {name} has replication factor 1 on a cluster of {brokers} brokers: "
                f"losing one broker stops the partitions it holds"
            )
    if problems:
        raise TopicLayoutError("; ".join(dict.fromkeys(problems)))
    return warnings

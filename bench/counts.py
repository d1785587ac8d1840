"""The per-incident count table (docs/benchmarks.md): how many things happen per incident, per stage.

Two sources, both exact counts (not timings):

- **Kafka records**: the end offsets of every topic of a scenario's namespace, taken after the
  warm-up and again when the last page has arrived (`topic_offsets`). Every record is written once
  and read once by the stage that consumes its topic, so the difference per incident is both.
  The table changelogs count the table writes that reached Kafka.
- **Calls** (`python -m bench --count`): each worker and sender runs under cProfile
  (`python -m bench.profiled`, which dumps its stats at exit), and `calls_per_incident` counts the
  calls of the functions that stand for one unit of work: a record handed to a stage, a produce
  call, a hand-over from librdkafka's thread to the event loop, a JSON parse or dump, a template
  render, an event-loop turn and a callback (an `await` that had to wait resumes as one).

cProfile makes a process about twice as slow, so a `--count` run gives counts, never speed.
"""

from __future__ import annotations

import pstats
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# (label, stage, (file suffix, function name)...): the calls counted in a process's profile.
COUNTED: list[tuple[str, str, tuple[tuple[str, str], ...]]] = [
    (
        "records fetched and decoded by Faust (all topics)",
        "worker",
        (("faust/transport/drivers/aiokafka.py", "_to_message"),),
    ),
    ("events handed to an agent (Stream.ack)", "worker", (("faust/streams.py", "ack"),)),
    ("current-event switches (table reads/writes)", "worker", (("streamproc/processor/faustfix.py", "make_current"),)),
    ("stage 1: records re-keyed", "rekey", (("streamproc/processor/records.py", "on_incident_record"),)),
    ("stage 2: events applied", "escalate", (("streamproc/processor/records.py", "on_event"),)),
    ("stage 2: tick records applied", "escalate", (("streamproc/processor/records.py", "on_tick"),)),
    ("stage 2: wake-ups applied", "escalate", (("streamproc/processor/records.py", "on_wake"),)),
    ("stage 2: states read from the table", "escalate", (("streamproc/processor/records.py", "load_state"),)),
    ("stage 2: states written to the table", "escalate", (("streamproc/processor/records.py", "dump_state"),)),
    ("flood: records applied", "flood", (("streamproc/processor/records.py", "on_flood_record"),)),
    ("table writes sent to the changelog", "worker", (("faust/tables/base.py", "_send_changelog"),)),
    ("aiokafka producer sends (changelog)", "worker", (("aiokafka/producer/producer.py", "send"),)),
    ("output batches (one librdkafka hand-over each)", "worker", (("streamproc/kafka/bridge.py", "enqueue_all"),)),
    ("records produced through librdkafka", "any", (("~", "<method 'produce' of 'cimpl.Producer' objects>"),)),
    (
        "JSON parses (pydantic)",
        "any",
        (
            ("pydantic/main.py", "model_validate_json"),
            ("pydantic/type_adapter.py", "validate_json"),
        ),
    ),
    ("JSON parses (json.loads)", "any", (("json/__init__.py", "loads"),)),
    ("JSON dumps (pydantic)", "any", (("pydantic/main.py", "model_dump_json"),)),
    ("JSON dumps (json.dumps)", "any", (("json/__init__.py", "dumps"),)),
    ("template renders (engine/render.py)", "worker", (("streamproc/engine/render.py", "render"),)),
    ("event-loop turns", "any", (("asyncio/base_events.py", "_run_once"),)),
    ("event-loop callbacks (task steps)", "any", (("asyncio/events.py", "_run"),)),
    ("vendor HTTP requests", "sender", (("aiohttp/client.py", "_request"),)),
    ("twilio requests built", "sender", (("twilio/base/client_base.py", "request"),)),
]


def calls(profile: Path) -> dict[str, int]:
    """label -> calls in one process's cProfile dump."""
    stats: dict[Any, Any] = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    out: dict[str, int] = {}
    for label, _stage, functions in COUNTED:
        total = 0
        for (filename, _line, name), (_cc, ncalls, *_rest) in stats.items():
            if any(name == fn and filename.endswith(suffix) for suffix, fn in functions):
                total += ncalls
        out[label] = total
    return out


def per_incident(profiles: Iterable[Path], incidents: int) -> dict[str, dict[str, float]]:
    """{process kind: {label: calls per incident}} over every profile (workers summed, sender apart).
    Includes the warm-up and start-up, which a large scenario makes negligible."""
    sums: dict[str, dict[str, int]] = {}
    for path in profiles:
        kind = "sender" if path.name.startswith("sender") else "worker"
        into = sums.setdefault(kind, {})
        for label, n in calls(path).items():
            into[label] = into.get(label, 0) + n
    return {
        kind: {label: round(n / max(1, incidents), 2) for label, n in counted.items() if n}
        for kind, counted in sums.items()
    }


def topic_offsets(bootstrap: str, namespace: str) -> dict[str, int]:
    """topic -> the sum of its partitions' end offsets, for every topic of `namespace`."""
    from confluent_kafka import Consumer, TopicPartition

    from streamproc.kafka.clients import consumer_config

    consumer = Consumer(consumer_config(bootstrap, f"bench-counts-{namespace}"))
    try:
        metadata = consumer.list_topics(timeout=10)
        out: dict[str, int] = {}
        for name, topic in metadata.topics.items():
            if not name.startswith(namespace):
                continue
            total = 0
            for p in topic.partitions:
                _low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                total += high
            out[name[len(namespace) :].lstrip(".-")] = total
        return out
    finally:
        consumer.close()


def drop_namespace(bootstrap: str, namespace: str) -> None:
    """Delete a finished scenario's topics: a broker that keeps thousands of partitions of old runs
    takes minutes to start."""
    from confluent_kafka.admin import AdminClient

    from streamproc.kafka.security import client_config

    admin = AdminClient(client_config(bootstrap))
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(namespace)]
    for future in admin.delete_topics(names, operation_timeout=30).values() if names else ():
        future.result()


def records_per_incident(before: dict[str, int], after: dict[str, int], incidents: int) -> dict[str, float]:
    return {
        topic: round((after[topic] - before.get(topic, 0)) / max(1, incidents), 2)
        for topic in sorted(after)
        if after[topic] - before.get(topic, 0)
    }


def main(argv: list[str]) -> int:
    """`python -m bench.counts DIR INCIDENTS`: the call table of the profiles in DIR."""
    directory, incidents = Path(argv[0]), int(argv[1])
    table = per_incident(sorted(directory.glob("*.prof")), incidents)
    for kind, rows in table.items():
        print(f"## {kind}")
        for label, n in rows.items():
            print(f"  {n:10.2f}  {label}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

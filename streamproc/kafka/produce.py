"""`streamproc produce`: put events on the incidents topic, keyed by incident id (spec §8's events
by what they name: `silence:<application>:<silence_id>`, `heartbeat-<name>`).

The event is validated first so that a mistake is named right away; the record carries the
original JSON so nothing is changed in transit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from pydantic import ValidationError

from streamproc.kafka import security, topics
from streamproc.kafka.admin import TopicLayoutError, TopicSpec, ensure_topics
from streamproc.kafka.clients import producer_config
from streamproc.wire.events import ANY_EVENT_ADAPTER, error_text


def read_events(path: str) -> list[Any]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    stripped = text.strip()
    if stripped.startswith("[") or ("\n" not in stripped and stripped):
        data = json.loads(stripped)
        return data if isinstance(data, list) else [data]
    return [json.loads(line) for line in stripped.splitlines() if line.strip()]


def produce_files(paths: list[str], bootstrap: str) -> int:
    try:  # TLS / SASL from STREAMPROC_KAFKA_* (no config here); a refusal is named, not waited out
        security.check_access(bootstrap, timeout=10.0)
        # A cluster without auto.create.topics.enable (the production setting) needs it made.
        ensure_topics(bootstrap, wanted={topics.INCIDENTS: TopicSpec(topics.DEFAULT_PARTITIONS)})
    except (security.KafkaSecurityError, security.KafkaUnreachable, TopicLayoutError, TimeoutError) as exc:
        print(exc, file=sys.stderr)
        return 1
    producer = Producer(producer_config(bootstrap))
    failures: list[str] = []
    sent = 0

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    for path in paths:
        try:
            events = read_events(path)
        except (OSError, json.JSONDecodeError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 2
        for index, raw in enumerate(events):
            try:
                event = ANY_EVENT_ADAPTER.validate_python(raw)
            except ValidationError as exc:
                print(f"{path}[{index}]: {error_text(exc)}", file=sys.stderr)
                return 2
            producer.produce(
                topics.INCIDENTS, key=event.key.encode(), value=json.dumps(raw).encode(), on_delivery=delivered
            )
            sent += 1
    remaining = producer.flush(30)
    if failures or remaining:
        print(f"failed: {failures or f'{remaining} not delivered'}", file=sys.stderr)
        return 1
    print(f"produced {sent} event(s) to {topics.INCIDENTS} on {bootstrap}")
    return 0

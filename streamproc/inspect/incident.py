"""`streamproc inspect incident ID`: one incident's whole story, assembled from the topics.

- `incidents`: the events as producers wrote them (every partition: any client, any key);
- `events`: the same events re-keyed by stage 1 (one partition: `partition_for(ID)`);
- `messages.<mode>`: the pages stage 2 rendered (every partition: keyed by user);
- `deliveries`: what the senders did with each page (sent, failed, fallback, dropped, ...), with
  lateness = delivery time - the page's scheduled `at`;
- `outcomes`: undeliverable / dropped / exhausted outcomes and the claimed / unclaimed / resolved /
  absorbed audits (one partition: keyed by incident id).

Each line carries the record's correlation id header when it has one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from streamproc.inspect.reader import Record, TopicReader
from streamproc.kafka.headers import CORRELATION_HEADER
from streamproc.kafka.topics import Topics, partition_for
from streamproc.processor.catchup import BARRIER_HEADER
from streamproc.termtable import table_console
from streamproc.timeutil import format_us, parse_time, to_us
from streamproc.wire.common import MODES
from streamproc.wire.deliveries import parse_delivery
from streamproc.wire.events import parse_event

# Order of lines at the same instant: cause before effect.
_STAGE = {"incidents": 0, "events": 1, "outcomes": 2, "messages": 3, "deliveries": 4}
LATE_STATUSES = frozenset({"sent", "failed", "fallback"})


@dataclass
class Entry:
    at_us: int
    """When it happened: an event's `at`, a page's scheduled `at`, a delivery's or outcome's time."""
    topic: str
    kind: str
    summary: str
    partition: int
    offset: int
    record_time_us: int | None = None
    correlation_id: str | None = None
    message_id: str | None = None
    lateness_s: float | None = None
    record: dict[str, Any] = field(default_factory=dict)
    stage: int = 9

    def sort_key(self) -> tuple[int, int, str, int, int]:
        return (self.at_us, self.stage, self.topic, self.partition, self.offset)

    def as_json(self) -> dict[str, Any]:
        return {
            "at": format_us(self.at_us),
            "topic": self.topic,
            "kind": self.kind,
            "summary": self.summary,
            "partition": self.partition,
            "offset": self.offset,
            "record_time": format_us(self.record_time_us) if self.record_time_us is not None else None,
            "correlation_id": self.correlation_id,
            "message_id": self.message_id,
            "lateness_seconds": self.lateness_s,
            "record": self.record,
        }


def _correlation(record: Record) -> str | None:
    value = record.headers.get(CORRELATION_HEADER)
    return value.decode("ascii", "replace") if value is not None else None


def _record_us(record: Record) -> int | None:
    return record.timestamp_ms * 1000 if record.timestamp_ms is not None else None


def _event_summary(data: dict[str, Any]) -> str:
    parts = [f"{k}={data[k]}" for k in ("plan", "application", "owner", "dedup_key", "event_id") if data.get(k)]
    return " ".join(parts)


def collect(reader: TopicReader, topics: Topics, incident_id: str, since_ms: int | None = None) -> list[Entry]:
    counts = reader.partition_counts()
    needle = json.dumps(incident_id).encode()
    key = incident_id.encode()
    entries: list[Entry] = []

    def on(topic: str, keyed: bool) -> list[tuple[str, int]]:
        """The partitions to read: the incident's own for topics keyed (and placed) by incident id."""
        count = counts.get(topic)
        if not count:
            return []
        return [(topic, partition_for(key, count))] if keyed else [(topic, p) for p in range(count)]

    # events as written, and as re-keyed
    def is_event(record: Record) -> bool:
        if BARRIER_HEADER in record.headers:
            return False
        if record.topic == topics.events:
            return record.key == key
        return needle in record.value or b"dedup_key" in record.value

    spans = on(topics.incidents, keyed=False) + on(topics.events, keyed=True)
    for record in reader.read(spans, is_event, since_ms, "events"):
        try:
            event = parse_event(record.value)
        except (ValidationError, ValueError):
            continue
        if event.key != incident_id:
            continue
        data = json.loads(record.value)
        at = to_us(event.at) if event.at is not None else _record_us(record) or 0
        stage = "incidents" if record.topic == topics.incidents else "events"
        entries.append(Entry(at, record.topic, f"{event.type}", _event_summary(data),
                             record.partition, record.offset, _record_us(record), _correlation(record),
                             record=data, stage=_STAGE[stage]))

    # pages, outcomes and audits
    message_topics = [topics.messages(m) for m in MODES if m != "drop"]
    spans = [s for t in message_topics for s in on(t, keyed=False)] + on(topics.outcomes, keyed=True)
    scheduled: dict[str, int] = {}
    for record in reader.read(spans, lambda r: needle in r.value, since_ms, "pages and outcomes"):
        try:
            data = json.loads(record.value)
        except ValueError:
            continue
        if not isinstance(data, dict) or data.get("incident_id") != incident_id or "at" not in data:
            continue
        kind = str(data.get("kind", "?"))
        at = to_us(parse_time(str(data["at"])))
        message_id = data.get("message_id")
        if kind == "message":
            scheduled[str(message_id)] = at
            summary = (f"{data.get('mode')} to {data.get('user')} <{data.get('destination')}> step {data.get('step')} "
                       f"repeat {data.get('repeat')} [{data.get('priority')}]")
        else:
            summary = " ".join(f"{k}={data[k]}" for k in ("user", "owner", "step", "reason") if data.get(k) is not None)
        entries.append(Entry(at, record.topic, kind, f"#{data.get('instance')} {summary}".strip(), record.partition,
                             record.offset, _record_us(record), _correlation(record), message_id, record=data,
                             stage=_STAGE["messages" if kind == "message" else "outcomes"]))

    # what the senders did
    for record in reader.read(on(topics.deliveries, keyed=False), lambda r: needle in r.value, since_ms,
                              "deliveries"):
        try:
            delivery = parse_delivery(record.value)
        except ValidationError:
            continue
        if delivery.incident_id != incident_id:
            continue
        at = to_us(delivery.at)
        planned = scheduled.get(delivery.message_id)
        lateness = round((at - planned) / 1_000_000, 3) if planned is not None and delivery.status in LATE_STATUSES \
            else None
        summary = f"{delivery.mode} to {delivery.user} via {delivery.vendor}, attempts {delivery.attempts}"
        if delivery.detail:
            summary += f": {delivery.detail}"
        entries.append(Entry(at, record.topic, delivery.status, summary, record.partition, record.offset,
                             _record_us(record), _correlation(record), delivery.message_id, lateness,
                             json.loads(record.value), _STAGE["deliveries"]))
    entries.sort(key=Entry.sort_key)
    return entries


def render_table(incident_id: str, entries: list[Entry], namespace: str) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"incident {incident_id}", title_justify="left")
    for name, justify in (("at", "left"), ("topic", "left"), ("what", "left"), ("details", "left"),
                          ("late", "right"), ("correlation", "left")):
        # Times are the one column to read: never folded or cut (on a narrow terminal the others fold).
        table.add_column(name, justify=justify, no_wrap=name in ("at", "late"))  # type: ignore[arg-type]
    prefix = f"{namespace}."
    for e in entries:
        topic = e.topic[len(prefix):] if e.topic.startswith(prefix) else e.topic
        detail = e.summary if e.message_id is None else f"{e.summary} ({e.message_id[:12]})"
        late = f"{e.lateness_s:.3f}s" if e.lateness_s is not None else ""
        cells = (format_us(e.at_us), f"{topic}[{e.partition}]@{e.offset}", e.kind, detail, late, e.correlation_id or "")
        table.add_row(*(Text(c) for c in cells))  # plain text: `[high]` is not markup
    table_console().print(table)


def as_json(incident_id: str, entries: list[Entry]) -> str:
    return json.dumps({"incident_id": incident_id, "entries": [e.as_json() for e in entries]}, indent=2)

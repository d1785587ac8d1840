"""`streamproc inspect incident ID`: one incident's whole story, assembled from the topics.

- `incidents`: the events as producers wrote them (every partition: any client, any key);
- `events`: the same events re-keyed by stage 1 (one partition: `partition_for(ID)`);
- `messages.<mode>`: the pages stage 2 rendered (every partition: keyed by user);
- `deliveries`: what the senders did with each page (sent, failed, fallback, dropped, ...), with
  lateness = delivery time - the page's scheduled `at`;
- `outcomes`: undeliverable / dropped / exhausted outcomes and the claimed / unclaimed / resolved /
  absorbed audits (one partition: keyed by incident id).

Each line carries the record's correlation id header when it has one.

Spec §8: an instance that a silence held shows its `silenced` outcome with the silence's id and E,
when its step 1 starts; every later silence or unsilence of its application that moved E is a line
of its own (E computed from the silence events on `incidents`, as the processor does); the JSON has
a `silenced` list (instance, silence id, E, and whether it is still held).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from streamproc.engine.maintenance import NO_SILENCES, SilenceBook
from streamproc.inspect.reader import Record, TopicReader
from streamproc.kafka.headers import BARRIER_HEADER, CORRELATION_HEADER
from streamproc.kafka.topics import Topics, partition_for
from streamproc.termtable import table_console
from streamproc.timeutil import format_us, parse_time, to_us
from streamproc.wire.common import MODES
from streamproc.wire.deliveries import parse_delivery
from streamproc.wire.events import Silence, Trigger, Unsilence, parse_any_event

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
    held: dict[str, Any] | None = None
    """A `silenced` outcome's instance (spec §8): silence id, E (`starts`), and its status now."""

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
            **({"silenced": self.held} if self.held is not None else {}),
        }


def _correlation(record: Record) -> str | None:
    value = record.headers.get(CORRELATION_HEADER)
    return value.decode("ascii", "replace") if value is not None else None


def _record_us(record: Record) -> int | None:
    return record.timestamp_ms * 1000 if record.timestamp_ms is not None else None


def _event_summary(data: dict[str, Any]) -> str:
    parts = [
        f"{k}={data[k]}" for k in ("plan", "application", "owner", "heartbeat", "dedup_key", "event_id") if data.get(k)
    ]
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
        return needle in record.value or b"dedup_key" in record.value or b"silence" in record.value

    silences: list[tuple[int, int, int, Silence | Unsilence]] = []
    """(at, partition, offset, event) of the silence and unsilence events on `incidents`."""
    spans = on(topics.incidents, keyed=False) + on(topics.events, keyed=True)
    for record in reader.read(spans, is_event, since_ms, "events"):
        try:
            event = parse_any_event(record.value)
        except (ValidationError, ValueError):
            continue
        if isinstance(event, Silence | Unsilence):
            if record.topic == topics.incidents:
                at_us = to_us(event.at) if event.at is not None else _record_us(record) or 0
                silences.append((at_us, record.partition, record.offset, event))
            continue
        if event.key != incident_id:
            continue
        data = json.loads(record.value)
        at = to_us(event.at) if event.at is not None else _record_us(record) or 0
        stage = "incidents" if record.topic == topics.incidents else "events"
        entries.append(
            Entry(
                at,
                record.topic,
                f"{event.type}",
                _event_summary(data),
                record.partition,
                record.offset,
                _record_us(record),
                _correlation(record),
                record=data,
                stage=_STAGE[stage],
            )
        )

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
            summary = (
                f"{data.get('mode')} to {data.get('user')} <{data.get('destination')}> step {data.get('step')} "
                f"repeat {data.get('repeat')} [{data.get('priority')}]"
            )
        else:
            summary = " ".join(
                f"{k}={data[k]}" for k in ("user", "owner", "step", "reason", "silence_id") if data.get(k) is not None
            )
        entries.append(
            Entry(
                at,
                record.topic,
                kind,
                f"#{data.get('instance')} {summary}".strip(),
                record.partition,
                record.offset,
                _record_us(record),
                _correlation(record),
                message_id,
                record=data,
                stage=_STAGE["messages" if kind == "message" else "outcomes"],
            )
        )

    # what the senders did
    for record in reader.read(on(topics.deliveries, keyed=False), lambda r: needle in r.value, since_ms, "deliveries"):
        try:
            delivery = parse_delivery(record.value)
        except ValidationError:
            continue
        if delivery.incident_id != incident_id:
            continue
        at = to_us(delivery.at)
        planned = scheduled.get(delivery.message_id)
        lateness = (
            round((at - planned) / 1_000_000, 3) if planned is not None and delivery.status in LATE_STATUSES else None
        )
        summary = f"{delivery.mode} to {delivery.user} via {delivery.vendor}, attempts {delivery.attempts}"
        if delivery.detail:
            summary += f": {delivery.detail}"
        entries.append(
            Entry(
                at,
                record.topic,
                delivery.status,
                summary,
                record.partition,
                record.offset,
                _record_us(record),
                _correlation(record),
                delivery.message_id,
                lateness,
                json.loads(record.value),
                _STAGE["deliveries"],
            )
        )
    entries.sort(key=Entry.sort_key)
    if silenced_instances(entries, sorted(silences, key=lambda s: s[:3]), topics.incidents):
        entries.sort(key=Entry.sort_key)
    return entries


def silenced_instances(
    entries: list[Entry], silences: list[tuple[int, int, int, Silence | Unsilence]], incidents_topic: str
) -> list[dict[str, Any]]:
    """Spec §8, for each `silenced` outcome among `entries`: E, when the instance's step 1 starts,
    after every silence change (from the silence events, in time order), as the engine computes it.
    Adds E to the outcome's line and a line per change that moved E; returns the instances' status."""
    held: list[dict[str, Any]] = []
    for outcome in [e for e in entries if e.kind == "silenced"]:
        t = outcome.at_us
        trigger = next(
            (e for e in entries if e.kind == "trigger" and e.at_us == t and e.stage == _STAGE["events"]), None
        ) or next((e for e in entries if e.kind == "trigger" and e.at_us == t), None)
        instance = outcome.record.get("instance")
        silence_id = outcome.record.get("silence_id")
        status: dict[str, Any] = {"instance": instance, "silence_id": silence_id, "starts": None, "status": "silenced"}
        outcome.held = status
        held.append(status)
        if trigger is None:
            continue  # opened by a heartbeat monitor's expiry: its context is the config's
        try:
            event = parse_any_event(json.dumps(trigger.record))
        except ValidationError:
            continue
        if not isinstance(event, Trigger):
            continue
        app, plan, context = event.application, event.plan, dict(event.context)
        book: SilenceBook = NO_SILENCES
        for at, _, _, change in silences:
            if at <= t:
                book = book.apply(change, at)
        hold = book.hold(app, plan, context, t)
        if hold is None:
            continue
        e = hold[1]
        outcome.summary += f" starts={format_us(e)}"
        # The instance's own claim or resolve ends the wait (an unclaim is left out).
        ends = min(
            (
                x.at_us
                for x in entries
                if x.at_us >= t and x.kind in ("claimed", "resolved") and x.record.get("instance") == instance
            ),
            default=None,
        )
        for at, partition, offset, change in silences:
            if at <= t or e < at or (ends is not None and ends <= at):
                continue
            after = book.apply(change, at)
            if after is book:
                continue
            book = after
            moved = book.clear_from(app, plan, context, at)
            if moved != e:
                e = moved
                entries.append(
                    Entry(
                        at,
                        incidents_topic,
                        "silence moved",
                        f"#{instance} {change.type} {change.silence_id}: starts={format_us(e)}",
                        partition,
                        offset,
                        record=change.model_dump(mode="json", exclude_none=True),
                        stage=_STAGE["outcomes"],
                    )
                )
        status["starts"] = format_us(e)
        if ends is not None and ends <= e:
            status["status"] = (
                "claimed" if any(x.at_us == ends and x.kind == "claimed" for x in entries) else "resolved"
            )
        elif e <= _now_us():
            status["status"] = "started"
    return held


def _now_us() -> int:
    import time

    return int(time.time() * 1_000_000)


def held_lines(entries: list[Entry]) -> list[str]:
    """One line per instance a silence held: its silence, E and status now."""
    lines = []
    for e in entries:
        if e.held is not None:
            h = e.held
            when = f"step 1 starts at {h['starts']}" if h["starts"] else "step 1 starts when the silence ends"
            lines.append(f"instance #{h['instance']}: {h['status']}, held by silence {h['silence_id']}; {when}")
    return lines


def render_table(incident_id: str, entries: list[Entry], namespace: str) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"incident {incident_id}", title_justify="left")
    for name, justify in (
        ("at", "left"),
        ("topic", "left"),
        ("what", "left"),
        ("details", "left"),
        ("late", "right"),
        ("correlation", "left"),
    ):
        # Times are the one column to read: never folded or cut (on a narrow terminal the others fold).
        table.add_column(name, justify=justify, no_wrap=name in ("at", "late"))  # type: ignore[arg-type]
    prefix = f"{namespace}."
    for e in entries:
        topic = e.topic[len(prefix) :] if e.topic.startswith(prefix) else e.topic
        detail = e.summary if e.message_id is None else f"{e.summary} ({e.message_id[:12]})"
        late = f"{e.lateness_s:.3f}s" if e.lateness_s is not None else ""
        cells = (format_us(e.at_us), f"{topic}[{e.partition}]@{e.offset}", e.kind, detail, late, e.correlation_id or "")
        table.add_row(*(Text(c) for c in cells))  # plain text: `[high]` is not markup
    console = table_console()
    console.print(table)
    for line in held_lines(entries):
        console.print(Text(line))


def as_json(incident_id: str, entries: list[Entry]) -> str:
    return json.dumps({"incident_id": incident_id, "entries": [e.as_json() for e in entries]}, indent=2)

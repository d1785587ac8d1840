"""`streamproc silence add|list|expire`: spec §8 silences from the command line, straight on Kafka.

    streamproc silence add --config examples/config.yaml --application grafana --duration 2h \\
        --match host=db01 --match host=db02 --match-re 'alertname=Disk.*' --comment 'PostgreSQL upgrade'
    streamproc silence list --config examples/config.yaml [--application grafana] [--all] [--json]
    streamproc silence expire --config examples/config.yaml --application grafana <silence id>...

`add` and `expire` write `silence` / `unsilence` events on the incidents topic with the producer
settings of `streamproc produce` (idempotent, acks=all; the topic is made when missing) and return
once the broker acknowledged them; the event's `at` is now. The config names the applications (an
unknown one is refused, as the processor would dead-letter it) and the Kafka security settings
(`kafka:`; `STREAMPROC_KAFKA_*` as everywhere). There are no keys here: whoever may write to the
topic may silence.

`list` and `expire` read the silences from the topic as the API does (`SilenceIndex`: every partition
from its beginning, up to the end it had when the command started). `list` shows active and pending
silences (`--all`: expired ones too, for 5 days); `expire` refuses an id the application does not
have. `--json` prints the API's models (`SilenceView`, `SilenceList`) instead of a table.

Exit status: 0 done, 1 Kafka failed (nothing or not everything was written), 2 invalid input.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from streamproc.wire.api import SilenceList, SilenceState, SilenceView
from streamproc.wire.events import Silence, Unsilence, error_text

READ_TIMEOUT = 60.0
"""Seconds `list` and `expire` wait to read the topic up to its end."""


def add_arguments(parser: argparse.ArgumentParser, bootstrap: str) -> None:
    sub = parser.add_subparsers(dest="silence_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", required=True, help="the config (its applications and kafka settings)")
        p.add_argument("--bootstrap", default=bootstrap)
        p.add_argument("--json", action="store_true", help="JSON (the API's models) instead of a table")

    p = sub.add_parser("add", help="write a silence event: hold new incidents that match, for a window")
    common(p)
    p.add_argument("--application", required=True)
    p.add_argument("--id", dest="silence_id", help="the silence id (default: a new UUID); a known id is replaced")
    p.add_argument("--starts", help="RFC 3339 (default: now)")
    window = p.add_mutually_exclusive_group(required=True)
    window.add_argument("--ends", help="RFC 3339; after --starts, at most 30 days after it")
    window.add_argument("--duration", help="from --starts: seconds, or 90s, 30m, 2h, 7d")
    p.add_argument(
        "--plan",
        action="append",
        dest="plans",
        metavar="PLAN",
        help="only incidents of this plan (repeat for several; default: every plan)",
    )
    p.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the context key must have this value (repeat a key for one of several values)",
    )
    p.add_argument(
        "--match-re",
        action="append",
        default=[],
        metavar="KEY=REGEX",
        help="the context value must fully match this RE2-compatible regular expression",
    )
    p.add_argument("--created-by")
    p.add_argument("--comment")

    p = sub.add_parser("list", help="the active and pending silences, read from the incidents topic")
    common(p)
    p.add_argument("--application", help="only this application's (default: every application's)")
    p.add_argument("--all", action="store_true", help="expired ones too")

    p = sub.add_parser("expire", help="write unsilence events: end silences now")
    common(p)
    p.add_argument("--application", required=True)
    p.add_argument("silence_ids", nargs="+", metavar="SILENCE_ID")


class _Refused(Exception):
    """Invalid input: exit 2 with the message."""


def _pairs(items: list[str], option: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _Refused(f"{option}: expected KEY=VALUE, got {item!r}")
        out.append((key, value))
    return out


def silence_of(args: argparse.Namespace, at: datetime) -> Silence:
    from streamproc.config.durations import parse_duration
    from streamproc.timeutil import parse_time

    try:
        starts = parse_time(args.starts) if args.starts else None
        ends = parse_time(args.ends) if args.ends else (starts or at) + timedelta(seconds=parse_duration(args.duration))
    except ValueError as exc:
        raise _Refused(f"--starts/--ends/--duration: {exc}") from exc
    match: dict[str, list[str]] = {}
    for key, value in _pairs(args.match, "--match"):
        match.setdefault(key, []).append(value)
    data: dict[str, Any] = {
        "type": "silence",
        "at": at,
        "application": args.application,
        "silence_id": args.silence_id or str(uuid.uuid4()),
        "starts": starts,
        "ends": ends,
        "plans": args.plans,
        "match": {k: v[0] if len(v) == 1 else v for k, v in match.items()},
        "match_re": dict(_pairs(args.match_re, "--match-re")),
        "created_by": args.created_by,
        "comment": args.comment,
    }
    try:
        return Silence.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        raise _Refused(error_text(exc)) from exc


def _table(views: list[SilenceView]) -> None:
    from rich.table import Table

    from streamproc.termtable import table_console
    from streamproc.timeutil import format_time

    table = Table(
        "ID",
        "APPLICATION",
        "STATE",
        "STARTS",
        "ENDS",
        "MATCHES",
        "CREATED BY",
        "COMMENT",
        box=None,
        header_style="bold",
    )
    for v in views:
        matches = [f"plan in {','.join(v.plans)}"] if v.plans is not None else []
        matches += [f"{k}={'|'.join(x) if isinstance(x, list) else x}" for k, x in v.match.items()]
        matches += [f"{k}=~{x}" for k, x in v.match_re.items()]
        table.add_row(
            v.silence_id,
            v.application,
            v.state,
            format_time(v.starts),
            format_time(v.ends),
            " ".join(matches) or "(everything)",
            v.created_by or "",
            v.comment or "",
        )
    table_console().print(table)


def run(args: argparse.Namespace) -> int:
    from streamproc.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        return _run(args, config)
    except _Refused as exc:
        print(f"streamproc silence {args.silence_command}: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, config: Any) -> int:
    from streamproc.api.silences import Known, SilenceIndex, unsilenced
    from streamproc.engine.core import Engine
    from streamproc.engine.maintenance import KnownSilence
    from streamproc.kafka import security
    from streamproc.timeutil import format_time, to_us

    engine = Engine(config)
    if args.application is not None and args.application not in config.applications:
        raise _Refused(f"--application: unknown application {args.application!r}")
    from streamproc.kafka import topics
    from streamproc.kafka.admin import TopicLayoutError, TopicSpec, ensure_topics

    try:
        security.configure(config.kafka)
        security.check_access(args.bootstrap, timeout=10.0)
        # A cluster without auto.create.topics.enable (the production setting) needs it made.
        ensure_topics(args.bootstrap, wanted={topics.INCIDENTS: TopicSpec(topics.DEFAULT_PARTITIONS)})
    except (security.KafkaSecurityError, security.KafkaUnreachable, TopicLayoutError, TimeoutError) as exc:
        print(exc, file=sys.stderr)
        return 1
    now = datetime.now(UTC)
    now_us = to_us(now)

    if args.silence_command == "add":
        event = silence_of(args, now)
        reason = engine.check_silence(event)
        if reason is not None:
            raise _Refused(reason)
        if not _write(args.bootstrap, [event]):
            return 1
        view = Known(KnownSilence.of(event, now_us), now_us).view(now_us)
        if args.json:
            print(view.model_dump_json())
        else:
            print(
                f"silence {view.silence_id} of {view.application} written ({view.state}: "
                f"{format_time(view.starts)} to {format_time(view.ends)})"
            )
        return 0

    index = SilenceIndex(args.bootstrap, engine)
    if not index.read_to_end(READ_TIMEOUT):
        print(f"streamproc silence: could not read {index.topic} to its end in {READ_TIMEOUT:g} s", file=sys.stderr)
        return 1

    if args.silence_command == "list":
        states: tuple[SilenceState, ...] = ("active", "pending", "expired") if args.all else ("active", "pending")
        apps = [args.application] if args.application else sorted(config.applications)
        views = [k.view(now_us) for app in apps for k in index.of(app, states)]
        if args.json:
            print(SilenceList(silences=views).model_dump_json())
        else:
            _table(views)
        return 0

    known = []
    for silence_id in args.silence_ids:
        found = index.get(args.application, silence_id)
        if found is None:
            raise _Refused(f"application {args.application!r} has no silence {silence_id!r}")
        known.append(found)
    events = [Unsilence(type="unsilence", at=now, application=args.application, silence_id=s) for s in args.silence_ids]
    if not _write(args.bootstrap, events):
        return 1
    views = [unsilenced(k, now_us).view(now_us) for k in known]
    if args.json:
        print(SilenceList(silences=views).model_dump_json())
    else:
        for v in views:
            if v.ends <= v.starts:
                print(f"silence {v.silence_id} of {v.application} ended before it started: it covers nothing")
            else:
                print(f"silence {v.silence_id} of {v.application} ended at {format_time(v.ends)}")
    return 0


def _write(bootstrap: str, events: list[Silence] | list[Unsilence]) -> bool:
    """Produce `events` as `streamproc produce` does; True once the broker acknowledged every one."""
    from confluent_kafka import Producer

    from streamproc.api.publish import event_bytes
    from streamproc.kafka import topics
    from streamproc.kafka.clients import producer_config

    producer = Producer(producer_config(bootstrap))
    failures: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    for event in events:
        producer.produce(topics.INCIDENTS, key=event.key.encode(), value=event_bytes(event), on_delivery=delivered)
    remaining = producer.flush(30)
    if failures or remaining:
        print(f"streamproc silence: not written: {failures or f'{remaining} not acknowledged'}", file=sys.stderr)
        return False
    return True

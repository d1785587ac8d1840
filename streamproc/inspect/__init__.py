"""`streamproc inspect`: look at a running stack from outside.

    streamproc inspect incident ID [--json] [--since TIME]   the timeline of one incident, from the topics
    streamproc inspect workers URL... [--json]               partitions, open escalations, next wake-ups
    streamproc inspect senders URL... [--json]               queue depth and rate limiters per mode

Reading topics never joins a consumer group (partitions are assigned, nothing is committed).
Tables go to stdout (rich); a progress bar goes to stderr while topics are read, when it is a
terminal.
"""

from __future__ import annotations

import argparse
import sys

from streamproc.timeutil import parse_time, to_us


def add_arguments(parser: argparse.ArgumentParser, bootstrap: str) -> None:
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("incident", help="the timeline of one incident, assembled from the topics")
    p.add_argument("incident_id")
    p.add_argument("--bootstrap", default=bootstrap)
    p.add_argument("--since", help="read records appended at or after this RFC 3339 time (default: all retained)")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    p = sub.add_parser("workers", help="which worker owns which partitions; open escalations, next wake-ups")
    p.add_argument("urls", nargs="+", metavar="URL", help="a worker's web address (http://host:port)")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")

    p = sub.add_parser("senders", help="queue depth and rate-limiter state per mode")
    p.add_argument("urls", nargs="+", metavar="URL", help="a sender's status address (http://host:port)")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    if args.what == "incident":
        return _incident(args)
    from streamproc.inspect.status import run as show_status

    return show_status(args.what, args.urls, args.json)


def _incident(args: argparse.Namespace) -> int:
    from streamproc.inspect.incident import as_json, collect, render_table
    from streamproc.inspect.reader import TopicReader
    from streamproc.kafka.topics import CURRENT

    since_ms = None
    if args.since:
        try:
            since_ms = to_us(parse_time(args.since)) // 1000
        except ValueError:
            print(f"--since: not an RFC 3339 time: {args.since!r}", file=sys.stderr)
            return 2
    with TopicReader(args.bootstrap, progress=not args.no_progress) as reader:
        entries = collect(reader, CURRENT, args.incident_id, since_ms)
    if args.json:
        print(as_json(args.incident_id, entries))
    else:
        render_table(args.incident_id, entries, CURRENT.namespace)
    if not entries:
        print(f"no records of incident {args.incident_id!r} on the {CURRENT.namespace}.* topics", file=sys.stderr)
        return 1
    return 0

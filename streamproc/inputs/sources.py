"""Where `replay` and `whatif` take their events from: a file (`--input`) or a topic (`--from-topic`).

Flags (shared by both commands):
  --input FILE           JSON lines ('-' for stdin, `.gz` read through gzip)
  --from-topic [TOPIC]   a Kafka topic (default: the namespace's incidents topic)
  --since TIME, --to TIME  record-timestamp range of the topic read (since <= ts < to)
  --offsets P:FROM-TO    offset range of one partition (repeatable)
  --bootstrap HOST:PORT  the broker
`--until` (replay only) is unrelated to the read range: it cuts the *outcomes* at a time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from streamproc.timeutil import parse_time, to_us
from streamproc.wire.events import AnyEvent


class SourceError(Exception):
    """A bad flag or an unreadable source (exit status 2)."""


def add_source_arguments(p: argparse.ArgumentParser, default_bootstrap: str) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="JSON lines of events ('-' for stdin; a .gz file is decompressed)")
    src.add_argument(
        "--from-topic",
        nargs="?",
        const="",
        metavar="TOPIC",
        help="read events from a Kafka topic (default: the namespace's incidents topic); "
        "assigns partitions itself: joins no consumer group, commits and produces nothing",
    )
    p.add_argument("--since", help="with --from-topic: first record timestamp to read (RFC 3339, inclusive)")
    p.add_argument("--to", help="with --from-topic: record timestamp to stop at (RFC 3339, exclusive)")
    p.add_argument(
        "--offsets",
        action="append",
        default=[],
        metavar="P:FROM-TO",
        help="with --from-topic: offsets of partition P to read (TO exclusive; repeatable)",
    )
    p.add_argument("--bootstrap", default=default_bootstrap)
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


@dataclass
class Source:
    name: str
    label: Callable[[int], str]
    """Position -> `file:line` or `topic[partition]@offset`, for messages about an event."""


def _ms(flag: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return to_us(parse_time(text)) // 1000
    except ValueError:
        raise SourceError(f"{flag}: not an RFC 3339 time: {text!r}") from None


@contextmanager
def open_source(args: argparse.Namespace) -> Iterator[tuple[Source, Iterable[tuple[int, AnyEvent | str]]]]:
    """The events of `--input` or `--from-topic`, as (position, event or reason)."""
    from streamproc.replay.simulator import open_input, parse_lines

    if args.input is not None:
        if args.since or args.to or args.offsets:
            raise SourceError("--since, --to and --offsets select a range of --from-topic, not of --input")
        try:
            handle = open_input(args.input)
        except OSError as exc:
            raise SourceError(f"--input: {exc}") from None
        with handle:
            yield Source(args.input, lambda n: f"{args.input}:{n}"), parse_lines(handle)
        return
    from streamproc.config import environment
    from streamproc.inputs.topic import TopicRange, describe, parse_offsets, read_topic
    from streamproc.kafka.topics import Topics

    topic = args.from_topic or Topics(environment.namespace()).incidents
    try:
        offsets = parse_offsets(args.offsets)
    except ValueError as exc:
        raise SourceError(str(exc)) from None
    rng = TopicRange(topic, _ms("--since", args.since), _ms("--to", args.to), offsets)
    progress = not args.no_progress and sys.stderr.isatty()
    yield Source(topic, lambda n: describe(topic, n)), read_topic(args.bootstrap, rng, progress=progress)

"""`streamproc` command line: validate, replay, produce, silence, worker, sender, api, run, schemas."""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

from streamproc.config import environment
from streamproc.inputs.sources import add_source_arguments
from streamproc.timeutil import parse_time, to_us
from streamproc.whatif.command import add_whatif_arguments


def bootstrap_default() -> str:
    return environment.kafka_bootstrap()


def cmd_validate(args: argparse.Namespace) -> int:
    from streamproc.config import check_config

    config, issues = check_config(args.path)
    errors = [i for i in issues if i.severity == "error"]
    for issue in issues:
        print(issue, file=sys.stderr if issue.severity == "error" else sys.stdout)
    if errors or config is None:
        print(f"{args.path}: {len(errors) or len(issues)} error(s)", file=sys.stderr)
        return 1
    print(f"{args.path}: ok ({len(config.plans)} plans, {len(config.teams)} teams, {len(config.users)} users)")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from streamproc.config import ConfigError, load_config
    from streamproc.engine.core import Engine

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    until = None
    if args.until:
        try:
            until = to_us(parse_time(args.until))
        except ValueError:
            print(f"--until: not an RFC 3339 time: {args.until!r}", file=sys.stderr)
            return 2
    started = time.perf_counter()
    gc.freeze()  # many long-lived states: keep the collector from rescanning them
    gc.set_threshold(50_000, 20, 100)

    from streamproc.inputs.sources import SourceError, open_source
    from streamproc.replay import replay_events

    try:
        with open_source(args) as (source, items):

            def rejected(position: int, reason: str) -> None:
                print(f"{source.label(position)}: not processed: {reason}", file=sys.stderr)

            report = replay_events(Engine(config), items, until, on_reject=rejected)
    except (SourceError, LookupError, TimeoutError) as exc:
        print(exc, file=sys.stderr)
        return 2
    out = sys.stdout
    for line in report.lines():
        out.write(line)
        out.write("\n")
    out.flush()
    elapsed = time.perf_counter() - started
    print(
        f"replay: {report.events} events, {len(report.emitted)} outcomes, {len(report.rejected)} rejected, "
        f"{elapsed:.2f}s",
        file=sys.stderr,
    )
    return 0


def cmd_whatif(args: argparse.Namespace) -> int:
    from streamproc.whatif.command import run_whatif

    return run_whatif(args)


def cmd_schemas(args: argparse.Namespace) -> int:
    from streamproc.wire.schemas import write_schemas

    for path in write_schemas(Path(args.out)):
        print(path)
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from streamproc.kafka.produce import produce_files

    return produce_files(args.files, args.bootstrap)


def cmd_silence(args: argparse.Namespace) -> int:
    from streamproc.silencecmd import run

    return run(args)


def cmd_worker(args: argparse.Namespace) -> int:
    from streamproc.processor.app import run_worker

    return run_worker(args)


def cmd_sender(args: argparse.Namespace) -> int:
    from streamproc.senders.worker import main as sender_main

    argv = [a for m in args.mode for a in ("--mode", m)] + ["--bootstrap", args.bootstrap]
    if args.config:
        argv += ["--config", args.config]
    if args.log_format:
        argv += ["--log-format", args.log_format]
    if args.metrics_port is not None:
        argv += ["--metrics-port", str(args.metrics_port)]
    if args.metrics_host is not None:
        argv += ["--metrics-host", args.metrics_host]
    if args.status_port is not None:
        argv += ["--status-port", str(args.status_port)]
    if args.loglevel is not None:
        argv += ["--loglevel", args.loglevel]
    return int(sender_main(argv) or 0)


def cmd_api(args: argparse.Namespace) -> int:
    from streamproc.api.server import run_api

    return run_api(args)


def cmd_inspect(args: argparse.Namespace) -> int:
    from streamproc.inspect import run

    return run(args)


def cmd_incidents(args: argparse.Namespace) -> int:
    from streamproc.incidents.command import run

    return run(args)


def cmd_run(args: argparse.Namespace) -> int:
    from streamproc.supervisor import run_stack

    return run_stack(args.config, args.bootstrap, args.api_host, args.api_port)


def build_parser() -> argparse.ArgumentParser:
    from streamproc.logs import add_format_argument

    parser = argparse.ArgumentParser(prog="streamproc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a config file or directory; every error names file and key")
    p.add_argument("path")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("replay", help="run events through the engine on a virtual clock; outcomes on stdout")
    p.add_argument("--config", required=True)
    p.add_argument("--until", help="print outcomes scheduled at or before this RFC 3339 time (not the read range)")
    add_source_arguments(p, bootstrap_default())
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("whatif", help="replay the same events under two configs and report the difference")
    add_whatif_arguments(p)
    add_source_arguments(p, bootstrap_default())
    p.set_defaults(func=cmd_whatif)

    p = sub.add_parser("schemas", help="write the JSON Schemas of the wire formats")
    p.add_argument("--out", default="schemas")
    p.set_defaults(func=cmd_schemas)

    p = sub.add_parser("produce", help="produce events (a JSON object or JSON lines per file) to Kafka")
    p.add_argument("files", nargs="+")
    p.add_argument("--bootstrap", default=bootstrap_default())
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser("silence", help="silences (spec §8) on Kafka: add, list, expire")
    from streamproc.silencecmd import add_arguments as add_silence_arguments

    add_silence_arguments(p, bootstrap_default())
    p.set_defaults(func=cmd_silence)

    p = sub.add_parser("worker", help="the stream processor (a Faust worker)")
    p.add_argument("--config", required=True)
    p.add_argument("--bootstrap", default=bootstrap_default())
    p.add_argument("--data-dir", default=None, help="table store directory (default: a fresh one per worker)")
    p.add_argument("--web-port", type=int, default=None, help="readiness port (default: a free one)")
    p.add_argument("--store", default=environment.store(), choices=["rocksdb", "memory"])
    p.add_argument("--partitions", type=int, default=environment.partitions())
    p.add_argument(
        "--tick-interval",
        type=float,
        default=0.2,
        help="longest sleep of the wake-up ticker (it wakes exactly at due times)",
    )
    p.add_argument("--loglevel", default="warning")
    add_format_argument(p)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("sender", help="vendor sender worker for one or more modes")
    p.add_argument("--mode", action="append", default=[])
    p.add_argument("--config", default=None)
    p.add_argument("--bootstrap", default=bootstrap_default())
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus /metrics on this port (default $STREAMPROC_METRICS_PORT, else 0: none)",
    )
    p.add_argument(
        "--metrics-host",
        default=None,
        help="address of the metrics endpoint (default $STREAMPROC_WEB_BIND, else 127.0.0.1)",
    )
    p.add_argument(
        "--status-port",
        type=int,
        default=None,
        help="serve JSON /status for `streamproc inspect senders` (default $STREAMPROC_SENDER_STATUS_PORT)",
    )
    p.add_argument("--loglevel", default=None, help="debug, info (the default), warning or error")
    add_format_argument(p)
    p.set_defaults(func=cmd_sender)

    p = sub.add_parser("api", help="the HTTP API: events in, answers to pages (stateless; run any number)")
    p.add_argument("--config", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--bootstrap", default=bootstrap_default())
    p.add_argument(
        "--partitions",
        type=int,
        default=environment.partitions(),
        help="partitions of topics the API creates when missing",
    )
    p.add_argument("--loglevel", default="warning")
    add_format_argument(p)
    p.set_defaults(func=cmd_api)

    p = sub.add_parser("inspect", help="a running stack: one incident's timeline, workers, senders")
    from streamproc.inspect import add_arguments as add_inspect_arguments

    add_inspect_arguments(p, bootstrap_default())
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("incidents", help="what is open right now (the status topic): a table or JSON")
    from streamproc.incidents.command import add_arguments as add_incidents_arguments

    add_incidents_arguments(p, bootstrap_default())
    p.set_defaults(func=cmd_incidents)

    p = sub.add_parser("run", help="processor + senders (+ API) with one config; Ctrl-C stops all")
    p.add_argument("--config", default="examples/config.yaml")
    p.add_argument("--bootstrap", default=bootstrap_default())
    p.add_argument("--api-host", default="127.0.0.1")
    p.add_argument("--api-port", type=int, default=environment.api_port())
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())

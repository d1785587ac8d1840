"""`streamproc whatif --baseline OLD --config NEW (--input FILE | --from-topic [TOPIC]) ...`

Exit status: 0, or 1 when a `--fail-on` rule holds (each printed on stderr), 2 on bad input.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

from streamproc.whatif.rules import RULE_NAMES


def add_whatif_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--baseline", required=True, help="the config in force (file or directory)")
    p.add_argument("--config", required=True, help="the changed config")
    p.add_argument(
        "--timezone",
        default="UTC",
        help="IANA time zone for hours of day and night-time pages (22:00-07:00); default UTC",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON (schemas/whatif-report.schema.json)")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report with charts")
    p.add_argument(
        "--fail-on",
        action="append",
        default=[],
        metavar="RULE",
        help=f"exit 1 when the rule holds (repeatable): {', '.join(RULE_NAMES)} (first-page-later:5m, more-pages:20%%)",
    )
    p.add_argument("--serial", action="store_true", help="run both replays in this process (default: two processes)")


def run_whatif(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from streamproc.config import ConfigError, load_config
    from streamproc.engine.core import Engine
    from streamproc.inputs.sources import SourceError, open_source
    from streamproc.whatif.analysis import compare, run_both
    from streamproc.whatif.output import print_tables, write_html
    from streamproc.whatif.rules import evaluate, parse_rule

    try:
        rules = [parse_rule(r) for r in args.fail_on]
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        tz = ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"--timezone: unknown IANA time zone {args.timezone!r}", file=sys.stderr)
        return 2
    engines = []
    for flag, path in (("--baseline", args.baseline), ("--config", args.config)):
        try:
            engines.append(Engine(load_config(path)))
        except ConfigError as exc:
            print(f"{flag}: {exc}", file=sys.stderr)
            return 2
    started = time.perf_counter()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        with open_source(args) as (source, items):
            events = list(items)
    except (SourceError, LookupError, TimeoutError) as exc:
        print(exc, file=sys.stderr)
        return 2
    read_s = time.perf_counter() - started
    for position, item in events:
        if isinstance(item, str):
            print(f"{source.label(position)}: not processed: {item}", file=sys.stderr)
    base, new = run_both(engines, events, tz, parallel=not args.serial)
    parsed_ok = {p for p, item in events if not isinstance(item, str)}
    for name, tally in (("baseline", base), ("new", new)):
        assert tally.report is not None
        for position, reason in tally.report.rejected:
            if position in parsed_ok:  # engine rejections differ between the configs
                print(f"{source.label(position)}: not processed under {name}: {reason}", file=sys.stderr)
    report = compare(
        base, new, baseline_config=args.baseline, new_config=args.config, source=source.name, timezone=args.timezone
    )
    failed = evaluate(rules, report)
    report.failed_rules = failed
    if args.json:
        sys.stdout.write(report.model_dump_json(indent=1))
        sys.stdout.write("\n")
    else:
        print_tables(report, sys.stdout, failed)
    if args.html:
        write_html(report, args.html, failed)
    sys.stdout.flush()
    for why in failed:
        print(f"whatif: --fail-on {why}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    print(
        f"whatif: {len(events)} events, read in {read_s:.2f}s, both replays and report in {elapsed - read_s:.2f}s",
        file=sys.stderr,
    )
    return 1 if failed else 0

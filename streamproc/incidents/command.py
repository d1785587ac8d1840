"""`streamproc incidents`: what is open right now, from the status topic (docs/status-page.md).

    streamproc incidents [--status open|escalating|claimed|silenced|exhausted|resolved|all]
                         [--application A] [--json] [--bootstrap HOST:PORT]

Reads every partition of `<namespace>.status` to its end (assigned by hand: it joins no consumer
group and commits nothing) and prints a table (rich, like `inspect`) or JSON lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from streamproc.incidents.index import STATUS_FILTERS, Query, read_all
from streamproc.timeutil import format_time
from streamproc.wire.status import IncidentSummary


def add_arguments(parser: argparse.ArgumentParser, bootstrap: str) -> None:
    parser.add_argument(
        "--status",
        default="open",
        choices=STATUS_FILTERS,
        help="open (default: every status but resolved), one status, or all",
    )
    parser.add_argument("--application", help="only this application's incidents")
    parser.add_argument("--json", action="store_true", help="one JSON summary per line instead of a table")
    parser.add_argument("--bootstrap", default=bootstrap)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to read the topic to its end")


def _when(value: datetime | None) -> str:
    return format_time(value) if value is not None else ""


def render_table(found: list[IncidentSummary], title: str) -> None:
    from rich.table import Table
    from rich.text import Text

    from streamproc.termtable import table_console

    table = Table(title=title, title_justify="left")
    for name in (
        "incident",
        "status",
        "application",
        "plan",
        "step",
        "since",
        "last paged",
        "next page",
        "claimed by",
        "absorbed",
        "summary",
    ):
        table.add_column(name, no_wrap=name in ("since", "next page"))
    for s in found:
        paged = f"{', '.join(s.last_paged)} {_when(s.last_paged_at)}".strip()
        cells = (
            f"{s.incident_id} #{s.instance}",
            s.status,
            s.application,
            s.plan,
            f"{s.step}/{s.steps}",
            _when(s.created),
            paged,
            _when(s.next_page_at),
            s.claimed_by or "",
            str(s.absorbed),
            s.summary,
        )
        table.add_row(*(Text(c) for c in cells))  # plain text: no rich markup from a trigger's context
    table_console().print(table)


def run(args: argparse.Namespace) -> int:
    try:
        index = read_all(args.bootstrap, args.timeout)
    except TimeoutError as exc:
        print(f"streamproc incidents: {exc}", file=sys.stderr)
        return 1
    found = index.query(Query(status=args.status, application=args.application))
    if args.json:
        for summary in found:
            print(json.dumps(summary.model_dump(mode="json"), sort_keys=True))
    else:
        render_table(
            found,
            f"{len(found)} incident(s), status {args.status}"
            + (f", application {args.application}" if args.application else ""),
        )
    return 0

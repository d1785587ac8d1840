"""`streamproc inspect workers|senders URL...`: the JSON endpoints of running processes as tables.

Workers answer `GET /inspect` on their Faust web server (`processor/status.py`); senders answer
`GET /status` on `--status-port` (`senders/status.py`).
"""

from __future__ import annotations

import json
import sys
import urllib.request
from typing import Any

from streamproc.termtable import table_console

PATHS = {"workers": "/inspect", "senders": "/status"}


def fetch(url: str, path: str, timeout: float = 5.0) -> dict[str, Any]:
    base = url if "://" in url else f"http://{url}"
    try:
        with urllib.request.urlopen(base.rstrip("/") + path, timeout=timeout) as resp:
            body: dict[str, Any] = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        return {"url": base, "error": str(exc)}
    body.setdefault("url", base)
    body["url"] = base
    return body


def run(what: str, urls: list[str], as_json: bool) -> int:
    answers = [fetch(url, PATHS[what]) for url in urls]
    if as_json:
        print(json.dumps({what: answers}, indent=2))
    else:
        (_workers_table if what == "workers" else _senders_table)(answers)
    failed = [a for a in answers if "error" in a]
    for answer in failed:
        print(f"{answer['url']}: {answer['error']}", file=sys.stderr)
    return 1 if failed else 0


def _workers_table(answers: list[dict[str, Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="workers", title_justify="left")
    for name in ("worker", "partition", "open", "wake-ups", "next wake-up", "state"):
        table.add_column(name, justify="right" if name in ("partition", "open", "wake-ups") else "left")
    for answer in answers:
        name = answer.get("instance") or answer["url"]
        if "error" in answer:
            table.add_row(Text(name), "", "", "", "", Text(f"error: {answer['error']}"))
            continue
        rows = answer.get("partitions") or []
        if not rows:
            table.add_row(Text(name), "-", "", "", "", "ready" if answer.get("ready") else "not ready")
        for row in rows:
            state = "catching up" if row.get("catching_up") else ("ready" if answer.get("ready") else "not ready")
            table.add_row(
                Text(name),
                str(row["partition"]),
                str(row["open"]),
                str(row["wake_ups"]),
                row.get("next_wake") or "",
                state,
            )
        standbys = answer.get("standby_partitions") or []
        if standbys:
            table.add_row(Text(name), Text("standby " + ",".join(map(str, standbys))), "", "", "", "")
    table_console().print(table)


def _senders_table(answers: list[dict[str, Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="senders", title_justify="left")
    for name in (
        "sender",
        "mode",
        "vendor",
        "partitions",
        "queued",
        "in flight",
        "rate/s",
        "tokens",
        "paused",
        "account",
    ):
        table.add_column(name, justify="right" if name in ("queued", "in flight", "rate/s", "tokens") else "left")
    for answer in answers:
        name = f"{answer['url']} (pid {answer.get('pid', '?')})"
        if "error" in answer:
            table.add_row(Text(name), "", "", "", "", "", "", "", "", Text(f"error: {answer['error']}"))
            continue
        for mode in answer.get("modes") or []:
            limit = mode.get("rate_limit") or {}
            bucket = limit.get("mode") or {}
            account = ""
            if limit.get("account"):
                shared = limit.get("account_bucket") or {}
                account = f"{limit['account']}: {shared.get('rate', 0):g}/s, {shared.get('tokens', 0):g} tokens"
            paused = bucket.get("paused_for") or 0
            table.add_row(
                Text(name),
                mode["mode"],
                mode["vendor"],
                ",".join(map(str, mode.get("partitions") or [])),
                str(mode["queued"]),
                str(mode["in_flight"]),
                f"{bucket.get('rate', 0):g}",
                f"{bucket.get('tokens', 0):g}",
                f"{paused:g}s" if paused else "",
                Text(account),
            )
    table_console().print(table)

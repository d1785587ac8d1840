"""What `streamproc run` and `streamproc inspect` put on a terminal or into a pipe (issue 23)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from streamproc.runfeed import LogWatch, delivery_line, outcome_line
from streamproc.supervisor import Terminal

REPO = Path(__file__).resolve().parents[1]


def test_a_sent_delivery_is_one_line_with_time_mode_person_incident_and_subject() -> None:
    line = delivery_line(
        {
            "status": "sent",
            "at": "2026-12-06T20:48:21.5Z",
            "mode": "email",
            "user": "bob",
            "incident_id": "example-1",
            "instance": 1,
            "message_id": "m1",
        },
        "[critical]  disk\nfull",
    )
    assert line is not None
    assert "\n" not in line
    assert line.split()[1:] == ["page", "email", "bob", "example-1#1", "[critical]", "disk", "full"]
    assert line[:8].count(":") == 2


def test_failed_and_fallback_deliveries_say_why_and_drops_are_not_shown() -> None:
    failed = delivery_line(
        {
            "status": "failed",
            "mode": "sms",
            "user": "bob",
            "incident_id": "i",
            "instance": 2,
            "detail": "invalid number",
        },
        None,
    )
    assert failed is not None and "page FAILED" in failed and "(invalid number)" in failed
    for status in ("dropped-claimed", "dropped-resolved", "duplicate", "vendor-status"):
        assert delivery_line({"status": status}, "s") is None


def test_audits_claim_resolve_absorbed_are_lines_and_other_outcomes_are_not() -> None:
    claimed = outcome_line({"kind": "claimed", "incident_id": "example-1", "instance": 1, "owner": "alice"})
    assert claimed is not None and claimed.split()[1:] == ["claimed", "example-1#1", "by", "alice"]
    resolved = outcome_line({"kind": "resolved", "incident_id": "example-1", "instance": 1})
    assert resolved is not None and resolved.split()[1:] == ["resolved", "example-1#1"]
    absorbed = outcome_line({"kind": "absorbed", "incident_id": "example-1", "instance": 1})
    assert absorbed is not None and "absorbed" in absorbed
    assert outcome_line({"kind": "batched", "incident_id": "x", "instance": 1}) is None


def test_log_watch_shows_each_warning_once_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "sender.log"
    watch = LogWatch({"sender": path})

    def record(level: str, message: str) -> str:
        return json.dumps({"time": "2026-12-06T20:48:21.000Z", "level": level, "logger": "x", "message": message})

    with path.open("w") as f:
        f.write(record("info", "vendor call") + "\n")
        f.write("%4|1796590101.480|GETPID|rdkafka#producer-4| [thrd:main]: Coordinator load in progress\n")
        f.write("streamproc-sender: email to bob <bob@example.com> ...\n")
        f.write(record("warning", "commit failed") + "\n")
        f.write(record("warning", "commit failed") + "\n")
        f.write(record("error", "vendor raised")[:20])  # a line still being written
    first = list(watch.lines())
    assert [line.split(None, 1)[1] for line in first] == ["warning     sender: commit failed"]
    with path.open("a") as f:
        f.write(record("error", "vendor raised")[20:] + "\n")
        f.write(record("warning", "commit failed") + "\n")
    assert [line.split(None, 1)[1] for line in watch.lines()] == ["error       sender: vendor raised"]
    assert watch.repeated() == ["sender: 'commit failed' 2 more times"]


def test_terminal_notices_a_pipe_whose_reader_exited_without_writing() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as stream:
        term = Terminal(stream)
        assert term.gone() is None
        term.say("one")
        assert os.read(read_end, 100) == b"one\n"
        os.close(read_end)  # `| head` exited
        assert term.gone() is not None
        term.say("two")  # no BrokenPipeError
        assert term.closed


def test_inspect_table_in_a_pipe_is_not_cut_to_80_columns() -> None:
    script = (
        "from streamproc.inspect.incident import Entry, render_table\n"
        "render_table('example-1', [Entry(1796590101123456, 'streamproc.deliveries', 'sent', "
        "'email to carol via console, attempts 1: printed to stdout', 3, 7, message_id='379acca9f0123456789', "
        "lateness_s=1.115, correlation_id='9f3e39389b9aa1234567')], 'streamproc')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, check=True
    ).stdout
    row = next(line for line in out.splitlines() if "2026" in line)
    assert "2026-12-06T20:48:21.123456Z" in row
    assert "…" not in out
    assert "printed to stdout (379acca9f012)" in row and "9f3e39389b9aa1234567" in row
    assert max(len(line) for line in out.splitlines()) > 80

"""`streamproc replay` with spec §8 events, end to end: outcomes on stdout in §4 order, bad silences
and heartbeats reported on stderr with their line like any other event that is not processed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamproc.cli import main
from tests.engine.harness import BASE, t

CONFIG = (
    BASE.replace("  app: {}\n", "  app: {}\n  other: {}\n", 1)
    + """
plans:
  p:
    steps:
      - - {role: user, target: alice, priority: high, template: t, repeat: 1, wait: 10m}
heartbeats:
  backup: {application: app, plan: p, interval: 1h, context: {summary: "backup late"}}
"""
)

EVENTS: list[dict[str, Any]] = [
    # a maintenance window made ahead, extended, then ended early
    {
        "type": "silence",
        "at": t("09:00"),
        "silence_id": "upgrade",
        "application": "app",
        "starts": t("10:00"),
        "ends": t("11:00"),
        "match": {"host": ["db01", "db02"]},
        "created_by": "alice",
        "comment": "upgrade",
    },
    {
        "type": "trigger",
        "at": t("10:05"),
        "incident_id": "inside",
        "application": "app",
        "plan": "p",
        "context": {"summary": "disk", "host": "db01"},
    },
    {
        "type": "trigger",
        "at": t("10:05"),
        "incident_id": "outside",
        "application": "app",
        "plan": "p",
        "context": {"summary": "disk", "host": "web01"},
    },
    {
        "type": "silence",
        "at": t("10:30"),
        "silence_id": "upgrade",
        "application": "app",
        "starts": t("10:00"),
        "ends": t("12:00"),
        "match": {"host": ["db01", "db02"]},
    },
    {"type": "unsilence", "at": t("11:15"), "silence_id": "upgrade", "application": "app"},
    # a monitor that expires at 11:00 and recovers at 11:05
    {"type": "heartbeat", "at": t("10:00"), "heartbeat": "backup", "application": "app"},
    {"type": "heartbeat", "at": t("11:05"), "heartbeat": "backup", "application": "app"},
    # bad ones: dead letters with their reasons, nothing else affected
    {"type": "silence", "at": t("09:00"), "silence_id": "long", "application": "app", "ends": "2026-04-01T09:00:00Z"},
    {"type": "silence", "at": t("09:00"), "silence_id": "x", "application": "nope", "ends": t("10:00")},
    {
        "type": "silence",
        "at": t("09:00"),
        "silence_id": "re",
        "application": "app",
        "ends": t("10:00"),
        "match_re": {"host": "(db)\\1"},
    },
    {"type": "heartbeat", "at": t("10:00"), "heartbeat": "nope", "application": "app"},
    {"type": "heartbeat", "at": t("10:00"), "heartbeat": "backup", "application": "other"},
]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n")
    return config, events


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[list[dict[str, Any]], list[str]]:
    assert main(["replay", *args]) == 0
    captured = capsys.readouterr()
    return [json.loads(line) for line in captured.out.splitlines()], captured.err.splitlines()


def brief(out: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(o["at"][11:19], o["kind"], o["incident_id"]) for o in out]


def test_replay_applies_silences_and_heartbeats(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    config, events = files
    out, err = run(capsys, "--config", str(config), "--input", str(events))
    assert brief(out) == [
        ("10:05:00", "silenced", "inside"),
        ("10:05:00", "message", "outside"),
        ("10:15:00", "message", "outside"),
        ("10:25:00", "exhausted", "outside"),
        ("11:00:00", "message", "heartbeat-backup"),  # expired at L + 1h; resolved at 11:05
        ("11:15:00", "message", "inside"),  # the unsilence at 11:15 (extended to 12:00)
        ("11:25:00", "message", "inside"),
        ("11:35:00", "exhausted", "inside"),
        ("12:05:00", "message", "heartbeat-backup"),  # no heartbeat after 11:05: expires again
        ("12:15:00", "message", "heartbeat-backup"),
        ("12:25:00", "exhausted", "heartbeat-backup"),
    ]
    assert out[0] == {
        "kind": "silenced",
        "at": "2026-03-01T10:05:00Z",
        "incident_id": "inside",
        "instance": 1,
        "silence_id": "upgrade",
    }
    monitor = [o for o in out if o["incident_id"] == "heartbeat-backup" and o["kind"] == "message"]
    assert [o["instance"] for o in monitor] == [1, 2, 2] and monitor[0]["subject"] == "S backup late"
    name = str(events)
    # invalid events are reported as they are read, the engine's rejections in event-time order
    assert sorted(err[:5], key=lambda line: int(line.split(":")[1])) == [
        f"{name}:8: not processed: ends: Value error, must be at most 30 days after starts",
        f"{name}:9: not processed: application: unknown application 'nope'",
        f"{name}:10: not processed: match_re.host: Value error, not RE2-compatible: backreferences",
        f"{name}:11: not processed: heartbeat: unknown monitor 'nope'",
        f"{name}:12: not processed: application: monitor 'backup' belongs to application 'app', not 'other'",
    ]
    assert err[5].startswith("replay: 10 events, 11 outcomes, 5 rejected")


def test_replay_until_stops_expiries_and_held_instances_at_it(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, events = files
    out, _ = run(capsys, "--config", str(config), "--input", str(events), "--until", t("11:14:59"))
    assert brief(out)[-1] == ("11:00:00", "message", "heartbeat-backup")
    assert not [o for o in out if o["incident_id"] == "inside" and o["kind"] == "message"]
    out, _ = run(capsys, "--config", str(config), "--input", str(events), "--until", t("11:15"))
    assert brief(out)[-1] == ("11:15:00", "message", "inside")

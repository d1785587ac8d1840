"""What-if counts incidents that started silenced (spec §8): silences in last week's traffic are part
of what a plan change is judged against, and a heartbeat monitor added by the new config opens
incidents that such a silence may hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamproc.cli import main
from tests.engine.harness import BASE, t

PLANS = """
plans:
  p:
    steps:
      - - {role: user, target: alice, priority: high, template: t}
"""
MONITOR = """
heartbeats:
  backup: {application: app, plan: p, interval: 1h}
"""
EVENTS = [
    {
        "type": "silence",
        "at": t("09:00"),
        "silence_id": "upgrade",
        "application": "app",
        "starts": t("10:00"),
        "ends": t("12:00"),
    },
    {"type": "trigger", "at": t("09:30"), "incident_id": "before", "application": "app", "plan": "p"},
    {"type": "trigger", "at": t("10:30"), "incident_id": "inside", "application": "app", "plan": "p"},
    {"type": "heartbeat", "at": t("10:00"), "heartbeat": "backup", "application": "app"},
]


def test_whatif_counts_silenced_incidents(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, new, events = tmp_path / "base.yaml", tmp_path / "new.yaml", tmp_path / "events.jsonl"
    base.write_text(BASE + PLANS)
    new.write_text(BASE + PLANS + MONITOR)
    events.write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n")
    code = main(["whatif", "--baseline", str(base), "--config", str(new), "--input", str(events), "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    report = json.loads(out)
    totals = report["totals"]
    # baseline: the heartbeat is for an unknown monitor; only `inside` is held. New: the monitor
    # expires at 11:00 inside the silence, so its incident is held too (both page at 12:00).
    assert (totals["baseline"]["silenced_incidents"], totals["new"]["silenced_incidents"]) == (1, 2)
    assert report["rejected"] == {"baseline": 1, "new": 0}
    assert (totals["baseline"]["pages"], totals["new"]["pages"]) == (2, 3)
    code = main(["whatif", "--baseline", str(base), "--config", str(new), "--input", str(events)])
    text, _ = capsys.readouterr()
    assert "silenced incidents" in text

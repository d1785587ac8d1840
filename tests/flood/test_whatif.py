"""whatif with flood control (spec §7): a batch message is one page and pages every incident in it;
`batched` outcomes are not pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamproc.cli import main
from tests.engine.harness import BASE

PLAN = """
plans:
  p:{batching}
    steps: [[{{role: user, target: alice, priority: high, template: t}}]]
"""


def test_whatif_counts_a_batch_as_one_page_for_every_incident_in_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(BASE + PLAN.format(batching=""))
    new = tmp_path / "new.yaml"
    new.write_text(BASE + PLAN.format(batching="\n    batching: {threshold: 1, window: 5m, every: 10m, quiet: 0s}"))
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(
            json.dumps(
                {
                    "type": "trigger",
                    "at": f"2026-03-01T10:0{i}:00Z",
                    "incident_id": name,
                    "application": "app",
                    "plan": "p",
                    "context": {"summary": name},
                }
            )
            + "\n"
            for i, name in enumerate(["a", "b", "c", "d"])
        )
        + json.dumps({"type": "claim", "at": "2026-03-01T10:05:00Z", "incident_id": "d", "owner": "alice"})
        + "\n"
    )
    code = main(["whatif", "--baseline", str(base), "--config", str(new), "--input", str(events), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    # new: a at once; b, c, d held for 10:11; d claimed at 10:05 -> one batch of b and c
    assert report["pages_by_user"] == {"alice": {"baseline": 4, "new": 2}}
    assert report["totals"]["new"]["paged_incidents"] == 3 and report["totals"]["new"]["unpaged_incidents"] == 1
    firsts = {i["incident"]: (i["new"] or {}).get("seconds") for i in report["incidents"]}
    assert firsts == {"a": 0.0, "b": 600.0, "c": 540.0, "d": None}
    pages = {i["incident"]: i["pages"]["new"] for i in report["incidents"]}
    assert pages == {"a": 1, "b": 1, "c": 1, "d": 0}

"""What-if on a small plan change, against numbers worked out by hand (tests/whatif/scenario.py).

Baseline (rotation: alice on call on 2026-03-02, bob on 03-03; high -> sms, medium -> email,
urgent -> call, carol has only email):
  inc-a web 10:00, claimed 10:07:  alice sms 10:00, 10:05                      -> alice 2
  inc-d api 12:00, resolved 12:30: alice, bob email 12:00                      -> alice 1, bob 1
  inc-c db  03-03 02:00:           bob sms 02:00                               -> bob 1
  inc-b web 03-03 23:30:           bob sms 23:30, 23:35, 23:40; carol 23:45    -> bob 3, carol 1
  = alice 3, bob 5, carol 1 (9 pages: sms 6, email 3)
New (web: repeat 1 every 10m, manager with the broken template t2; db and api page erin first,
who has no contact at all):
  inc-a: alice 10:00 (10:10 is after the claim)                                -> alice 1
  inc-d: erin undeliverable 12:00; alice, bob email 12:10                      -> alice 1, bob 1
  inc-c: erin undeliverable 02:00                                              -> nobody
  inc-b: bob 23:30, 23:40; carol 23:50 with render_error                       -> bob 2, carol 1
  = alice 2, bob 3, carol 1 (6 pages: sms 3, email 3)
Night (22:00-07:00) in UTC: baseline bob 4 (02:00, 23:30, 23:35, 23:40) + carol 1; new bob 2 + carol 1.
In America/New_York (UTC-5 then): only inc-a's pages at 05:00/05:05 local are at night.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamproc.cli import main
from tests.whatif.scenario import write


def whatif(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(["whatif", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    return write(tmp_path)


def report(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path, Path], *extra: str, swap: bool = False
) -> tuple[int, dict[str, Any], str]:
    base, new, events = files
    if swap:
        base, new = new, base
    code, out, err = whatif(
        capsys, "--baseline", str(base), "--config", str(new), "--input", str(events), "--json", *extra
    )
    return code, json.loads(out), err


def test_pages_per_user_mode_hour_and_night(capsys: pytest.CaptureFixture[str], files: tuple[Path, Path, Path]) -> None:
    code, r, _ = report(capsys, files)
    assert code == 0
    assert r["pages_by_user"] == {
        "alice": {"baseline": 3, "new": 2},
        "bob": {"baseline": 5, "new": 3},
        "carol": {"baseline": 1, "new": 1},
    }
    assert r["pages_by_mode"] == {"email": {"baseline": 3, "new": 3}, "sms": {"baseline": 6, "new": 3}}
    hours = {h: (p["baseline"], p["new"]) for h, p in enumerate(r["pages_by_hour"]) if p["baseline"] or p["new"]}
    assert hours == {2: (1, 0), 10: (2, 1), 12: (2, 2), 23: (4, 3)}
    assert r["night_pages_by_user"] == {"bob": {"baseline": 4, "new": 2}, "carol": {"baseline": 1, "new": 1}}
    assert r["totals"]["baseline"] == {
        "pages": 9,
        "night_pages": 5,
        "render_errors": 0,
        "undeliverable": 0,
        "dropped": 0,
        "paged_incidents": 4,
        "unpaged_incidents": 0,
        "silenced_incidents": 0,
    }
    assert r["totals"]["new"] == {
        "pages": 6,
        "night_pages": 3,
        "render_errors": 1,
        "undeliverable": 2,
        "dropped": 0,
        "paged_incidents": 3,
        "unpaged_incidents": 1,
        "silenced_incidents": 0,
    }
    assert r["pages_by_user_day"]["bob"] == {
        "2026-03-02": {"baseline": 1, "new": 1},
        "2026-03-03": {"baseline": 4, "new": 2},
    }


def test_night_follows_the_timezone(capsys: pytest.CaptureFixture[str], files: tuple[Path, Path, Path]) -> None:
    _, r, _ = report(capsys, files, "--timezone", "America/New_York")
    assert r["timezone"] == "America/New_York"
    assert r["night_pages_by_user"] == {"alice": {"baseline": 2, "new": 1}}
    assert r["pages_by_hour"][5] == {"baseline": 2, "new": 1}  # 10:00Z and 10:05Z are 05:00 and 05:05 EST


def test_per_incident_first_page(capsys: pytest.CaptureFixture[str], files: tuple[Path, Path, Path]) -> None:
    _, r, _ = report(capsys, files)
    firsts = {
        i["incident"]: (
            i["plan"],
            i["baseline"] and (i["baseline"]["seconds"], i["baseline"]["user"]),
            i["new"] and (i["new"]["seconds"], i["new"]["user"]),
            (i["pages"]["baseline"], i["pages"]["new"]),
        )
        for i in r["incidents"]
    }
    assert firsts == {
        "inc-a": ("web", (0.0, "alice"), (0.0, "alice"), (2, 1)),
        "inc-d": ("api", (0.0, "alice"), (600.0, "alice"), (2, 2)),
        "inc-c": ("db", (0.0, "bob"), None, (1, 0)),
        "inc-b": ("web", (0.0, "bob"), (0.0, "bob"), (4, 3)),
    }
    assert [i["incident"] for i in r["incidents"]] == ["inc-a", "inc-d", "inc-c", "inc-b"]  # trigger order
    assert r["incidents"][1]["new"]["at"] == "2026-03-02T12:10:00Z"


def test_render_errors_and_undeliverable(capsys: pytest.CaptureFixture[str], files: tuple[Path, Path, Path]) -> None:
    _, r, _ = report(capsys, files)
    assert [(e["plan"], e["baseline"], e["new"]) for e in r["render_errors"]] == [("web", 0, 1)]
    assert "t2" in r["render_errors"][0]["subject"]
    assert r["undeliverable"] == [{"user": "erin", "reason": "no-contact", "baseline": 0, "new": 2}]


@pytest.mark.parametrize(
    ("rule", "forward", "backward"),
    [
        ("unpaged-incident", True, False),
        ("render-error", True, False),
        ("first-page-later:5m", True, False),  # inc-d +600 s, inc-c never paged
        ("more-pages:20%", False, True),  # 9 -> 6 forward; 6 -> 9 = +50% backward
        ("more-pages:50%", False, False),  # exactly +50% is not more than 50%
        ("more-pages:49%", False, True),
    ],
)
def test_fail_on_rules(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path, Path], rule: str, forward: bool, backward: bool
) -> None:
    for swap, holds in ((False, forward), (True, backward)):
        code, r, err = report(capsys, files, "--fail-on", rule, swap=swap)
        assert code == (1 if holds else 0), (rule, swap, err)
        assert bool(r["failed_rules"]) == holds
        assert (f"--fail-on {rule}" in err) == holds


def test_first_page_later_counts_only_delays_over_the_limit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base, new, events = write(tmp_path)
    # without inc-c (which pages nobody under the new config) only inc-d's +10 min remains
    events.write_text("".join(line + "\n" for line in events.read_text().splitlines() if '"inc-c"' not in line))
    args = ["--baseline", str(base), "--config", str(new), "--input", str(events)]
    assert whatif(capsys, *args, "--fail-on", "first-page-later:10m")[0] == 0
    code, _, err = whatif(capsys, *args, "--fail-on", "first-page-later:9m")
    assert code == 1 and "inc-d (+600s)" in err


def test_several_rules_print_each_that_holds(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path, Path]
) -> None:
    code, r, _ = report(
        capsys, files, "--fail-on", "unpaged-incident", "--fail-on", "more-pages:20%", "--fail-on", "render-error"
    )
    assert code == 1
    assert [f.split(":")[0] for f in r["failed_rules"]] == ["unpaged-incident", "render-error"]
    assert "inc-c" in r["failed_rules"][0]


def test_bad_rules_and_timezones_are_usage_errors(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path, Path]
) -> None:
    base, new, events = files
    args = ["--baseline", str(base), "--config", str(new), "--input", str(events)]
    for extra in (["--fail-on", "fewer-pages"], ["--fail-on", "more-pages:lots"], ["--timezone", "Mars/Olympus"]):
        code, _, err = whatif(capsys, *args, *extra)
        assert code == 2, extra
        assert err


def test_terminal_table(capsys: pytest.CaptureFixture[str], files: tuple[Path, Path, Path]) -> None:
    base, new, events = files
    code, out, _ = whatif(
        capsys, "--baseline", str(base), "--config", str(new), "--input", str(events), "--fail-on", "unpaged-incident"
    )
    assert code == 1
    assert "Pages per user" in out and "inc-c" in out and "nobody" in out
    assert "FAIL unpaged-incident" in out


def test_json_report_is_the_model(capsys: pytest.CaptureFixture[str], files: tuple[Path, Path, Path]) -> None:
    from streamproc.whatif.model import WhatifReport

    _, r, _ = report(capsys, files)
    assert WhatifReport.model_validate(r).model_dump(mode="json") == r  # schemas/ follow the model (test_schemas)


def test_gzip_input_and_invalid_lines(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    import gzip

    base, _, events = files
    packed = tmp_path / "events.jsonl.gz"
    with gzip.open(packed, "wt") as f:
        f.write(events.read_text() + "{not json\n")
    code = main(["replay", "--config", str(base), "--input", str(packed)])
    out, err = capsys.readouterr()
    assert code == 0
    assert len([json.loads(line) for line in out.splitlines()]) == 9 + 3  # 9 pages, 3 exhausted
    assert f"{packed}:7: not processed" in err

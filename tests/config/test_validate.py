"""`streamproc validate` and config loading: every mistake is named by file, line and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streamproc.config import ConfigError, check_config, load_config
from streamproc.config.durations import parse_duration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "config.yaml"


def validate(path: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "streamproc.cli", "validate", str(path)], capture_output=True, text=True, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_the_example_config_is_valid() -> None:
    code, out = validate(EXAMPLE)
    assert code == 0, out


def test_spec_example_config_loads(tmp_path: Path) -> None:
    spec = REPO.parent / "shared" / "spec" / "escalation.md"
    if not spec.exists():
        pytest.skip("shared/spec not beside the checkout")
    text = spec.read_text()
    block = text.split("```yaml", 1)[1].split("```", 1)[0]
    path = tmp_path / "spec.yaml"
    path.write_text(block)
    config = load_config(path)
    assert config.plans["db-critical"].steps[0][0].wait == 300
    _, issues = check_config(path)
    assert not [i for i in issues if i.severity == "error"], issues


@pytest.mark.parametrize(
    ("value", "seconds"), [(90, 90), ("90s", 90), ("5m", 300), ("2h", 7200), ("7d", 604800), ("300", 300)]
)
def test_durations(value: object, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["5x", "-3", "1.5m", "", True, None])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


BROKEN = """\
applications:
  grafana: {colour: red}
users:
  alice: {contacts: {sms: "+1"}}
teams:
  db:
    members: [alice, ghost]
    manager: nobody
    rotations:
      primary: {users: [alice], start: "2026-01-05T09:00:00Z", shift: 7x}
plans:
  p:
    owner: phantom
    steps:
      - - {role: oncall-primary, target: db, priority: high, template: missing, repeat: 21, wait: 50000}
        - {role: team, target: noteam, priority: high, template: t}
        - {role: oncall-tertiary, target: db, priority: high, template: t}
        - {role: user, target: alice, priority: extreme, template: t}
templates:
  t:
    default:
      default: {subject: "{{ broken", body: "ok"}
"""


def test_validate_names_file_line_and_key_of_each_mistake(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    code, out = validate(path)
    assert code == 1
    # structural errors first (they stop further checks)
    for expected in [
        f"{path}:2: applications.grafana.colour: unknown key",
        f"{path}:10: teams.db.rotations.primary.shift:",
        f"{path}:15: plans.p.steps[0][0].repeat:",
        f"{path}:15: plans.p.steps[0][0].wait:",
        f"{path}:18: plans.p.steps[0][3].priority:",
    ]:
        assert expected in out, (expected, out)


def test_validate_reports_references_and_template_errors(tmp_path: Path) -> None:
    fixed = (
        BROKEN.replace("{colour: red}", "{}")
        .replace("7x", "7d")
        .replace("repeat: 21, wait: 50000", "repeat: 1")
        .replace("priority: extreme", "priority: low")
    )
    path = tmp_path / "refs.yaml"
    path.write_text(fixed)
    code, out = validate(path)
    assert code == 1
    for expected in [
        f"{path}:7: teams.db.members[1]: warning: unknown user 'ghost' (resolves to nobody)",
        f"{path}:8: teams.db.manager: warning: unknown user 'nobody'",
        f"{path}:13: plans.p.owner: warning: unknown user 'phantom'",
        f"{path}:15: plans.p.steps[0][0].template: unknown template 'missing'",
        f"{path}:16: plans.p.steps[0][1].target: unknown team 'noteam'",
        f"{path}:17: plans.p.steps[0][2].role: team 'db' has no rotation 'tertiary'",
        f"{path}:22: templates.t.default.default.subject: template syntax error",
    ]:
        assert expected in out, (expected, out)


def test_template_errors_do_not_stop_loading_but_reference_errors_do(tmp_path: Path) -> None:
    good = EXAMPLE.read_text().replace('body: "{{ summary }} on {{ host }}"', 'body: "{{ summary on"')
    (tmp_path / "c.yaml").write_text(good)
    load_config(tmp_path / "c.yaml")  # loads
    _, issues = check_config(tmp_path / "c.yaml")
    assert any("template syntax error" in str(i) for i in issues)
    bad = EXAMPLE.read_text().replace("role: manager,        target: db", "role: manager,        target: dba")
    (tmp_path / "d.yaml").write_text(bad)
    with pytest.raises(ConfigError, match=r"plans.db-critical.steps\[1\]\[0\].target: unknown team 'dba'"):
        load_config(tmp_path / "d.yaml")


def test_a_directory_is_merged_by_top_level_key_and_duplicates_are_named(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    head, plans = text.split("\nplans:", 1)
    d = tmp_path / "conf"
    d.mkdir()
    (d / "a.yaml").write_text(head)
    (d / "b.yaml").write_text("plans:" + plans.split("\ntemplates:")[0])
    (d / "c.yaml").write_text("templates:" + plans.split("\ntemplates:")[1])
    config = load_config(d)
    assert set(config.plans) == {"db-critical", "db-alerts"} and set(config.users) >= {"alice", "dave"}
    (d / "e.yaml").write_text("users:\n  alice: {contacts: {}}\n")
    with pytest.raises(ConfigError) as err:
        load_config(d)
    assert f"{d / 'e.yaml'}:2: users.alice: also defined in {d / 'a.yaml'}" in str(err.value)


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("plans: [unclosed\n")
    code, out = validate(bad)
    assert code == 1 and f"{bad}:" in out and "not valid YAML" in out
    code, out = validate(tmp_path / "absent.yaml")
    assert code == 1 and "no such file" in out


HEARTBEATS = """\
applications:
  grafana: {}
users:
  alice: {contacts: {sms: "+1"}}
plans:
  p:
    steps:
      - - {role: user, target: alice, priority: high, template: t}
  dyn:
    steps:
      - - {dynamic: 0, priority: high, template: t}
templates:
  t:
    default:
      default: {body: "ok"}
heartbeats:
  nightly-backup:
    application: grafana
    plan: p
    interval: 26h
    context: {summary: "nightly backup did not report"}
  too-often: {application: grafana, plan: p, interval: 9s}
  too-rare: {application: grafana, plan: p, interval: 31d, colour: red}
"""


def test_heartbeats_structure_is_checked_with_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "hb.yaml"
    path.write_text(HEARTBEATS)
    code, out = validate(path)
    assert code == 1
    for expected in [
        f"{path}:22: heartbeats.too-often.interval: Input should be greater than or equal to 10",
        f"{path}:23: heartbeats.too-rare.interval: Input should be less than or equal to 2592000",
        f"{path}:23: heartbeats.too-rare.colour: unknown key",
    ]:
        assert expected in out, (expected, out)
    assert "nightly-backup" not in out


def test_heartbeats_references_names_and_reserved_context_are_checked(tmp_path: Path) -> None:
    text = (
        HEARTBEATS.split("  too-often:")[0]
        + """\
  "bad name!": {application: grafana, plan: p, interval: 10s}
  ghost-app: {application: nope, plan: p, interval: 30d}
  ghost-plan: {application: grafana, plan: nope, interval: 1h}
  dynamic: {application: grafana, plan: dyn, interval: 1h, context: {interval: 5}}
"""
    )
    path = tmp_path / "hb.yaml"
    path.write_text(text)
    code, out = validate(path)
    assert code == 1
    for expected in [
        f"{path}:22: heartbeats.bad name!: monitor name 'bad name!' must be",
        f"{path}:23: heartbeats.ghost-app.application: unknown application 'nope'",
        f"{path}:24: heartbeats.ghost-plan.plan: unknown plan 'nope'",
        f"{path}:25: heartbeats.dynamic.plan: plan 'dyn' uses dynamic targets",
        f"{path}:25: heartbeats.dynamic.context.interval: warning: 'interval' is set by the monitor",
    ]:
        assert expected in out, (expected, out)
    with pytest.raises(ConfigError, match=r"heartbeats\.ghost-app\.application"):
        load_config(path)
    good = HEARTBEATS.split("  too-often:")[0]
    (tmp_path / "good.yaml").write_text(good)
    config = load_config(tmp_path / "good.yaml")
    assert config.heartbeats["nightly-backup"].interval == 26 * 3600
    assert validate(tmp_path / "good.yaml")[0] == 0

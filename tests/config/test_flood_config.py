"""`streamproc validate` on spec §7 settings: downgrade rules and batching, named by file, line, key."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamproc.config import ConfigError, check_config, load_config

GOOD = """\
applications:
  app: {}
users:
  alice:
    contacts: {call: "+1", sms: "+1", email: "a@x"}
    downgrade:
      - {from: call, to: sms, count: 3, window: 10m}
      - {from: sms, to: slack, count: 5, window: 1h}
  erin:
    contacts: {call: "+2"}
    downgrade:
      - {from: call, to: sms, count: 3, window: 10m}
plans:
  p:
    batching: {threshold: 5, window: 60s, every: 5m, quiet: 10m}
    steps:
      - - {role: user, target: alice, priority: high, template: t, repeat: 2, wait: 300}
        - {role: user, target: erin, priority: high, template: t, wait: 90}
  q:
    batching: {threshold: 5, window: 5m, every: 5m, quiet: 0}
    steps:
      - - {role: user, target: alice, priority: high, template: t, repeat: 2, wait: 5m}
      - - {role: user, target: alice, priority: high, template: t, repeat: 2, wait: 10s}
templates:
  t: {default: {default: {body: "x"}}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def messages(tmp_path: Path, text: str) -> list[str]:
    _, issues = check_config(write(tmp_path, text))
    return [str(i).replace(str(tmp_path) + "/", "") for i in issues]


def test_rules_and_batching_load(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert [(r.from_, r.to, r.count, r.window) for r in config.users["alice"].downgrade] == [
        ("call", "sms", 3, 600),
        ("sms", "slack", 5, 3600),
    ]
    batching = config.plans["p"].batching
    assert batching is not None and (batching.threshold, batching.window, batching.every, batching.quiet) == (
        5,
        60,
        300,
        600,
    )


def test_warnings_for_a_missing_contact_and_a_window_shorter_than_the_first_wait(tmp_path: Path) -> None:
    assert messages(tmp_path, GOOD) == [
        "config.yaml:8: users.alice.downgrade[1].to: warning: user 'alice' has no slack contact: messages this "
        "rule downgrades go by email",
        "config.yaml:12: users.erin.downgrade[0].to: warning: user 'erin' has no sms contact: messages this "
        "rule downgrades become undeliverable (no-contact): there is no email either",
        # p: the first step's shortest nonzero wait is 90 s; q: 5m in step 1 (step 2's 10 s does not count)
        "config.yaml:15: plans.p.batching.window: warning: batching window (60s) is shorter than the plan's "
        "first wait (90s): one incident's pages never fall in one window",
    ]


@pytest.mark.parametrize(
    ("rule", "where", "message"),
    [
        ("{from: call, to: pigeon, count: 3, window: 10m}", "users.alice.downgrade[0].to", "Input should be"),
        ("{from: call, to: drop, count: 3, window: 10m}", "users.alice.downgrade[0].to", "Input should be"),
        ("{from: call, to: call, count: 3, window: 10m}", "users.alice.downgrade[0]", "from and to are the same mode"),
        ("{from: call, to: sms, count: 0, window: 10m}", "users.alice.downgrade[0].count", "greater than or equal"),
        ("{from: call, to: sms, count: 3, window: 0}", "users.alice.downgrade[0].window", "greater than 0"),
        ("{from: call, to: sms, count: 3, window: 10m, colour: red}", "users.alice.downgrade[0].colour", "unknown key"),
        ("{to: sms, count: 3, window: 10m}", "users.alice.downgrade[0].from", "required key is missing"),
    ],
)
def test_bad_downgrade_rules_are_errors_at_their_key(tmp_path: Path, rule: str, where: str, message: str) -> None:
    text = GOOD.replace(
        "- {from: call, to: sms, count: 3, window: 10m}\n      - {from: sms", f"- {rule}\n      - {{from: sms", 1
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    [issue] = caught.value.issues
    assert (issue.line, issue.path) == (7, where) and message in issue.message, str(issue)


@pytest.mark.parametrize(
    ("batching", "where"),
    [
        ("{threshold: 0, window: 60s, every: 5m, quiet: 10m}", "plans.p.batching.threshold"),
        ("{threshold: 5, window: 0, every: 5m, quiet: 10m}", "plans.p.batching.window"),
        ("{threshold: 5, window: 60s, every: 0, quiet: 10m}", "plans.p.batching.every"),
        ("{threshold: 5, window: 60s, every: 5m}", "plans.p.batching.quiet"),
        ("{threshold: 5, window: 60s, every: 5m, quiet: 10m, reset: 1}", "plans.p.batching.reset"),
    ],
)
def test_bad_batching_is_an_error_at_its_key(tmp_path: Path, batching: str, where: str) -> None:
    text = GOOD.replace("{threshold: 5, window: 60s, every: 5m, quiet: 10m}", batching, 1)
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    [issue] = caught.value.issues
    assert (issue.line, issue.path) == (15, where), str(issue)

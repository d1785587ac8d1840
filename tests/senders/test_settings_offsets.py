"""Sender settings (absent means console everywhere) and the offset tracker's commit rule."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streamproc.config.senders import DEFAULT_RATES, SendersSettings
from streamproc.senders.offsets import OffsetTracker


def test_all_defaults() -> None:
    settings = SendersSettings()
    assert settings.twilio.credentials() is None
    assert settings.slack.resolved_token() is None
    assert settings.rates == DEFAULT_RATES
    assert settings.retry.max_attempts >= 1 and settings.dedupe_window == 86400


def test_parses_yaml_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_TOKEN_FOR_TEST", "xoxb-env")
    settings = SendersSettings.model_validate(
        {
            "slack": {"token_env": "SLACK_TOKEN_FOR_TEST"},
            "smtp": {"host": "mail", "from": "pager@example.com", "starttls": True},
            "rates": {"sms": {"rate": 5, "burst": 2}},
            "retry": {"base_delay": "2s", "max_delay": "5m"},
            "dedupe_window": "1d",
        }
    )
    assert settings.slack.resolved_token() == "xoxb-env"
    assert settings.smtp.from_ == "pager@example.com"
    assert settings.rate_for("sms").rate == 5 and settings.rate_for("call") == DEFAULT_RATES["call"]
    assert (settings.retry.base_delay, settings.retry.max_delay, settings.dedupe_window) == (2, 300, 86400)


@pytest.mark.parametrize(
    "data",
    [
        {"twilio": {"acount_sid": "typo"}},
        {"rates": {"drop": {"rate": 1}}},
        {"rates": {"sms": {"rate": 0}}},
        {"retry": {"jitter": 2}},
        {"unknown": 1},
    ],
)
def test_rejects_unknown_keys_and_bad_values(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SendersSettings.model_validate(data)


def test_tracker_commits_up_to_the_lowest_unsettled_offset() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11, 12, 13):
        tracker.track(0, offset)
    tracker.track(1, 5)
    assert tracker.committable() == {0: 10, 1: 5}
    tracker.done(0, 11)
    tracker.done(0, 12)
    assert tracker.committable()[0] == 10  # 10 is still in flight: 11 and 12 wait for it
    tracker.done(0, 10)
    assert tracker.committable()[0] == 13
    tracker.done(0, 13)
    tracker.done(1, 5)
    assert tracker.committable() == {0: 14, 1: 6}
    tracker.forget([1])
    tracker.done(1, 6)  # a late settle after revoke is ignored
    assert tracker.committable() == {0: 14}
    assert tracker.committable([1]) == {}

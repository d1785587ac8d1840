"""The whole stack on the three-node cluster: two workers, an SMS sender into a local Twilio fake,
and the API; and the comparison of what Twilio received with what replay says should be paged."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from streamproc.timeutil import parse_time, to_us
from tests.fakes import FakeTwilio
from tests.harness import ApiProcess, Stack, replay_outcomes

USERS = 6
API_KEY = "app-key"
WAIT = 2
"""Seconds between two pages of an incident: a claim dated half-way has a second to get through."""


def config_text(twilio: FakeTwilio, repeat: int = 7) -> str:
    """One plan per user (so messages, keyed by user, spread over the partitions), each paging its
    user by SMS `repeat + 1` times, `WAIT` seconds apart."""
    users = "\n".join(f'  u{i}: {{contacts: {{sms: "+1555000{i:04d}"}}}}' for i in range(USERS))
    plans = "\n".join(
        f"  p{i}:\n    steps:\n      - - {{role: user, target: u{i}, priority: high, template: t, "
        f"repeat: {repeat}, wait: {WAIT}}}"
        for i in range(USERS)
    )
    return f"""
applications:
  app: {{key: "{API_KEY}"}}
users:
{users}
plans:
{plans}
templates:
  t:
    default:
      default: {{body: "{{{{ incident.id }}}}: {{{{ summary }}}}"}}
senders:
  twilio: {{account_sid: "{twilio.account_sid}", auth_token: "{twilio.auth_token}", from_number: "+15559990000",
           base_url: "{twilio.url}"}}
  rates: {{sms: {{rate: 1000, burst: 1000}}}}
api:
  produce_timeout: 20
"""


@dataclass
class FullStack:
    """Two workers, an SMS sender (into `twilio`) and the API on one `Stack` (tests.harness)."""

    stack: Stack
    twilio: FakeTwilio
    api: ApiProcess

    def post(self, event: dict[str, Any] | list[dict[str, Any]], timeout: float = 60.0) -> int:
        """POST /v1/events (one event or a batch); the HTTP status."""
        request = urllib.request.Request(
            self.api.url + "/v1/events",
            data=json.dumps(event).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)


def start_full(stack: Stack, twilio: FakeTwilio, api_env: dict[str, str] | None = None) -> FullStack:
    """Starts them all at once, then waits until each is ready (the workers own every partition,
    the sender's consumer has its partitions, the API's `/ready`)."""
    sender = stack.start_sender(["sms"], wait=False)
    api = stack.start_api(env=api_env, wait=False)
    stack.start_worker("w0")
    stack.start_worker("w1")
    stack.wait_ready()
    api.wait_ready()
    sender.wait_ready()
    return FullStack(stack, twilio, api)


@dataclass
class Comparison:
    expected: dict[str, list[float]]
    """incident -> the times (s) replay pages it"""
    received: dict[str, list[float]]
    """incident -> when Twilio accepted each of its pages (s)"""

    @property
    def missing(self) -> int:
        return sum(max(0, len(at) - len(self.received.get(i, []))) for i, at in self.expected.items())

    @property
    def extra(self) -> int:
        return sum(max(0, len(got) - len(self.expected.get(i, []))) for i, got in self.received.items())

    def lateness(self, due_after: float = 0.0) -> list[float]:
        """How late each page arrived (its n-th arrival against its n-th due time), for pages due
        after `due_after`."""
        return sorted(
            got - due
            for i, at in self.expected.items()
            for due, got in zip(sorted(at), sorted(self.received.get(i, [])), strict=False)
            if due >= due_after
        )

    def differences(self) -> dict[str, tuple[list[float], list[float]]]:
        """incident -> (due times, arrival times) where the counts differ."""
        return {
            i: (sorted(self.expected.get(i, [])), sorted(self.received.get(i, [])))
            for i in set(self.expected) | set(self.received)
            if len(self.expected.get(i, [])) != len(self.received.get(i, []))
        }

    def flowing_again(self, since: float) -> float:
        """When Twilio first accepted a page due after `since` (the end of a stall that began then)."""
        return min(
            (
                got
                for i, at in self.expected.items()
                for due, got in zip(sorted(at), sorted(self.received.get(i, [])), strict=False)
                if due >= since
            ),
            default=float("nan"),
        )

    def summary(self, kill_at: float | None = None) -> str:
        late = self.lateness()
        text = (
            f"{sum(map(len, self.expected.values()))} pages expected, {self.missing} missing, {self.extra} extra; "
            f"lateness p50 {percentile(late, 50):.2f} s, p99 {percentile(late, 99):.2f} s, "
            f"max {max(late, default=0):.2f} s"
        )
        if self.missing or self.extra:
            text += f"; differing: {self.differences()}"
        if kill_at is not None:
            after = self.lateness(kill_at)
            text += f"; pages due after the kill: max lateness {max(after, default=0):.2f} s"
        return text


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def expected_pages(full: FullStack, events: list[dict[str, Any]]) -> dict[str, list[float]]:
    """incident -> the times (s) replay of `events` pages it by SMS."""
    expected: dict[str, list[float]] = defaultdict(list)
    for outcome in replay_outcomes(full.stack.config, events):
        if outcome.get("mode") == "sms" and "message_id" in outcome:
            expected[outcome["incident_id"]].append(to_us(parse_time(outcome["at"])) / 1e6)
    return dict(expected)


def received_pages(twilio: FakeTwilio) -> dict[str, list[float]]:
    """incident (the body's first word) -> when Twilio accepted each of its pages (s)."""
    received: dict[str, list[float]] = defaultdict(list)
    for r in twilio.sms:
        if r.ok:
            received[r.form["Body"].split(":")[0]].append(r.at)
    return dict(received)


def compare(full: FullStack, events: list[dict[str, Any]], settle: float = 4.0, timeout: float = 90.0) -> Comparison:
    """Waits until Twilio has every page replay expects and nothing more came for `settle` s."""
    expected = expected_pages(full, events)
    total = sum(map(len, expected.values()))
    deadline = time.monotonic() + timeout
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = len(full.twilio.sms)
        if count != seen:
            seen, quiet_since = count, time.monotonic()
        elif count >= total and time.monotonic() - quiet_since > settle:
            break
        time.sleep(0.1)  # (asking again: the fake Twilio has no event to wait on)
    return Comparison(expected, received_pages(full.twilio))

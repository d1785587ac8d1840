"""Prometheus metrics of a live run: a real `streamproc worker` and `streamproc sender` (console
delivery) on the broker; their `/metrics` are scraped before and after incidents and the counters,
gauges and latency histograms must have moved by exactly what the incidents caused."""

from __future__ import annotations

import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamproc.localnet import free_port
from tests.harness import iso_ms, live_stack, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CONFIG = """
applications:
  app: {}
users:
  alice:
    contacts: {sms: "+15550000001"}
    modes: {high: sms}
plans:
  short:
    steps:
      - - {role: user, target: alice, priority: high, template: t, repeat: 1, wait: 1}
  long:
    steps:
      - - {role: user, target: alice, priority: high, template: t, repeat: 1, wait: 600}
templates:
  t:
    default:
      default: {body: "{{ summary }} #{{ incident.id }}"}
"""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over the samples of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items())


def try_scrape(port: int) -> Samples | None:
    try:
        return scrape(port)
    except OSError:
        return None


def test_worker_and_sender_metrics_move_with_incidents(kafka_bootstrap: str, tmp_path: Path) -> None:
    sender_port = free_port()
    with live_stack(kafka_bootstrap, tmp_path, CONFIG, partitions=3) as stack:
        worker = stack.start_worker("w1")
        sender = stack.start_sender(["sms"], args=["--metrics-port", str(sender_port)], wait=False)
        stack.wait_ready()
        sender.wait_ready()
        wait_until(lambda: try_scrape(sender_port), 60, "the sender's /metrics")

        w0, s0 = scrape(worker.port), scrape(sender_port)
        # Startup: a rebalance happened and the (empty) table was recovered.
        assert value(w0, "streamproc_worker_rebalances_total") >= 1
        assert value(w0, "streamproc_worker_table_recovery_seconds_count") >= 1
        assert value(w0, "streamproc_worker_events_total", type="trigger") == 0
        assert value(s0, "streamproc_sender_scheduled_to_accepted_seconds_count", mode="sms", vendor="console") == 0

        now = time.time()
        short, long = f"m-short-{uuid.uuid4().hex[:6]}", f"m-long-{uuid.uuid4().hex[:6]}"
        for incident, plan in ((short, "short"), (long, "long")):
            stack.produce(
                {
                    "type": "trigger",
                    "at": iso_ms(now),
                    "incident_id": incident,
                    "application": "app",
                    "plan": plan,
                    "context": {"summary": "disk full"},
                }
            )
        stack.produce(
            {"type": "trigger", "at": iso_ms(now), "incident_id": "m-bad", "application": "app", "plan": "no-such-plan"}
        )
        stack.produce_raw(b"junk", b"not json")
        stack.flush()

        def worker_moved() -> Samples | None:
            w = scrape(worker.port)

            def d(name: str, **labels: str) -> float:
                return value(w, name, **labels) - value(w0, name, **labels)

            done = (
                d("streamproc_worker_outcomes_total", kind="message", mode="sms") == 3
                and d("streamproc_worker_outcomes_total", kind="exhausted", mode="") == 1
            )
            return w if done else None

        w1 = wait_until(worker_moved, 60, lambda: f"worker metrics: {scrape(worker.port)}")

        def dw(name: str, **labels: str) -> float:
            return value(w1, name, **labels) - value(w0, name, **labels)

        # short: a page now and its repeat 1 s later (after a wake-up), then exhausted; long: one page.
        assert dw("streamproc_worker_events_total", type="trigger") == 2
        assert dw("streamproc_worker_dead_letters_total", reason="unknown-plan") == 1
        assert dw("streamproc_worker_dead_letters_total", reason="invalid-event") == 1
        assert dw("streamproc_worker_send_lateness_seconds_count") == 3
        assert 0 <= dw("streamproc_worker_send_lateness_seconds_sum") < 30
        assert dw("streamproc_worker_wakeups_due_total") >= 1
        assert total(w1, "streamproc_worker_escalations_open", status="escalating") == 1  # long
        assert total(w1, "streamproc_worker_escalations_open", status="exhausted") == 1  # short
        assert total(w1, "streamproc_worker_escalations_open") == 2

        for incident in (short, long):
            stack.produce({"type": "resolve", "at": iso_ms(time.time()), "incident_id": incident})
        stack.flush()
        wait_until(
            lambda: (
                lambda w: (
                    value(w, "streamproc_worker_events_total", type="resolve")
                    - value(w0, "streamproc_worker_events_total", type="resolve")
                    == 2
                    and total(w, "streamproc_worker_escalations_open") == 0
                )
            )(scrape(worker.port)),
            30,
            lambda: f"worker metrics after the resolves: {scrape(worker.port)}",
        )

        console = {"mode": "sms", "vendor": "console"}
        s1 = wait_until(
            lambda: (
                lambda s: (
                    s
                    if value(s, "streamproc_sender_messages_total", status="sent", **console)
                    - value(s0, "streamproc_sender_messages_total", status="sent", **console)
                    == 3
                    else None
                )
            )(scrape(sender_port)),
            60,
            lambda: f"sender metrics: {scrape(sender_port)}",
        )

        def ds(name: str, **labels: str) -> float:
            return value(s1, name, **labels) - value(s0, name, **labels)

        assert ds("streamproc_sender_scheduled_to_accepted_seconds_count", **console) == 3
        assert 0 <= ds("streamproc_sender_scheduled_to_accepted_seconds_sum", **console) < 60
        assert ds("streamproc_sender_vendor_call_seconds_count", outcome="ok", **console) == 3
        assert ds("streamproc_sender_ratelimit_wait_seconds_count", mode="sms") == 3
        assert ds("streamproc_sender_messages_total", status="failed", **console) == 0
        assert total(s1, "streamproc_sender_queued", mode="sms") == 0

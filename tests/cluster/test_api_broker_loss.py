"""Issue 19: the API on a three-node cluster while brokers are lost. Every event it answered 202 is
on the incidents topic; a write Kafka cannot take within `api.produce_timeout` (two of three brokers
gone: fewer in-sync replicas than min.insync.replicas) is answered 503, never 202."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import KafkaCluster
from tests.harness import ApiProcess, read_topic, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.cluster]

PRODUCE_TIMEOUT = 4.0
CONFIG = f"""
applications:
  app: {{key: "app-key"}}
users:
  u0: {{contacts: {{sms: "+15550000000"}}}}
plans:
  p0:
    steps:
      - - {{role: user, target: u0, priority: high, template: t}}
templates:
  t:
    default:
      default: {{body: "{{{{ incident.id }}}}"}}
api:
  produce_timeout: {PRODUCE_TIMEOUT}
"""


@pytest.fixture
def api(kafka_cluster: KafkaCluster, tmp_path: Path) -> Iterator[ApiProcess]:
    process = ApiProcess(kafka_cluster.bootstrap, tmp_path, CONFIG).start()
    try:
        yield process
    finally:
        process.stop()


class Poster(threading.Thread):
    """POSTs one trigger after another (each a new incident) and notes every answer."""

    def __init__(self, api: ApiProcess) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.answers: list[tuple[str, int, float, float]] = []
        """(incident id, status, sent at, seconds to answer)"""
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            incident = f"a{n}"
            body = json.dumps({"type": "trigger", "incident_id": incident, "plan": "p0"}).encode()
            request = urllib.request.Request(
                self.api.url + "/v1/events",
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "Authorization": "Bearer app-key"},
            )
            started = time.time()
            try:
                with urllib.request.urlopen(request, timeout=PRODUCE_TIMEOUT + 30) as resp:
                    status = resp.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            self.answers.append((incident, status, started, time.time() - started))
            n += 1
            time.sleep(0.05)  # the scenario: a client posting one event after another

    def statuses(self, since: float = 0.0) -> list[int]:
        return [status for _, status, at, _ in self.answers if at >= since]


def test_every_202_is_on_the_topic_and_what_kafka_cannot_take_is_answered_503(
    kafka_cluster: KafkaCluster, api: ApiProcess
) -> None:
    poster = Poster(api)
    poster.start()
    try:
        wait_until(lambda: len(poster.answers) >= 20, 60, "20 answers")
        kafka_cluster.kill(1)
        lost_one = time.time()
        # One broker lost: writes go on (with a stall while Kafka moves the leaders).
        wait_until(lambda: 202 in poster.statuses(lost_one + 12), 120, "a 202 12 s after the first loss")
        kafka_cluster.kill(2)
        lost_two = time.time()
        # Two lost: no partition has the two in-sync replicas a write needs.
        wait_until(lambda: len(poster.statuses(lost_two + 1)) >= 3, 120, "3 answers after the second loss")
    finally:
        poster.stop.set()
        poster.join(PRODUCE_TIMEOUT + 35)
    kafka_cluster.heal()
    after_two = [(status, took) for _, status, at, took in poster.answers if at >= lost_two + 1]
    assert after_two and all(status == 503 for status, _ in after_two), after_two
    assert all(took < PRODUCE_TIMEOUT + 5 for _, took in after_two), after_two
    accepted = {incident for incident, status, _, _ in poster.answers if status == 202}
    on_topic = {value["incident_id"] for _, value in read_topic(kafka_cluster.bootstrap, api.topics.incidents)}
    slowest = max((t for _, s, a, t in poster.answers if s == 202 and a >= lost_one), default=0.0)
    print(
        f"\nAPI: {len(poster.answers)} writes, {len(accepted)} answered 202, "
        f"{sum(1 for _, s, _, _ in poster.answers if s == 503)} answered 503; "
        f"slowest 202 after the first loss {slowest:.1f} s"
    )
    assert accepted <= on_topic, sorted(accepted - on_topic)
    assert all(status in (202, 503) for _, status, _, _ in poster.answers)

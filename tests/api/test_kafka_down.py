"""With the broker stopped, writes are refused with 503 (never 2xx), and nothing answered 202 is lost.

Runs its own broker (tools/kafka/kafka.sh on another port and state directory): the session's
broker is shared by every other test and must not be stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KAFKA_SH
from tests.harness import API_CONFIG as CONFIG
from tests.harness import ApiProcess, free_ports, read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


class PrivateBroker:
    def __init__(self, tmp: Path) -> None:
        self.port = free_ports(2)
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_RUN_DIR": str(tmp / "kafka"),
            "KAFKA_PYTHON": sys.executable,
        }
        self.env.pop("STREAMPROC_KAFKA", None)

    def run(self, *args: str) -> str:
        proc = subprocess.run(["bash", str(KAFKA_SH), *args], env=self.env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    b = PrivateBroker(tmp_path)
    b.run("up")
    try:
        yield b
    finally:
        b.run("down", "--wipe")


def post(url: str, body: Any) -> tuple[int, dict[str, Any], float, dict[str, str]]:
    request = urllib.request.Request(
        url + "/v1/events",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": "Bearer grafana-key"},
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read()), time.monotonic() - started, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), time.monotonic() - started, dict(exc.headers)


def claim(incident_id: str) -> dict[str, Any]:
    return {"type": "claim", "incident_id": incident_id, "owner": "alice"}


def test_broker_down_gives_503_and_nothing_accepted_is_lost(broker: PrivateBroker, tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{broker.port}"
    api = ApiProcess(bootstrap, tmp_path, config=CONFIG + "  produce_timeout: 3\n").start()
    marker = uuid.uuid4().hex[:8]
    accepted: list[str] = []
    try:
        status, body, _, _ = post(api.url, claim(f"{marker}-before"))
        assert status == 202, body
        accepted.append(f"{marker}-before")

        broker.run("down")
        status, body, took, headers = post(api.url, claim(f"{marker}-during"))
        assert status == 503, body
        assert body["error"].startswith("kafka unavailable:")
        assert headers["Retry-After"] == "5"
        assert took < 10  # the produce timeout (3 s) plus the margin, not a hang
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(api.url + "/ready", timeout=10)
        assert not_ready.value.code == 503

        broker.run("up")
        # The client retries the refused event, as Retry-After asks, until it is accepted.
        deadline = time.monotonic() + 60
        while True:
            status, body, _, _ = post(api.url, claim(f"{marker}-during"))
            if status == 202 or time.monotonic() > deadline:
                break
            assert status == 503, body
            time.sleep(1)  # the scenario: a client retrying, as Retry-After asks
        assert status == 202, body
        accepted.append(f"{marker}-during")
        status, body, _, _ = post(api.url, claim(f"{marker}-after"))
        assert status == 202, body
        accepted.append(f"{marker}-after")
    finally:
        api.stop()
    written = [v["incident_id"] for _, v in read_topic(bootstrap, api.topics.incidents)]
    assert all(incident in written for incident in accepted), (accepted, written)
    assert set(written) == set(accepted)  # and the refused write only got in when it was accepted

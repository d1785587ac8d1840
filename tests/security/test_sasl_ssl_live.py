"""Every client through SASL_SSL: a broker of its own with the opt-in SASL_SSL listener
(tools/kafka/kafka.sh, KAFKA_SASL_SSL_PORT), a worker and a sender that only know the SASL_SSL
address, and a trigger that becomes a delivered page. A wrong password ends each command within
seconds, naming the problem.

The test itself reads and writes through the broker's PLAINTEXT listener (its own process has no
security settings); the commands under test get the SASL_SSL address only, so none of them can
work without TLS and SASL. Mechanisms: the worker SCRAM-SHA-512 with a client certificate (config
`kafka:` section, password file), the sender SCRAM-SHA-256 (environment only, no config), the event
is produced with PLAIN (environment only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamproc.kafka.admin import ensure_topics
from streamproc.kafka.topics import Topics
from streamproc.localnet import free_port
from streamproc.wire.deliveries import Delivery, parse_delivery
from tests.conftest import KAFKA_SH, kill_brokers
from tests.harness import API_CONFIG, Proc, Record, free_ports, read
from tests.harness.stack import stop_all

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "pager", "Right-pw.42"
PARTITIONS = 4


@dataclass
class SecureBroker:
    plain: str
    secure: str
    tls: Path
    env: dict[str, str]

    def client_env(self, mechanism: str, password: str = PASSWORD, **more: str) -> dict[str, str]:
        """The environment of a command that reaches Kafka by SASL_SSL only."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMPROC_KAFKA")}
        return {
            **env,
            "STREAMPROC_KAFKA": self.secure,
            "STREAMPROC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "STREAMPROC_KAFKA_SASL_MECHANISM": mechanism,
            "STREAMPROC_KAFKA_SASL_USERNAME": USER,
            "STREAMPROC_KAFKA_SASL_PASSWORD": password,
            "STREAMPROC_KAFKA_SSL_CA_FILE": str(self.tls / "ca.pem"),
            **more,
        }


def _ports() -> tuple[int, int]:
    """The client port, the controller's (+1) and the SASL_SSL listener's (+2)."""
    port = free_ports(3)
    return port, port + 2


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    run_dir = tmp_path_factory.mktemp("secure-kafka")
    port, secure = _ports()
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_RUN_DIR": str(run_dir),
        "KAFKA_PYTHON": sys.executable,
        "KAFKA_SASL_SSL_PORT": str(secure),
        "KAFKA_SASL_USER": USER,
        "KAFKA_SASL_PASSWORD": PASSWORD,
    }
    env.pop("STREAMPROC_KAFKA", None)

    def kafka_sh(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["bash", str(KAFKA_SH), *args], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return proc

    up = kafka_sh("up")
    tls = run_dir / "tls"
    assert f"CA file {tls / 'ca.pem'}" in up.stderr  # where the CA is, said at start
    try:
        yield SecureBroker(up.stdout.strip(), f"127.0.0.1:{secure}", tls, env)
    finally:
        kill_brokers(run_dir)  # wiped next: a clean shutdown saves nothing
        kafka_sh("down", "--wipe")


def worker_config(tmp: Path, broker: SecureBroker) -> Path:
    password_file = tmp / "kafka-password"
    password_file.write_text(PASSWORD + "\n")
    config = tmp / "config.yaml"
    config.write_text(
        (REPO / "examples" / "config.yaml").read_text()
        + f"""
kafka:
  security_protocol: SASL_SSL
  sasl_mechanism: SCRAM-SHA-512
  sasl_username: {USER}
  sasl_password_file: {password_file}
  ssl_ca_file: {broker.tls / "ca.pem"}
  ssl_cert_file: {broker.tls / "client.pem"}
  ssl_key_file: {broker.tls / "client.key"}
"""
    )
    return config


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "streamproc.cli", *args]


def worker_args(tmp: Path, broker: SecureBroker) -> list[str]:
    """`streamproc worker` on the SASL_SSL listener, with the example config and its password file."""
    return [
        "worker",
        "--config",
        str(worker_config(tmp, broker)),
        "--bootstrap",
        broker.secure,
        "--partitions",
        str(PARTITIONS),
        "--store",
        "memory",
        "--web-port",
        str(free_port()),
    ]


def test_a_trigger_becomes_a_delivered_page_through_sasl_ssl(broker: SecureBroker, tmp_path: Path) -> None:
    ensure_topics(broker.plain, PARTITIONS)  # the test's own (PLAINTEXT) client
    worker_env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMPROC_KAFKA")}
    procs = [
        Proc("worker", [*worker_args(tmp_path, broker), "--loglevel", "info"], tmp_path, base_env=worker_env),
        Proc("sender", ["sender", "--bootstrap", broker.secure], tmp_path, base_env=broker.client_env("SCRAM-SHA-256")),
    ]
    try:
        for proc in procs:
            proc.start()
        incident = json.loads((REPO / "examples" / "incident.json").read_text())
        incident["incident_id"] = f"secure-{uuid.uuid4().hex[:8]}"
        event = tmp_path / "incident.json"
        event.write_text(json.dumps(incident))
        produced = subprocess.run(
            command("produce", str(event), "--bootstrap", broker.secure),
            cwd=REPO,
            env=broker.client_env("PLAIN"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert produced.returncode == 0, produced.stderr

        def sent(record: Record) -> Delivery | None:
            delivery = parse_delivery(record.value or b"")
            return delivery if delivery.incident_id == incident["incident_id"] and delivery.status == "sent" else None

        # The `sent` record of a page of the incident, read through the PLAINTEXT listener.
        pages = read(broker.plain, Topics().deliveries, bool, convert=sent, timeout=120, watch=procs)
        assert pages[0].vendor == "console"
    finally:
        stop_all(procs)


def run_refused(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    return proc, time.monotonic() - started


@pytest.mark.parametrize("which", ["worker", "sender", "api", "produce"])
def test_a_wrong_password_ends_the_command_within_seconds_naming_it(
    broker: SecureBroker, tmp_path: Path, which: str
) -> None:
    wrong = broker.client_env("SCRAM-SHA-512", password="not-the-password")
    if which == "worker":  # the config has the right password in a file; the environment overrides it
        cmd = command(*worker_args(tmp_path, broker))
    elif which == "sender":
        cmd = command("sender", "--bootstrap", broker.secure)
    elif which == "api":
        config = tmp_path / "api.yaml"
        config.write_text(API_CONFIG)
        cmd = command("api", "--config", str(config), "--port", str(free_port()), "--bootstrap", broker.secure)
    else:
        event = tmp_path / "incident.json"
        event.write_text((REPO / "examples" / "incident.json").read_text())
        cmd = command("produce", str(event), "--bootstrap", broker.secure)
    proc, took = run_refused(cmd, wrong)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert took < 20, f"{which} took {took:.1f} s to give up"
    assert f"kafka at {broker.secure} refused SASL_SSL SCRAM-SHA-512 as '{USER}'" in proc.stderr, proc.stderr
    assert "Authentication failed" in proc.stderr, proc.stderr

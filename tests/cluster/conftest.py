"""A three-node KRaft cluster for the tests where losing a broker is the point (issue 19).

Started once per session by `tools/kafka/cluster.sh` (the project's own script, the same pinned
jars as the single broker) on 127.0.0.1:19692..19697 (STREAMPROC_TEST_CLUSTER_PORT moves it) with
its state in .run/kafka-cluster-test, wiped before and after. Each test gets it with all three nodes
up and every partition fully replicated again (`KafkaCluster.heal`), whatever the test before it
killed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from tests.conftest import REPO_ROOT, kill_brokers

CLUSTER_SH = REPO_ROOT / "tools" / "kafka" / "cluster.sh"
PORT = int(os.environ.get("STREAMPROC_TEST_CLUSTER_PORT", "19692"))
RUN_DIR = REPO_ROOT / ".run" / "kafka-cluster-test"


class KafkaCluster:
    def __init__(self) -> None:
        self.env = {
            **os.environ,
            "KAFKA_CLUSTER_PORT": str(PORT),
            "KAFKA_CLUSTER_DIR": str(RUN_DIR),
            "KAFKA_PYTHON": sys.executable,
        }
        self.env.pop("STREAMPROC_KAFKA", None)
        self.bootstrap = ",".join(f"127.0.0.1:{PORT + 2 * i}" for i in range(3))

    def run(self, *args: str) -> str:
        proc = subprocess.run(["bash", str(CLUSTER_SH), *args], env=self.env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"cluster.sh {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        return proc.stdout.strip()

    def kill(self, node: int) -> None:
        """SIGKILL: the broker lost, as a crash or a lost machine loses it."""
        self.run("kill", str(node))

    def stop(self, node: int) -> None:
        """SIGTERM: a controlled shutdown, as a rolling restart does it."""
        self.run("stop", str(node))

    def start(self, node: int) -> None:
        self.run("start", str(node))

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap})

    def in_sync(self) -> bool:
        """Every node registered, and every partition of every topic led and fully replicated."""
        try:
            meta = self.admin().list_topics(timeout=5)
        except Exception:
            return False
        return len(meta.brokers) == 3 and all(
            p.leader >= 0 and len(p.isrs) == len(p.replicas)
            for t in meta.topics.values()
            for p in t.partitions.values()
        )

    def wait_in_sync(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.in_sync():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster did not get back in sync within {timeout} s")
            time.sleep(0.5)

    def heal(self) -> None:
        """All three nodes up (`up` starts the ones that are not) and every replica in sync."""
        self.run("up")
        self.wait_in_sync()


@pytest.fixture(scope="package")  # stopped once tests/cluster is done: three idle JVMs slow the rest
def kafka_cluster_session() -> Iterator[KafkaCluster]:
    cluster = KafkaCluster()
    kill_brokers(RUN_DIR)  # leftovers of a killed session
    cluster.run("down", "--wipe")
    try:
        cluster.run("up")
        yield cluster
    finally:
        kill_brokers(RUN_DIR)  # wiped next: a clean shutdown of each node saves nothing
        cluster.run("down", "--wipe")


@pytest.fixture
def kafka_cluster(kafka_cluster_session: KafkaCluster) -> KafkaCluster:
    kafka_cluster_session.heal()
    return kafka_cluster_session

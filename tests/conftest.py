"""Shared pytest fixtures.

Add new fixtures in their own clearly marked section below.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

REPO_ROOT = Path(__file__).resolve().parent.parent


# =====================================================================================================
# Kafka broker for the test session
#
# `kafka_bootstrap` gives "host:port" of a real broker:
#   * STREAMPROC_KAFKA set  -> that broker is used as is (nothing is started or stopped);
#   * otherwise             -> tools/kafka/kafka.sh starts a private single-node KRaft broker on
#                              127.0.0.1:19192 with its state in .run/kafka-test. Its data is wiped
#                              before the session (every session starts with no topics) and the
#                              broker is stopped and wiped at the end -- via try/finally, atexit,
#                              and SIGTERM (turned into KeyboardInterrupt so the teardown runs).
# It is only started when a test asks for it (tests needing it are marked `@pytest.mark.kafka`).
# STREAMPROC_TEST_KAFKA_PORT overrides 19192 if two sessions run tests at the same time (its state is
# then in .run/kafka-test-<port>).
# Broker logs: .run/kafka-test/logs/server.log (kept after the session).
# =====================================================================================================

KAFKA_SH = REPO_ROOT / "tools" / "kafka" / "kafka.sh"
TEST_KAFKA_PORT = int(os.environ.get("STREAMPROC_TEST_KAFKA_PORT", "19192"))
TEST_KAFKA_RUN_DIR = (
    REPO_ROOT / ".run" / ("kafka-test" if TEST_KAFKA_PORT == 19192 else f"kafka-test-{TEST_KAFKA_PORT}")
)


def _kafka_sh(*args: str) -> str:
    """Run tools/kafka/kafka.sh for the test broker; returns its stdout (the bootstrap for `up`)."""
    env = {
        **os.environ,
        "KAFKA_PORT": str(TEST_KAFKA_PORT),
        "KAFKA_RUN_DIR": str(TEST_KAFKA_RUN_DIR),
        "KAFKA_PYTHON": sys.executable,  # readiness check via confluent_kafka metadata
    }
    env.pop("STREAMPROC_KAFKA", None)
    proc = subprocess.run(["bash", str(KAFKA_SH), *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"kafka.sh {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout.strip()


def _stop_test_broker() -> None:
    """Idempotent: stop the test broker and delete its data."""
    _kafka_sh("down", "--wipe")


def _sigterm_to_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    external = os.environ.get("STREAMPROC_KAFKA")
    if external:
        yield external
        return

    # Leftovers of a killed session (SIGKILL): stop that broker and start from empty topics.
    _stop_test_broker()
    atexit.register(_stop_test_broker)
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_to_keyboard_interrupt)
    try:
        yield _kafka_sh("up")
    finally:
        _stop_test_broker()
        atexit.unregister(_stop_test_broker)
        if previous is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> AdminClient:
    """confluent_kafka AdminClient on the session broker (for topic creation/inspection)."""
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


# ============================================================================ end of Kafka broker ====


# =====================================================================================================
# A live stack (worker processes on the session broker) with the processor scenario's config:
# tests/processor and tests/whatif both run one.
# =====================================================================================================


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Any]:
    from tests.processor.cluster import live_stack
    from tests.processor.scenario import CONFIG

    with live_stack(kafka_bootstrap, tmp_path, CONFIG) as s:
        yield s

"""Shared pytest fixtures.

Add new fixtures in their own clearly marked section below.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

REPO_ROOT = Path(__file__).resolve().parent.parent

# pytest-xdist's workers get COLUMNS=80 from it; the commands the tests run print their tables as
# wide as COLUMNS says when it is set (environment.terminal_columns), else as wide as the content.
# Tests that want a width set it themselves.
os.environ.pop("COLUMNS", None)


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
# then in .run/kafka-test-<port>). Under pytest-xdist (`make test` runs the live tests on two
# processes) each process has its own broker: gw0 on the port, gw1 two above it, and so on.
# Broker logs: .run/kafka-test/logs/server.log (kept after the session).
# =====================================================================================================

KAFKA_SH = REPO_ROOT / "tools" / "kafka" / "kafka.sh"
_XDIST_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
TEST_KAFKA_PORT = int(os.environ.get("STREAMPROC_TEST_KAFKA_PORT", "19192")) + 2 * _XDIST_WORKER
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


def kill_brokers(run_dir: Path) -> None:
    """SIGKILL every broker started with a config under `run_dir` (its data is about to be wiped:
    a clean shutdown saves nothing, and a broker with clients still around took the 20 s of
    kafka.sh's stop timeout to give up on one)."""
    conf = str(run_dir)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kafka.Kafka" in args and any(a.decode(errors="replace").startswith(conf + "/") for a in args):
            pids.append(int(entry.name))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids:
        while _running(pid):
            time.sleep(0.05)


def _running(pid: int) -> bool:
    """Whether `pid` is a process that has not exited (a zombie has no command line)."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def _stop_test_broker() -> None:
    """Idempotent: stop the test broker and delete its data."""
    kill_brokers(TEST_KAFKA_RUN_DIR)
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
    from tests.harness import live_stack
    from tests.processor.scenario import CONFIG

    with live_stack(kafka_bootstrap, tmp_path, CONFIG) as s:
        yield s


# =====================================================================================================
# The logs of the harness's processes (tests/harness) in a failed test's report: of every process
# started since the test's setup began, and of those still running (a module's stack).
# =====================================================================================================

_STARTED_BEFORE = pytest.StashKey[int]()


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """For pytest-xdist's `--dist loadgroup` (`make test`): a file's tests run on one process, so its
    module fixtures (an API, a stack) start once; the three-node cluster's tests all on one, so one
    cluster runs at a time."""
    for item in items:
        path = Path(str(item.path))
        group = "cluster" if path.parent.name == "cluster" else str(path.relative_to(REPO_ROOT))
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    from tests.harness.procs import STARTED

    item.stash[_STARTED_BEFORE] = len(STARTED)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.failed:
        return
    from tests.harness.procs import STARTED

    before = item.stash.get(_STARTED_BEFORE, len(STARTED))
    for proc in [p for p in STARTED[:before] if p.alive] + STARTED[before:]:
        status = "running" if proc.alive else f"exit {proc.returncode}"
        report.sections.append((f"{proc.name} ({status}), end of {proc.log}", proc.tail(6000)))

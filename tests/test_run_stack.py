"""The walking skeleton end to end: `streamproc run` (processor + console senders) with the example
config; an incident produced to Kafka shows as one line per delivered page; SIGINT stops everything."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from streamproc.kafka.admin import ensure_topics
from streamproc.kafka.topics import Topics

REPO = Path(__file__).resolve().parents[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.kafka
@pytest.mark.slow
def test_run_delivers_the_example_incident_to_the_console_and_stops_cleanly(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    namespace = f"run{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka_bootstrap, 12, names=Topics(namespace))
    env = {**os.environ, "STREAMPROC_NAMESPACE": namespace, "STREAMPROC_RUN_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamproc.cli",
            "run",
            "--config",
            "examples/config.yaml",
            "--bootstrap",
            kafka_bootstrap,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: list[tuple[float, str]] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.time(), line.rstrip()))

    threading.Thread(target=pump, daemon=True).start()

    def wait_for(pattern: str, timeout: float) -> tuple[float, str]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for when, line in list(lines):
                if re.search(pattern, line):
                    return when, line
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r}; got:\n" + "\n".join(text for _, text in lines))

    try:
        wait_for(r"streamproc run: ready", 90)  # the worker's, the senders' and the API's /ready
        run_log = (tmp_path / "logs" / "run.log").read_text()
        pids = [int(m) for m in re.findall(r"started \w+ \(pid (\d+)\)", run_log)]
        assert len(pids) == 3
        incident = json.loads((REPO / "examples" / "incident.json").read_text())
        incident["incident_id"] = f"example-{uuid.uuid4().hex[:6]}"
        event_file = tmp_path / "incident.json"
        event_file.write_text(json.dumps(incident))
        produced = time.time()
        subprocess.run(
            [sys.executable, "-m", "streamproc.cli", "produce", str(event_file), "--bootstrap", kafka_bootstrap],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
        )
        # One line per page on the terminal: time, mode, person, incident, subject.
        when, line = wait_for(rf"^\d\d:\d\d:\d\d  page +\w+ +\w+ +{incident['incident_id']}#1  ", 30)
        print(f"\nfirst page shown {when - produced:.2f}s after `streamproc produce` returned: {line}")
        assert "disk full" in line
        # The console vendor's own line is in the sender's log, not on the terminal.
        assert re.search(
            rf"streamproc-sender: \w+ to \w+ .*{incident['incident_id']}",
            (tmp_path / "logs" / "sender.log").read_text(),
        )
        assert not [text for _, text in lines if text.startswith(("{", "%"))], "no JSON or librdkafka lines"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(40)
    wait_for(r"streamproc run: stopped", 5)
    assert not [pid for pid in pids if alive(pid)]  # the supervisor waited for each of them

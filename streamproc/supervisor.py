"""`streamproc run`: the whole stack for one config in the foreground (what `make run` starts).

Starts a processor worker and a sender for every mode (console delivery when a vendor has
no credentials), and the HTTP API, as child processes; Ctrl-C or SIGTERM
stops all of them and waits for them to exit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType

from streamproc.localnet import free_port


def _spawn(args: list[str], name: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "streamproc.cli", *args], start_new_session=True)
    print(f"streamproc run: started {name} (pid {proc.pid}): streamproc {' '.join(args)}", flush=True)
    return proc


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as resp:
            return bool(json.loads(resp.read()).get("ready"))
    except Exception:
        return False


def run_stack(config: str, bootstrap: str, api_host: str = "127.0.0.1", api_port: int = 8080) -> int:
    if not Path(config).exists():
        print(f"streamproc run: {config}: no such file", file=sys.stderr)
        return 2
    run_dir = Path(os.environ.get("STREAMPROC_RUN_DIR", ".run"))
    port = free_port()
    sender_metrics = free_port()
    children: list[tuple[str, subprocess.Popen[bytes]]] = [
        ("worker", _spawn(["worker", "--config", config, "--bootstrap", bootstrap, "--web-port", str(port),
                           "--data-dir", str(run_dir / "worker-0")], "processor")),
        ("sender", _spawn(["sender", "--config", config, "--bootstrap", bootstrap, "--metrics-port",
                           str(sender_metrics)], "senders")),
    ]
    children.append(("api", _spawn(["api", "--config", config, "--bootstrap", bootstrap,
                                    "--host", api_host, "--port", str(api_port)], "HTTP API")))
    print(f"streamproc run: metrics: processor http://127.0.0.1:{port}/metrics, "
          f"senders http://127.0.0.1:{sender_metrics}/metrics, API http://{api_host}:{api_port}/metrics", flush=True)
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    announced = False
    try:
        while not stopping:
            if not announced and _ready(port):
                announced = True
                print(f"streamproc run: processor ready (http://127.0.0.1:{port}/ready). Fire the example "
                      "incident with: .venv/bin/streamproc produce examples/incident.json, or through the API:\n"
                      f"  curl -H 'Authorization: Bearer s3cret' -H 'Content-Type: application/json' "
                      f"-d @examples/incident.json http://{api_host}:{api_port}/v1/events", flush=True)
            for name, proc in children:
                if proc.poll() is not None:
                    print(f"streamproc run: {name} exited with {proc.returncode}; stopping", file=sys.stderr)
                    code = proc.returncode or 1
                    stopping = True
            time.sleep(0.2)
    finally:
        for _, proc in children:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _, proc in children:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        print("streamproc run: stopped", flush=True)
    return code

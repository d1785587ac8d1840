"""Headless Chromium from Debian's packages (tools/debian/fetch.sh chromium), for the report test
and the README screenshot (`python -m tests.whatif.chromium REPORT.html OUT.png`)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--hide-scrollbars"]


def binary() -> Path:
    proc = subprocess.run(["bash", str(REPO / "tools" / "debian" / "fetch.sh"), "chromium"], capture_output=True,
                          text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"tools/debian/fetch.sh chromium failed:\n{proc.stderr[-2000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


@dataclass
class Page:
    dom: str
    console: list[str]
    """Console messages of the page (any level), as Chromium logs them."""


def run(html: Path, screenshot: Path | None = None, size: str = "1280,2600") -> Page:
    exe = binary()
    root = exe.parents[3]  # .../root/usr/lib/chromium/chromium
    libs = root / "usr" / "lib" / "x86_64-linux-gnu"
    env = {**os.environ, "LD_LIBRARY_PATH": f"{libs}:{libs / 'pulseaudio'}"}
    with tempfile.TemporaryDirectory(prefix="streamproc-chromium-") as profile:
        args = [str(exe), *FLAGS, f"--user-data-dir={profile}", f"--window-size={size}"]
        dumped = subprocess.run([*args, "--dump-dom", html.resolve().as_uri()], capture_output=True, text=True,
                                env=env, timeout=120)
        if screenshot is not None:
            shot = subprocess.run([*args, f"--screenshot={screenshot}", html.resolve().as_uri()],
                                  capture_output=True, text=True, env=env, timeout=120)
            assert shot.returncode == 0, shot.stderr[-3000:]
    assert dumped.returncode == 0, dumped.stderr[-3000:]
    console = [line for line in dumped.stderr.splitlines() if ":CONSOLE" in line]
    return Page(dumped.stdout, console)


if __name__ == "__main__":
    page = run(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(page.console) or "no console messages", file=sys.stderr)

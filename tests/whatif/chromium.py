"""Headless Chromium from Debian's packages (tools/debian/fetch.sh chromium), for the report test
and the screenshot in docs/whatif.md (`python -m tests.whatif.chromium REPORT.html OUT.png`); `Browser`
drives a live page over the DevTools protocol (the status page test, issue 22)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
    "--hide-scrollbars",
]


def binary() -> Path:
    proc = subprocess.run(
        ["bash", str(REPO / "tools" / "debian" / "fetch.sh"), "chromium"], capture_output=True, text=True, cwd=REPO
    )
    if proc.returncode != 0:
        raise RuntimeError(f"tools/debian/fetch.sh chromium failed:\n{proc.stderr[-2000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


@dataclass
class Page:
    dom: str
    console: list[str]
    """Console messages of the page (any level), as Chromium logs them."""


def environment(exe: Path) -> dict[str, str]:
    root = exe.parents[3]  # .../root/usr/lib/chromium/chromium
    libs = root / "usr" / "lib" / "x86_64-linux-gnu"
    return {**os.environ, "LD_LIBRARY_PATH": f"{libs}:{libs / 'pulseaudio'}"}


def run(html: Path, screenshot: Path | None = None, size: str = "1280,2600") -> Page:
    exe = binary()
    env = environment(exe)
    with tempfile.TemporaryDirectory(prefix="streamproc-chromium-") as profile:
        args = [str(exe), *FLAGS, f"--user-data-dir={profile}", f"--window-size={size}"]
        dumped = subprocess.run(
            [*args, "--dump-dom", html.resolve().as_uri()], capture_output=True, text=True, env=env, timeout=120
        )
        if screenshot is not None:
            shot = subprocess.run(
                [*args, f"--screenshot={screenshot}", html.resolve().as_uri()],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            assert shot.returncode == 0, shot.stderr[-3000:]
    assert dumped.returncode == 0, dumped.stderr[-3000:]
    console = [line for line in dumped.stderr.splitlines() if ":CONSOLE" in line]
    return Page(dumped.stdout, console)


class Browser:
    """One headless Chromium with one tab, driven over the DevTools protocol (a websocket, with
    aiohttp's client): navigate, evaluate JavaScript, wait for a condition, take a screenshot.
    Console messages and uncaught exceptions of the page are kept in `console`."""

    def __init__(self, size: str = "1280,900") -> None:
        import asyncio

        self.exe = binary()
        self.profile = tempfile.TemporaryDirectory(prefix="streamproc-chromium-")
        flags = [f for f in FLAGS if not f.startswith("--virtual-time-budget")]
        self.proc = subprocess.Popen(
            [
                str(self.exe),
                *flags,
                f"--user-data-dir={self.profile.name}",
                f"--window-size={size}",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                "about:blank",
            ],
            env=environment(self.exe),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.loop = asyncio.new_event_loop()
        self.console: list[str] = []
        self._id = 0
        try:
            self.loop.run_until_complete(self._connect())
        except BaseException:
            self.close()
            raise

    async def _connect(self) -> None:
        import asyncio
        import json
        import time

        import aiohttp

        port_file = Path(self.profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (exit {self.proc.poll()})")
            await asyncio.sleep(0.05)
        port = port_file.read_text().splitlines()[0]
        self.session = aiohttp.ClientSession()
        async with self.session.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = json.loads(await resp.text())
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = await self.session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=64 << 20)
        await self._call("Runtime.enable")
        await self._call("Page.enable")

    async def _call(self, method: str, **params: object) -> dict[str, object]:
        import json

        self._id += 1
        mine = self._id
        await self.ws.send_str(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            message = json.loads((await self.ws.receive(timeout=60)).data)
            if message.get("id") == mine:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            event = message.get("method")
            if event == "Runtime.consoleAPICalled":
                args = message["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
            elif event == "Runtime.exceptionThrown":
                self.console.append(str(message["params"]["exceptionDetails"]))

    def call(self, method: str, **params: object) -> dict[str, object]:
        return self.loop.run_until_complete(self._call(method, **params))

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'", 30)

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")  # type: ignore[attr-defined]

    def wait_for(self, expression: str, timeout: float) -> object:
        """Until `expression` is truthy in the page (asked every 0.1 s); TimeoutError with the DOM."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"not in {timeout} s: {expression}\n{self.evaluate('document.body.outerHTML')}")
            self.loop.run_until_complete(self._pause(0.1))

    async def _pause(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds)

    def screenshot(self, path: Path) -> None:
        import base64

        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(str(data)))

    def close(self) -> None:
        async def shut() -> None:
            if getattr(self, "ws", None) is not None:
                await self.ws.close()
            if getattr(self, "session", None) is not None:
                await self.session.close()

        try:
            self.loop.run_until_complete(shut())
        finally:
            self.loop.close()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.profile.cleanup()


if __name__ == "__main__":
    page = run(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(page.console) or "no console messages", file=sys.stderr)

"""Open a page in headless Chromium through the DevTools protocol: console errors, uncaught
exceptions and failed loads, the size every SVG renders at, and a full-page screenshot.

One browser per call, a new empty profile, every background service off; bounded in time
and killed at the end. In CI (CI=true) a missing chromium fails the test instead of
skipping it, so a broken report cannot hide behind a skip.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]
# Kept after the run (the folder is git-ignored), listed at the end of pytest's output.
ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts"
TIMEOUT = 60.0

_SVG_BOXES = """JSON.stringify(Array.from(document.querySelectorAll('svg')).map(svg => {
  const box = svg.getBoundingClientRect();
  const parts = Array.from(svg.querySelectorAll('path, rect, circle, line'))
    .filter(e => { const b = e.getBBox(); return b.width > 0 || b.height > 0; }).length;
  return {label: svg.getAttribute('aria-label'), width: box.width, height: box.height, parts};
}))"""
_PAGE = """JSON.stringify({width: document.documentElement.scrollWidth,
  height: document.documentElement.scrollHeight,
  charts: Array.from(document.querySelectorAll('[data-chart]')).map(e => e.dataset.chart)})"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run the browser tests")
        pytest.skip(message)
    return found


@dataclass
class PageCheck:
    errors: list[str]  # console errors, uncaught exceptions, failed loads
    svgs: list[dict[str, Any]]  # per <svg>: label, width, height, drawn parts
    width: int
    height: int
    charts: list[str]
    screenshot: Path


class _DevTools:
    def __init__(self, url: str) -> None:
        import websocket

        self.socket = websocket.create_connection(url, timeout=TIMEOUT)
        self.counter = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.counter += 1
        message: dict[str, Any] = {"id": self.counter, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.counter:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result") or {})
            self.events.append(reply)
        raise TimeoutError(method)

    def wait_for(self, method: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(method)
            self.events.append(json.loads(self.socket.recv()))

    def close(self) -> None:
        self.socket.close()


def _errors(events: list[dict[str, Any]]) -> list[str]:
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params") or {}
        if method == "Runtime.exceptionThrown":
            found.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            found.append(f"log: {params['entry'].get('text')}")
        elif method == "Network.loadingFailed":
            found.append(f"failed load: {params.get('errorText')}")
    return found


def check_page(page: Path, profile: Path, name: str, width: int = 1280) -> PageCheck:
    """Load `page` at `width` CSS pixels and report what a reader would see."""
    binary = chromium()
    process = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        deadline, url = time.monotonic() + TIMEOUT, None
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                raise RuntimeError(f"chromium exited with {process.returncode}")
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            url = match.group(1) if match else None
        if url is None:
            raise TimeoutError("chromium did not open its DevTools endpoint")
        tools = _DevTools(url)
        try:
            return _inspect(tools, page, name, width)
        finally:
            tools.close()
    finally:
        process.kill()
        process.wait(timeout=30)


def _inspect(tools: _DevTools, page: Path, name: str, width: int) -> PageCheck:
    target = tools.send("Target.createTarget", url="about:blank")["targetId"]
    session = tools.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Runtime", "Log", "Page", "Network"):
        tools.send(f"{domain}.enable", session)
    tools.send(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=width,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    tools.events.clear()
    tools.send("Page.navigate", session, url=page.resolve().as_uri())
    tools.wait_for("Page.loadEventFired")

    def evaluate(expression: str) -> Any:
        result = tools.send("Runtime.evaluate", session, expression=expression, returnByValue=True)
        return json.loads(result["result"]["value"])

    svgs, facts = evaluate(_SVG_BOXES), evaluate(_PAGE)
    shot = tools.send("Page.captureScreenshot", session, format="png", captureBeyondViewport=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / f"{name}.png"
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    return PageCheck(
        errors=_errors(tools.events),
        svgs=svgs,
        width=int(facts["width"]),
        height=int(facts["height"]),
        charts=list(facts["charts"]),
        screenshot=screenshot,
    )

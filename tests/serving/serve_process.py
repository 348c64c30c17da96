"""`mlcompile serve` as a real process on 127.0.0.1, and folders it cannot write.

Root (as here and in CI) writes through any permission bits, so chmod alone proves nothing.
As root the server runs as `nobody` (setpriv), in a folder tree `nobody` owns, and a folder
is made unwritable by handing it back to root; as any other user, chmod does it. Unlike
`tests.conftest.run_read_only`, which runs one command, a folder here turns read-only and
writable again while the server runs, so a read-only bind mount cannot do it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MLCOMPILE, NOBODY

AS_ROOT = os.geteuid() == 0
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


class Sandbox:
    """A folder tree the server's user may read and write, except where told otherwise."""

    def __init__(self, registry: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mlcompile-serve-"))
        self.servers: list[subprocess.Popen[str]] = []
        self.root.chmod(0o755)  # pytest's own tmp folders are private to their owner
        self.registry = self.root / "registry"
        shutil.copytree(registry, self.registry)
        if AS_ROOT:
            for folder, _, files in os.walk(self.root):
                for path in [folder, *(os.path.join(folder, f) for f in files)]:
                    os.chown(path, NOBODY, NOBODY)

    def prefix(self) -> list[str]:
        return AS_NOBODY if AS_ROOT else []

    def forbid_writes(self, folder: Path) -> None:
        if AS_ROOT:
            os.chown(folder, 0, 0)
            folder.chmod(0o755)
        else:
            folder.chmod(0o555)

    def allow_writes(self, folder: Path) -> None:
        if AS_ROOT:
            os.chown(folder, NOBODY, NOBODY)
        folder.chmod(0o755)

    def check(self) -> None:
        """Skip when the server's user cannot run mlcompile (no setpriv, say); fail unless a
        forbidden folder refuses its write: a read-only test must not pass by accident."""
        probe = self.root / "probe"
        probe.mkdir()
        self.forbid_writes(probe)
        code = (
            "import sys, mlcompile\n"
            "try:\n    open(sys.argv[1] + '/x', 'w')\nexcept PermissionError:\n    sys.exit(0)\n"
            "sys.exit('a forbidden folder took a write')"
        )
        try:
            result = subprocess.run(
                [*self.prefix(), sys.executable, "-c", code, str(probe)],
                capture_output=True,
                text=True,
                env=self.env(),
                check=False,
            )
        except FileNotFoundError:  # no setpriv
            pytest.skip("running as root without setpriv: no way to refuse root a write")
        finally:
            self.allow_writes(probe)
            probe.rmdir()
        if "a forbidden folder took a write" not in result.stderr and result.returncode != 0:
            pytest.skip(f"cannot run mlcompile as user {NOBODY}: {result.stderr.strip()}")
        assert result.returncode == 0, result.stderr

    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.root), "PYTHONDONTWRITEBYTECODE": "1"}

    def remove(self) -> None:
        """End every server still running (a failed test leaves them), then the folder."""
        for process in self.servers:
            if process.poll() is None:
                process.kill()
                process.wait()
        for folder, _, _ in os.walk(self.root):
            os.chmod(folder, 0o755)
        shutil.rmtree(self.root)


class Served:
    """One `mlcompile serve` process; its stderr collected line by line."""

    def __init__(self, sandbox: Sandbox, model: str, *options: str) -> None:
        command = [MLCOMPILE, "serve", model, "--registry", str(sandbox.registry), "--port", "0"]
        self.process = subprocess.Popen(
            [*sandbox.prefix(), *command, *options],
            cwd=sandbox.root,
            env=sandbox.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        sandbox.servers.append(self.process)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.base = ""

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output)
            if found:
                return found
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                found = re.search(pattern, self.output)
                if found:
                    return found
                raise AssertionError(f"serve exited {self.process.returncode}:\n{self.output}")
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} within {timeout} s:\n{self.output}")

    def started(self) -> Served:
        port = self.wait_for(r"Uvicorn running on http://127\.0\.0\.1:(\d+)").group(1)
        self.base = f"http://127.0.0.1:{port}"
        return self

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def post(self, rows: list[dict[str, Any]]) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{self.base}/predict",
            data=json.dumps({"rows": rows}).encode(),
            headers={"Content-Type": "application/json"},
        )
        return _answer(request)

    def health(self) -> tuple[int, Any]:
        return _answer(urllib.request.Request(f"{self.base}/health"))

    def health_until(self, done: Callable[[Any], bool], timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, body = self.health()
            if done(body):
                return body
            time.sleep(0.05)
        raise AssertionError(f"health never got there, last {body}:\n{self.output}")

    def peak_memory_kib(self) -> int:
        """The server's peak resident set (VmHWM); under setpriv, of the process it became."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 60) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"serve did not exit within {timeout} s:\n{self.output}") from None
        self._reader.join(timeout=5)
        return code


def _answer(request: urllib.request.Request) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)

"""Killing a child process at a chosen point: the crash tests' one way to do it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def kill_when_marked(code: str, marker: Path, *arguments: str, env: dict[str, str], timeout: float = 180) -> None:
    """Run ``python -c code marker *arguments``; once the child creates ``marker`` (it then blocks), SIGKILL it.
    A child that exits first, or never gets there within ``timeout`` seconds, fails the test."""
    child = subprocess.Popen([sys.executable, "-c", code, str(marker), *arguments], env={**os.environ, **env},
                             stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert child.poll() is None, child.stderr.read() if child.stderr else b""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()

"""Running ``remediator serve`` as a real process in tests: start it, learn its URL, stop it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

DEADLINE = 20.0


def start_serve(cwd: Path, *args: str, env: dict[str, str] | None = None,
                listen: str = "127.0.0.1:0") -> subprocess.Popen[str]:
    """``python -m receiver serve --listen LISTEN ARGS…`` in ``cwd``, output on a pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "receiver", "serve", "--listen", listen, *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


def listening_url(proc: subprocess.Popen[str]) -> tuple[str, list[str]]:
    """The URL from the ``remediator.listening`` log line, and the lines read until it."""
    assert proc.stdout is not None
    seen: list[str] = []
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if '"remediator.listening"' in line:
            url: str = json.loads(line)["url"]
            return url, seen
    proc.kill()
    pytest.fail("serve did not start:\n" + "".join(seen))


def reap(proc: subprocess.Popen[str]) -> None:
    """Kill the process if it still runs, and close its pipe."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()

"""The load generator: Debian's ``wrk`` on loopback with ``bench/rotate.lua``, pinned to a core.

Called by ``bench.run`` for every measured run. wrk is a C program, so one core of it
keeps a Python server busy; ``-t1`` keeps it on that core (and the request ids unique).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().with_name("rotate.lua")
_MARK = "BENCH_JSON "


class LoadError(RuntimeError):
    """wrk is missing or did not report."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one wrk run saw."""

    requests: int
    failed: int  # non-2xx answers, connect/read/write errors and timeouts
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def accepted(self) -> int:
        return self.requests - self.failed


def parse(output: str) -> LoadResult:
    """The ``BENCH_JSON`` line rotate.lua prints when wrk is done."""
    for line in output.splitlines():
        if line.startswith(_MARK):
            d = json.loads(line[len(_MARK):])
            failed = (d["status_errors"] + d["connect_errors"] + d["read_errors"] + d["write_errors"]
                      + d["timeouts"])
            return LoadResult(requests=d["requests"], failed=min(failed, d["requests"]),
                              seconds=d["duration_us"] / 1e6, p50_ms=d["p50_us"] / 1000,
                              p99_ms=d["p99_us"] / 1000, max_ms=d["max_us"] / 1000)
    raise LoadError(f"wrk printed no result:\n{output[-2000:]}")


def ensure_wrk() -> str:
    """The path of wrk; installs Debian's package (as root) when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if Path("/usr/bin/apt-get").exists():
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False,
                       env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    found = shutil.which("wrk")
    if not found:
        raise LoadError("wrk is not installed and could not be installed: apt-get install wrk")
    return found


def run_wrk(url: str, templates_file: Path, *, run: int, connections: int, seconds: float,
            cpu: int | None) -> LoadResult:
    """POST rotated bodies to ``url``/webhook for ``seconds`` over ``connections`` connections."""
    cmd = [ensure_wrk(), "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", str(LUA), f"{url}/webhook", "--", str(templates_file), f"{run % 256:02x}"]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    return parse(done.stdout + done.stderr)

"""The readers stream: `audit list`, `timeline` and `verify` on a log of tens of MB stay within
a few MB of what they need for a tiny one (peak RSS of a subprocess, not timing); progress is
drawn on a terminal's stderr and nowhere else."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from receiver.audit import AuditEvent, AuditLog
from tests.receiver.audit.support import T0, size

# runs the CLI, then says its own peak RSS (KiB) on the last line of stderr
_PEAK = ("import resource, sys\nfrom receiver.cli.main import main\ncode = main(sys.argv[1:])\n"
         "sys.stdout.flush()\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
         "sys.exit(code)\n")
_BIG_MB = 40


async def _generate(path: Path, mb: int) -> None:
    """About ``mb`` MB of records, as a busy service writes them; one alert is 'needle'."""
    now = [T0]

    def clock() -> float:
        now[0] += 0.01
        return now[0]

    log = AuditLog(path, clock=clock, fsync=False)
    n = 0
    while log.pending or n == 0 or size(path) < mb * 1_000_000:
        fp = "needle0000000000" if n == 0 else f"{n:016x}"
        log.record(AuditEvent.ALERT_RECEIVED, fingerprint=fp, alertname="HighLatency", status="firing",
                   receiver="webhook", startsAt="2023-11-14T22:00:00Z",
                   labels={"alertname": "HighLatency", "instance": f"web-{n}", "namespace": "prod",
                           "pod": f"web-{n}-7d9c", "team": "payments"})
        log.record(AuditEvent.RULE_MATCHED, fingerprint=fp, decision=f"dec-{n}", rule="restart-web",
                   priority="P3", response_target_seconds=600)
        log.record(AuditEvent.ACTION_PLANNED, decision=f"dec-{n}", rule="restart-web", action="http.request",
                   dry_run=True, plan={"steps": [f"POST http://api/restart/web-{n}"]})
        n += 1
        if n % 200 == 0:
            await log.sync()
    await log.close()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny log and a big one (tens of MB)."""
    base = tmp_path_factory.mktemp("streaming")
    small, big = base / "small" / "audit.jsonl", base / "big" / "audit.jsonl"
    small.parent.mkdir()
    big.parent.mkdir()
    asyncio.run(_generate(small, 0))
    asyncio.run(_generate(big, _BIG_MB))
    return small, big


def _peak_kib(*argv: str) -> int:
    proc = subprocess.run([sys.executable, "-c", _PEAK, *argv], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stderr.splitlines()[-1])


@pytest.mark.parametrize("argv", [
    pytest.param(["audit", "list"], id="list-everything"),
    pytest.param(["audit", "list", "--json", "--event", "rule.matched", "--rule", "restart-web"],
                 id="list-json"),
    pytest.param(["audit", "timeline", "--alert", "needle"], id="timeline"),
    pytest.param(["audit", "verify"], id="verify"),
])
def test_memory_does_not_follow_the_size_of_the_log(logs: tuple[Path, Path], argv: list[str]) -> None:
    small, big = logs
    assert big.stat().st_size > _BIG_MB * 1_000_000
    extra = _peak_kib(*argv, str(big)) - _peak_kib(*argv, str(small))
    # reading the file whole (as before) costs several times its size; streaming a few MB
    assert extra < 16 * 1024, f"{extra} KiB more for a {_BIG_MB} MB log"


def _stderr_on_a_terminal(*argv: str) -> bytes:
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "receiver", *argv], stdout=subprocess.DEVNULL,
                              stderr=follower, check=False, timeout=300)
        os.close(follower)
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
    assert proc.returncode == 0
    return out


@pytest.mark.parametrize("command", ["verify", "list"])
def test_progress_on_a_terminal_only(logs: tuple[Path, Path], command: str) -> None:
    _, big = logs
    shown = _stderr_on_a_terminal("audit", command, str(big))
    assert b"% (" in shown
    assert b" MB)" in shown
    assert shown.endswith(b"\r\x1b[K")  # the line is cleared at the end
    piped = subprocess.run([sys.executable, "-m", "receiver", "audit", command, str(big)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False, timeout=300)
    assert (piped.returncode, piped.stderr) == (0, b"")

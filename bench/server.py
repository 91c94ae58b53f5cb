"""The processes under test: ``remediator serve`` and the floor, each pinned to one core.

Called by ``bench.run`` and ``bench.storm``. :class:`Process` starts a server as a real
subprocess, learns its URL from its log, times start → ``/ready``, reads its peak RSS
from ``/proc``, scrapes ``/metrics`` and counts audit records as they land on disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import rules

SHIPPED_PACK = Path(rules.__file__).resolve().parent / "packs"
_START_DEADLINE = 120.0
# A dry-run decision ends with its steps' plans, or failed; its id is in those records.
_DECIDED_EVENTS = frozenset({"action.planned", "decision.failed"})


class ServerError(RuntimeError):
    """A server under test did not start or died."""


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """Status and body of a GET (an error status is returned, not raised)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URL we built
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def write_config(workdir: Path, *, rules: Sequence[Path], state: str, prefix: str, dry_run: bool = True,
                 blast_max: int | None = None, queue_size: int = 1_000_000, log_level: str = "info",
                 drain_timeout: str = "5s") -> Path:
    """A service config under ``workdir`` (state file and audit log there too)."""
    guards: dict[str, Any] = {}
    if blast_max is not None:
        guards["blast_radius"] = {"max": blast_max, "per": "10m"}
    config = {"dry_run": dry_run, "state": state, "state_prefix": prefix,
              "audit": str(workdir / "audit.jsonl"), "rules": [str(p) for p in rules],
              "queue": {"size": queue_size}, "drain_timeout": drain_timeout,
              "log": {"level": log_level, "format": "json"}, "guards": guards}
    path = workdir / "remediator.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Process:
    """One server process: ``remediator serve --config`` or the floor."""

    def __init__(self, argv: list[str], *, workdir: Path, cpu: int | None) -> None:
        self.argv = argv
        self.workdir = workdir
        self.cpu = cpu
        self.url = ""
        self.ready_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = workdir / "server.log"
        self._audit_offset = 0
        self._audit_counts: dict[str, int] = {}
        self._audit_tail = b""
        self.decided: set[str] = set()  # decisions with a plan (or a failure) on disk

    @classmethod
    def remediator(cls, config: Path, *, workdir: Path, cpu: int | None) -> Process:
        return cls([sys.executable, "-m", "receiver", "serve", "--config", str(config),
                    "--listen", "127.0.0.1:0"], workdir=workdir, cpu=cpu)

    @classmethod
    def floor(cls, *, workdir: Path, cpu: int | None) -> Process:
        return cls([sys.executable, "-m", "bench.floor"], workdir=workdir, cpu=cpu)

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> None:
        """Start it and wait for ``/ready``; ``ready_seconds`` is the time from start to ready."""
        repo = Path(__file__).resolve().parents[1]
        env = {**os.environ, "PYTHONPATH": str(repo)}
        started = time.perf_counter()
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                          env=env)
        if self.cpu is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self._proc.pid, {self.cpu})
        deadline = started + _START_DEADLINE
        while not self.url:
            self._check_alive()
            if time.perf_counter() > deadline:
                raise ServerError(f"{self.argv} printed no URL:\n{self.log_tail()}")
            for line in self._log.read_text(errors="replace").splitlines():
                if '"remediator.listening"' in line:
                    self.url = str(json.loads(line)["url"])
                    break
                if line.startswith("listening "):
                    self.url = f"http://127.0.0.1:{line.split()[1]}"
                    break
            else:
                time.sleep(0.002)
        while True:
            self._check_alive()
            try:
                status, _ = get(f"{self.url}/ready", timeout=1.0)
            except OSError:
                status = 0
            if status == 200:
                break
            if time.perf_counter() > deadline:
                raise ServerError(f"{self.url}/ready never answered 200:\n{self.log_tail()}")
            time.sleep(0.002)
        self.ready_seconds = time.perf_counter() - started

    def _check_alive(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            raise ServerError(f"{self.argv} exited:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def memory(self) -> tuple[float, float]:
        """(current RSS, peak RSS) in MB, from /proc."""
        fields: dict[str, float] = {}
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0]) / 1024
        except OSError:
            return 0.0, 0.0
        return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)

    def cpu_seconds(self) -> float:
        """The CPU time (user and system, every thread) the process has used so far, from /proc."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metrics(self) -> dict[str, float]:
        """``/metrics`` as {sample with labels: value}."""
        _, body = get(f"{self.url}/metrics")
        out: dict[str, float] = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def audit_counts(self) -> dict[str, int]:
        """Records on disk by event so far (reads only what was appended since the last call);
        also collects the ids of the decisions that ended in :attr:`decided`."""
        path = self.workdir / "audit.jsonl"
        try:
            with path.open("rb") as f:
                f.seek(self._audit_offset)
                data = f.read()
        except FileNotFoundError:
            return dict(self._audit_counts)
        self._audit_offset += len(data)
        data = self._audit_tail + data
        cut = data.rfind(b"\n") + 1
        self._audit_tail = data[cut:]
        for line in data[:cut].splitlines():
            start = line.find(b'"event":"') + 9
            event = line[start:line.find(b'"', start)].decode()
            self._audit_counts[event] = self._audit_counts.get(event, 0) + 1
            if event in _DECIDED_EVENTS:
                start = line.find(b'"decision":"') + 12
                self.decided.add(line[start:line.find(b'"', start)].decode())
        return dict(self._audit_counts)

    def stop(self, *, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` seconds, then kill; the exit code."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        return self._proc.returncode


@dataclass
class AuditSummary:
    """What the storm checks in an audit log."""

    events: dict[str, int] = field(default_factory=dict)
    received: set[str] = field(default_factory=set)  # fingerprints with an alert.received
    refused: set[str] = field(default_factory=set)  # fingerprints an early 503 named (intake.failed)
    blast_paused: bool = False
    paused_blocks: int = 0


def _field(line: bytes, name: bytes) -> bytes | None:
    start = line.find(b'"' + name + b'":"')
    if start < 0:
        return None
    start += len(name) + 4
    return line[start:line.find(b'"', start)]


def read_audit(path: Path) -> AuditSummary:
    """Stream an audit log (it may be hundreds of MB after a storm) and summarise it."""
    out = AuditSummary()
    with path.open("rb") as f:
        for line in f:
            event = (_field(line, b"event") or b"").decode()
            out.events[event] = out.events.get(event, 0) + 1
            if event == "alert.received":
                out.received.add((_field(line, b"fingerprint") or b"").decode())
            elif event == "intake.failed" and b'"fingerprints":' in line:
                out.refused.update(json.loads(line).get("fingerprints") or ())
            elif event == "admin.pause" and _field(line, b"source") == b"blast_radius":
                out.blast_paused = True
            elif event == "guard.blocked" and _field(line, b"reason") == b"paused":
                out.paused_blocks += 1
    return out

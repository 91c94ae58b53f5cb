"""The ``remediator serve`` replicas of one fault case: config, rules, start, SIGKILL, SIGTERM, restart.

Each replica is one process (``python -m receiver serve``) in its own directory (its config,
its audit log, its output in ``serve.log``, appended across restarts so nothing fills a
pipe) on a fixed free port, so a restarted replica is found where Alertmanager found it.
The rule answers every ``HighErrorRate`` firing with one ``http.request`` to the counting
target (``tests.faults.target``) at ``/hit/{{ labels.firing }}``. Processes are stopped by
PID only. Used by ``tests.faults.runner`` and ``tests.faults.inject``.
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
from pathlib import Path
from typing import Any

import yaml

from tests.support.redisnodes import free_port

START_DEADLINE = 40.0
"""A start under load (another suite on both cores) takes seconds; this bounds it."""


def rules(step_timeout: str) -> dict[str, Any]:
    """The one rule: every firing is one POST to the target naming the firing."""
    return {"rules": [{
        "name": "fault-hit", "approval": "auto", "priority": "P3",
        "match": ['alertname = "HighErrorRate"', 'firing =~ ".+"'],
        "actions": [{"action": "http.request", "target": "api", "timeout": step_timeout,
                     "params": {"method": "POST", "path": "/hit/{{ labels.firing }}"}}],
    }]}


def service_config(*, target_url: str, state: str, prefix: str, workers: int, drain_timeout: str,
                   retries: int = 2, retry_backoff: str = "300ms") -> dict[str, Any]:
    """What every replica of a case runs with: live, no blast radius, short breaker cool-off; the
    queue's defaults (a killed replica's work is taken over once its heartbeat is silent)."""
    return {
        "dry_run": False, "state": state, "state_prefix": prefix, "audit": "audit.jsonl",
        "rules": ["rules.yaml"], "targets": {"api": {"kind": "http", "base_url": target_url}},
        "guards": {"retries": retries, "retry_backoff": retry_backoff, "blast_radius": None,
                   "circuit_breaker": {"failures": 3, "cooloff": "3s"}},
        "queue": {"workers": workers},
        "escalation": {"p1_unresolved": None, "p2_recurring": None},
        "drain_timeout": drain_timeout, "log": {"format": "json"},
    }


class Replica:
    """One ``serve`` process, restartable on its port with its directory kept."""

    def __init__(self, root: Path, name: str, config: dict[str, Any], step_timeout: str) -> None:
        self.name = name
        self.cwd = root / name
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        (self.cwd / "config.yaml").write_text(yaml.safe_dump({**config, "listen": f"127.0.0.1:{self.port}"}))
        (self.cwd / "rules.yaml").write_text(yaml.safe_dump(rules(step_timeout), sort_keys=False))
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.cwd / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def audit(self) -> Path:
        return self.cwd / "audit.jsonl"

    def start(self) -> None:
        """Start the process and wait for its ``remediator.listening`` line."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "receiver", "serve", "--config", "config.yaml"],
                cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.starts += 1
        end = time.monotonic() + START_DEADLINE
        while time.monotonic() < end:
            with self.log.open("rb") as f:
                f.seek(offset)
                if b'"remediator.listening"' in f.read():
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not start:\n{self.tail()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL by PID, reaped."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def term(self, deadline: float = 30.0) -> float:
        """SIGTERM by PID and wait for the exit; how long the drain took."""
        assert self.proc is not None
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(deadline)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not exit {deadline:.0f} s after SIGTERM") from None
        return time.monotonic() - began

    def stop(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        if self.running():
            self.kill()

    def backlog(self) -> float | None:
        """``remediator_backlog`` from ``/metrics`` (the store's, shared by every replica)."""
        try:
            with urllib.request.urlopen(self.url + "/metrics", timeout=5) as resp:
                text = resp.read().decode()
        except (urllib.error.URLError, OSError):
            return None
        for line in text.splitlines():
            if line.startswith("remediator_backlog "):
                return float(line.split()[1])
        return None

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no output)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def errors(self) -> list[str]:
        """The ``error`` and ``critical`` log lines of every run (tracebacks are what they show)."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines() if self.log.exists() else []:
            with contextlib.suppress(ValueError):
                if json.loads(line).get("level") in ("error", "critical"):
                    found.append(line)
        return found


class Fleet:
    """The case's replicas (one or two) sharing one state store."""

    def __init__(self, root: Path, count: int, config: dict[str, Any], step_timeout: str) -> None:
        self.replicas = [Replica(root, f"r{i}", config, step_timeout) for i in range(count)]
        self.kills = 0
        self.terms = 0

    def urls(self) -> list[str]:
        return [r.url for r in self.replicas]

    def start(self) -> None:
        for r in self.replicas:
            r.start()

    def ensure_running(self) -> None:
        for r in self.replicas:
            if not r.running():
                r.start()

    def backlog(self) -> float | None:
        for r in self.replicas:
            if r.running():
                value = r.backlog()
                if value is not None:
                    return value
        return None

    def stop(self) -> None:
        for r in self.replicas:
            r.stop()

"""Real ``remediator serve`` replicas for multi-process tests, and the HTTP target that counts what they do.

Used by ``tests/receiver/flow/test_replicas.py`` (two replicas on one Redis, SIGKILL,
restarts), ``tests/receiver/flow/test_once_restart.py`` (SIGKILL mid-step, restart) and
``tests/receiver/store/test_failover.py`` (two replicas through a Sentinel failover). A
``Replica`` is one ``serve`` process in its own directory (config, rules, audit file);
``CountingTarget`` a threaded HTTP server in the test process that records every request
an ``http.request`` action sends, so a test can count executions per path.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import read_audit
from tests.support.serveproc import DEADLINE, listening_url, reap, start_serve


class CountingTarget:
    """A threaded HTTP server: counts requests per path (their bodies in ``bodies``); ``/slow/…``
    waits for ``gate``. ``port``: listen there (0: any free one)."""

    def __init__(self, port: int = 0) -> None:
        self.calls: list[str] = []
        self.bodies: list[bytes] = []
        self.gate = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                outer.bodies.append(self.rfile.read(length))
                outer.calls.append(self.path)
                if self.path.startswith("/svc/slow"):
                    outer.gate.wait(DEADLINE)
                payload = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer  # noqa: N815 - http.server's naming

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/svc"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, prefix: str) -> int:
        return sum(1 for c in self.calls if c.startswith(prefix))

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


class Replica:
    """One ``serve`` process in its own directory (its own audit file)."""

    def __init__(self, root: Path, name: str, config: dict[str, Any]) -> None:
        self.cwd = root / name
        self.cwd.mkdir(exist_ok=True)
        (self.cwd / "config.yaml").write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> Replica:
        self.proc = start_serve(self.cwd, "--config", "config.yaml")
        self.url, _ = listening_url(self.proc)
        return self

    def request(self, method: str, path: str, data: bytes | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def audit(self) -> list[dict[str, Any]]:
        path = self.cwd / "audit.jsonl"
        return read_audit(path) if path.exists() else []

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "receiver", *args, "--url", self.url],
                              capture_output=True, text=True, timeout=DEADLINE, check=False)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(DEADLINE)

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(DEADLINE)
            reap(self.proc)


def config(target: CountingTarget, state: str, *, prefix: str = "remediator", **extra: Any) -> dict[str, Any]:
    return {"dry_run": False, "state": state, "state_prefix": prefix, "audit": "audit.jsonl",
            "rules": ["rules.yaml"], "targets": {"api": {"kind": "http", "base_url": target.url}},
            "guards": {"retries": 0, "blast_radius": None}, "log": {"format": "json"},
            "queue": {"visibility_timeout": "2s"}, **extra}


def until(check: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def events(*rs: Replica, name: str) -> list[dict[str, Any]]:
    return [rec for r in rs for rec in r.audit() if rec["event"] == name]

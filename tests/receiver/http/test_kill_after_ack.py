"""SIGKILL between the 202 and the decision: nothing accepted is lost, nothing runs twice.

A real ``remediator serve`` (SQLite, one worker) acts on a real HTTP target in this test:
each firing's action is one ``POST /hit/<fingerprint>``. The first decision's diagnose step
(``GET /slow``) is held by the target, so the one worker is busy and every other accepted
firing waits in the queue when the process is killed. After a restart every accepted
firing has been acted on exactly once (the held diagnose, read-only, runs again).
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import fixture_body, read_audit
from tests.support.serveproc import listening_url, reap, start_serve

REQUESTS = 5
LIMIT = 60.0  # seconds any one wait may take on a loaded machine


class Target:
    """``GET /slow`` waits for :attr:`release`; ``POST /hit/…`` is counted by path."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.slow = threading.Event()  # a GET /slow arrived
        self.release = threading.Event()
        self._lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target.slow.set()
                target.release.wait(LIMIT)
                self._answer()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with target._lock:
                    target.hits[self.path] += 1
                self._answer()

            def _answer(self) -> None:
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the killed server's connection
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    thread = threading.Thread(target=t.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield t
    finally:
        t.release.set()
        t.server.shutdown()
        t.server.server_close()
        thread.join(LIMIT)


def config(tmp_path: Path, target_url: str) -> Path:
    step = {"action": "http.request", "target": "api"}
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"rules": [{
        "name": "hit-once", "match": ['namespace =~ ".+"'], "priority": "P4", "approval": "auto",
        "diagnose": [{"action": "http.check", "target": "api", "params": {"path": "/slow", "timeout": 60}}],
        "actions": [{**step, "params": {"method": "POST", "path": "/hit/{{ alert.fingerprint }}"}}],
    }]}))
    path = tmp_path / "remediator.yaml"
    path.write_text(yaml.safe_dump({
        "dry_run": False, "state": f"sqlite:///{tmp_path / 'state.db'}",
        "audit": str(tmp_path / "audit.jsonl"), "rules": [str(rules)], "queue": {"workers": 1},
        "guards": {"blast_radius": None},
        "targets": {"api": {"kind": "http", "base_url": target_url, "timeout": 60}},
        "log": {"format": "json"},
    }))
    return path


def post(url: str, body: bytes) -> int:
    req = urllib.request.Request(url + "/webhook", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=LIMIT) as resp:
        return int(resp.status)


def succeeded(audit: Path) -> list[dict[str, Any]]:
    """The ``action.succeeded`` records of the action steps (not of the diagnose steps)."""
    return [r for r in read_audit(audit)
            if r["event"] == "action.succeeded" and r["action"] == "http.request"]


def wait(predicate: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + LIMIT
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_sigkill_after_the_202_loses_nothing_and_runs_nothing_twice(tmp_path: Path, target: Target) -> None:
    cfg = config(tmp_path, target.url)
    body = json.loads(fixture_body("07_firing_group_by_namespace_6_alerts"))
    accepted: set[str] = set()
    proc = start_serve(tmp_path, "--config", str(cfg))
    try:
        url = listening_url(proc)[0]
        for n in range(REQUESTS):
            for alert in body["alerts"]:
                alert["fingerprint"] = f"{n:08x}{alert['fingerprint'][8:]}"
            assert post(url, json.dumps(body).encode()) == 202
            accepted |= {a["fingerprint"] for a in body["alerts"]}
        wait(target.slow.is_set, "the first decision's diagnose step")
        assert not target.hits  # the worker is held: no firing has been acted on
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=LIMIT)
    finally:
        reap(proc)
    assert len(accepted) == REQUESTS * len(body["alerts"])

    target.release.set()
    proc = start_serve(tmp_path, "--config", str(cfg))
    try:
        listening_url(proc)
        wait(lambda: len(target.hits) == len(accepted), "every accepted firing acted on")
        audit = tmp_path / "audit.jsonl"
        wait(lambda: len(succeeded(audit)) == len(accepted), "every action's success on record")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=LIMIT) == 0
    finally:
        reap(proc)
    assert target.hits == Counter({f"/hit/{fp}": 1 for fp in accepted})
    assert len({r["decision"] for r in succeeded(tmp_path / "audit.jsonl")}) == len(accepted)
    records = read_audit(tmp_path / "audit.jsonl")
    assert any(r["event"] == "decision.resumed" for r in records)  # the held one, taken up again

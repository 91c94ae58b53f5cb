"""``serve`` waits for a state store that is not up yet (``receiver.store.waiting``).

A real ``remediator serve`` process on Redis state, with the Redis server started only
after serve: serve listens, ``/ready`` answers 503 naming the store, webhooks get 503 with
``Retry-After`` (Alertmanager sends again), the failure is logged once however often it is
tried; once a real ``redis-server`` comes up on that port serve becomes ready by itself
and accepts the same webhook. SIGTERM while still waiting stops it cleanly.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import HIGH_CPU_BODY, HIGH_CPU_RULES, read_audit
from tests.e2e.stack import free_port
from tests.support.serveproc import listening_url, reap, start_serve

READY_DEADLINE = 40.0


def request(url: str, body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def config(tmp_path: Path, port: int) -> Path:
    (tmp_path / "rules.yaml").write_text(HIGH_CPU_RULES)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"state": f"redis://127.0.0.1:{port}/0",
                                    "state_prefix": f"t-wait-{uuid.uuid4().hex[:8]}",
                                    "audit": str(tmp_path / "audit.jsonl"), "drain_timeout": "10s",
                                    "rules": [str(tmp_path / "rules.yaml")]}))
    return path


def test_serve_waits_for_a_redis_that_comes_up_late(tmp_path: Path) -> None:
    redis_server = shutil.which("redis-server")
    assert redis_server is not None, "redis-server is not installed"
    port = free_port()
    proc = start_serve(tmp_path, "--config", str(config(tmp_path, port)))
    redis: subprocess.Popen[bytes] | None = None
    try:
        url, _ = listening_url(proc)
        rest: list[str] = []  # read on as serve logs, so a full pipe never blocks it
        reader = threading.Thread(target=lambda: rest.extend(proc.stdout or []), daemon=True)
        reader.start()
        status, _, body = request(f"{url}/ready")
        assert status == 503
        (problem,) = body["problems"]
        assert problem.startswith("state store: not reachable yet, retrying: ")
        assert str(port) in problem
        status, headers, body = request(f"{url}/webhook", HIGH_CPU_BODY)
        assert (status, headers["Retry-After"], body["error"]) == (503, "5", "unavailable")
        assert "state store not reachable yet" in body["detail"]
        time.sleep(2.0)  # real time: serve tries again (0.5 s, then 1 s) while Redis is down
        redis = subprocess.Popen([redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_DEADLINE
        while (ready := request(f"{url}/ready"))[0] != 200:
            assert time.monotonic() < deadline, f"not ready {READY_DEADLINE}s after Redis came up: {ready}"
            time.sleep(0.2)
        status, _, body = request(f"{url}/webhook", HIGH_CPU_BODY)
        assert status == 202, body
        assert body == {"received": 2, "matched": 2, "queued": 2}
        # the accepted work is done before SIGTERM (a SIGTERM under load, which used to hang
        # the Redis feeder, is tests/receiver/http/test_drain.py's subject)
        deadline = time.monotonic() + READY_DEADLINE
        while sum(r["event"] == "action.planned" for r in read_audit(tmp_path / "audit.jsonl")) < 2:
            assert time.monotonic() < deadline, "the accepted alerts were not planned"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            reader.join(timeout=10)
            pytest.fail("serve did not stop within 60 s of SIGTERM:\n" + "".join(rest[-30:]))
        assert code == 0
        reader.join(timeout=10)
        logs = [json.loads(line) for line in rest if line.startswith("{")]
    finally:
        reap(proc)
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
    events = [r["event"] for r in logs]
    assert events.count("state.reachable") == 1
    assert "state.unreachable" not in events  # logged once, before listening (tries 2 and 3 were the same)
    records = read_audit(tmp_path / "audit.jsonl")
    assert [r["event"] for r in records][:1] == ["admin.started"]
    assert sum(r["event"] == "alert.received" for r in records) == 2


def test_sigterm_while_waiting_for_the_store_stops_cleanly(tmp_path: Path) -> None:
    proc = start_serve(tmp_path, "--config", str(config(tmp_path, free_port())))
    try:
        _, before = listening_url(proc)
        assert sum('"state.unreachable"' in line for line in before) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        reap(proc)
    audit = tmp_path / "audit.jsonl"
    assert "admin.started" not in [r["event"] for r in read_audit(audit)] if audit.exists() else True

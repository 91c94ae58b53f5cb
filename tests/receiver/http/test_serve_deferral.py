"""Nothing accepted is lost to a transient guard: ``remediator serve`` as a real process (SQLite and
Redis), a real in-test HTTP target counting hits per firing, real time.

An outage: the target answers 500 for 2 s from its first hit and the circuit breaker cools off
for 6 s (the issue's 10 s and 30 s scaled by a fifth, ratio kept) while a steady stream of
distinct firings arrives (25 a second for 4 s); every tenth of those still waiting behind the
breaker when the stream ends then resolves.
Once the breaker closes, every firing that still fires has reached the target exactly once (the
first few failed once and were not repeated; the rest waited, deferred, and ran after the
half-open trial), the ones resolved while they waited never ran, and people heard of the outage
once. A burst: twenty firings for one subject at once all run, in turn, none dropped
``target_locked``. The figures are printed (``-s``) for the issue.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import read_audit, rules_yaml
from tests.support.redisdb import REDIS_URL, drop_prefix
from tests.support.serveproc import listening_url, reap, start_serve
from tests.support.webhooks import alert, body

OUTAGE, COOLOFF, FAILURES = 2.0, 6.0, 3
STREAM_FOR, PER_SECOND = 4.0, 25
DEADLINE = 60.0


class Target:
    """An HTTP target on 127.0.0.1: ``/svc/hit/ID`` counted per ID (500 during the outage),
    ``/svc/burst`` slow enough for the burst to contend for its lock, ``/notify`` the escalations."""

    def __init__(self) -> None:
        self.hits: collections.Counter[str] = collections.Counter()
        self.failed: set[str] = set()
        self.burst = 0
        self.notices: list[dict[str, Any]] = []
        self.outage_until: float | None = None  # set by the first hit: OUTAGE seconds from it
        self._lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                status = 200
                with target._lock:
                    if self.path.startswith("/svc/hit/"):
                        firing = self.path.rsplit("/", 1)[-1]
                        target.hits[firing] += 1
                        if target.outage_until is None:
                            target.outage_until = time.monotonic() + OUTAGE
                        if time.monotonic() < target.outage_until:
                            status = 500
                            target.failed.add(firing)
                    elif self.path == "/svc/burst":
                        target.burst += 1
                    elif self.path == "/notify":
                        target.notices.append(json.loads(data))
                if self.path == "/svc/burst":
                    time.sleep(0.05)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


def post(url: str, payload: bytes) -> tuple[int, Any]:
    req = urllib.request.Request(url + "/webhook", data=payload, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def config(tmp_path: Path, target: Target, state: str, prefix: str) -> Path:
    hit = {"action": "http.request", "target": "api",
           "params": {"method": "POST", "path": "/hit/{{ labels.firing }}"}}
    burst = {"action": "http.request", "target": "api", "params": {"method": "POST", "path": "/burst"}}
    common = {"priority": "P4", "approval": "auto", "cooldown": "0s"}
    (tmp_path / "rules.yaml").write_text(rules_yaml([
        {"name": "outage-probe", "match": ['alertname = "OutageProbe"', 'firing =~ ".+"'], **common,
         "actions": [hit]},
        {"name": "burst-probe", "match": ['alertname = "BurstProbe"'], **common, "actions": [burst]},
    ]))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "state": state, "state_prefix": prefix, "audit": str(tmp_path / "audit.jsonl"),
        "rules": [str(tmp_path / "rules.yaml")], "dry_run": False, "drain_timeout": "5s",
        "targets": {"api": {"kind": "http", "base_url": target.url + "/svc", "timeout": 2}},
        "notifiers": {"ops": {"kind": "webhook", "url": "env:DEFER_TEST_HOOK"}},
        "guards": {"retries": 0, "blast_radius": None,
                   "circuit_breaker": {"failures": FAILURES, "cooloff": f"{COOLOFF:.0f}s"}},
    }))
    return path


def wait_until(predicate: Any, what: str, audit: Path) -> list[dict[str, Any]]:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        records = read_audit(audit) if audit.exists() else []
        if predicate(records):
            return records
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_an_outage_and_a_burst_lose_nothing_accepted(tmp_path: Path, target: Target, store: str) -> None:
    prefix = f"t-defer-{uuid.uuid4().hex[:8]}"
    state = f"sqlite:///{tmp_path / 'state.db'}" if store == "sqlite" else REDIS_URL
    audit = tmp_path / "audit.jsonl"
    proc = start_serve(tmp_path, "--config", str(config(tmp_path, target, state, prefix)),
                       env={"DEFER_TEST_HOOK": target.url + "/notify"})
    try:
        url, _ = listening_url(proc)
        threading.Thread(target=lambda: collections.deque(proc.stdout or [], maxlen=0), daemon=True).start()
        firings, fingerprints = stream(url)
        resolved = resolve_some_waiting(url, firings, fingerprints, audit)
        records = wait_until(lambda rs: ended(rs) >= len(firings), f"{len(firings)} decisions ended", audit)
        still_firing = [f for f in firings if f not in resolved]
        assert {f: target.hits[f] for f in still_firing} == dict.fromkeys(still_firing, 1)
        assert {f: target.hits[f] for f in resolved} == dict.fromkeys(resolved, 0)
        escalations = [r for r in records if r["event"] == "escalation.sent"]
        assert [r["reason"] for r in escalations] == ["circuit_open"]
        assert [n["title"] for n in target.notices] == ["Escalation: circuit open for target api"]
        reasons = collections.Counter((r["event"], r["reason"]) for r in records
                                      if r["event"] in ("guard.blocked", "guard.deferred"))
        assert reasons[("guard.blocked", "alert_resolved")] == len(resolved)
        assert {reason for (event, reason) in reasons if event == "guard.blocked"} == {"alert_resolved"}
        opened = [r["streak_start"] for r in records if r["event"] == "circuit.opened"]
        assert opened[0] is True
        assert not any(opened[1:])
        print(f"\n[{store}] outage {OUTAGE:.0f}s, cool-off {COOLOFF:.0f}s: {len(firings)} firings accepted, "
              f"{len(resolved)} resolved while waiting; hits per still-firing firing: "
              f"{sorted(collections.Counter(target.hits[f] for f in still_firing).items())} "
              f"({len(target.failed)} failed during the outage, the rest after it); circuit openings "
              f"{len(opened)}, escalations {len(escalations)}, deferrals "
              f"{sum(n for (e, _), n in reasons.items() if e == 'guard.deferred')} {dict(reasons)}")

        started = time.monotonic()
        burst = [alert(alertname="BurstProbe", namespace="burst", starts=f"2026-11-23T07:{n:02d}:00Z")
                 for n in range(20)]
        assert post(url, body(*burst)) == (202, {"received": 20, "matched": 20, "queued": 20})
        records = wait_until(lambda rs: burst_ended(rs) >= 20, "20 burst decisions ended", audit)
        ends = burst_endings(records)
        assert len(ends) == 20
        assert set(ends.values()) == {"action.succeeded"}
        assert target.burst == 20
        assert not [r for r in records if r["event"] == "guard.blocked" and r["reason"] == "target_locked"]
        waits = sum(r["event"] == "guard.deferred" and r["rule"] == "burst-probe" for r in records)
        print(f"[{store}] burst: 20 firings for one subject, {target.burst} hits, 20 action.succeeded, "
              f"0 target_locked dropped, {waits} deferrals, {time.monotonic() - started:.1f}s")
    finally:
        reap(proc)
        if store == "redis":
            asyncio.run(drop_prefix(prefix))


def firing_alert(firing: str) -> dict[str, Any]:
    return alert(alertname="OutageProbe", namespace="prod", firing=firing, starts="2026-11-23T06:00:00Z")


def stream(url: str) -> tuple[list[str], dict[str, str]]:
    """Distinct firings, PER_SECOND for STREAM_FOR seconds (the outage starts with the first hit);
    the firings and their fingerprints."""
    firings: list[str] = []
    fingerprints: dict[str, str] = {}
    start = time.monotonic()
    while (now := time.monotonic()) < start + STREAM_FOR:
        if len(firings) < (now - start) * PER_SECOND:
            firing = f"f{len(firings):04d}"
            a = firing_alert(firing)
            assert post(url, body(a)) == (202, {"received": 1, "matched": 1, "queued": 1})
            firings.append(firing)
            fingerprints[a["fingerprint"]] = firing
        time.sleep(0.005)
    return firings, fingerprints


def resolve_some_waiting(url: str, firings: list[str], fingerprints: dict[str, str], audit: Path) -> set[str]:
    """Every tenth firing that waits behind the open breaker now (deferred, not ended) resolves."""
    records = read_audit(audit)
    ended_ = {r["fingerprint"] for r in records if r["event"] in _ENDS and "fingerprint" in r}
    waiting = {fingerprints[r["fingerprint"]] for r in records
               if r["event"] == "guard.deferred" and r["fingerprint"] not in ended_}
    resolved = {f for n, f in enumerate(firings) if n % 10 == 5 and f in waiting}
    assert resolved, "no firing was waiting behind the breaker when the stream ended"
    for firing in sorted(resolved):
        gone = {**firing_alert(firing), "status": "resolved", "endsAt": "2026-11-23T06:30:00Z"}
        assert post(url, body(gone))[0] == 202
    return resolved


_ENDS = ("action.succeeded", "decision.failed", "guard.blocked")


def ended(records: list[dict[str, Any]]) -> int:
    return len({r["decision"] for r in records if r["event"] in _ENDS and r.get("rule") == "outage-probe"})


def burst_endings(records: list[dict[str, Any]]) -> dict[str, str]:
    return {r["decision"]: r["event"] for r in records
            if r["event"] in _ENDS and r.get("rule") == "burst-probe"}


def burst_ended(records: list[dict[str, Any]]) -> int:
    return len(burst_endings(records))

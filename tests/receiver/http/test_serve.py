"""``remediator serve`` as a real process: the README's first steps, signals, shutdown.

These start the service the way a user does (``python -m receiver serve``) in a temp
directory, so the defaults (SQLite state file, JSONL audit, shipped pack, dry-run,
loopback) are what is tested. Waits are bounded polls on a real process, not sleeps.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fixture_body, read_audit
from tests.support.serveproc import DEADLINE, listening_url, reap, start_serve


class Served:
    """A running ``remediator serve`` and the URL it listens on."""

    def __init__(self, proc: subprocess.Popen[str], url: str, cwd: Path) -> None:
        self.proc = proc
        self.url = url
        self.cwd = cwd

    def post(self, path: str, body: bytes, *, content_type: str = "application/json") -> tuple[int, Any]:
        req = urllib.request.Request(self.url + path, data=body, method="POST",
                                     headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def wait_for(self, predicate: Any, what: str) -> list[dict[str, Any]]:
        audit = self.cwd / "remediator-audit.jsonl"
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            records = read_audit(audit) if audit.exists() else []
            if predicate(records):
                return records
            time.sleep(0.05)
        pytest.fail(f"timed out waiting for {what}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=DEADLINE)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    proc = start_serve(tmp_path)
    try:
        yield Served(proc, listening_url(proc)[0], tmp_path)
    finally:
        reap(proc)


def planned(n: int) -> Any:
    return lambda records: sum(r["event"] == "action.planned" for r in records) >= n


def test_defaults_plan_fixture_01_and_the_audit_verifies(served: Served) -> None:
    """Defaults: the shipped pack matches fixture 01, dry-run plans land in a verifiable audit."""
    status, body = served.post("/webhook", fixture_body("01_firing_group_HighCPU_2_alerts"))
    assert (status, body) == (202, {"received": 2, "matched": 2, "queued": 2})
    records = served.wait_for(planned(2), "two dry-run plans")
    matched = [r for r in records if r["event"] == "rule.matched"]
    assert {(m["rule"], m["priority"], m["dry_run"]) for m in matched} == {("high-cpu-scale-up", "P2", True)}
    plans = [r for r in records if r["event"] == "action.planned"]
    assert all(p["plan"]["steps"] and p["dry_run"] for p in plans)
    assert not [r for r in records if r["event"] == "action.started"]
    assert (served.cwd / "remediator-state.db").exists()
    assert served.stop() == 0
    audit = served.cwd / "remediator-audit.jsonl"
    assert read_audit(audit)[-1]["event"] == "admin.stopped"
    ok = subprocess.run([sys.executable, "-m", "receiver", "audit", "verify", str(audit)],
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "chain intact" in ok.stdout
    data = bytearray(audit.read_bytes())
    offset = data.index(b'"P2"') + 2
    data[offset] = ord("1")  # P2 -> P1 in one record: a one-byte edit
    audit.write_bytes(bytes(data))
    bad = subprocess.run([sys.executable, "-m", "receiver", "audit", "verify", str(audit)],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert "broken" in bad.stdout


def test_sigterm_stops_intake_and_restart_continues_the_chain(served: Served) -> None:
    """After SIGTERM the process exits 0; a restart appends to the same verifiable chain."""
    served.post("/webhook", fixture_body("04_firing_single_HighErrorRate"))
    served.wait_for(planned(1), "a plan")
    assert served.stop() == 0
    proc = start_serve(served.cwd)
    try:
        again = Served(proc, listening_url(proc)[0], served.cwd)
        status, body = again.post("/webhook", fixture_body("04_firing_single_HighErrorRate"))
        assert (status, body["queued"]) == (202, 0)  # the dedup record survived the restart
        assert again.stop() == 0
    finally:
        reap(proc)
    events = [r["event"] for r in read_audit(served.cwd / "remediator-audit.jsonl")]
    assert events.count("admin.started") == 2
    verify = subprocess.run([sys.executable, "-m", "receiver", "audit", "verify",
                             str(served.cwd / "remediator-audit.jsonl")], capture_output=True, check=False)
    assert verify.returncode == 0


def test_sighup_reloads_rules(tmp_path: Path) -> None:
    """SIGHUP reloads the rule files; the reload is audited."""
    rules = tmp_path / "rules.yaml"
    rules.write_text('rules:\n  - name: a\n    match: [alertname = "X"]\n'
                     "    actions: [{action: notify.log, params: {text: hi}}]\n")
    proc = start_serve(tmp_path, "--rules", str(rules))
    try:
        srv = Served(proc, listening_url(proc)[0], tmp_path)
        rules.write_text(rules.read_text().replace("name: a", "name: b"))
        proc.send_signal(signal.SIGHUP)
        records = srv.wait_for(lambda rs: any(r["event"] == "admin.reload" for r in rs), "the reload")
        reload = next(r for r in records if r["event"] == "admin.reload")
        assert (reload["ok"], reload["actor"], reload["rules"]) == (True, "SIGHUP", 1)
        assert srv.stop() == 0
        assert proc.stdout is not None
        logged = [json.loads(line) for line in proc.stdout.read().splitlines() if line.startswith("{")]
        # the heap settled once up, and again after the reload (receiver.heap: the old rules collected)
        frozen = [e for e in logged if e["event"] == "remediator.heap_frozen"]
        assert [e["after"] for e in frozen] == ["start", "reload"]
        assert all(e["objects"] > 10_000 for e in frozen)
    finally:
        reap(proc)


def test_broken_rules_refuse_to_start_with_file_and_line(tmp_path: Path) -> None:
    """serve with a broken rule file exits 2 and names the file, line and rule."""
    rules = tmp_path / "bad.yaml"
    rules.write_text("rules:\n  - name: bad\n    match: ['alertname == \"X\"']\n"
                     "    actions: [{action: notify.nope}]\n")
    result = subprocess.run(
        [sys.executable, "-m", "receiver", "serve", "--listen", "127.0.0.1:0", "--rules", str(rules)],
        cwd=tmp_path, capture_output=True, text=True, timeout=DEADLINE, check=False,
    )
    assert result.returncode == 2
    assert f"{rules}:3: rule 'bad'" in result.stderr
    assert "notify.nope" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_sigkill_under_load_leaves_a_verifiable_chain(tmp_path: Path) -> None:
    """Killed with SIGKILL mid-stream, the audit still verifies and a restart continues the chain."""
    proc = start_serve(tmp_path)
    try:
        srv = Served(proc, listening_url(proc)[0], tmp_path)
        body = json.loads(fixture_body("07_firing_group_by_namespace_6_alerts"))
        accepted = 0
        for n in range(40):
            for alert in body["alerts"]:
                alert["fingerprint"] = f"{n:08x}{alert['fingerprint'][8:]}"
            status, _ = srv.post("/webhook", json.dumps(body).encode())
            accepted += status == 202
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=DEADLINE)
    finally:
        reap(proc)
    assert accepted == 40
    audit = tmp_path / "remediator-audit.jsonl"
    complete = audit.read_text().split("\n")[:-1]  # a torn last line (no newline) is left out
    received = [line for line in complete if '"event":"alert.received"' in line]
    assert len(received) == 40 * 6  # every acknowledged request was on disk before its 202
    proc = start_serve(tmp_path)
    try:
        again = Served(proc, listening_url(proc)[0], tmp_path)
        assert again.stop() == 0
    finally:
        reap(proc)
    verify = subprocess.run([sys.executable, "-m", "receiver", "audit", "verify", str(audit)],
                            capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stdout

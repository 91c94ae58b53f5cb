"""``remediator audit list|timeline`` on audit logs the real pipeline wrote, through the CLI."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from receiver.audit import AuditEvent, AuditLog, audit_sets
from receiver.cli.main import main
from receiver.runtime import open_audit
from receiver.settings import load_settings
from tests.conftest import JSON_HEADERS, ClientFactory, rules_yaml, runtime_of
from tests.support.approvals import TOKENS, approval_settings, decide, fire, pending, settle
from tests.support.fakeclock import FakeClock
from tests.support.httptarget import ServerFactory, Target, serve_target
from tests.support.webhooks import alert, body

STARTS = "2026-11-23T06:42:28.909Z"
FIRED = datetime.fromisoformat(STARTS.replace("Z", "+00:00")).timestamp()


async def fire_plain(client: TestClient[Any, Any], *alerts: dict[str, Any]) -> None:
    """Post with no credentials (no auth configured) and wait until the work is done."""
    resp = await client.post("/webhook", data=body(*alerts), headers=JSON_HEADERS)
    assert resp.status == 202, await resp.text()
    await settle(client)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def incident(make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory,
                   monkeypatch: pytest.MonkeyPatch, clock: FakeClock, *,
                   approve_after: float) -> tuple[Any, Target, str]:
    """Alert fires; an approval is requested; alice approves after ``approve_after`` seconds;
    the purge runs; the alert resolves 10 minutes later. Returns settings, target, fingerprint."""
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    target, base = await serve_target(aiohttp_server)
    settings = approval_settings(make_settings, base, priorities={"response_targets": {"P3": "10m"}})
    client: TestClient[Any, Any] = await make_client(settings)
    clock.t = FIRED + 30
    firing = alert(starts=STARTS)
    await fire(client, firing)
    clock.advance(approve_after)
    (approval,) = await pending(client)
    status, _ = await decide(client, approval["id"], "approve", comment="purge is safe")
    assert status == 200
    clock.advance(600)
    ends = datetime.fromtimestamp(clock.now()).astimezone().isoformat()
    await fire(client, alert(starts=STARTS, status="resolved", ends=ends))
    await client.close()
    assert len(target.calls) == 1
    return settings, target, str(firing["fingerprint"])


@pytest.mark.parametrize(("approve_after", "verdict"), [
    pytest.param(300, "**met** (oncall-alice decided the approval 5m30s after it fired)", id="met"),
    pytest.param(900, "**missed** (oncall-alice decided the approval 15m30s after it fired)", id="missed"),
])
async def test_timeline_of_a_real_incident(
        make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory,
        monkeypatch: pytest.MonkeyPatch, clock: FakeClock, capsys: pytest.CaptureFixture[str],
        approve_after: float, verdict: str) -> None:
    settings, _, fingerprint = await incident(make_client, make_settings, aiohttp_server, monkeypatch, clock,
                                              approve_after=approve_after)
    capsys.readouterr()
    argv = ["audit", "timeline", "--alert", fingerprint[:8], str(settings.audit)]
    code = await asyncio.to_thread(main, argv)
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:6] == [f"## Incident timeline: HighErrorRate `{fingerprint}`", "",
                         "All times UTC, 2026-11-23.", "", "| Time | Event |", "|---|---|"]
    rows = [line for line in lines if line.startswith("| ") and line != "| Time | Event |"]
    events = [row.split(" | ", 1)[1] for row in rows]
    assert events[0].startswith("Alert `HighErrorRate` fired (alertname=HighErrorRate, container=api")
    assert rows[0].startswith("| 06:42:28 |")
    assert events[1:] == [
        "Notification received from Alertmanager (remediation-webhook) |",
        "Rule `purge-cache` matched: priority P3, respond within 10m |",
        f"Approval `{_approval_id(settings.audit)}` requested for `purge-cache`: "
        f"POST {_base(settings)}/purge/prod; expect status any 2xx |",
        "Approval `" + _approval_id(settings.audit) + "` approved by oncall-alice (purge is safe) |",
        "Action `http.request` on target `api` started |",
        f"Action `http.request` on target `api` succeeded: POST {_base(settings)}/purge/prod answered 200 |",
        "Alert resolved |",
    ]
    took = 30 + approve_after + 600
    assert f"- **Duration:** {_fmt(took)} (fired 06:42:28, resolved" in out
    assert f"- **Response target:** P3, respond within 10m: {verdict}" in out


def _approval_id(audit: Path) -> str:
    recs = [json.loads(line) for line in audit.read_text().splitlines()]
    return str(next(r["approval"] for r in recs if r["event"] == "approval.requested"))


def _base(settings: Any) -> str:
    return str(settings.targets["api"].base_url)


def _fmt(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s}s" if s else f"{m}m"


async def test_list_filters_and_merges_replicas_newest_last(
        tmp_path: Path, make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory,
        monkeypatch: pytest.MonkeyPatch, clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    settings, _, fingerprint = await incident(make_client, make_settings, aiohttp_server, monkeypatch, clock,
                                              approve_after=120)
    # a second replica's log, written by the real writer, with one record in the middle
    other = tmp_path / "replica-b.jsonl"
    log = AuditLog(other, clock=lambda: FIRED + 60)
    log.record(AuditEvent.ADMIN_PAUSE, actor="bob", detail="looking")
    await log.close()
    capsys.readouterr()

    def cli(*argv: str) -> tuple[int, str, str]:
        code = main(["audit", "list", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = await asyncio.to_thread(cli, "--json", str(settings.audit), str(other))
    records = json.loads(out)["records"]
    assert code == 0
    assert [r["ts"] for r in records] == sorted(r["ts"] for r in records)
    # started, then the firing's records at +30s, then bob's pause at +60s on the other replica
    assert [r["event"] for r in records].index("admin.pause") == 6
    assert {r["file"] for r in records} == {str(settings.audit), str(other)}

    code, out, _ = await asyncio.to_thread(cli, "--event", "approval.*", "--json", str(settings.audit))
    assert [r["event"] for r in json.loads(out)["records"]] == ["approval.requested", "approval.approved"]

    code, out, _ = await asyncio.to_thread(cli, "--outcome", "awaiting_approval", "--rule", "purge-cache",
                                           "--alert", fingerprint[:6], "--json", str(settings.audit))
    assert [r["event"] for r in json.loads(out)["records"]] == ["guard.blocked"]

    since = datetime.fromtimestamp(FIRED + 100).astimezone().isoformat()
    code, out, _ = await asyncio.to_thread(cli, "--since", since, "--until", "0s", str(settings.audit),
                                           str(other))
    lines = out.splitlines()
    assert lines[0].split() == ["FILE:LINE", "TIME", "EVENT", "RULE", "ALERT", "OUTCOME", "DETAIL"]
    events = [line.split()[2] for line in lines[1:-1]]
    assert events == ["approval.approved", "action.started", "action.succeeded", "alert.received",
                      "alert.resolved", "admin.stopped"]
    assert lines[1].split()[0] == f"{settings.audit.name}:{records[7]['line']}"
    assert lines[-1] == f"6 of {len(records)} records"

    def timeline(*argv: str) -> tuple[int, str]:
        code = main(["audit", "timeline", *argv])
        return code, capsys.readouterr().out

    code, out = await asyncio.to_thread(timeline, "--since", since, "--json", str(settings.audit))
    (one,) = json.loads(out)["timelines"]
    assert (code, one["fingerprint"], one["priority"], one["response_target_seconds"]) == (
        0, fingerprint, "P3", 600.0)
    assert one["response"] == ("P3, respond within 10m: met "
                               "(oncall-alice decided the approval 2m30s after it fired)")
    assert [e["event"] for e in one["events"]][-1] == "Alert resolved"
    assert lines[-1].endswith(" records")


@pytest.mark.parametrize(("argv", "message"), [
    pytest.param(["list", "--since", "yesterday"], "'yesterday' is neither a duration", id="bad-since"),
    pytest.param(["list", "--event", "rule.matchd"], "--event 'rule.matchd': no such audit event",
                 id="unknown-event"),
    pytest.param(["list", "nope.jsonl"], "nope.jsonl: cannot read", id="missing-file"),
    pytest.param(["timeline", "--alert", "ffff"], "no record of alert ffff", id="unknown-alert"),
    pytest.param(["timeline"], "say which incident", id="no-alert"),
])
def test_bad_usage_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    log = AuditLog(tmp_path / "remediator-audit.jsonl", clock=lambda: FIRED)
    log.record(AuditEvent.ADMIN_STARTED, rules=1)
    asyncio.run(log.close())
    code, _, err = run(capsys, "audit", *argv)
    assert code == 2
    assert err.startswith(f"remediator: {message}"), err


def test_a_line_that_is_not_a_record_is_named_and_skipped(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, clock=lambda: FIRED)
    log.record(AuditEvent.ADMIN_STARTED, rules=1)
    asyncio.run(log.close())
    with path.open("a") as fh:
        fh.write("garbage\n")
    code, out, err = run(capsys, "audit", "list", str(path))
    assert code == 1
    assert err == f"remediator: {path}:2: not an audit record; skipped\n"
    assert out.splitlines()[-1] == "1 of 1 records"


LADDER = rules_yaml([{
    "name": "purge-then-restart", "approval": "auto",
    "match": ['alertname = "HighErrorRate"', 'namespace =~ ".+"'],
    "ladder": [
        {"actions": [{"action": "http.request", "target": "api",
                      "params": {"method": "POST", "path": "/purge/{{ labels.namespace }}"}}],
         "verify": {"resolved_within": "5m"}},
        {"actions": [{"action": "http.request", "target": "api",
                      "params": {"method": "POST", "path": "/restart/{{ labels.namespace }}"}}],
         "verify": {"resolved_within": "5m"}},
    ],
}])


async def test_timeline_of_a_ladder_that_climbed(
        make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory, clock: FakeClock,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Rung 1 does not resolve it in time, rung 2 does: the timeline tells the climb."""
    target, base = await serve_target(aiohttp_server)
    settings = make_settings(rules=LADDER, dry_run=False,
                             targets={"api": {"kind": "http", "base_url": base, "timeout": 2}},
                             guards={"retries": 0, "blast_radius": None})
    client = await make_client(settings)
    runtime = runtime_of(client)
    clock.t = FIRED + 30
    await fire_plain(client, alert(starts=STARTS))
    clock.advance(360)
    await runtime.timers.fire_due()
    await settle(client)
    clock.advance(60)
    ends = datetime.fromtimestamp(clock.now()).astimezone().isoformat()
    await fire_plain(client, alert(starts=STARTS, status="resolved", ends=ends))
    await client.close()
    assert [c[1] for c in target.calls] == ["/svc/purge/prod", "/svc/restart/prod"]
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["audit", "timeline", "--since", "2026-11-23T00:00:00Z",
                                          str(settings.audit)])
    out = capsys.readouterr().out
    events = [line.split(" | ")[1].removesuffix(" |") for line in out.splitlines()
              if line.startswith("| 0")]
    assert code == 0
    assert events[2:] == [
        "Rule `purge-then-restart` matched: priority P3, respond within 4h",
        "Action `http.request` on target `api` started",
        f"Action `http.request` on target `api` succeeded: POST {base}/purge/prod answered 200",
        "Watching for the resolution: within 5m, else the next rung",
        "Not resolved within 5m: climbing to the next rung",
        "Rung 2 of `purge-then-restart` started",
        "Action `http.request` on target `api` started",
        f"Action `http.request` on target `api` succeeded: POST {base}/restart/prod answered 200",
        "Watching for the resolution (rung 2): within 5m, else escalate",
        "Verified (rung 2): resolved 1m after the remediation",
        "Resolved late: 7m after the remediation",
        "Alert resolved",
    ]
    assert "**met** (http.request succeeded 30s after it fired)" in out


@pytest.mark.parametrize(("argv", "events"), [
    pytest.param(["--since", "1h"], ["admin.resume"], id="since-duration"),
    pytest.param(["--until", "1h"], ["admin.started", "admin.pause"], id="until-duration"),
    pytest.param(["--since", "3h", "--until", "90m"], ["admin.pause"], id="window"),
    pytest.param(["--event", "admin.*", "--outcome", "nope"], [], id="nothing-left"),
])
def test_since_and_until_take_durations_back_from_now(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      argv: list[str], events: list[str]) -> None:
    now = datetime.now().timestamp()
    path = tmp_path / "audit.jsonl"
    stamps = iter([now - 4 * 3600, now - 2 * 3600, now - 600])
    log = AuditLog(path, clock=lambda: next(stamps))
    log.record(AuditEvent.ADMIN_STARTED, rules=1)
    log.record(AuditEvent.ADMIN_PAUSE, actor="bob", detail="x")
    log.record(AuditEvent.ADMIN_RESUME, actor="bob")
    asyncio.run(log.close())
    code, out, _ = run(capsys, "audit", "list", "--json", str(path), *argv)
    assert code == 0
    assert [r["event"] for r in json.loads(out)["records"]] == events


# --- verify with a key, rotated sets ---------------------------------------------------------


def _keyed_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **audit: Any) -> Path:
    monkeypatch.setenv("AUDIT_KEY", "k" * 32)
    monkeypatch.setenv("OLD_AUDIT_KEY", "o" * 32)
    config = tmp_path / "remediator.yaml"
    config.write_text(json.dumps({"audit": {"path": str(tmp_path / "audit.jsonl"), "key": "env:AUDIT_KEY",
                                            **audit}}))
    return config


async def _write(config: Path, groups: int) -> Path:
    """Records through the runtime's own construction of the log from ``audit:``."""

    log = open_audit(load_settings(config).audit_log, clock=FakeClock(FIRED))
    for g in range(groups):
        log.record(AuditEvent.RULE_MATCHED, rule="purge", fingerprint=f"{g:016x}", decision=f"d{g}",
                   priority="P3")
        log.record(AuditEvent.ACTION_SUCCEEDED, rule="purge", decision=f"d{g}", action="http.request")
        await log.sync()
    await log.close()
    return log.path


async def test_verify_with_the_config_key_and_what_it_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = _keyed_config(tmp_path, monkeypatch)
    path = await _write(config, 3)
    code, out, _ = run(capsys, "audit", "verify", "--config", str(config))
    assert code == 0
    assert out.startswith(f"{path}: ok, 9 records, chain intact, every record sealed (3 seals, key ")
    assert out.rstrip().endswith("anchor reached")
    code, out, _ = run(capsys, "audit", "verify", str(path))
    assert (code, "unkeyed: this proves order and catches damage, not an attacker" in out) == (0, True)
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-3]))  # the last group cut
    code, out, _ = run(capsys, "audit", "verify", "--config", str(config))
    assert code == 1
    assert out.splitlines() == [
        f"{tmp_path / 'audit.jsonl.anchor'}: truncated: the anchor sealed seq 9 (2026-11-23T06:42:28.909Z); "
        "the log ends at seq 6: broken",
        f"{path}: FAILED (1 problem(s); 6 records verified before the first)"]
    code, _, err = run(capsys, "audit", "verify", "--key", "k" * 32, str(path))
    assert code == 2
    assert err.startswith("remediator: --key: a secret must be a reference")


async def test_verify_accepts_old_keys_from_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    old = _keyed_config(tmp_path, monkeypatch)
    old.write_text(old.read_text().replace("env:AUDIT_KEY", "env:OLD_AUDIT_KEY"))
    await _write(old, 1)
    config = _keyed_config(tmp_path, monkeypatch, verify_keys=["env:OLD_AUDIT_KEY"])
    await _write(config, 1)
    assert run(capsys, "audit", "verify", "--config", str(config))[0] == 0
    code, out, _ = run(capsys, "audit", "verify", "--key", "env:AUDIT_KEY", str(tmp_path / "audit.jsonl"))
    assert code == 1
    assert ":3: broken: sealed with key " in out


async def test_list_and_timeline_read_a_rotated_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = _keyed_config(tmp_path, monkeypatch, rotate={"size": 4096})
    path = await _write(config, 12)
    assert len(audit_sets([path])[0].rotated) >= 2
    code, out, _ = run(capsys, "audit", "list", "--json", "--config", str(config))
    assert code == 0
    listed = json.loads(out)["records"]
    assert [r["decision"] for r in listed if r["event"] == "rule.matched"] == [f"d{g}" for g in range(12)]
    assert not [r for r in listed if r["event"].startswith("audit.")]  # seals only when asked for
    code, out, _ = run(capsys, "audit", "list", "--json", "--event", "audit.*", str(path))
    assert {r["event"] for r in json.loads(out)["records"]} == {"audit.sealed", "audit.rotated"}
    code, out, _ = run(capsys, "audit", "timeline", "--alert", f"{11:016x}", str(tmp_path))
    assert code == 0
    assert "Rule `purge` matched" in out
    assert run(capsys, "audit", "verify", str(tmp_path), "--config", str(config))[0] == 0

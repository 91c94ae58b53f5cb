"""``remediator simulate``: the real pipeline, nothing run, no state written, every guard asked."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from receiver.cli.main import main
from receiver.settings import Settings
from receiver.store.connect import sqlite_path
from tests.conftest import HIGH_CPU_BODY, JSON_HEADERS, ClientFactory, read_audit, rules_yaml, runtime_of
from tests.support.fakeclock import FakeClock
from tests.support.webhooks import alert, body

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"

RULE = rules_yaml([{"name": "high-cpu", "match": ['alertname = "HighCPU"'], "cooldown": "30m",
                    "actions": [{"action": "notify.log", "params": {"text": "scale up"}}]}])
ERRORS = rules_yaml([{"name": "errors", "match": ['alertname = "HighErrorRate"', 'namespace =~ ".+"'],
                      "cooldown": "30m", "limit": {"max": 5, "per": "1h"},
                      "actions": [{"action": "notify.log", "params": {"text": "{{ labels.namespace }}"}}]}])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def config_file(tmp_path: Path, rules: str, **extra: Any) -> Path:
    (tmp_path / "rules.yaml").write_text(rules)
    path = tmp_path / "remediator.yaml"
    path.write_text(json.dumps({"rules": [str(tmp_path / "rules.yaml")], "dry_run": False,
                                "audit": str(tmp_path / "never.jsonl"),
                                "state": f"sqlite:///{tmp_path / 'never.db'}", **extra}))
    return path


def guards_of(decision: dict[str, Any]) -> dict[str, str]:
    return {g["guard"]: g["verdict"] for g in decision["guards"]}


def test_a_captured_webhook_shows_rule_priority_guards_and_plan(
        tmp_path: Path, fixtures_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path, RULE)
    payload = fixtures_dir / "01_firing_group_HighCPU_2_alerts.body.json"
    code, out, err = run(capsys, "simulate", str(payload), "--config", str(config), "--json")
    assert (code, err) == (0, "")
    alerts = json.loads(out)["alerts"]
    assert [a["alertname"] for a in alerts] == ["HighCPU", "HighCPU"]
    decision = alerts[0]["decisions"][0]
    assert (decision["rule"], decision["priority"]) == ("high-cpu", "P1")
    assert decision["response_target_seconds"] == 900.0
    assert decision["outcome"] == "executed"
    assert guards_of(decision) == {"for": "ok", "dedup": "ok", "maintenance": "ok", "kill_switch": "ok",
                                   "cooldown": "ok", "rate_limit": "ok", "blast_radius": "ok",
                                   "approval": "not_needed"}
    assert decision["plan"] == [{"action": "notify.log", "target": None,
                                 "params": {"text": "scale up", "level": "info"},
                                 "subject": decision["plan"][0]["subject"],
                                 "steps": ['notify.log with params {"level": "info", "text": "scale up"}'],
                                 "read_from_target": False}]
    # the second alert has its own subject-less notify.log: same subject, so the cooldown holds it
    assert alerts[1]["decisions"][0]["outcome"] == "cooldown"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["remediator.yaml", "rules.yaml"]

    code, text, _ = run(capsys, "simulate", str(payload), "--config", str(config))
    lines = text.splitlines()
    assert lines[0].startswith(f"{payload}  ")
    assert lines[0].endswith("  HighCPU  07f1241324941787  firing")
    assert lines[1] == "  rule high-cpu  P1 (respond within 15m)  ->  executed"
    assert lines[2].split() == ["GUARD", "VERDICT", "DETAIL"]
    assert "    plan 1. notify.log {\"level\": \"info\", \"text\": \"scale up\"}" in lines


def test_json_lines_replay_in_time_order_and_guards_remember(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each line at its timestamp, on one sandboxed state: the second firing meets the cooldown."""
    config = config_file(tmp_path, ERRORS)
    lines = [{**json.loads(body(alert(starts=f"2026-11-23T06:0{n}:00Z"))),
              "timestamp": f"2026-11-23T06:0{n}:30Z"} for n in (0, 5)]
    lines.append({**json.loads(body(alert(starts="2026-11-23T06:00:00Z", status="resolved",
                                          ends="2026-11-23T06:40:00Z"))),
                  "timestamp": "2026-11-23T06:40:00Z"})
    payload = tmp_path / "replay.jsonl"
    payload.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, out, _ = run(capsys, "simulate", str(payload), "--config", str(config), "--json")
    assert code == 0
    alerts = json.loads(out)["alerts"]
    assert [(a["source"], a["at"], a["status"]) for a in alerts] == [
        (f"{payload}:1", "2026-11-23T06:00:30Z", "firing"),
        (f"{payload}:2", "2026-11-23T06:05:30Z", "firing"),
        (f"{payload}:3", "2026-11-23T06:40:00Z", "resolved")]
    first, second = alerts[0]["decisions"][0], alerts[1]["decisions"][0]
    assert (first["outcome"], second["outcome"]) == ("executed", "cooldown")
    assert guards_of(second)["cooldown"] == "blocked"
    assert guards_of(second)["rate_limit"] == "ok"
    assert alerts[2]["decisions"] == []


@pytest.mark.parametrize(("content", "message"), [
    pytest.param("{not json", "replay.jsonl:1: $: body is not valid JSON", id="not-json"),
    pytest.param('{"version": "4", "alerts": []}\n',
                 "replay.jsonl: $.alerts: List should have at least 1 item", id="no-alerts"),
    pytest.param(json.dumps(json.loads(body(alert()))) + "\n"
                 + json.dumps({**json.loads(body(alert())),
                               "alerts": [{**alert(), "startsAt": "yesterday"}]}),
                 "replay.jsonl:2: $.alerts[0].startsAt: not an RFC 3339 timestamp", id="bad-path-line-2"),
    pytest.param(json.dumps({**json.loads(body(alert())), "timestamp": "2026-11-23T07:00:00Z"}) + "\n"
                 + json.dumps({**json.loads(body(alert())), "timestamp": "2026-11-23T06:00:00Z"}),
                 "replay.jsonl:2: $.timestamp goes back in time", id="time-goes-back"),
    pytest.param(json.dumps({**json.loads(body(alert())), "timestamp": "noon"}),
                 "replay.jsonl: $.timestamp: not an RFC 3339 time", id="bad-timestamp"),
])
def test_bad_payloads_exit_2_naming_line_and_json_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        content: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    config = config_file(tmp_path, ERRORS)
    Path("replay.jsonl").write_text(content)
    code, out, err = run(capsys, "simulate", "replay.jsonl", "--config", str(config))
    assert (code, out) == (2, "")
    assert err.startswith(f"remediator: {message}"), err
    assert "Traceback" not in err


async def test_state_is_read_through_a_copy_and_guards_say_what_they_would_now(
        tmp_path: Path, make_settings: Callable[..., Settings], make_client: ClientFactory,
        clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    """A live service spent the cooldown and was paused; simulate against a copy of its state
    says so, and neither its state file nor its audit log changes."""
    settings = make_settings(rules=RULE, dry_run=False)
    client = await make_client(settings)
    resp = await client.post("/webhook", data=HIGH_CPU_BODY, headers=JSON_HEADERS)
    assert resp.status == 202
    runtime = runtime_of(client)
    await asyncio.wait_for(runtime.queue.wait_idle(), 10)
    await runtime.killswitch.pause(actor="alice", detail="change freeze")
    await runtime.audit.sync()
    assert [r["event"] for r in read_audit(settings.audit)].count("action.succeeded") == 1

    config = tmp_path / "sim.yaml"
    config.write_text(json.dumps({"rules": [str(p) for p in settings.rules or []], "dry_run": False}))
    payload = tmp_path / "later.json"
    payload.write_text(json.dumps({**json.loads(HIGH_CPU_BODY), "timestamp": iso(clock.now() + 60)}))
    state, audit = sqlite_path(settings.state), settings.audit
    before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (state, audit)]
    capsys.readouterr()  # the service's own log lines
    code = await asyncio.to_thread(main, ["simulate", str(payload), "--config", str(config),
                                          "--state", str(state), "--json"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    first = json.loads(out)["alerts"][0]["decisions"][0]
    assert first["outcome"] == "duplicate"
    assert guards_of(first) == {"for": "ok", "dedup": "blocked", "maintenance": "ok",
                                "kill_switch": "blocked",
                                "cooldown": "blocked", "rate_limit": "ok", "blast_radius": "ok",
                                "approval": "not_needed"}
    assert [g["detail"] for g in first["guards"] if g["guard"] == "kill_switch"] == [
        "paused by alice: change freeze"]
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in (state, audit)] == before


def test_a_state_file_that_is_not_sqlite_is_refused(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path, ERRORS)
    (tmp_path / "state.db").write_text("not a database")
    payload = tmp_path / "one.json"
    payload.write_bytes(body(alert()))
    code, _, err = run(capsys, "simulate", str(payload), "--config", str(config), "--state",
                       str(tmp_path / "state.db"))
    assert code == 2
    assert err.startswith(f"remediator: --state {tmp_path / 'state.db'}: not a readable SQLite state file")


@pytest.fixture
def idle_session() -> Iterator[tuple[str, int]]:
    """A real idle session of a throw-away non-superuser role on the test database."""
    tag = uuid.uuid4().hex[:10]
    role, app = f"rmd_sim_{tag}", f"rmd-sim-{tag}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        try:
            with psycopg.connect(f"host=127.0.0.1 port=5432 user={role} dbname=test", autocommit=True,
                                 application_name=app) as conn:
                yield app, conn.info.backend_pid
                assert conn.execute("SELECT 1").fetchone() == (1,)  # still alive: nothing was run
        finally:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role])
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_plan_reads_the_real_target_and_ends_nothing(
        tmp_path: Path, idle_session: tuple[str, int], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """--plan asks postgres.terminate_idle's own plan(): the idle session is named, and stays."""
    app, pid = idle_session
    monkeypatch.setenv("SIM_PG_DSN", ADMIN_DSN)
    rules = rules_yaml([{"name": "idle", "match": ['alertname = "PgIdle"'], "approval": "auto",
                         "actions": [{"action": "postgres.terminate_idle", "target": "main",
                                      "params": {"idle_for": "1s", "database": "test",
                                                 "application_name": app}}]}])
    config = config_file(tmp_path, rules, targets={"main": {"kind": "postgres", "dsn": "env:SIM_PG_DSN",
                                                            "databases": ["test"]}})
    payload = tmp_path / "pg.json"
    payload.write_bytes(body(alert(alertname="PgIdle")))
    time.sleep(1.3)  # the session must be idle past the threshold by PostgreSQL's own clock
    code, out, err = run(capsys, "simulate", str(payload), "--config", str(config), "--plan", "--json")
    assert (code, err) == (0, "")
    (decision,) = json.loads(out)["alerts"][0]["decisions"]
    (step,) = decision["plan"]
    assert (decision["outcome"], step["read_from_target"]) == ("executed", True)
    assert any(str(pid) in line for line in step["steps"]), step["steps"]
    code, text, _ = run(capsys, "simulate", str(payload), "--config", str(config), "--plan")
    assert "    plan 1. postgres.terminate_idle on main, as read from the target now:" in text.splitlines()


def test_plan_of_a_target_the_config_lacks_is_not_said_to_be_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A dry run (--plan) against a target the config lacks: nothing was read, and the report
    does not claim it was."""
    rules = rules_yaml([{"name": "idle", "match": ['alertname = "PgIdle"'], "approval": "auto",
                         "actions": [{"action": "postgres.terminate_idle", "target": "main",
                                      "params": {"idle_for": "10m"}}]}])
    payload = tmp_path / "pg.json"
    payload.write_bytes(body(alert(alertname="PgIdle")))
    config = str(config_file(tmp_path, rules, dry_run=True))
    code, out, err = run(capsys, "simulate", str(payload), "--config", config, "--plan", "--json")
    assert (code, err) == (0, "")
    (decision,) = json.loads(out)["alerts"][0]["decisions"]
    (step,) = decision["plan"]
    assert step["read_from_target"] is False
    assert "does not define" in step["steps"][0]
    _, text, _ = run(capsys, "simulate", str(payload), "--config", config, "--plan")
    assert "as read from the target now" not in text

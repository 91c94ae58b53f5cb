"""End to end with the real clients: Prometheus 2.42 evaluates alerting rules named and
labelled as deploy/prometheus/alerts.yml names them, Alertmanager 0.25 routes them with
deploy/'s config (1-2 s timings) to two real ``remediator serve`` processes, and the audit
logs say what happened.

- **dry-run**, the shipped pack as installed, no targets: the matched rules, priorities
  and plans; Alertmanager's repeat of the same firing is a duplicate, planned once; when
  the series behind the alerts drops, the resolved notification closes each alert.
- **live**, the pack's PostgreSQL-connections and availability rules against real
  systems: too many connections terminates exactly the idle sessions this test opened
  (not the busy one, not one in another database); a container-down alert restarts the
  stopped container (not its stopped neighbour); repeats never act twice.

The alerts' series are synthetic: a gauge per scenario that this test serves and
Prometheus scrapes every second, so that setting it to 0 resolves that scenario's alerts
(and, live, completes each decision's ``verify`` watch). Every process is stopped by its
PID; databases, roles and containers have unique names and are dropped.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import psycopg
import pytest
import yaml
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.conftest import read_audit
from tests.e2e.stack import Proc, alertmanager_config, prometheus_config, start_alertmanager, start_prometheus
from tests.support.dockerd import IMAGE, Engine, remove_prefixed
from tests.support.paths import REPO
from tests.support.serveproc import listening_url, reap, start_serve

PACKS = REPO / "rules" / "packs"
PG_ADMIN = make_conninfo(host="127.0.0.1", port=5432, user="postgres", dbname="test")
DRY = 'max(e2e_firing{scenario="dryrun"}) > 0'
LIVE = 'max(e2e_firing{scenario="live"}) > 0'
WAIT = 30.0  # seconds for any one expected audit state; the whole module takes ~20 s

DRY_ALERTS = {  # alertname -> labels (beyond scenario), as deploy/prometheus/alerts.yml labels them
    "HighCPU": {"namespace": "prod", "deployment": "web", "container": "web", "severity": "critical"},
    "HighErrorRateAfterRollout": {"namespace": "prod", "deployment": "api", "service": "api",
                                  "severity": "critical"},
    "RedisMemoryHigh": {"service": "redis", "instance": "redis-1:9121", "severity": "warning"},
    "DiskAlmostFull": {"instance": "node-1:9100", "mountpoint": "/var", "severity": "warning"},
}
DRY_EXPECTED = {  # alertname -> (rule, priority, planned actions in order)
    "HighCPU": ("high-cpu-scale-up", "P2", ["kubernetes.diagnose", "kubernetes.scale"]),
    "HighErrorRateAfterRollout": ("high-error-rate-after-rollout-undo", "P1",
                                  ["kubernetes.diagnose", "kubernetes.rollout_undo"]),
    "RedisMemoryHigh": ("redis-memory-high-flush", "P3", ["redis.diagnose", "redis.flushdb"]),
    "DiskAlmostFull": ("disk-almost-full-notify", "P2", ["notify.log", "notify.slack"]),
}


# --- the pieces ------------------------------------------------------------------------------

class Gate:
    """A /metrics endpoint serving ``e2e_firing{scenario=…}``; Prometheus scrapes it."""

    def __init__(self) -> None:
        self.values = {"dryrun": 1, "live": 1}
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the stdlib's name
                body = "# TYPE e2e_firing gauge\n" + "".join(
                    f'e2e_firing{{scenario="{k}"}} {v}\n' for k, v in gate.values.items())
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Serve:
    """A ``remediator serve`` process whose output is drained (its pipe never fills)."""

    cwd: Path
    proc: Any
    url: str
    output: list[str] = field(default_factory=list)

    def drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def audit(self) -> list[dict[str, Any]]:
        path = self.cwd / "audit.jsonl"
        return read_audit(path) if path.exists() else []

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], what: str) -> list[dict[str, Any]]:
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            records = self.audit()
            if predicate(records):
                return records
            time.sleep(0.1)
        events = [(r["event"], r.get("rule"), r.get("reason")) for r in self.audit()]
        pytest.fail(f"timed out waiting for {what}; audit: {events}\nlog tail:\n{''.join(self.output[-15:])}")


def start_remediator(cwd: Path, config: dict[str, Any], env: dict[str, str]) -> Serve:
    cwd.mkdir()
    (cwd / "remediator.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = start_serve(cwd, "--config", str(cwd / "remediator.yaml"), env=env)
    url, seen = listening_url(proc)
    serve = Serve(cwd, proc, url, list(seen))
    threading.Thread(target=serve.drain, daemon=True).start()
    return serve


def live_pack(dest: Path) -> Path:
    """The pack's PostgreSQL-connections and availability files as shipped, but for the
    one edit a test needs: sessions count as idle after 1 s, not 10 minutes (no test waits
    10 minutes). ``verify`` stays: each live decision is watched for its resolution."""
    dest.mkdir()
    for name, edits in {"postgres-connections.yaml": [("idle_for: 10m", "idle_for: 1s")],
                        "availability.yaml": []}.items():
        text = (PACKS / name).read_text()
        for old, new in edits:
            assert old in text, (name, old)
            text = text.replace(old, new)
        (dest / name).write_text(text)
    return dest


def rule_file(path: Path, *, datname: str, container: str) -> Path:
    """The test's alerting rules: the pack's alert names and labels on synthetic series."""
    rules: list[dict[str, Any]] = [
        {"alert": name, "expr": DRY, "labels": {"scenario": "dryrun", **labels},
         "annotations": {"summary": f"{name} (end-to-end test)"}}
        for name, labels in DRY_ALERTS.items()
    ]
    rules += [
        {"alert": "PostgresTooManyConnections", "expr": LIVE,
         "labels": {"scenario": "live", "datname": datname, "service": "postgres", "severity": "critical"},
         "annotations": {"summary": "too many connections (end-to-end test)"}},
        {"alert": "TargetDown", "expr": LIVE,
         "labels": {"scenario": "live", "job": "compose", "name": container, "severity": "critical"},
         "annotations": {"summary": "container down (end-to-end test)"}},
    ]
    path.write_text(yaml.safe_dump({"groups": [{"name": "e2e", "rules": rules}]}, sort_keys=False))
    return path


@dataclass
class PgWorld:
    """A role and two databases of this test's own, and the sessions it opened."""

    role: str
    db: str
    other_db: str
    victims: list[psycopg.Connection[Any]] = field(default_factory=list)
    spared: dict[str, psycopg.Connection[Any]] = field(default_factory=dict)

    def dsn(self, db: str) -> str:
        return make_conninfo(PG_ADMIN, user=self.role, dbname=db)

    def open(self, db: str, *, app: str, query: str | None = None) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.dsn(db), autocommit=True, application_name=app)
        conn.execute("SELECT 1")
        if query is not None:
            conn.pgconn.send_query(query.encode())  # runs on; the client never waits for it
        return conn


@pytest.fixture(scope="module")
def pg() -> Iterator[PgWorld]:
    tag = uuid.uuid4().hex[:10]
    world = PgWorld(role=f"rmd_e2e_{tag}", db=f"rmd_e2e_{tag}", other_db=f"rmd_e2e_other_{tag}")
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        try:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOREPLICATION").format(
                sql.Identifier(world.role)))
            for db in (world.db, world.other_db):
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
            world.victims = [world.open(world.db, app=f"e2e-idle-{i}") for i in range(3)]
            world.spared = {
                "busy": world.open(world.db, app="e2e-busy", query="SELECT pg_sleep(60)"),
                "other-database": world.open(world.other_db, app="e2e-idle-other"),
            }
            yield world
        finally:
            for conn in [*world.victims, *world.spared.values()]:
                conn.close()
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                          [world.role])
            for db in (world.db, world.other_db):
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(world.role)))


@dataclass
class Containers:
    client: docker.DockerClient
    down: str
    neighbour: str
    started_before: str

    def state(self, name: str) -> dict[str, Any]:
        attrs: dict[str, Any] = self.client.api.inspect_container(name)
        return dict(attrs["State"])


@pytest.fixture(scope="module")
def containers(engine: Engine) -> Iterator[Containers]:
    client = engine.client()
    prefix = f"rde2e{uuid.uuid4().hex[:8]}-"
    try:
        for name in ("web", "worker"):
            c = client.containers.run(IMAGE, ["sleep", "3600"], name=prefix + name, detach=True,
                                      network_mode="none")
            c.stop(timeout=0)
        down = prefix + "web"
        started = str(client.api.inspect_container(down)["State"]["StartedAt"])
        yield Containers(client, down, prefix + "worker", started)
    finally:
        remove_prefixed(client, prefix)
        client.close()


@dataclass
class Stack:
    dry: Serve
    live: Serve
    gate: Gate
    procs: list[Proc]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pg: PgWorld, containers: Containers,
          engine: Engine) -> Iterator[Stack]:
    """Prometheus -> Alertmanager -> two ``remediator serve`` (dry-run and live)."""
    root = tmp_path_factory.mktemp("e2e")
    token = root / "webhook-token"
    token.write_text(uuid.uuid4().hex)
    auth = {"tokens": [{"name": "alertmanager", "role": "webhook", "token": f"file:{token}"}]}
    common = {"auth": auth, "audit": "audit.jsonl", "log": {"level": "info", "format": "json"}}
    env = {"E2E_PG_DSN": make_conninfo(PG_ADMIN, dbname=pg.db), "E2E_ONCALL_URL": "http://127.0.0.1:9/hook"}
    serves: list[Serve] = []
    procs: list[Proc] = []
    gate = Gate()
    try:
        dry = start_remediator(root / "dry", {**common, "dry_run": True, "state": f"sqlite:///{root}/dry.db",
                                              "notifiers": {"oncall": {"kind": "slack",
                                                                       "url": "env:E2E_ONCALL_URL"}}}, env)
        serves.append(dry)
        live = start_remediator(root / "live", {
            **common, "dry_run": False, "state": f"sqlite:///{root}/live.db",
            "rules": [str(live_pack(root / "live-rules"))],
            "targets": {
                "main": {"kind": "postgres", "dsn": "env:E2E_PG_DSN", "databases": [pg.db, pg.other_db]},
                "compose": {"kind": "docker", "url": engine.url,
                            "containers": re.escape(containers.down.removesuffix("web")) + ".*"},
            },
        }, env)
        serves.append(live)
        am = start_alertmanager(root, alertmanager_config(
            {"dryrun": dry.url + "/webhook", "live": live.url + "/webhook"}, token))
        procs.append(am)
        prom_config = prometheus_config(am.url, rule_file(root / "e2e-rules.yml", datname=pg.db,
                                                          container=containers.down))
        prom_config["scrape_configs"] = [{"job_name": "e2e", "scrape_interval": "1s",
                                          "static_configs": [{"targets": [gate.address]}]}]
        procs.append(start_prometheus(root, prom_config))
        yield Stack(dry, live, gate, procs)
    finally:
        for proc in reversed(procs):
            proc.stop()
        for serve in serves:
            reap(serve.proc)
        gate.close()


def of(records: list[dict[str, Any]], event: str, **where: Any) -> list[dict[str, Any]]:
    return [r for r in records if r["event"] == event and all(r.get(k) == v for k, v in where.items())]


# --- the scenarios -----------------------------------------------------------------------------

def test_dry_run_plans_once_and_the_resolved_notification_closes(stack: Stack) -> None:
    """Each alert meets its pack rule with its priority and planned steps, once; the
    repeat is a duplicate; dropping the series resolves every alert; nothing is executed."""
    dry = stack.dry
    rules = {rule for rule, _, _ in DRY_EXPECTED.values()}

    def planned_and_repeated(records: list[dict[str, Any]]) -> bool:
        dups = {r["rule"] for r in of(records, "guard.blocked", reason="duplicate")}
        return len(of(records, "action.planned")) >= 8 and rules <= dups

    records = dry.wait_for(planned_and_repeated, "every plan, and Alertmanager's repeat of each firing")
    matched = {r["alertname"]: r for r in of(records, "rule.matched")}
    assert set(matched) == set(DRY_EXPECTED)
    for alertname, (rule, priority, actions) in DRY_EXPECTED.items():
        m = matched[alertname]
        assert (m["rule"], m["priority"], m["dry_run"]) == (rule, priority, True), alertname
        assert len(of(records, "rule.matched", alertname=alertname)) >= 2  # the repeat matched again...
        plans = of(records, "action.planned", decision=m["decision"])
        assert [p["plan"]["action"] for p in plans] == actions, alertname  # ...and was planned once
        assert all(p["dry_run"] for p in plans)
    (slack,) = of(records, "action.planned", rule="disk-almost-full-notify")[1:]
    assert "oncall" in " ".join(slack["plan"]["steps"])
    (scale,) = [p for p in of(records, "action.planned", rule="high-cpu-scale-up")
                if p["plan"]["action"] == "kubernetes.scale"]
    assert scale["plan"]["details"] == {"target_missing": True, "params": {
        "namespace": "prod", "deployment": "web", "replicas": "+2", "max": 10, "min": None,
        "allow_zero": False}}

    stack.gate.values["dryrun"] = 0  # the series drops: Prometheus resolves, Alertmanager sends resolved
    fingerprints = {m["fingerprint"] for m in matched.values()}
    records = dry.wait_for(lambda rs: {r["fingerprint"] for r in of(rs, "alert.resolved")} >= fingerprints,
                           "the resolved notifications")
    resolved = {r["fingerprint"]: r for r in of(records, "alert.received", status="resolved")}
    assert set(resolved) >= fingerprints
    assert not of(records, "action.started")
    assert not of(records, "decision.failed")
    assert {r["decision"] for r in of(records, "verify.skipped")} >= {m["decision"] for m in matched.values()}


def test_too_many_connections_terminates_exactly_the_idle_sessions_opened(stack: Stack, pg: PgWorld) -> None:
    """Live: the idle sessions of the alert's database end; the busy one and the idle one
    in another database live; Alertmanager's repeats do not act again."""
    rule = "postgres-connections-terminate-idle"
    victims = {c.info.backend_pid for c in pg.victims}
    records = stack.live.wait_for(
        lambda rs: bool(of(rs, "action.succeeded", rule=rule)) and bool(of(rs, "guard.blocked", rule=rule,
                                                                           reason="duplicate")),
        "the sessions terminated, and a repeat")
    (done,) = of(records, "action.succeeded", rule=rule, action="postgres.terminate_idle")
    assert {s["pid"] for s in done["result"]["details"]["sessions"] if s["terminated"]} == victims
    (matched,) = of(records, "rule.matched", rule=rule)[:1]
    assert (matched["priority"], matched["dry_run"]) == ("P1", False)
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        alive = {row[0] for row in admin.execute("SELECT pid FROM pg_stat_activity WHERE usename = %s",
                                                 [pg.role])}
    assert alive & victims == set()
    assert {c.info.backend_pid for c in pg.spared.values()} <= alive
    assert len(of(stack.live.audit(), "action.started", rule=rule, action="postgres.terminate_idle")) == 1


def test_container_down_restarts_the_real_container(stack: Stack, containers: Containers) -> None:
    """Live: the stopped container named by the alert runs again; its stopped neighbour
    stays stopped; repeats do not restart it again."""
    rule = "container-down-docker-restart"
    records = stack.live.wait_for(
        lambda rs: bool(of(rs, "action.succeeded", rule=rule, action="docker.restart"))
        and bool(of(rs, "guard.blocked", rule=rule, reason="duplicate")),
        "the container restarted, and a repeat")
    state = containers.state(containers.down)
    assert state["Running"] is True
    assert state["StartedAt"] != containers.started_before
    assert containers.state(containers.neighbour)["Running"] is False
    (diagnosis,) = of(records, "action.succeeded", rule=rule, action="docker.diagnose")
    assert diagnosis["result"]["details"]["containers"][0]["state"] == "exited"
    assert len(of(records, "action.started", rule=rule, action="docker.restart")) == 1


def test_live_resolution_completes_the_verify_watches(stack: Stack) -> None:
    """Live decisions are watched (the pack's ``verify``); once the alerts resolve, each
    watch ends ``verify.succeeded`` with the time to resolve."""
    rules = {"postgres-connections-terminate-idle", "container-down-docker-restart"}

    def acted_and_repeated(records: list[dict[str, Any]]) -> bool:
        return all(of(records, "verify.watching", rule=r) and of(records, "guard.blocked", rule=r,
                                                                  reason="duplicate") for r in rules)

    stack.live.wait_for(acted_and_repeated, "both live decisions watched, and repeated")
    stack.gate.values["live"] = 0
    records = stack.live.wait_for(lambda rs: {r["rule"] for r in of(rs, "verify.succeeded")} >= rules,
                                  "verify.succeeded for both live decisions")
    assert not of(records, "verify.failed")
    assert not of(records, "escalation.sent")

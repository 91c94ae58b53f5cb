"""``postgres.*`` against the real local PostgreSQL: exactly the intended sessions end, the others live.

Every test works in databases and roles of its own (unique names, dropped at the end),
so no session of anyone else is ever a candidate. The victims are sessions of plain
roles the module creates: the test's own ``postgres`` connections are superuser.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from remediations.base import (
    Action,
    ActionContext,
    InvalidParams,
    PermanentError,
    Plan,
    TargetNotAllowed,
    TemporaryError,
)
from remediations.postgres.activity import Activity
from remediations.postgres.cancel_long_queries import CancelLongQueries
from remediations.postgres.terminate_idle import TerminateIdle
from remediations.secrets import Secret
from remediations.targets import PostgresTarget, RedisTarget
from rules.alert import Alert
from rules.model import ActionSpec
from tests.support.sdkpool import SDK_CALLS

HOST, PORT = "127.0.0.1", 5432
ADMIN_DSN = make_conninfo(host=HOST, port=PORT, user="postgres", dbname="test")
THRESHOLD = 1.0  # idle_for / running_for "1s" in these tests
PAST_THRESHOLD = THRESHOLD + 0.3
STUBBORN = ("DO $$ BEGIN LOOP BEGIN PERFORM pg_sleep(0.1); "
            "EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$")


def dsn(user: str, db: str) -> str:
    return make_conninfo(host=HOST, port=PORT, user=user, dbname=db)


def alert(**labels: str) -> Alert:
    return Alert(fingerprint="abc", status="firing", labels={"alertname": "X", **labels}, annotations={},
                 starts_at=datetime(2026, 1, 1, tzinfo=UTC), starts_at_raw="2026-01-01T00:00:00Z")


def target(databases: list[str], flags: dict[str, bool] | None = None, *, user: str = "postgres",
           db: str = "test") -> PostgresTarget:
    """A postgres target connecting as ``user`` to ``db``; ``flags`` are allow_superuser/replication."""
    return PostgresTarget.model_validate({"kind": "postgres", "dsn": Secret(dsn(user, db), "env:PG_DSN"),
                                          "databases": databases, **(flags or {})})


def ctx(tgt: PostgresTarget | RedisTarget, labels: dict[str, str] | None = None) -> ActionContext:
    return ActionContext(calls=SDK_CALLS,
                         decision_id="d", rule="r", alert=alert(**(labels or {})), target_name="main",
                         target=tgt, dry_run=False)


@dataclass(frozen=True)
class Cluster:
    """Databases and roles this module owns; ``role(key)`` resolves a role by its part."""

    plan_db: str
    other_db: str
    exec_db: str
    exec_other_db: str
    roles: dict[str, str]
    canary: str

    def role(self, key: str) -> str:
        return self.roles[key]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Four databases and six roles with unique names; everything dropped at the end."""
    tag = uuid.uuid4().hex[:12]
    canary = f"rmd_canary_{tag}"
    roles = {
        "victim": (f"rmd_victim_{tag}", "NOSUPERUSER NOREPLICATION"),
        "victim2": (f"rmd_victim2_{tag}", "NOSUPERUSER NOREPLICATION"),
        "super": (f"rmd_super_{tag}", "SUPERUSER NOREPLICATION"),
        "repl": (f"rmd_repl_{tag}", "NOSUPERUSER REPLICATION"),
        "hostile": (f"x'; DROP TABLE {canary}; --", "NOSUPERUSER NOREPLICATION"),
        "stats": (f"rmd_stats_{tag}", "NOSUPERUSER NOREPLICATION"),  # pg_read_all_stats, no signals
    }
    c = Cluster(plan_db=f"rmd_plan_{tag}", other_db=f"rmd_other_{tag}", exec_db=f"rmd_exec_{tag}",
                exec_other_db=f"rmd_exec_other_{tag}", roles={k: n for k, (n, _) in roles.items()},
                canary=canary)
    dbs = [c.plan_db, c.other_db, c.exec_db, c.exec_other_db]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        for name, attrs in roles.values():
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN " + attrs).format(sql.Identifier(name)))
        admin.execute(sql.SQL("GRANT pg_read_all_stats TO {}").format(sql.Identifier(c.role("stats"))))
        for db in dbs:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        with psycopg.connect(dsn("postgres", c.plan_db), autocommit=True) as plan_admin:
            plan_admin.execute(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(canary)))
        try:
            yield c
        finally:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = ANY(%s) OR usename = ANY(%s)", [dbs, list(c.roles.values())])
            for db in dbs:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
            for name in c.roles.values():
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


# -- sessions the tests open ------------------------------------------------------------

class Standing:
    """Sessions opened once for the plan tests (plans end nothing, so they can share them)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.conns: dict[str, psycopg.Connection[Any]] = {}

    def open(self, name: str, role: str, db: str, *, app: str = "rmd-a", autocommit: bool = True,
             query: str | None = None) -> None:
        conn = psycopg.connect(dsn(self.cluster.role(role), db), autocommit=autocommit, application_name=app)
        conn.execute("SELECT 1")
        if query is not None:
            conn.pgconn.send_query(query.encode())  # runs on, the client never waits for it
        self.conns[name] = conn

    def pids(self) -> dict[str, int]:
        return {name: conn.info.backend_pid for name, conn in self.conns.items()}

    def touch(self, name: str) -> None:
        self.conns[name].execute("SELECT 1")


@pytest.fixture(scope="module")
def standing(cluster: Cluster) -> Iterator[Standing]:
    """Idle, idle-in-transaction, active, superuser, replication and other-database sessions."""
    s = Standing(cluster)
    c = cluster
    s.open("old", "victim", c.plan_db)
    s.open("old-b", "victim", c.plan_db, app="rmd-b")
    s.open("txn", "victim", c.plan_db, autocommit=False)
    s.open("other-user", "victim2", c.plan_db)
    s.open("hostile", "hostile", c.plan_db, app=c.role("hostile"))
    s.open("super", "super", c.plan_db)
    s.open("repl", "repl", c.plan_db)
    s.open("other-db", "victim", c.other_db)
    s.open("active", "victim", c.plan_db, query="SELECT pg_sleep(600)")
    s.open("super-active", "super", c.plan_db, query="SELECT pg_sleep(600)")
    time.sleep(PAST_THRESHOLD)
    s.open("fresh", "victim", c.plan_db)
    try:
        yield s
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid",
                          [list(s.pids().values())])
        for conn in s.conns.values():
            conn.close()


class Sessions:
    """Sessions one test opens; ended, and awaited gone, when it finishes."""

    def __init__(self, cluster: Cluster, admin: psycopg.AsyncConnection[Any]) -> None:
        self.cluster = cluster
        self.admin = admin
        self.conns: list[psycopg.AsyncConnection[Any]] = []
        self.pids: list[int] = []  # kept: a closed connection's info.backend_pid reads 0
        self.tasks: list[asyncio.Task[Any]] = []

    async def open(self, role: str, db: str, *, app: str = "rmd-test",
                   autocommit: bool = True) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(dsn(self.cluster.role(role), db),
                                                     autocommit=autocommit, application_name=app)
        await conn.execute("SELECT 1")
        self.conns.append(conn)
        self.pids.append(conn.info.backend_pid)
        return conn

    async def run(self, role: str, db: str,
                  query: str) -> tuple[psycopg.AsyncConnection[Any], asyncio.Task[Any]]:
        """A session running ``query`` (already active on the server when this returns)."""
        conn = await self.open(role, db)
        task = asyncio.create_task(conn.execute(query.encode()))
        self.tasks.append(task)
        await until(self.admin, "SELECT state = 'active' FROM pg_stat_activity WHERE pid = %s",
                    conn.info.backend_pid)
        return conn, task

    async def close(self) -> None:
        pids = self.pids
        await self.admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for conn in self.conns:
            await conn.close()
        await until(self.admin, "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = ANY(%s)", pids)


async def until(admin: psycopg.AsyncConnection[Any], query: str, *args: Any, within: float = 5.0) -> None:
    """Poll ``query`` (one boolean) until it is true; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        row = await (await admin.execute(query.encode(), args)).fetchone()
        if row is not None and row[0]:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {within}s: {query} {args}")
        await asyncio.sleep(0.05)


async def live(admin: psycopg.AsyncConnection[Any], pids: list[int]) -> set[int]:
    cur = await admin.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", [pids])
    return {r[0] for r in await cur.fetchall()}


@pytest.fixture
async def admin() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(ADMIN_DSN, autocommit=True) as conn:
        yield conn


@pytest.fixture
async def sessions(cluster: Cluster, admin: psycopg.AsyncConnection[Any]) -> AsyncIterator[Sessions]:
    s = Sessions(cluster, admin)
    try:
        yield s
    finally:
        await s.close()


def pids_of(plan: Plan, key: str = "sessions") -> set[int]:
    return {s["pid"] for s in plan.details[key]}


# -- params, allow-list, identity (no server) --------------------------------------------

@pytest.mark.parametrize(("action", "raw"), [
    pytest.param(TerminateIdle(), {"idle_for": "10m"}, id="terminate-minimal"),
    pytest.param(TerminateIdle(), {"idle_for": "1h30m", "database": "app", "user": "web",
                                   "application_name": "x'; DROP TABLE y; --", "states": ["idle"],
                                   "max_sessions": 500}, id="terminate-full"),
    pytest.param(TerminateIdle(), {"idle_for": "1s", "states": ["idle in transaction (aborted)"]},
                 id="terminate-aborted"),
    pytest.param(CancelLongQueries(), {"running_for": "5m"}, id="cancel-minimal"),
    pytest.param(CancelLongQueries(), {"running_for": "5m", "grace": "2m", "max_queries": 100,
                                       "user": "u", "database": "d"}, id="cancel-full"),
    pytest.param(CancelLongQueries(), {"running_for": "5m", "grace": "0"}, id="cancel-no-grace"),
    pytest.param(Activity(), {}, id="activity-all"),
    pytest.param(Activity(), {"database": "app"}, id="activity-one"),
])
def test_good_params_are_accepted(action: Action[Any], raw: dict[str, Any]) -> None:
    """Params within the schema parse, and survive a round trip through JSON (as plans in the audit do)."""
    params = action.parse_params(raw)
    assert action.parse_params(params.model_dump(mode="json")) == params


@pytest.mark.parametrize(("action", "raw", "field"), [
    pytest.param(TerminateIdle(), {}, "idle_for", id="idle_for-missing"),
    pytest.param(TerminateIdle(), {"idle_for": "10 minutes"}, "idle_for", id="idle_for-malformed"),
    pytest.param(TerminateIdle(), {"idle_for": "500ms"}, "idle_for", id="idle_for-under-1s"),
    pytest.param(TerminateIdle(), {"idle_for": "0"}, "idle_for", id="idle_for-zero"),
    pytest.param(TerminateIdle(), {"idle_for": "1m", "states": ["active"]}, "states", id="state-active"),
    pytest.param(TerminateIdle(), {"idle_for": "1m", "states": []}, "states", id="states-empty"),
    pytest.param(TerminateIdle(), {"idle_for": "1m", "states": ["idle", "idle"]}, "states",
                 id="states-repeated"),
    pytest.param(TerminateIdle(), {"idle_for": "1m", "max_sessions": 0}, "max_sessions", id="max-zero"),
    pytest.param(TerminateIdle(), {"idle_for": "1m", "max_sessions": 501}, "max_sessions", id="max-high"),
    pytest.param(TerminateIdle(), {"idle_for": "1m", "database": ""}, "database", id="database-empty"),
    pytest.param(TerminateIdle(), {"idle_for": "1m", "database": "d" * 64}, "database", id="database-long"),
    pytest.param(TerminateIdle(), {"idle_for": "1m", "user": "a\nb"}, "user", id="user-newline"),
    pytest.param(TerminateIdle(), {"idle_for": "1m", "application_name": "a\x00"}, "application_name",
                 id="app-nul"),
    pytest.param(TerminateIdle(), {"idle_for": "1m", "datname": "x"}, "datname", id="unknown-param"),
    pytest.param(CancelLongQueries(), {}, "running_for", id="running_for-missing"),
    pytest.param(CancelLongQueries(), {"running_for": "5m", "grace": "3m"}, "grace", id="grace-over-max"),
    pytest.param(CancelLongQueries(), {"running_for": "5m", "max_queries": 101}, "max_queries",
                 id="max-queries-high"),
    pytest.param(Activity(), {"database": "a", "limit": 3}, "limit", id="activity-unknown"),
])
def test_bad_params_are_refused(action: Action[Any], raw: dict[str, Any], field: str) -> None:
    """Bad params are InvalidParams naming the action and the field."""
    with pytest.raises(InvalidParams, match=rf"^{action.name}: {field}"):
        action.parse_params(raw)


@pytest.mark.parametrize("action", [TerminateIdle(), CancelLongQueries(), Activity()],
                         ids=lambda a: a.name)
@pytest.mark.parametrize("datname", [
    pytest.param("postgres", id="other-database"),
    pytest.param("x'; DROP TABLE y; --", id="hostile"),
    pytest.param("APP", id="case-differs"),
])
def test_a_label_cannot_steer_outside_the_databases(action: Action[Any], datname: str) -> None:
    """A database rendered from a label must be in the target's allow-list, else TargetNotAllowed."""
    raw: dict[str, Any] = {}
    if isinstance(action, TerminateIdle):
        raw = {"idle_for": "10m"}
    elif isinstance(action, CancelLongQueries):
        raw = {"running_for": "10m"}
    spec = ActionSpec(action=action.name, target="main", params={**raw, "database": "{{ labels.datname }}"})
    c = ctx(target(["app"]), {"datname": datname})
    params = action.parse_params(spec.render_params(c.alert))
    with pytest.raises(TargetNotAllowed, match=r"is not among the databases of target 'main' \(app\)$"):
        action.check_allowed(c, params)
    action.check_allowed(c, params.model_copy(update={"database": "app"}))
    action.check_allowed(c, params.model_copy(update={"database": None}))


@pytest.mark.parametrize("action", [TerminateIdle(), CancelLongQueries(), Activity()],
                         ids=lambda a: a.name)
def test_a_target_of_another_kind_is_refused(action: Action[Any]) -> None:
    """A redis target for a postgres action is a PermanentError, not a TargetNotAllowed."""
    redis = RedisTarget(kind="redis", url=Secret("redis://x", "env:R"))
    params = action.params_model.model_construct(database=None)
    with pytest.raises(PermanentError, match="needs a postgres target"):
        action.check_allowed(ctx(redis), params)


@pytest.mark.parametrize(("action", "raw", "subject"), [
    pytest.param(TerminateIdle(), {"idle_for": "1m", "database": "app"}, "main/database/app", id="one-db"),
    pytest.param(CancelLongQueries(), {"running_for": "1m", "database": "app"}, "main/database/app",
                 id="cancel-same-db-same-subject"),
    pytest.param(TerminateIdle(), {"idle_for": "1m"}, "main/database/*", id="all-dbs"),
    pytest.param(Activity(), {"database": "app"}, "main/database/app", id="activity"),
])
def test_subject_is_the_database(action: Action[Any], raw: dict[str, Any], subject: str) -> None:
    """Actions on one database share a subject, so locks and cooldowns see them as one."""
    assert action.subject(ctx(target(["app"])), action.parse_params(raw)) == subject


def test_flags_and_timeouts() -> None:
    """Ending sessions is destructive, activity is read-only, cancel's timeout covers the longest grace."""
    assert TerminateIdle.destructive
    assert CancelLongQueries.destructive
    assert Activity.read_only
    assert not Activity.destructive
    longest = CancelLongQueries().parse_params({"running_for": "1m", "grace": "2m"}).grace
    assert CancelLongQueries.timeout > longest.total_seconds() + 10
    assert all("pg_signal_backend" in " ".join(a.permissions) for a in (TerminateIdle, CancelLongQueries))
    assert "pg_read_all_stats" in " ".join(Activity.permissions)


# -- plan: which sessions, against the real server; nothing ends ----------------------------

TERMINATE_CASES = [
    pytest.param({}, {}, {"old", "old-b", "txn", "other-user", "hostile"}, id="default-scope"),
    pytest.param({"database": "$other"}, {}, {"other-db"}, id="database"),
    pytest.param({"user": "@victim2"}, {}, {"other-user"}, id="user"),
    pytest.param({"application_name": "rmd-b"}, {}, {"old-b"}, id="application-name"),
    pytest.param({"states": ["idle in transaction"]}, {}, {"txn"}, id="state"),
    pytest.param({"max_sessions": 1}, {}, {"old"}, id="max-sessions-keeps-oldest"),
    pytest.param({"user": "@super"}, {}, set(), id="superuser-spared"),
    pytest.param({"user": "@super"}, {"allow_superuser": True}, {"super"}, id="superuser-allowed"),
    pytest.param({"user": "@repl"}, {}, set(), id="replication-role-spared"),
    pytest.param({"user": "@repl"}, {"allow_replication": True}, {"repl"}, id="replication-allowed"),
    pytest.param({"user": "@hostile"}, {}, {"hostile"}, id="hostile-user-is-a-value"),
    pytest.param({"application_name": "@hostile"}, {}, {"hostile"}, id="hostile-app-is-a-value"),
    pytest.param({"idle_for": "1h"}, {}, set(), id="none-idle-that-long"),
]


def resolve(raw: dict[str, Any], cluster: Cluster) -> dict[str, Any]:
    """``@key`` is a role of the cluster, ``$other`` its other plan database."""
    def one(v: Any) -> Any:
        if isinstance(v, str) and v.startswith("@"):
            return cluster.role(v[1:])
        return cluster.other_db if v == "$other" else v
    return {k: one(v) for k, v in raw.items()}


async def assert_untouched(admin: psycopg.AsyncConnection[Any], standing: Standing, cluster: Cluster) -> None:
    """Every standing session lives, the active ones still run their first query, the canary exists."""
    pids = standing.pids()
    assert await live(admin, list(pids.values())) == set(pids.values())
    cur = await admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s) AND state = 'active'"
                              " AND query_start < now() - interval '1s'",
                              [[pids["active"], pids["super-active"]]])
    assert await cur.fetchone() == (2,)
    with psycopg.connect(dsn("postgres", cluster.plan_db)) as conn:
        assert conn.execute("SELECT to_regclass(%s) IS NOT NULL", [cluster.canary]).fetchone() == (True,)


@pytest.mark.parametrize(("raw", "flags", "expected"), TERMINATE_CASES)
async def test_terminate_idle_plan_selects_exactly(
    raw: dict[str, Any], flags: dict[str, bool], expected: set[str], standing: Standing, cluster: Cluster,
    admin: psycopg.AsyncConnection[Any],
) -> None:
    """The plan lists exactly the matching sessions, labels are bound values, and nothing ends."""
    standing.touch("fresh")
    action = TerminateIdle()
    params = action.parse_params({"idle_for": "1s", **resolve(raw, cluster)})
    c = ctx(target([cluster.plan_db, cluster.other_db] if "database" in raw else [cluster.plan_db], flags))
    action.check_allowed(c, params)
    plan = await action.plan(c, params)
    pids = standing.pids()
    assert pids_of(plan) == {pids[n] for n in expected}
    assert plan.destructive
    await assert_untouched(admin, standing, cluster)


@pytest.mark.parametrize(("raw", "flags", "expected"), [
    pytest.param({}, {}, {"active"}, id="default-scope"),
    pytest.param({}, {"allow_superuser": True}, {"active", "super-active"}, id="superuser-allowed"),
    pytest.param({"user": "@victim2"}, {}, set(), id="user"),
    pytest.param({"running_for": "1h"}, {}, set(), id="none-that-long"),
])
async def test_cancel_plan_selects_exactly(
    raw: dict[str, Any], flags: dict[str, bool], expected: set[str], standing: Standing, cluster: Cluster,
    admin: psycopg.AsyncConnection[Any],
) -> None:
    """The cancel plan lists exactly the long active queries in scope, and nothing is cancelled."""
    action = CancelLongQueries()
    params = action.parse_params({"running_for": "1s", **resolve(raw, cluster)})
    plan = await action.plan(ctx(target([cluster.plan_db], flags)), params)
    pids = standing.pids()
    assert pids_of(plan, "queries") == {pids[n] for n in expected}
    await assert_untouched(admin, standing, cluster)


async def test_plan_reads_like_the_calls_a_human_approves(standing: Standing, cluster: Cluster) -> None:
    """Each session is one step naming the call, pid, role, database, app, state, age and query."""
    action = TerminateIdle()
    params = action.parse_params({"idle_for": "1s", "user": cluster.role("victim2"), "max_sessions": 3})
    plan = await action.plan(ctx(target([cluster.plan_db])), params)
    pid = standing.pids()["other-user"]
    assert plan.steps[0] == (f"select sessions 'idle' or 'idle in transaction' for over 1s in database "
                             f"{cluster.plan_db} of role '{cluster.role('victim2')}'; never this session, "
                             "superuser sessions, replication sessions")
    assert plan.steps[1].startswith(f"pg_terminate_backend pid {pid}: {cluster.role('victim2')}@"
                                    f"{cluster.plan_db} app 'rmd-a', idle for ")
    assert plan.steps[1].endswith(": SELECT 1")
    assert plan.steps[2].startswith("each only if, when executed, it is the same backend")
    [session] = plan.details["sessions"]
    assert (session["state"], session["query"]) == ("idle", "SELECT 1")
    assert plan.details["privileges"]["superuser"] is True


async def test_plan_says_when_the_role_cannot_see_or_end_other_sessions(standing: Standing,
                                                                       cluster: Cluster) -> None:
    """A role without pg_read_all_stats sees no other role's session, and the plan says why."""
    action = TerminateIdle()
    params = action.parse_params({"idle_for": "1s"})
    plan = await action.plan(ctx(target([cluster.plan_db], user=cluster.role("victim2"), db=cluster.plan_db)),
                             params)
    assert pids_of(plan) == {standing.pids()["other-user"]}  # only its own session shows a state
    assert any("lacks pg_read_all_stats" in s for s in plan.steps)
    assert any("lacks pg_signal_backend" in s for s in plan.steps)


# -- execute: exactly the planned sessions end -------------------------------------------------

async def test_terminate_idle_ends_exactly_the_idle_sessions(
    sessions: Sessions, cluster: Cluster, admin: psycopg.AsyncConnection[Any],
) -> None:
    """Idle and idle-in-transaction victims past the threshold end; everyone else lives."""
    db = cluster.exec_db
    old = await sessions.open("victim", db)
    txn = await sessions.open("victim", db, autocommit=False)
    spared = {
        "super": await sessions.open("super", db),
        "repl": await sessions.open("repl", db),
        "other-db": await sessions.open("victim", cluster.exec_other_db),
    }
    active, active_task = await sessions.run("victim", db, "SELECT pg_sleep(30)")
    await asyncio.sleep(PAST_THRESHOLD)
    spared["fresh"] = await sessions.open("victim", db)

    action = TerminateIdle()
    params = action.parse_params({"idle_for": "1s"})
    c = ctx(target([db]))
    plan = await action.plan(c, params)
    victims = {old.info.backend_pid, txn.info.backend_pid}
    assert pids_of(plan) == victims
    everyone = [*victims, active.info.backend_pid, *(s.info.backend_pid for s in spared.values())]
    assert await live(admin, everyone) == set(everyone)  # the plan ended nothing

    result = await action.execute(c, params, plan)
    outcomes = {s["pid"]: (s["outcome"], s["terminated"]) for s in result.details["sessions"]}
    assert outcomes == dict.fromkeys(victims, ("terminated", True))
    assert result.summary == "terminated 2 of 2 planned sessions"
    await until(admin, "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = ANY(%s)", list(victims))
    for conn in (old, txn):
        with pytest.raises(psycopg.OperationalError):
            await conn.execute("SELECT 1")
    for conn in spared.values():
        await conn.execute("SELECT 1")
    assert not active_task.done()


async def test_execute_spares_sessions_that_changed_since_the_plan(
    sessions: Sessions, cluster: Cluster, admin: psycopg.AsyncConnection[Any],
) -> None:
    """A session busy again, or a pid now held by another backend, is re-checked and left alone."""
    db = cluster.exec_db
    busy_again = await sessions.open("victim", db)
    reused = await sessions.open("victim", db)
    still_idle = await sessions.open("victim", db)
    still_idle_pid = still_idle.info.backend_pid
    await asyncio.sleep(PAST_THRESHOLD)
    action = TerminateIdle()
    params = action.parse_params({"idle_for": "1s"})
    c = ctx(target([db]))
    plan = await action.plan(c, params)
    assert len(plan.details["sessions"]) == 3

    await busy_again.execute("SELECT 1")  # idle again, but only just
    # As if the plan had seen an earlier backend under the pid that `reused` holds now.
    earlier = [dict(s, backend_start=(datetime.fromisoformat(s["backend_start"]) - timedelta(hours=1))
                    .isoformat()) if s["pid"] == reused.info.backend_pid else s
               for s in plan.details["sessions"]]
    plan = Plan(action=plan.action, target=plan.target, steps=plan.steps, destructive=True,
                details={**plan.details, "sessions": earlier})
    result = await action.execute(c, params, plan)
    outcomes = {s["pid"]: s["outcome"] for s in result.details["sessions"]}
    assert outcomes == {
        busy_again.info.backend_pid: "no longer matches (busy again, gone or a new backend)",
        reused.info.backend_pid: "no longer matches (busy again, gone or a new backend)",
        still_idle_pid: "terminated",
    }
    await until(admin, "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = %s", still_idle_pid)
    await busy_again.execute("SELECT 1")
    await reused.execute("SELECT 1")


async def test_execute_without_the_signal_privilege_is_permanent(
    sessions: Sessions, cluster: Cluster, admin: psycopg.AsyncConnection[Any],
) -> None:
    """A role that sees sessions (pg_read_all_stats) but may not end them fails permanently; they live."""
    db = cluster.exec_db
    victim = await sessions.open("victim", db)
    await asyncio.sleep(PAST_THRESHOLD)
    action = TerminateIdle()
    params = action.parse_params({"idle_for": "1s", "user": cluster.role("victim")})
    c = ctx(target([db], user=cluster.role("stats"), db=db))
    plan = await action.plan(c, params)
    assert pids_of(plan) == {victim.info.backend_pid}
    assert any("lacks pg_signal_backend" in s for s in plan.steps)
    with pytest.raises(PermanentError, match=rf"terminated 0 of 1 .*pid {victim.info.backend_pid}: "):
        await action.execute(c, params, plan)
    await victim.execute("SELECT 1")


async def test_cancel_then_terminate_after_grace(
    sessions: Sessions, cluster: Cluster, admin: psycopg.AsyncConnection[Any],
) -> None:
    """A long query is cancelled (its session lives); one that swallows cancels is terminated after grace."""
    db = cluster.exec_db
    sleeper, sleeper_task = await sessions.run("victim", db, "SELECT pg_sleep(30)")
    stubborn, stubborn_task = await sessions.run("victim", db, STUBBORN)
    stubborn_pid = stubborn.info.backend_pid
    _, super_task = await sessions.run("super", db, "SELECT pg_sleep(30)")
    await asyncio.sleep(PAST_THRESHOLD)
    _, young_task = await sessions.run("victim", db, "SELECT pg_sleep(30)")

    action = CancelLongQueries()
    params = action.parse_params({"running_for": "1s", "grace": "1s"})
    c = ctx(target([db]))
    plan = await action.plan(c, params)
    assert pids_of(plan, "queries") == {sleeper.info.backend_pid, stubborn_pid}
    assert plan.steps[-1].startswith("wait up to 1s for them to stop, then pg_terminate_backend")
    await asyncio.sleep(0.2)
    assert not any(t.done() for t in (sleeper_task, stubborn_task, super_task, young_task))

    started = time.monotonic()
    result = await action.execute(c, params, plan)
    assert 1.0 <= time.monotonic() - started < 5.0
    assert {q["pid"]: q["outcome"] for q in result.details["queries"]} == {
        sleeper.info.backend_pid: "cancelled",
        stubborn_pid: "terminated after grace",
    }
    assert result.summary == "cancelled 1 and terminated 1 of 2 planned queries"
    with pytest.raises(psycopg.errors.QueryCanceled):
        await sleeper_task
    await sleeper.execute("SELECT 1")  # a cancel ends the query, not the session
    with pytest.raises(psycopg.OperationalError):
        await stubborn_task
    await until(admin, "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = %s", stubborn_pid)
    assert not super_task.done()
    assert not young_task.done()


async def test_activity_reports_states_longest_queries_locks_and_headroom(
    sessions: Sessions, cluster: Cluster, admin: psycopg.AsyncConnection[Any],
) -> None:
    """Counts by state, the longest queries in order, the one lock wait, and headroom add up."""
    db = cluster.exec_db
    table = f"rmd_lock_{uuid.uuid4().hex[:8]}"
    setup = await sessions.open("super", db)
    await setup.execute(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(table)))
    locker = await sessions.open("super", db, autocommit=False)
    await locker.execute(sql.SQL("LOCK TABLE {}").format(sql.Identifier(table)))
    sleeper, _ = await sessions.run("victim", db, "SELECT pg_sleep(30)")
    waiter, _ = await sessions.run("super", db, f"SELECT * FROM {table}")  # a fresh, known-safe name

    action = Activity()
    params = action.parse_params({"database": db})
    c = ctx(target([db, cluster.exec_other_db]))
    plan = await action.plan(c, params)
    assert not plan.destructive
    assert plan.details == {"databases": [db]}
    result = await action.execute(c, params, plan)
    d = result.details
    assert d["sessions_by_state"] == {"active": 2, "idle": 1, "idle in transaction": 1}
    assert [q["pid"] for q in d["longest_queries"]] == [sleeper.info.backend_pid, waiter.info.backend_pid]
    assert d["longest_queries"][1]["wait_event"].startswith("Lock:")
    assert d["waiting_locks"] == 1
    cur = await admin.execute("SELECT current_setting('max_connections')::int")
    assert d["max_connections"] == (await cur.fetchone() or [0])[0]
    assert d["headroom"] == d["max_connections"] - d["reserved_connections"] - d["client_connections"]
    assert d["client_connections"] >= 5
    assert result.summary.startswith("4 sessions (active 2, idle 1, idle in transaction 1); 1 waiting locks")
    await locker.rollback()
    await setup.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))


# -- errors: what a retry can fix and what it cannot ----------------------------------------

def closed_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("make_dsn", "error"), [
    pytest.param(lambda: make_conninfo(host=HOST, port=closed_port(), user="postgres", dbname="test"),
                 TemporaryError, id="connection-refused"),
    pytest.param(lambda: dsn("postgres", f"rmd_missing_{uuid.uuid4().hex[:8]}"), PermanentError,
                 id="unknown-database"),
    pytest.param(lambda: dsn(f"rmd_nobody_{uuid.uuid4().hex[:8]}", "test"), PermanentError,
                 id="unknown-role"),
    pytest.param(lambda: "host=127.0.0.1 nonsense=1", PermanentError, id="unknown-option"),
    pytest.param(lambda: "rmd:s3cr3t-pw@127.0.0.1", PermanentError, id="malformed-dsn"),
    pytest.param(lambda: "postgresql://rmd:s3cr3t-pw@127.0.0.1:notaport/test", PermanentError, id="bad-port"),
    pytest.param(lambda: "postgresql://rmd:s3cr3t-pw@127.0.0.1:5432/test?bogus=1", PermanentError,
                 id="bad-uri-parameter"),
])
@pytest.mark.parametrize("action", [TerminateIdle(), CancelLongQueries(), Activity()], ids=lambda a: a.name)
async def test_connection_failures_are_classified(make_dsn: Any, error: type[Exception],
                                                  action: Action[Any]) -> None:
    """Refused is temporary; unknown database or role and a bad DSN are permanent; no password shows."""
    tgt = PostgresTarget(kind="postgres", dsn=Secret(make_dsn(), "env:PG_DSN"), databases=["test"])
    raw = {TerminateIdle.name: {"idle_for": "1m"}, CancelLongQueries.name: {"running_for": "1m"}}
    params = action.parse_params(raw.get(action.name, {}))
    plan = Plan(action=action.name, target="main", steps=(), destructive=False,
                details={"sessions": [], "queries": [], "databases": ["test"]})
    c = ctx(tgt)
    call = action.execute(c, params, plan) if isinstance(action, Activity) else action.plan(c, params)
    with pytest.raises(error) as caught:
        await call
    assert type(caught.value) is error
    assert "cannot connect" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


async def test_an_empty_plan_executes_without_connecting() -> None:
    """A plan that matched nothing ends nothing and needs no server."""
    tgt = PostgresTarget(kind="postgres", dsn=Secret(dsn("postgres", "test"), "env:PG_DSN"), databases=["x"])
    cases: list[tuple[Action[Any], dict[str, str], str]] = [
        (TerminateIdle(), {"idle_for": "1m"}, "sessions"),
        (CancelLongQueries(), {"running_for": "1m"}, "queries"),
    ]
    for action, raw, key in cases:
        plan = Plan(action=action.name, target="main", steps=(), destructive=True, details={key: []})
        result = await action.execute(ctx(tgt), action.parse_params(raw), plan)
        assert result.summary.startswith("nothing to")

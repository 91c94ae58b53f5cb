"""PostgreSQL actions: ``postgres.terminate_idle``, ``postgres.cancel_long_queries``, ``postgres.activity``.

Run by ``receiver.flow.workers`` against a :class:`~remediations.targets.PostgresTarget`.
Every call opens one autocommit connection (psycopg 3, async) with a connect timeout and
a statement timeout, and closes it when done.

SQL here is fixed text: every value that comes from params, and so possibly from alert
labels, is a bound parameter. Only databases in the target's allow-list are touched;
this session, replication sessions and superuser sessions are never ended unless the
target allows it. ``plan()`` selects the sessions and lists them; ``execute()`` ends only
those, each in one statement that re-checks the criteria and the backend's start time,
so a pid reused by a new backend, or a session busy again, is left alone. psycopg is
imported on first use, so start-up and ``rules lint`` do not pay for it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from remediations.base import (
    Action,
    ActionContext,
    PermanentError,
    Plan,
    RemediationError,
    Result,
    TargetNotAllowed,
    TemporaryError,
)
from remediations.targets import PostgresTarget
from rules.durations import format_duration
from rules.model import Duration

if TYPE_CHECKING:
    from typing import TypeAlias

    import psycopg
    from psycopg.rows import DictRow

    Connection: TypeAlias = psycopg.AsyncConnection[DictRow]

_CONNECT_TIMEOUT = 5  # seconds, libpq's connect_timeout
_STATEMENT_TIMEOUT = "SET statement_timeout = '10s'"
_EXCERPT = 200  # characters of a query shown in plans and results
_MAX_GRACE = timedelta(minutes=2)
_POLL = 0.2  # seconds between checks while a cancel takes effect
_LONGEST = 5

# SQLSTATE classes worth a retry: connection exception, insufficient resources, operator
# intervention (shutdown, statement_timeout), system error, transaction rollback.
_TEMPORARY_CLASSES = ("08", "53", "57", "58", "40")
_TEMPORARY_STATES = frozenset({"55P03"})  # lock_not_available
# A failed connection carries no SQLSTATE, only libpq's message. These mean the DSN or
# the server's configuration is wrong; anything else (refused, timeout, too many
# clients, starting up) may pass.
_PERMANENT_CONNECT = (
    "authentication failed", "does not exist", "no pg_hba.conf entry", "not permitted to log in",
    "no password supplied", "permission denied", "invalid",
)


def _no_control(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("must not contain control characters")
    return value


PgName = Annotated[str, Field(min_length=1, max_length=63), AfterValidator(_no_control)]
"""A database, role or application name as PostgreSQL stores it (at most 63 bytes)."""

IdleState = Literal["idle", "idle in transaction", "idle in transaction (aborted)"]
_DEFAULT_STATES: tuple[IdleState, ...] = ("idle", "idle in transaction")


def _at_least_a_second(value: timedelta) -> timedelta:
    if value < timedelta(seconds=1):
        raise ValueError("must be at least 1s")
    return value


class _SessionFilter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    database: PgName | None = Field(
        default=None,
        description="Only sessions of this database (must be in the target's databases); "
        "default: every database of the target",
    )
    user: PgName | None = Field(default=None, description="Only sessions of this role")
    application_name: PgName | None = Field(
        default=None, description="Only sessions with exactly this application_name"
    )


class TerminateIdleParams(_SessionFilter):
    idle_for: Duration = Field(description="Idle (state unchanged) for longer than this, e.g. 10m")
    states: list[IdleState] = Field(
        default_factory=lambda: list(_DEFAULT_STATES),
        min_length=1,
        description="Session states that count as idle",
    )
    max_sessions: int = Field(default=10, ge=1, le=500, description="At most this many, idle longest first")

    _idle_for = field_validator("idle_for")(_at_least_a_second)

    @field_validator("states")
    @classmethod
    def _unique(cls, value: list[IdleState]) -> list[IdleState]:
        if len(set(value)) != len(value):
            raise ValueError("states must not repeat")
        return value


class CancelLongQueriesParams(_SessionFilter):
    running_for: Duration = Field(description="Queries running for longer than this, e.g. 5m")
    grace: Duration = Field(
        default="30s",  # validated like a rule's value, so the JSON Schema shows "30s"
        validate_default=True,
        description="How long a cancel may take before the session is terminated (at most 2m)",
    )
    max_queries: int = Field(default=10, ge=1, le=100, description="At most this many, longest first")

    _running_for = field_validator("running_for")(_at_least_a_second)

    @field_validator("grace")
    @classmethod
    def _bounded_grace(cls, value: timedelta) -> timedelta:
        if value > _MAX_GRACE:
            raise ValueError(f"must be at most {format_duration(_MAX_GRACE)}")
        return value


class ActivityParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    database: PgName | None = Field(
        default=None, description="One database of the target; default: all of them"
    )


# -- SQL: fixed text, values only as bound parameters ------------------------------------

_FROM = """
FROM pg_stat_activity a
LEFT JOIN pg_roles r ON r.oid = a.usesysid
"""

# Which sessions may be ended at all. Unknown roles count as superuser and replication.
_ELIGIBLE = """
    a.pid <> pg_backend_pid()
    AND a.datname = ANY(%(databases)s)
    AND (%(user)s::text IS NULL OR a.usename = %(user)s::text)
    AND (%(application_name)s::text IS NULL OR a.application_name = %(application_name)s::text)
    AND (%(allow_superuser)s OR NOT coalesce(r.rolsuper, true))
    AND (a.backend_type = 'client backend' AND NOT coalesce(r.rolreplication, true)
         OR %(allow_replication)s AND a.backend_type IN ('client backend', 'walsender'))
"""

_SESSION_COLUMNS = """
    a.pid, a.backend_start, a.query_start, a.usename, a.datname, a.application_name, a.state,
    extract(epoch FROM now() - a.state_change)::float8 AS idle_seconds,
    extract(epoch FROM now() - a.query_start)::float8 AS running_seconds,
    a.wait_event_type, a.wait_event, left(a.query, %(excerpt)s) AS query,
    count(*) OVER () AS matched
"""

_IDLE = """
    AND a.state = ANY(%(states)s)
    AND a.state_change < now() - %(idle_for)s::interval
"""

_LONG = """
    AND a.state = 'active'
    AND a.query_start < now() - %(running_for)s::interval
"""

_SAME_BACKEND = " AND a.pid = %(pid)s AND a.backend_start = %(backend_start)s"
_SAME_QUERY = _SAME_BACKEND + " AND a.query_start = %(query_start)s"

_SELECT_IDLE = (f"SELECT {_SESSION_COLUMNS} {_FROM} WHERE {_ELIGIBLE} {_IDLE}"
                " ORDER BY a.state_change, a.pid LIMIT %(limit)s")
_TERMINATE_IDLE = (f"SELECT pg_terminate_backend(a.pid) AS signalled {_FROM}"
                   f" WHERE {_ELIGIBLE} {_IDLE}{_SAME_BACKEND}")

_SELECT_LONG = (f"SELECT {_SESSION_COLUMNS} {_FROM} WHERE {_ELIGIBLE} {_LONG}"
                " ORDER BY a.query_start, a.pid LIMIT %(limit)s")
_CANCEL_LONG = (f"SELECT pg_cancel_backend(a.pid) AS signalled {_FROM}"
                f" WHERE {_ELIGIBLE} {_LONG}{_SAME_QUERY}")
_TERMINATE_LONG = (f"SELECT pg_terminate_backend(a.pid) AS signalled {_FROM}"
                   f" WHERE {_ELIGIBLE} {_LONG}{_SAME_QUERY}")
_STILL_RUNNING = """
SELECT a.pid
FROM pg_stat_activity a
JOIN unnest(%(pids)s::int[], %(backend_starts)s::timestamptz[], %(query_starts)s::timestamptz[])
     AS p(pid, backend_start, query_start)
  ON p.pid = a.pid AND p.backend_start = a.backend_start AND p.query_start = a.query_start
WHERE a.state = 'active'
"""

_PRIVILEGES = """
SELECT current_user AS role, r.rolsuper AS superuser,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS read_all_stats,
       pg_has_role(current_user, 'pg_signal_backend', 'USAGE') AS signal_backend
FROM pg_roles r WHERE r.rolname = current_user
"""

_ACTIVITY_STATES = """
SELECT coalesce(a.state, 'unknown') AS state, count(*)::int AS sessions
FROM pg_stat_activity a
WHERE a.datname = ANY(%(databases)s) AND a.pid <> pg_backend_pid()
  AND (a.backend_type = 'client backend' OR a.backend_type IS NULL AND a.usesysid IS NOT NULL)
GROUP BY 1 ORDER BY 2 DESC, 1
"""
_ACTIVITY_LONGEST = """
SELECT a.pid, a.usename, a.datname, a.application_name, a.wait_event_type, a.wait_event,
       extract(epoch FROM now() - a.query_start)::float8 AS running_seconds,
       left(a.query, %(excerpt)s) AS query
FROM pg_stat_activity a
WHERE a.datname = ANY(%(databases)s) AND a.pid <> pg_backend_pid()
  AND a.state = 'active' AND a.backend_type = 'client backend'
ORDER BY a.query_start, a.pid LIMIT %(limit)s
"""
_ACTIVITY_SERVER = """
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int
         + coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved_connections,
       (SELECT count(*)::int FROM pg_stat_activity a
         WHERE a.backend_type = 'client backend' OR a.backend_type IS NULL AND a.usesysid IS NOT NULL)
         AS client_connections,
       (SELECT count(*)::int FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE NOT l.granted AND a.datname = ANY(%(databases)s)) AS waiting_locks
"""


# -- connection and errors ----------------------------------------------------------------

def _message(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:300] + "…"


def _redact(text: str, dsn: str) -> str:
    """libpq may quote the connection string it could not parse: never let the password out."""
    import psycopg  # noqa: PLC0415 - psycopg is imported on first use
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        return re.sub(r'"[^"]*"', '"…"', text)  # unparseable: any quoted part may hold it
    return text.replace(str(password), "…") if password else text


def _classify(exc: psycopg.Error, what: str, *, dsn: str | None = None) -> RemediationError:
    """A psycopg error as Temporary (retry may help) or Permanent (it will not)."""
    import psycopg  # noqa: PLC0415 - loaded by the connection that failed

    text = _message(exc) if dsn is None else _redact(_message(exc), dsn)
    message = f"{what}: {text}"
    state = exc.sqlstate
    if state is None:
        if isinstance(exc, psycopg.ProgrammingError | psycopg.InterfaceError | psycopg.NotSupportedError):
            return PermanentError(message)  # a malformed DSN, a driver misuse
        if any(p in text for p in _PERMANENT_CONNECT):
            return PermanentError(message)
        return TemporaryError(message)
    if state.startswith(_TEMPORARY_CLASSES) or state in _TEMPORARY_STATES:
        return TemporaryError(message)
    return PermanentError(message)


@asynccontextmanager
async def _connect(target: PostgresTarget, what: str) -> AsyncIterator[Connection]:
    """One autocommit connection; psycopg errors inside come out classified."""
    import psycopg  # noqa: PLC0415 - psycopg is imported on first use
    from psycopg.rows import dict_row  # noqa: PLC0415

    dsn = target.dsn.reveal()
    try:
        conn = await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, row_factory=dict_row,
            connect_timeout=_CONNECT_TIMEOUT, fallback_application_name="remediator",
        )
    except psycopg.Error as exc:
        raise _classify(exc, f"{what}: cannot connect", dsn=dsn) from None
    try:
        await conn.execute(_STATEMENT_TIMEOUT)
        yield conn
    except psycopg.Error as exc:
        raise _classify(exc, what) from None
    finally:
        await conn.close()


async def _rows(conn: Connection, sql: str, args: Mapping[str, Any]) -> list[DictRow]:
    cur = await conn.execute(sql, args)
    return await cur.fetchall()


async def _signal(conn: Connection, sql: str, args: Mapping[str, Any]) -> bool | None:
    """Run one re-check-and-signal statement: None when the backend no longer matches."""
    rows = await _rows(conn, sql, args)
    return bool(rows[0]["signalled"]) if rows else None


# -- what plans list and executes read back -----------------------------------------------

def _excerpt(query: str | None) -> str:
    return " ".join((query or "").split())


def _seconds(value: float | None) -> str:
    return format_duration(timedelta(seconds=round(value or 0)))


def _session_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A pg_stat_activity row as plain JSON data (plans go to the audit log)."""
    return {
        "pid": row["pid"],
        "backend_start": row["backend_start"].isoformat(),
        "query_start": row["query_start"].isoformat() if row["query_start"] else None,
        "user": row["usename"],
        "database": row["datname"],
        "application_name": row["application_name"],
        "state": row["state"],
        "idle_for": _seconds(row["idle_seconds"]),
        "running_for": _seconds(row["running_seconds"]),
        "wait_event": ":".join(filter(None, (row["wait_event_type"], row["wait_event"]))) or None,
        "query": _excerpt(row["query"]),
    }


@dataclass(frozen=True, slots=True)
class _Planned:
    """One session a plan listed, as execute needs it back."""

    pid: int
    backend_start: datetime
    query_start: datetime | None
    record: Mapping[str, Any]

    def key(self) -> dict[str, Any]:
        return {"pid": self.pid, "backend_start": self.backend_start, "query_start": self.query_start}


def _planned(plan: Plan, key: str) -> list[_Planned]:
    try:
        return [
            _Planned(
                pid=int(s["pid"]),
                backend_start=datetime.fromisoformat(s["backend_start"]),
                query_start=datetime.fromisoformat(s["query_start"]) if s["query_start"] else None,
                record=dict(s),
            )
            for s in plan.details.get(key, [])
        ]
    except (KeyError, TypeError, ValueError):
        raise PermanentError(f"the plan's {key} are malformed; plan again") from None


def _describe(record: Mapping[str, Any], how_long: str) -> str:
    app = f" app {record['application_name']!r}" if record["application_name"] else ""
    query = record["query"] or "(no query yet)"
    return (f"pid {record['pid']}: {record['user']}@{record['database']}{app}, "
            f"{record['state']} for {record[how_long]}: {query}")


# -- the actions ----------------------------------------------------------------------------

class _PostgresAction:
    """What the three actions share: the target, the allow-list, the subject."""

    name: ClassVar[str]

    def _target(self, ctx: ActionContext) -> PostgresTarget:
        if not isinstance(ctx.target, PostgresTarget):
            raise PermanentError(f"{self.name} needs a postgres target, got {ctx.target_name!r}")
        return ctx.target

    def _databases(self, ctx: ActionContext, database: str | None) -> list[str]:
        target = self._target(ctx)
        if database is None:
            return list(target.databases)
        if database not in target.databases:
            raise TargetNotAllowed(
                f"database {database!r} is not among the databases of target {ctx.target_name!r} "
                f"({', '.join(target.databases)})"
            )
        return [database]

    def _subject(self, ctx: ActionContext, database: str | None) -> str:
        return f"{ctx.target_name}/database/{database or '*'}"

    def _filter_args(self, ctx: ActionContext, params: _SessionFilter) -> dict[str, Any]:
        target = self._target(ctx)
        return {
            "databases": self._databases(ctx, params.database),
            "user": params.user,
            "application_name": params.application_name,
            "allow_superuser": target.allow_superuser,
            "allow_replication": target.allow_replication,
            "excerpt": _EXCERPT,
        }

    def _scope(self, ctx: ActionContext, params: _SessionFilter) -> str:
        target = self._target(ctx)
        words = [f"in database {', '.join(self._databases(ctx, params.database))}"]
        if params.user is not None:
            words.append(f"of role {params.user!r}")
        if params.application_name is not None:
            words.append(f"with application_name {params.application_name!r}")
        never = ["this session"]
        if not target.allow_superuser:
            never.append("superuser sessions")
        if not target.allow_replication:
            never.append("replication sessions")
        return " ".join(words) + "; never " + ", ".join(never)


async def _privilege_notes(conn: Connection, *, signal: bool) -> tuple[dict[str, Any], list[str]]:
    """What the connecting role may see and end, and a warning for what it lacks."""
    rows = await _rows(conn, _PRIVILEGES, {})
    privileges = dict(rows[0]) if rows else {}
    notes = []
    if not privileges.get("superuser") and not privileges.get("read_all_stats"):
        notes.append(f"warning: role {privileges.get('role')!r} lacks pg_read_all_stats: "
                     "other roles' sessions show no state and cannot be selected")
    if signal and not privileges.get("superuser") and not privileges.get("signal_backend"):
        notes.append(f"warning: role {privileges.get('role')!r} lacks pg_signal_backend: "
                     "it can end only sessions of roles it is a member of")
    return privileges, notes


class _Outcomes:
    """Per-session outcomes of an execute, and the errors met on the way."""

    def __init__(self, key: str, planned: Sequence[_Planned]) -> None:
        self.key = key
        self.records = {p.pid: dict(p.record) for p in planned}
        self.errors: list[str] = []

    def set(self, pid: int, outcome: str, **extra: Any) -> None:
        self.records[pid].update(outcome=outcome, **extra)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.records.values() if r.get("outcome") == outcome)

    async def run(self, pid: int, conn: Connection, sql: str, args: Mapping[str, Any]) -> bool | None:
        """One statement for one pid: a permanent error is recorded and the others go on."""
        import psycopg  # noqa: PLC0415 - loaded with the connection

        try:
            return await _signal(conn, sql, args)
        except psycopg.Error as exc:
            error = _classify(exc, f"pid {pid}")
            if isinstance(error, TemporaryError):
                raise TemporaryError(f"{error} (outcomes so far: {self.summary()})") from None
            self.errors.append(str(error))
            self.set(pid, "failed", error=str(error))
            return None

    def summary(self) -> str:
        return ", ".join(f"{pid} {r.get('outcome', 'not tried')}" for pid, r in self.records.items())

    def finish(self, summary: str) -> Result:
        if self.errors:
            raise PermanentError(f"{summary}; failed: {'; '.join(self.errors)}")
        return Result(summary=summary, details={self.key: list(self.records.values())})


class TerminateIdle(_PostgresAction, Action[TerminateIdleParams]):
    """End sessions idle for too long (pool exhausted by leaked or stuck connections)."""

    name = "postgres.terminate_idle"
    description = "pg_terminate_backend of sessions idle longer than idle_for, scoped and capped"
    params_model = TerminateIdleParams
    destructive = True
    execute_is_idempotent = True  # each pid is re-checked against the criteria before it is ended
    target_kinds = frozenset({"postgres"})
    timeout = 30.0
    permissions = (
        "pg_signal_backend role (or superuser) to end other roles' sessions",
        "pg_read_all_stats role (or superuser) to see other roles' session states",
    )

    def check_allowed(self, ctx: ActionContext, params: TerminateIdleParams) -> None:
        self._databases(ctx, params.database)

    def subject(self, ctx: ActionContext, params: TerminateIdleParams) -> str:
        return self._subject(ctx, params.database)

    def _args(self, ctx: ActionContext, params: TerminateIdleParams) -> dict[str, Any]:
        return self._filter_args(ctx, params) | {
            "states": list(params.states), "idle_for": params.idle_for, "limit": params.max_sessions,
        }

    async def plan(self, ctx: ActionContext, params: TerminateIdleParams) -> Plan:
        args = self._args(ctx, params)
        async with _connect(self._target(ctx), self.name) as conn:
            privileges, notes = await _privilege_notes(conn, signal=True)
            rows = await _rows(conn, _SELECT_IDLE, args)
        sessions = [_session_record(r) for r in rows]
        matched = rows[0]["matched"] if rows else 0
        steps = [f"select sessions {' or '.join(map(repr, params.states))} for over "
                 f"{format_duration(params.idle_for)} {self._scope(ctx, params)}"]
        if not sessions:
            steps.append("no session matches: nothing to terminate")
        else:
            if matched > len(sessions):
                steps.append(f"{matched} sessions match; max_sessions keeps the {len(sessions)} idle longest")
            steps += [f"pg_terminate_backend {_describe(s, 'idle_for')}" for s in sessions]
            steps.append("each only if, when executed, it is the same backend and still idle past "
                         f"{format_duration(params.idle_for)}")
        return Plan(
            action=self.name, target=ctx.target_name, steps=(*steps, *notes), destructive=True,
            details={"databases": args["databases"], "matched": matched, "sessions": sessions,
                     "privileges": privileges},
        )

    async def execute(self, ctx: ActionContext, params: TerminateIdleParams, plan: Plan) -> Result:
        planned = _planned(plan, "sessions")
        outcomes = _Outcomes("sessions", planned)
        if not planned:
            return outcomes.finish("nothing to terminate: no session matched when planned")
        args = self._args(ctx, params)
        async with _connect(self._target(ctx), self.name) as conn:
            for p in planned:
                signalled = await outcomes.run(p.pid, conn, _TERMINATE_IDLE, args | p.key())
                if signalled:
                    outcomes.set(p.pid, "terminated", terminated=True)
                elif signalled is False:
                    outcomes.set(p.pid, "gone before the signal", terminated=False)
                elif "outcome" not in outcomes.records[p.pid]:
                    outcomes.set(p.pid, "no longer matches (busy again, gone or a new backend)",
                                 terminated=False)
        done = outcomes.count("terminated")
        return outcomes.finish(f"terminated {done} of {len(planned)} planned sessions")


class CancelLongQueries(_PostgresAction, Action[CancelLongQueriesParams]):
    """Cancel queries running too long; terminate those a cancel does not stop within grace."""

    name = "postgres.cancel_long_queries"
    description = "pg_cancel_backend of queries running longer than running_for, then terminate after grace"
    params_model = CancelLongQueriesParams
    destructive = True
    execute_is_idempotent = True  # each pid is re-checked against the criteria before it is ended
    target_kinds = frozenset({"postgres"})
    # Above the longest grace, with room for the cancels, the checks and the terminations.
    timeout = _MAX_GRACE.total_seconds() + 30.0
    permissions = TerminateIdle.permissions

    def check_allowed(self, ctx: ActionContext, params: CancelLongQueriesParams) -> None:
        self._databases(ctx, params.database)

    def subject(self, ctx: ActionContext, params: CancelLongQueriesParams) -> str:
        return self._subject(ctx, params.database)

    def _args(self, ctx: ActionContext, params: CancelLongQueriesParams) -> dict[str, Any]:
        return self._filter_args(ctx, params) | {
            "running_for": params.running_for, "limit": params.max_queries,
        }

    async def plan(self, ctx: ActionContext, params: CancelLongQueriesParams) -> Plan:
        args = self._args(ctx, params)
        async with _connect(self._target(ctx), self.name) as conn:
            privileges, notes = await _privilege_notes(conn, signal=True)
            rows = await _rows(conn, _SELECT_LONG, args)
        queries = [_session_record(r) for r in rows]
        matched = rows[0]["matched"] if rows else 0
        grace = format_duration(params.grace)
        steps = [f"select queries active for over {format_duration(params.running_for)} "
                 f"{self._scope(ctx, params)}"]
        if not queries:
            steps.append("no query matches: nothing to cancel")
        else:
            if matched > len(queries):
                steps.append(f"{matched} queries match; max_queries keeps the {len(queries)} running longest")
            steps += [f"pg_cancel_backend {_describe(q, 'running_for')}" for q in queries]
            steps.append(f"wait up to {grace} for them to stop, then pg_terminate_backend each still "
                         "running the same query (same pid and query start)")
        return Plan(
            action=self.name, target=ctx.target_name, steps=(*steps, *notes), destructive=True,
            details={"databases": args["databases"], "matched": matched, "queries": queries,
                     "grace": grace, "privileges": privileges},
        )

    async def execute(self, ctx: ActionContext, params: CancelLongQueriesParams, plan: Plan) -> Result:
        planned = [p for p in _planned(plan, "queries") if p.query_start is not None]
        outcomes = _Outcomes("queries", planned)
        if not planned:
            return outcomes.finish("nothing to cancel: no query matched when planned")
        args = self._args(ctx, params)
        async with _connect(self._target(ctx), self.name) as conn:
            cancelled = []
            for p in planned:
                signalled = await outcomes.run(p.pid, conn, _CANCEL_LONG, args | p.key())
                if signalled:
                    cancelled.append(p)
                    outcomes.set(p.pid, "cancelled", cancelled=True, terminated=False)
                elif signalled is False:
                    outcomes.set(p.pid, "gone before the cancel", cancelled=False, terminated=False)
                elif "outcome" not in outcomes.records[p.pid]:
                    outcomes.set(p.pid, "no longer running that query", cancelled=False, terminated=False)
            stubborn = await self._wait(conn, cancelled, params.grace)
            for p in stubborn:
                signalled = await outcomes.run(p.pid, conn, _TERMINATE_LONG, args | p.key())
                if signalled:
                    outcomes.set(p.pid, "terminated after grace", terminated=True)
        summary = (f"cancelled {outcomes.count('cancelled')} and terminated "
                   f"{outcomes.count('terminated after grace')} of {len(planned)} planned queries")
        return outcomes.finish(summary)

    async def _wait(self, conn: Connection, cancelled: list[_Planned], grace: timedelta) -> list[_Planned]:
        """Poll until every cancelled query stopped or grace passed; the ones still running."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace.total_seconds()
        remaining = cancelled
        while remaining:
            running = {r["pid"] for r in await _rows(conn, _STILL_RUNNING, {
                "pids": [p.pid for p in remaining],
                "backend_starts": [p.backend_start for p in remaining],
                "query_starts": [p.query_start for p in remaining],
            })}
            remaining = [p for p in remaining if p.pid in running]
            left = deadline - loop.time()
            if not remaining or left <= 0:
                break
            await asyncio.sleep(min(_POLL, left))
        return remaining


class Activity(_PostgresAction, Action[ActivityParams]):
    """Read-only evidence: sessions by state, the longest queries, lock waits, headroom."""

    name = "postgres.activity"
    description = "Sessions by state, longest-running queries, waiting locks, connection headroom"
    params_model = ActivityParams
    read_only = True
    target_kinds = frozenset({"postgres"})
    timeout = 15.0
    permissions = ("pg_read_all_stats role (or superuser) to see other roles' sessions",)

    def check_allowed(self, ctx: ActionContext, params: ActivityParams) -> None:
        self._databases(ctx, params.database)

    def subject(self, ctx: ActionContext, params: ActivityParams) -> str:
        return self._subject(ctx, params.database)

    async def plan(self, ctx: ActionContext, params: ActivityParams) -> Plan:
        databases = self._databases(ctx, params.database)
        return Plan(
            action=self.name, target=ctx.target_name, destructive=False,
            steps=(f"read pg_stat_activity of database {', '.join(databases)}: sessions by state and "
                   f"the {_LONGEST} longest-running queries",
                   "read pg_locks: lock requests not granted",
                   "read max_connections and reserved connections: connection headroom"),
            details={"databases": databases},
        )

    async def execute(self, ctx: ActionContext, params: ActivityParams, plan: Plan) -> Result:
        args = {"databases": self._databases(ctx, params.database), "excerpt": _EXCERPT, "limit": _LONGEST}
        async with _connect(self._target(ctx), self.name) as conn:
            states = {r["state"]: r["sessions"] for r in await _rows(conn, _ACTIVITY_STATES, args)}
            longest = await _rows(conn, _ACTIVITY_LONGEST, args)
            server = (await _rows(conn, _ACTIVITY_SERVER, args))[0]
        headroom = server["max_connections"] - server["reserved_connections"] - server["client_connections"]
        queries = [{
            "pid": r["pid"], "user": r["usename"], "database": r["datname"],
            "application_name": r["application_name"], "running_for": _seconds(r["running_seconds"]),
            "wait_event": ":".join(filter(None, (r["wait_event_type"], r["wait_event"]))) or None,
            "query": _excerpt(r["query"]),
        } for r in longest]
        by_state = ", ".join(f"{state} {n}" for state, n in states.items()) or "none"
        return Result(
            summary=(f"{sum(states.values())} sessions ({by_state}); {server['waiting_locks']} waiting "
                     f"locks; headroom {headroom} of {server['max_connections']} connections"),
            details={"databases": args["databases"], "sessions_by_state": states, "longest_queries": queries,
                     "waiting_locks": server["waiting_locks"], "max_connections": server["max_connections"],
                     "reserved_connections": server["reserved_connections"],
                     "client_connections": server["client_connections"], "headroom": headroom},
        )

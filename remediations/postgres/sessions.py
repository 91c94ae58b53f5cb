"""Sessions of ``pg_stat_activity``: which may be ended, how plans list them, how each ends.

Shared by the actions that end sessions, ``remediations.postgres.terminate_idle`` and
``remediations.postgres.cancel_long_queries`` (:class:`SessionAction`, their params'
:class:`SessionFilter`), and by ``remediations.postgres.activity`` for showing a query.
``plan()`` selects the sessions and lists them; ``execute()`` ends only those, each in one
statement that re-checks the criteria and the backend's start time, so a pid reused by a
new backend, or a session busy again, is left alone. This session, replication sessions
and superuser sessions are never ended unless the target allows it. SQL here is fixed
text: every value from params is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field

from remediations.base import ActionContext, PermanentError, Plan, Result, TemporaryError
from remediations.postgres.connection import pg_error, rows
from remediations.postgres.target import DatabaseParams, PgName, PostgresAction
from rules.durations import format_duration

if TYPE_CHECKING:
    from remediations.postgres.connection import Connection

EXCERPT = 200  # characters of a query shown in plans and results
SIGNAL_PERMISSIONS = (
    "pg_signal_backend role (or superuser) to end other roles' sessions",
    "pg_read_all_stats role (or superuser) to see other roles' session states",
)


def at_least_a_second(value: timedelta) -> timedelta:
    """A validator of ``idle_for``/``running_for``: shorter would end sessions that just paused."""
    if value < timedelta(seconds=1):
        raise ValueError("must be at least 1s")
    return value


class SessionFilter(DatabaseParams):
    """The params that scope which sessions an action may end."""

    database: PgName | None = Field(
        default=None,
        description="Only sessions of this database (must be in the target's databases); "
        "default: every database of the target",
    )
    user: PgName | None = Field(default=None, description="Only sessions of this role")
    application_name: PgName | None = Field(
        default=None, description="Only sessions with exactly this application_name"
    )


# -- SQL: fixed text, values only as bound parameters ------------------------------------

FROM = """
FROM pg_stat_activity a
LEFT JOIN pg_roles r ON r.oid = a.usesysid
"""

# Which sessions may be ended at all. Unknown roles count as superuser and replication.
ELIGIBLE = """
    a.pid <> pg_backend_pid()
    AND a.datname = ANY(%(databases)s)
    AND (%(user)s::text IS NULL OR a.usename = %(user)s::text)
    AND (%(application_name)s::text IS NULL OR a.application_name = %(application_name)s::text)
    AND (%(allow_superuser)s OR NOT coalesce(r.rolsuper, true))
    AND (a.backend_type = 'client backend' AND NOT coalesce(r.rolreplication, true)
         OR %(allow_replication)s AND a.backend_type IN ('client backend', 'walsender'))
"""

SESSION_COLUMNS = """
    a.pid, a.backend_start, a.query_start, a.usename, a.datname, a.application_name, a.state,
    extract(epoch FROM now() - a.state_change)::float8 AS idle_seconds,
    extract(epoch FROM now() - a.query_start)::float8 AS running_seconds,
    a.wait_event_type, a.wait_event, left(a.query, %(excerpt)s) AS query,
    count(*) OVER () AS matched
"""

SAME_BACKEND = " AND a.pid = %(pid)s AND a.backend_start = %(backend_start)s"
SAME_QUERY = SAME_BACKEND + " AND a.query_start = %(query_start)s"

_PRIVILEGES = """
SELECT current_user AS role, r.rolsuper AS superuser,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS read_all_stats,
       pg_has_role(current_user, 'pg_signal_backend', 'USAGE') AS signal_backend
FROM pg_roles r WHERE r.rolname = current_user
"""


# -- what plans list and executes read back -----------------------------------------------

def excerpt(query: str | None) -> str:
    """A query on one line (the SQL already cut it to :data:`EXCERPT` characters)."""
    return " ".join((query or "").split())


def seconds(value: float | None) -> str:
    """Seconds from ``pg_stat_activity`` as a duration (``5m30s``)."""
    return format_duration(timedelta(seconds=round(value or 0)))


def session_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A pg_stat_activity row as plain JSON data (plans go to the audit log)."""
    return {
        "pid": row["pid"],
        "backend_start": row["backend_start"].isoformat(),
        "query_start": row["query_start"].isoformat() if row["query_start"] else None,
        "user": row["usename"],
        "database": row["datname"],
        "application_name": row["application_name"],
        "state": row["state"],
        "idle_for": seconds(row["idle_seconds"]),
        "running_for": seconds(row["running_seconds"]),
        "wait_event": ":".join(filter(None, (row["wait_event_type"], row["wait_event"]))) or None,
        "query": excerpt(row["query"]),
    }


@dataclass(frozen=True, slots=True)
class Planned:
    """One session a plan listed, as execute needs it back."""

    pid: int
    backend_start: datetime
    query_start: datetime | None
    record: Mapping[str, Any]

    def key(self) -> dict[str, Any]:
        return {"pid": self.pid, "backend_start": self.backend_start, "query_start": self.query_start}


def planned(plan: Plan, key: str) -> list[Planned]:
    """The sessions ``plan.details[key]`` lists; a malformed list is a PermanentError."""
    try:
        return [
            Planned(
                pid=int(s["pid"]),
                backend_start=datetime.fromisoformat(s["backend_start"]),
                query_start=datetime.fromisoformat(s["query_start"]) if s["query_start"] else None,
                record=dict(s),
            )
            for s in plan.details.get(key, [])
        ]
    except (KeyError, TypeError, ValueError):
        raise PermanentError(f"the plan's {key} are malformed; plan again") from None


def describe(record: Mapping[str, Any], how_long: str) -> str:
    """One plan step's words for a session: pid, role@database, app, state, how long, query."""
    app = f" app {record['application_name']!r}" if record["application_name"] else ""
    query = record["query"] or "(no query yet)"
    return (f"pid {record['pid']}: {record['user']}@{record['database']}{app}, "
            f"{record['state']} for {record[how_long]}: {query}")


async def privilege_notes(conn: Connection, *, signal: bool) -> tuple[dict[str, Any], list[str]]:
    """What the connecting role may see and end, and a warning for what it lacks."""
    found = await rows(conn, _PRIVILEGES, {})
    privileges = dict(found[0]) if found else {}
    notes = []
    if not privileges.get("superuser") and not privileges.get("read_all_stats"):
        notes.append(f"warning: role {privileges.get('role')!r} lacks pg_read_all_stats: "
                     "other roles' sessions show no state and cannot be selected")
    if signal and not privileges.get("superuser") and not privileges.get("signal_backend"):
        notes.append(f"warning: role {privileges.get('role')!r} lacks pg_signal_backend: "
                     "it can end only sessions of roles it is a member of")
    return privileges, notes


async def _signal(conn: Connection, sql: str, args: Mapping[str, Any]) -> bool | None:
    """Run one re-check-and-signal statement: None when the backend no longer matches."""
    found = await rows(conn, sql, args)
    return bool(found[0]["signalled"]) if found else None


class Outcomes:
    """Per-session outcomes of an execute, and the errors met on the way."""

    def __init__(self, key: str, planned: Sequence[Planned]) -> None:
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
            error = pg_error(exc, f"pid {pid}")
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


S = TypeVar("S", bound=SessionFilter)


class SessionAction(PostgresAction[S]):
    """An action that ends sessions: the bound values of :data:`ELIGIBLE`, the scope in words."""

    def _filter_args(self, ctx: ActionContext, params: S) -> dict[str, Any]:
        target = self._target(ctx)
        return {
            "databases": self._databases(ctx, params.database),
            "user": params.user,
            "application_name": params.application_name,
            "allow_superuser": target.allow_superuser,
            "allow_replication": target.allow_replication,
            "excerpt": EXCERPT,
        }

    def _scope(self, ctx: ActionContext, params: S) -> str:
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

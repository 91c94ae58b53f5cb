"""``postgres.activity``: read-only evidence of a PostgreSQL server under pressure.

Run by ``receiver.flow.workers``, usually as a rule's ``diagnose:`` step: sessions by
state, the longest-running queries, lock requests not granted and the connection
headroom, of the target's databases (or the one named). Its plan reads nothing, so a dry
run touches no server. Queries are shown as ``remediations.postgres.sessions`` shows them.
"""

from __future__ import annotations

from pydantic import Field

from remediations.base import ActionContext, Plan, Result
from remediations.postgres.connection import connect, rows
from remediations.postgres.sessions import EXCERPT, excerpt, seconds
from remediations.postgres.target import DatabaseParams, PgName, PostgresAction

_LONGEST = 5


class ActivityParams(DatabaseParams):
    database: PgName | None = Field(
        default=None, description="One database of the target; default: all of them"
    )


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


class Activity(PostgresAction[ActivityParams]):
    """Read-only evidence: sessions by state, the longest queries, lock waits, headroom."""

    name = "postgres.activity"
    description = "Sessions by state, longest-running queries, waiting locks, connection headroom"
    params_model = ActivityParams
    read_only = True
    timeout = 15.0
    permissions = ("pg_read_all_stats role (or superuser) to see other roles' sessions",)

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
        args = {"databases": self._databases(ctx, params.database), "excerpt": EXCERPT, "limit": _LONGEST}
        async with connect(self._target(ctx), self.name) as conn:
            states = {r["state"]: r["sessions"] for r in await rows(conn, _ACTIVITY_STATES, args)}
            longest = await rows(conn, _ACTIVITY_LONGEST, args)
            server = (await rows(conn, _ACTIVITY_SERVER, args))[0]
        headroom = server["max_connections"] - server["reserved_connections"] - server["client_connections"]
        queries = [{
            "pid": r["pid"], "user": r["usename"], "database": r["datname"],
            "application_name": r["application_name"], "running_for": seconds(r["running_seconds"]),
            "wait_event": ":".join(filter(None, (r["wait_event_type"], r["wait_event"]))) or None,
            "query": excerpt(r["query"]),
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

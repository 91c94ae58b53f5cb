"""``postgres.cancel_long_queries``: cancel queries running too long, terminate the stubborn.

Run by ``receiver.flow.workers`` against a ``kind: postgres`` target. Selection, the
per-session re-check and the outcomes are the ones of ``remediations.postgres.sessions``;
this module adds the running-time criteria and the grace: each planned query is cancelled
(``pg_cancel_backend``), and one still running the same query (same pid and query start)
after ``grace`` is terminated.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from remediations.base import ActionContext, Plan, Result
from remediations.postgres.connection import connect, rows
from remediations.postgres.sessions import (
    ELIGIBLE,
    FROM,
    SAME_QUERY,
    SESSION_COLUMNS,
    SIGNAL_PERMISSIONS,
    Outcomes,
    Planned,
    SessionAction,
    SessionFilter,
    at_least_a_second,
    describe,
    planned,
    privilege_notes,
    session_record,
)
from rules.durations import format_duration
from rules.model import Duration

if TYPE_CHECKING:
    from remediations.postgres.connection import Connection

_MAX_GRACE = timedelta(minutes=2)
_POLL = 0.2  # seconds between checks while a cancel takes effect


class CancelLongQueriesParams(SessionFilter):
    running_for: Duration = Field(description="Queries running for longer than this, e.g. 5m")
    grace: Duration = Field(
        default="30s",  # validated like a rule's value, so the JSON Schema shows "30s"
        validate_default=True,
        description="How long a cancel may take before the session is terminated (at most 2m)",
    )
    max_queries: int = Field(default=10, ge=1, le=100, description="At most this many, longest first")

    _running_for = field_validator("running_for")(at_least_a_second)

    @field_validator("grace")
    @classmethod
    def _bounded_grace(cls, value: timedelta) -> timedelta:
        if value > _MAX_GRACE:
            raise ValueError(f"must be at most {format_duration(_MAX_GRACE)}")
        return value


_LONG = """
    AND a.state = 'active'
    AND a.query_start < now() - %(running_for)s::interval
"""
_SELECT_LONG = (f"SELECT {SESSION_COLUMNS} {FROM} WHERE {ELIGIBLE} {_LONG}"
                " ORDER BY a.query_start, a.pid LIMIT %(limit)s")
_CANCEL_LONG = (f"SELECT pg_cancel_backend(a.pid) AS signalled {FROM}"
                f" WHERE {ELIGIBLE} {_LONG}{SAME_QUERY}")
_TERMINATE_LONG = (f"SELECT pg_terminate_backend(a.pid) AS signalled {FROM}"
                   f" WHERE {ELIGIBLE} {_LONG}{SAME_QUERY}")
_STILL_RUNNING = """
SELECT a.pid
FROM pg_stat_activity a
JOIN unnest(%(pids)s::int[], %(backend_starts)s::timestamptz[], %(query_starts)s::timestamptz[])
     AS p(pid, backend_start, query_start)
  ON p.pid = a.pid AND p.backend_start = a.backend_start AND p.query_start = a.query_start
WHERE a.state = 'active'
"""


class CancelLongQueries(SessionAction[CancelLongQueriesParams]):
    """Cancel queries running too long; terminate those a cancel does not stop within grace."""

    name = "postgres.cancel_long_queries"
    description = "pg_cancel_backend of queries running longer than running_for, then terminate after grace"
    params_model = CancelLongQueriesParams
    destructive = True
    execute_is_idempotent = True  # each pid is re-checked against the criteria before it is ended
    # Above the longest grace, with room for the cancels, the checks and the terminations.
    timeout = _MAX_GRACE.total_seconds() + 30.0
    permissions = SIGNAL_PERMISSIONS

    def _args(self, ctx: ActionContext, params: CancelLongQueriesParams) -> dict[str, Any]:
        return self._filter_args(ctx, params) | {
            "running_for": params.running_for, "limit": params.max_queries,
        }

    async def plan(self, ctx: ActionContext, params: CancelLongQueriesParams) -> Plan:
        args = self._args(ctx, params)
        async with connect(self._target(ctx), self.name) as conn:
            privileges, notes = await privilege_notes(conn, signal=True)
            found = await rows(conn, _SELECT_LONG, args)
        queries = [session_record(r) for r in found]
        matched = found[0]["matched"] if found else 0
        grace = format_duration(params.grace)
        steps = [f"select queries active for over {format_duration(params.running_for)} "
                 f"{self._scope(ctx, params)}"]
        if not queries:
            steps.append("no query matches: nothing to cancel")
        else:
            if matched > len(queries):
                steps.append(f"{matched} queries match; max_queries keeps the {len(queries)} running longest")
            steps += [f"pg_cancel_backend {describe(q, 'running_for')}" for q in queries]
            steps.append(f"wait up to {grace} for them to stop, then pg_terminate_backend each still "
                         "running the same query (same pid and query start)")
        return Plan(
            action=self.name, target=ctx.target_name, steps=(*steps, *notes), destructive=True,
            details={"databases": args["databases"], "matched": matched, "queries": queries,
                     "grace": grace, "privileges": privileges},
        )

    async def execute(self, ctx: ActionContext, params: CancelLongQueriesParams, plan: Plan) -> Result:
        queries = [p for p in planned(plan, "queries") if p.query_start is not None]
        outcomes = Outcomes("queries", queries)
        if not queries:
            return outcomes.finish("nothing to cancel: no query matched when planned")
        args = self._args(ctx, params)
        async with connect(self._target(ctx), self.name) as conn:
            cancelled = []
            for p in queries:
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
                   f"{outcomes.count('terminated after grace')} of {len(queries)} planned queries")
        return outcomes.finish(summary)

    async def _wait(self, conn: Connection, cancelled: list[Planned], grace: timedelta) -> list[Planned]:
        """Poll until every cancelled query stopped or grace passed; the ones still running."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace.total_seconds()
        remaining = cancelled
        while remaining:
            running = {r["pid"] for r in await rows(conn, _STILL_RUNNING, {
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

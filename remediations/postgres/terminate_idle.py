"""``postgres.terminate_idle``: end sessions idle for too long, scoped and capped.

Run by ``receiver.flow.workers`` against a ``kind: postgres`` target, for a pool exhausted
by leaked or stuck connections. Selection, the per-session re-check and the outcomes
are the ones of ``remediations.postgres.sessions``; this module adds the idle criteria.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from remediations.base import ActionContext, Plan, Result
from remediations.postgres.connection import connect, rows
from remediations.postgres.sessions import (
    ELIGIBLE,
    FROM,
    SAME_BACKEND,
    SESSION_COLUMNS,
    SIGNAL_PERMISSIONS,
    Outcomes,
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

IdleState = Literal["idle", "idle in transaction", "idle in transaction (aborted)"]
_DEFAULT_STATES: tuple[IdleState, ...] = ("idle", "idle in transaction")


class TerminateIdleParams(SessionFilter):
    idle_for: Duration = Field(description="Idle (state unchanged) for longer than this, e.g. 10m")
    states: list[IdleState] = Field(
        default_factory=lambda: list(_DEFAULT_STATES),
        min_length=1,
        description="Session states that count as idle",
    )
    max_sessions: int = Field(default=10, ge=1, le=500, description="At most this many, idle longest first")

    _idle_for = field_validator("idle_for")(at_least_a_second)

    @field_validator("states")
    @classmethod
    def _unique(cls, value: list[IdleState]) -> list[IdleState]:
        if len(set(value)) != len(value):
            raise ValueError("states must not repeat")
        return value


_IDLE = """
    AND a.state = ANY(%(states)s)
    AND a.state_change < now() - %(idle_for)s::interval
"""
_SELECT_IDLE = (f"SELECT {SESSION_COLUMNS} {FROM} WHERE {ELIGIBLE} {_IDLE}"
                " ORDER BY a.state_change, a.pid LIMIT %(limit)s")
_TERMINATE_IDLE = (f"SELECT pg_terminate_backend(a.pid) AS signalled {FROM}"
                   f" WHERE {ELIGIBLE} {_IDLE}{SAME_BACKEND}")


class TerminateIdle(SessionAction[TerminateIdleParams]):
    """End sessions idle for too long (pool exhausted by leaked or stuck connections)."""

    name = "postgres.terminate_idle"
    description = "pg_terminate_backend of sessions idle longer than idle_for, scoped and capped"
    params_model = TerminateIdleParams
    destructive = True
    execute_is_idempotent = True  # each pid is re-checked against the criteria before it is ended
    timeout = 30.0
    permissions = SIGNAL_PERMISSIONS

    def _args(self, ctx: ActionContext, params: TerminateIdleParams) -> dict[str, Any]:
        return self._filter_args(ctx, params) | {
            "states": list(params.states), "idle_for": params.idle_for, "limit": params.max_sessions,
        }

    async def plan(self, ctx: ActionContext, params: TerminateIdleParams) -> Plan:
        args = self._args(ctx, params)
        async with connect(self._target(ctx), self.name) as conn:
            privileges, notes = await privilege_notes(conn, signal=True)
            found = await rows(conn, _SELECT_IDLE, args)
        sessions = [session_record(r) for r in found]
        matched = found[0]["matched"] if found else 0
        steps = [f"select sessions {' or '.join(map(repr, params.states))} for over "
                 f"{format_duration(params.idle_for)} {self._scope(ctx, params)}"]
        if not sessions:
            steps.append("no session matches: nothing to terminate")
        else:
            if matched > len(sessions):
                steps.append(f"{matched} sessions match; max_sessions keeps the {len(sessions)} idle longest")
            steps += [f"pg_terminate_backend {describe(s, 'idle_for')}" for s in sessions]
            steps.append("each only if, when executed, it is the same backend and still idle past "
                         f"{format_duration(params.idle_for)}")
        return Plan(
            action=self.name, target=ctx.target_name, steps=(*steps, *notes), destructive=True,
            details={"databases": args["databases"], "matched": matched, "sessions": sessions,
                     "privileges": privileges},
        )

    async def execute(self, ctx: ActionContext, params: TerminateIdleParams, plan: Plan) -> Result:
        sessions = planned(plan, "sessions")
        outcomes = Outcomes("sessions", sessions)
        if not sessions:
            return outcomes.finish("nothing to terminate: no session matched when planned")
        args = self._args(ctx, params)
        async with connect(self._target(ctx), self.name) as conn:
            for p in sessions:
                signalled = await outcomes.run(p.pid, conn, _TERMINATE_IDLE, args | p.key())
                if signalled:
                    outcomes.set(p.pid, "terminated", terminated=True)
                elif signalled is False:
                    outcomes.set(p.pid, "gone before the signal", terminated=False)
                elif "outcome" not in outcomes.records[p.pid]:
                    outcomes.set(p.pid, "no longer matches (busy again, gone or a new backend)",
                                 terminated=False)
        done = outcomes.count("terminated")
        return outcomes.finish(f"terminated {done} of {len(sessions)} planned sessions")

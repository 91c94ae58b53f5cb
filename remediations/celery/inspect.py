"""``celery.inspect``: which workers answer, what they run and hold, how long the queues are; read-only.

Run by ``receiver.flow.workers``, usually under a rule's ``diagnose:``: the runbooks'
``celery inspect ping``, ``celery inspect active``, ``celery inspect reserved`` and
``redis-cli LLEN celery``, through the broker (``remediations.celery.broker``). Tasks are
reported by name, id, worker process and start time; their arguments are not (they may
carry personal data or secrets). At most ``_TASKS_MAX`` tasks per worker are listed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from remediations.base import ActionContext, Plan, Result
from remediations.celery.broker import CeleryAction, queue_size
from remediations.targets import QueueName

if TYPE_CHECKING:
    from celery import Celery

_TASKS_MAX = 20
_WORKER = r"^[A-Za-z0-9_.@-]{1,200}$"


class InspectParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: list[str] | None = Field(
        default=None, min_length=1, max_length=20,
        description="Only these workers (celery@host names); default: every worker that answers")
    queues: list[QueueName] | None = Field(
        default=None, max_length=20,
        description="Queues to measure (in the target's queues); default: all of them")
    timeout: float | None = Field(default=None, gt=0, le=10,
                                  description="Seconds to wait for replies (default: the target's)")

    @field_validator("workers")
    @classmethod
    def _names(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if not re.fullmatch(_WORKER, name):
                raise ValueError(f"{name!r} is not a worker name (celery@host)")
        return value


def _task(task: dict[str, Any]) -> dict[str, Any]:
    inner = task.get("request")
    request: dict[str, Any] = inner if isinstance(inner, dict) else task
    return {"id": request.get("id"), "name": request.get("name") or request.get("type"),
            "worker_pid": request.get("worker_pid"), "time_start": request.get("time_start"),
            "acknowledged": request.get("acknowledged"),
            "queue": (request.get("delivery_info") or {}).get("routing_key")}


class CeleryInspect(CeleryAction[InspectParams]):
    """``celery inspect ping/active/reserved`` and the queues' lengths; changes nothing."""

    name = "celery.inspect"
    description = ("Which Celery workers answer (ping), their active and reserved tasks, queue lengths "
                   "(read-only)")
    params_model = InspectParams
    read_only = True
    permissions = ("broker: publish to the pidbox exchange and read replies (remote control)",
                   "broker: count the messages of the target's queues")

    def check_allowed(self, ctx: ActionContext, params: InspectParams) -> None:
        self.check_queues(ctx, params.queues or [])

    def _queues(self, ctx: ActionContext, params: InspectParams) -> list[str]:
        return params.queues if params.queues is not None else self.target(ctx).queues

    async def plan(self, ctx: ActionContext, params: InspectParams) -> Plan:
        target = self.target(ctx)
        timeout = params.timeout or target.timeout
        who = ", ".join(params.workers) if params.workers else "every worker"
        queues = self._queues(ctx, params)
        steps = (f"broadcast ping, active and reserved to {who} through the {target.control_exchange} "
                 f"control exchange; wait {timeout}s for replies",
                 "count the messages waiting in queue(s) " + ", ".join(queues),
                 "report who answered, each worker's active and reserved tasks (name, id, start; not their "
                 "arguments) and the queue lengths; change nothing")
        return Plan(action=self.name, target=ctx.target_name, steps=steps if queues else (steps[0], steps[2]),
                    destructive=False,
                    details={"workers": params.workers, "queues": queues, "timeout": timeout})

    async def execute(self, ctx: ActionContext, params: InspectParams, plan: Plan) -> Result:
        timeout = params.timeout or self.target(ctx).timeout
        queues = self._queues(ctx, params)

        def read(app: Celery) -> dict[str, Any]:
            with app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1)
                inspect = app.control.inspect(destination=params.workers, timeout=timeout,
                                              connection=connection)
                pings = app.control.ping(destination=params.workers, timeout=timeout,
                                         connection=connection) or []
                active = inspect.active() or {}
                reserved = inspect.reserved() or {}
                lengths = {q: queue_size(connection, q) for q in queues}
            answered = sorted({name for reply in pings for name in reply} | set(active) | set(reserved))
            workers = {name: {"active": [_task(t) for t in (active.get(name) or [])[:_TASKS_MAX]],
                              "active_count": len(active.get(name) or []),
                              "reserved": [_task(t) for t in (reserved.get(name) or [])[:_TASKS_MAX]],
                              "reserved_count": len(reserved.get(name) or [])} for name in answered}
            silent = sorted(set(params.workers or []) - set(answered))
            return {"answered": answered, "silent": silent, "workers": workers, "queues": lengths}

        found = await self.in_thread(ctx, "celery inspect", read)
        silent = found["silent"]
        parts = [f"{len(found['answered'])} worker(s) answered"
                 + (f", {len(silent)} did not ({', '.join(silent)})" if silent else "")]
        parts += [f"{name}: {w['active_count']} active, {w['reserved_count']} reserved"
                  for name, w in found["workers"].items()]
        if found["queues"]:
            parts.append("queues: " + ", ".join(f"{q} {n}" for q, n in found["queues"].items()))
        return Result(summary="; ".join(parts), details=found)

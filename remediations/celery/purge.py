"""``celery.purge``: delete the messages waiting in one named queue, as ``celery amqp queue.purge`` does.

Run by ``receiver.flow.workers`` against a ``kind: celery`` target; always asks approval
(the runbook's "purge failed tasks" throws work away). Only a queue on the target's
``queues`` list, never every queue (``celery purge`` without ``-Q`` empties all the app's
queues: not offered). The plan reads the queue's length; a queue holding more than
``max_messages`` is refused, at plan and again at execute, so an approver's "yes" to 40
messages does not delete 40,000. Tasks a worker has already taken (active or reserved)
are not in the queue and are not touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from remediations.base import ActionContext, PermanentError, Plan, Result
from remediations.celery.broker import CeleryAction, queue_size
from remediations.targets import QueueName

if TYPE_CHECKING:
    from celery import Celery


class PurgeParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    queue: QueueName = Field(description="The one queue to purge (must be in the target's queues)")
    max_messages: int = Field(default=10_000, ge=1, le=10_000_000,
                              description="Refuse when the queue holds more messages than this")


class CeleryPurge(CeleryAction[PurgeParams]):
    """Purge one named queue, bounded by ``max_messages``; approval always."""

    name = "celery.purge"
    description = "Delete the messages waiting in one named Celery queue (queue.purge); always asks approval"
    params_model = PurgeParams
    destructive = True
    approval_always = True  # the messages are gone for good
    permissions = ("broker: count and purge the messages of the target's queues",)

    def check_allowed(self, ctx: ActionContext, params: PurgeParams) -> None:
        self.check_queues(ctx, [params.queue])

    def subject(self, ctx: ActionContext, params: PurgeParams) -> str:
        return f"{ctx.target_name}/queue/{params.queue}"

    def _bounded(self, params: PurgeParams, waiting: int) -> None:
        if waiting > params.max_messages:
            raise PermanentError(f"queue {params.queue} holds {waiting} messages, more than max_messages="
                                 f"{params.max_messages}; nothing was purged")

    async def plan(self, ctx: ActionContext, params: PurgeParams) -> Plan:
        def read(app: Celery) -> int:
            with app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1)
                return queue_size(connection, params.queue)

        waiting = await self.in_thread(ctx, f"length of {params.queue}", read)
        self._bounded(params, waiting)
        details: dict[str, Any] = {"queue": params.queue, "messages": waiting,
                                   "max_messages": params.max_messages}
        if waiting == 0:
            return Plan(action=self.name, target=ctx.target_name, destructive=False, details=details,
                        steps=(f"queue {params.queue} is empty: nothing to purge",))
        return Plan(action=self.name, target=ctx.target_name, destructive=True, details=details, steps=(
            f"purge queue {params.queue}: delete its {waiting} waiting message(s) (and any that arrive "
            f"before execution, up to max_messages={params.max_messages}), as `celery amqp queue.purge` does",
            "tasks workers already hold (active, reserved) are not touched; other queues are not touched",
        ))

    async def execute(self, ctx: ActionContext, params: PurgeParams, plan: Plan) -> Result:
        def purge(app: Celery) -> tuple[int, int]:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1)
                waiting = queue_size(connection, params.queue)
                self._bounded(params, waiting)
                if waiting == 0:
                    return 0, 0
                channel = connection.channel()
                try:
                    purged = channel.queue_purge(params.queue)
                finally:
                    channel.close()
                return waiting, int(purged or 0)

        waiting, purged = await self.in_thread(ctx, f"purge of {params.queue}", purge)
        if waiting == 0:
            return Result(summary=f"queue {params.queue} was empty; nothing purged",
                          details={"queue": params.queue, "purged": 0})
        return Result(summary=f"purged {purged} message(s) from queue {params.queue} "
                              f"(planned {plan.details.get('messages')})",
                      details={"queue": params.queue, "purged": purged,
                               "planned": plan.details.get("messages")})

"""``docker.restart``: restart a container by name, or every allowed container carrying a label.

Run by ``receiver.flow.workers`` against a ``kind: docker`` target: ``docker restart``
(SIGTERM, SIGKILL after ``timeout``, start). Containers are chosen as
``remediations.docker.containers`` chooses them, capped by ``max_containers``; execute
restarts only if the containers are still the ones the plan named.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import Field

from remediations.base import ActionContext, PermanentError, Plan, ReadBack, Result
from remediations.docker.containers import ContainerAction, ContainerSelector, brief, describe
from remediations.docker.engine import engine_error, transport_errors

if TYPE_CHECKING:
    import docker


class RestartParams(ContainerSelector):
    timeout: int = Field(default=10, ge=0, le=120,
                         description="Seconds to wait after SIGTERM before SIGKILL")
    max_containers: int = Field(default=1, ge=1, le=20,
                                description="Refuse when the label chooses more containers than this")


class DockerRestart(ContainerAction[RestartParams]):
    """Restart one container, or every allowed container carrying a label, up to a cap."""

    name = "docker.restart"
    description = "Restart a container by name or label (docker restart), within the target's pattern"
    params_model = RestartParams
    destructive = True
    timeout = 120.0
    permissions = ("containers:list", "containers:inspect", "containers:restart")

    async def plan(self, ctx: ActionContext, params: RestartParams) -> Plan:
        target = self._target(ctx)

        def read(client: docker.DockerClient) -> list[dict[str, Any]]:
            return [brief(c) for c in self._select(client, target, params, limit=params.max_containers)]

        chosen = await self._in_thread(ctx, read)
        steps = [f"restart {describe(b)}: SIGTERM, SIGKILL after {params.timeout}s, then start"
                 for b in chosen]
        if params.label is not None:
            steps.insert(0, f"containers with label {params.label}: "
                            + ", ".join(b["name"] for b in chosen))
        return Plan(
            action=self.name,
            target=ctx.target_name,
            steps=tuple(steps),
            destructive=True,
            details={"containers": chosen, "timeout": params.timeout, "label": params.label},
        )

    async def execute(self, ctx: ActionContext, params: RestartParams, plan: Plan) -> Result:
        target = self._target(ctx)
        planned = [(c["name"], c["id"]) for c in plan.details.get("containers", [])]

        def restart(client: docker.DockerClient) -> list[dict[str, Any]]:
            chosen = self._select(client, target, params, limit=params.max_containers)
            now = [(c.name, c.id) for c in chosen]
            if now != planned:
                raise PermanentError(
                    "the containers changed since the plan: planned "
                    + (", ".join(f"{n} ({i[:12]})" for n, i in planned) or "none") + ", now "
                    + ", ".join(f"{n} ({str(i)[:12]})" for n, i in now) + "; nothing was restarted"
                )
            done: list[dict[str, Any]] = []
            for container in chosen:
                before = brief(container)
                try:
                    container.restart(timeout=params.timeout)
                    container.reload()
                except transport_errors() as exc:
                    already = ", ".join(d["name"] for d in done) or "none"
                    raise engine_error(exc, f"restart of {container.name} (already restarted: {already})") \
                        from None
                after = brief(container)
                done.append({"name": after["name"], "id": after["id"], "state": after["state"],
                             "started_at_before": before["started_at"], "started_at": after["started_at"]})
            return done

        done = await self._in_thread(ctx, restart)
        summary = "restarted " + ", ".join(f"{d['name']} ({d['state']}, started {d['started_at']})"
                                           for d in done)
        return Result(summary=summary, details={"containers": done})

    async def read_back(self, ctx: ActionContext, params: RestartParams, plan: Plan, *,
                        since: float) -> ReadBack | None:
        """The planned containers' ``StartedAt`` now: all started at or after ``since``, done;
        none, not done; some, or other containers than planned, cannot tell."""
        target = self._target(ctx)
        planned = [c["id"] for c in plan.details.get("containers", [])]

        def read(client: docker.DockerClient) -> list[dict[str, Any]]:
            return [brief(c) for c in self._select(client, target, params, limit=params.max_containers)]

        now = await self._in_thread(ctx, read)
        evidence: dict[str, Any] = {
            "sending_since": datetime.fromtimestamp(since, UTC).isoformat(),
            "containers": [{"name": b["name"], "id": b["id"], "started_at": b["started_at"]} for b in now]}
        started = [_started(b["started_at"]) for b in now]
        if [b["id"] for b in now] != planned or None in started:
            return ReadBack(None, evidence)
        after = [at is not None and at >= since for at in started]
        return ReadBack(True if all(after) else False if not any(after) else None, evidence)


def _started(value: object) -> float | None:
    """Docker's ``StartedAt`` (RFC 3339, nanoseconds) as epoch seconds; None when unreadable."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None

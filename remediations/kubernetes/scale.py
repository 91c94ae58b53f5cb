"""``kubernetes.scale``: a Deployment's or StatefulSet's replicas through its scale subresource, bounded.

Run by ``receiver.flow.workers``; shares ``remediations.kubernetes.api`` with the other
Kubernetes actions. ``replicas`` is a count (``5``), a change (``"+2"``, ``"-1"``) or a
factor (``"x1.5"``, rounded up); the result is clamped to the params' ``min``/``max`` and
the target's ``min_replicas``/``max_replicas``, and 0 is refused unless ``allow_zero``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from remediations.base import ActionContext, PermanentError, Plan, ReadBack, Result
from remediations.kubernetes.api import KubernetesAction, WorkloadParams
from remediations.replicas import Replicas, asked, compute, scales_down


class ScaleParams(WorkloadParams):
    replicas: Replicas = Field(
        description='A count (5), a change ("+2", "-1") or a factor ("x1.5", rounded up)')
    min: int | None = Field(default=None, ge=0, description="Never fewer replicas than this")
    max: int | None = Field(default=None, ge=0, description="Never more replicas than this")
    allow_zero: bool = Field(default=False, description="Allow scaling to 0 replicas")

    @model_validator(mode="after")
    def _consistent(self) -> ScaleParams:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if self.replicas == 0 and not self.allow_zero:
            raise ValueError("replicas 0 needs allow_zero: true")
        return self


class KubernetesScale(KubernetesAction[ScaleParams]):
    """``kubectl scale deployment/NAME --replicas=N`` (or ``statefulset/NAME``), bounded."""

    name = "kubernetes.scale"
    description = ("Set a Deployment's or StatefulSet's replicas (count, +/- change or factor), "
                   "clamped to bounds")
    params_model = ScaleParams
    destructive = True
    execute_is_idempotent = True  # re-reads the object; does nothing when it already matches
    permissions = ("get apps/deployments/scale", "patch apps/deployments/scale",
                   "get apps/statefulsets/scale", "patch apps/statefulsets/scale")

    destructive_by = frozenset({"replicas"})

    def is_destructive(self, params: ScaleParams) -> bool:
        return scales_down(params.replicas)

    def bounds(self, ctx: ActionContext, params: ScaleParams) -> tuple[int, int]:
        target = self.target(ctx)
        low = max(params.min or 0, target.min_replicas)
        high = target.max_replicas if params.max is None else min(params.max, target.max_replicas)
        return low, high

    async def plan(self, ctx: ActionContext, params: ScaleParams) -> Plan:
        api = await self.api(ctx)
        scale = await api.read_scale(params.kind, params.namespace, params.name)
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        low, high = self.bounds(ctx, params)
        change = compute(current, params.replicas, low=low, high=high)
        where = self.where(params)
        details: dict[str, Any] = {"namespace": params.namespace, params.kind: params.name,
                                   "asked": asked(params.replicas), "from": current, "to": change.replicas,
                                   "wanted": change.wanted, "min": low, "max": high, "clamp": change.clamp}
        if change.replicas == current:
            return Plan(action=self.name, target=ctx.target_name, destructive=False, details=details,
                        steps=(f"{params.kind} {where} already has {current} replicas "
                               f"({change.note(params.replicas)}): nothing to do",))
        if change.replicas == 0 and not params.allow_zero:
            raise PermanentError(f"scaling {where} from {current} to 0 replicas "
                                 f"({change.note(params.replicas)}) needs allow_zero: true")
        return Plan(
            action=self.name, target=ctx.target_name, destructive=change.replicas < current, details=details,
            steps=(f"scale {where} from {current} to {change.replicas} replicas "
                   f"({change.note(params.replicas)})",
                   f"PATCH {params.kind} {where}/scale (strategic merge patch): "
                   f"spec.replicas = {change.replicas}"),
        )

    async def execute(self, ctx: ActionContext, params: ScaleParams, plan: Plan) -> Result:
        planned_from, planned_to = plan.details["from"], plan.details["to"]
        where = self.where(params)
        if planned_from == planned_to:
            return Result(summary=f"{params.kind} {where} already has {planned_to} replicas; nothing done",
                          details={"replicas": planned_to, "patched": False})
        api = await self.api(ctx)
        scale = await api.read_scale(params.kind, params.namespace, params.name)
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        if current == planned_to:
            return Result(summary=f"{params.kind} {where} already has {planned_to} replicas; nothing done",
                          details={"replicas": planned_to, "patched": False})
        if current != planned_from:
            raise PermanentError(f"{params.kind} {where} changed since the plan: {current} replicas, planned "
                                 f"from {planned_from} to {planned_to}; nothing done")
        await api.patch_scale(params.kind, params.namespace, params.name, {"spec": {"replicas": planned_to}})
        return Result(summary=f"scaled {where} from {planned_from} to {planned_to} replicas",
                      details={"from": planned_from, "replicas": planned_to, "patched": True})

    async def read_back(self, ctx: ActionContext, params: ScaleParams, plan: Plan, *,
                        since: float) -> ReadBack | None:
        """The scale subresource now: at the planned count, done; still at the count it was
        planned from, not done; any other count, someone else changed it (cannot tell)."""
        planned_from, planned_to = plan.details["from"], plan.details["to"]
        api = await self.api(ctx)
        scale = await api.read_scale(params.kind, params.namespace, params.name)
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        evidence = {"replicas_now": current, "planned_from": planned_from, "planned_to": planned_to}
        if current == planned_to:
            return ReadBack(True, evidence)
        return ReadBack(False if current == planned_from else None, evidence)

"""``kubernetes.set_memory_limit``: raise one container's memory limit, bounded, never lower.

Run by ``receiver.flow.workers``; shares ``remediations.kubernetes.api`` with the other
Kubernetes actions. Quantities (``512Mi``, ``1.5Gi``) are read and written by
``remediations.quantity``, which ``docker.set_limits`` uses too.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from remediations.base import ActionContext, PermanentError, Plan, Result
from remediations.kubernetes.api import KubernetesAction, LabelName, WorkloadParams
from remediations.kubernetes.rollout import WORKLOAD_PERMISSIONS, refuse_on_delete
from remediations.quantity import format_bytes, is_binary, parse_quantity


def _memory(text: str) -> str:
    if parse_quantity(text) <= 0:
        raise ValueError(f"{text!r} must be above 0")
    return text.strip()


Quantity = Annotated[str, AfterValidator(_memory)]


class MemoryLimitParams(WorkloadParams):
    container: LabelName = Field(description="Container name in the pod template")
    factor: Decimal | None = Field(default=None, gt=1, le=10, description="Multiply the current limit (1.5)")
    limit: Quantity | None = Field(default=None, description="Raise to this value (4Gi)")
    max: Quantity = Field(description="Never above this value (8Gi)")

    @model_validator(mode="after")
    def _one_way(self) -> MemoryLimitParams:
        if (self.factor is None) == (self.limit is None):
            raise ValueError("give exactly one of factor or limit")
        return self


def memory_limit(workload: dict[str, Any], container: str) -> str | None:
    """The container's memory limit as written, None when it has none."""
    template = (workload.get("spec") or {}).get("template") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    for item in containers:
        if item.get("name") == container:
            limit = ((item.get("resources") or {}).get("limits") or {}).get("memory")
            if limit is None:
                return None
            try:
                parse_quantity(str(limit))
            except ValueError as exc:
                raise PermanentError(f"container {container}: memory limit {exc}") from None
            return str(limit)
    names = ", ".join(c.get("name", "?") for c in containers) or "none"
    name = (workload.get("metadata") or {}).get("name")
    kind = str(workload.get("kind") or "workload").lower()
    raise PermanentError(f"{kind} {name} has no container {container!r} (containers: {names})")


def new_limit(current: str, params: MemoryLimitParams) -> tuple[int, str, str]:
    """The raised limit in bytes, as written, and how it was reached (for the plan)."""
    now = parse_quantity(current)
    if params.factor is not None:
        unit = 2**20 if is_binary(current) else 10**6  # whole Mi (or M) are enough for a limit
        wanted = math.ceil(now * params.factor / unit) * unit
        binary, how = is_binary(current), f"x{params.factor}"
    else:
        assert params.limit is not None  # the model validator guarantees one of the two
        wanted = math.ceil(parse_quantity(params.limit))
        binary, how = is_binary(params.limit), params.limit
    ceiling = math.floor(parse_quantity(params.max))
    if wanted > ceiling:
        capped = format_bytes(ceiling, binary=is_binary(params.max))
        return ceiling, capped, f"{how}, capped at max {params.max}"
    return wanted, format_bytes(wanted, binary=binary), how


def _patch(container: str, limit: str) -> dict[str, Any]:
    """Strategic merge: containers merge by name, so only this container's memory limit changes."""
    resources = {"limits": {"memory": limit}}
    return {"spec": {"template": {"spec": {"containers": [{"name": container, "resources": resources}]}}}}


class KubernetesSetMemoryLimit(KubernetesAction[MemoryLimitParams]):
    """``kubectl set resources deployment/NAME -c C --limits=memory=…`` (or a StatefulSet), only upwards."""

    name = "kubernetes.set_memory_limit"
    description = "Raise one container's memory limit by a factor or to a value, bounded by max; never lower"
    params_model = MemoryLimitParams
    destructive = True
    execute_is_idempotent = True  # re-reads the object; does nothing when it already matches
 # a template change replaces every pod
    permissions = WORKLOAD_PERMISSIONS

    async def plan(self, ctx: ActionContext, params: MemoryLimitParams) -> Plan:
        api = await self.api(ctx)
        workload = await api.read_workload(params.kind, params.namespace, params.name)
        refuse_on_delete(params.kind, workload, "change the memory limit of")
        current = memory_limit(workload, params.container)
        where, c = self.where(params), params.container
        details: dict[str, Any] = {"namespace": params.namespace, params.kind: params.name,
                                   "container": c, "from": current, "to": None, "patch": None}
        if current is None:
            return Plan(action=self.name, target=ctx.target_name, destructive=False, details=details, steps=(
                f"container {c} of {params.kind} {where} has no memory limit, and setting one would lower "
                "it: nothing to do",))
        wanted, text, how = new_limit(current, params)
        if wanted <= parse_quantity(current):
            details["to"] = current
            return Plan(action=self.name, target=ctx.target_name, destructive=False, details=details, steps=(
                f"container {c} of {params.kind} {where} has memory limit {current}, not below {text} "
                f"(asked {how}): nothing to do, a limit is never lowered",))
        details |= {"to": text, "patch": _patch(c, text)}
        controller = "Deployment" if params.kind == "deployment" else "StatefulSet"
        return Plan(action=self.name, target=ctx.target_name, destructive=True, details=details, steps=(
            f"raise the memory limit of container {c} in {params.kind} {where} from {current} to {text} "
            f"(asked {how})",
            f"PATCH {params.kind} {where} (strategic merge patch): "
            f"containers[name={c}].resources.limits.memory "
            f"= {text}",
            f"the {controller} controller then replaces its pods with the new limit",
        ))

    async def execute(self, ctx: ActionContext, params: MemoryLimitParams, plan: Plan) -> Result:
        planned_from, planned_to = plan.details["from"], plan.details["to"]
        where, c = self.where(params), params.container
        if plan.details.get("patch") is None:
            return Result(summary=f"memory limit of {c} in {where} left as it is ({planned_from}); "
                                  "nothing done", details={"patched": False, "limit": planned_from})
        api = await self.api(ctx)
        current = memory_limit(await api.read_workload(params.kind, params.namespace, params.name), c)
        if current is not None and parse_quantity(current) == parse_quantity(planned_to):
            return Result(summary=f"memory limit of {c} in {where} is already {current}; nothing done",
                          details={"patched": False, "limit": current})
        if current is None or parse_quantity(current) != parse_quantity(planned_from):
            raise PermanentError(f"memory limit of {c} in {where} changed since the plan: {current}, "
                                 f"planned from {planned_from} to {planned_to}; nothing done")
        await api.patch_workload(params.kind, params.namespace, params.name, _patch(c, planned_to))
        return Result(summary=f"raised the memory limit of {c} in {where} from {planned_from} "
                              f"to {planned_to}",
                      details={"patched": True, "from": planned_from, "limit": planned_to})
